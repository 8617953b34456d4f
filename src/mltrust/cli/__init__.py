"""The ``mltrust`` command line. Each command lives in its own ``_<name>.py`` module."""

from __future__ import annotations

from mltrust import _precompiled

_precompiled.install()  # before the imports below create their dataclasses

from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, cli, main  # noqa: E402

__all__ = ["EXIT_CLEAN", "EXIT_ERROR", "EXIT_FINDINGS", "cli", "main"]
