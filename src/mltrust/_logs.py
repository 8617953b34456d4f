"""Logging of the command line, configured when something first logs.

``mltrust`` prints log records on stderr as ``LEVEL name: message``, at WARNING by default
(``-v`` INFO, ``-vv`` DEBUG, ``-q`` ERROR). Importing :mod:`logging` and configuring it costs
about 6% of a short ``mltrust scan`` (the module, ``traceback``, ``string`` and their patterns),
and a clean scan logs nothing. So, at the default level and while nothing has imported
:mod:`logging` yet, :func:`configure` only records the level; :func:`logger`, which mltrust's
modules use to get their loggers, applies it the first time it is called. ``-v``/``-q`` and
commands whose modules import :mod:`logging` anyway are configured at once.

Not covered: a third-party library that logs a warning during a scan before any mltrust module
asked for a logger prints it through Python's last-resort handler (the message alone, no level
or name). No library the scanner imports does.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["FORMAT", "configure", "logger"]

FORMAT = "%(levelname)s %(name)s: %(message)s"

#: The level waiting to be applied (numeric, as :mod:`logging` defines them), or None.
_pending: list[int] = []


def _apply(level: int) -> None:
    import logging

    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)


def configure(level: int, *, now: bool = False) -> None:
    """Send log records at ``level`` and above to stderr, now or when first needed."""
    _pending.clear()
    if now or "logging" in sys.modules:
        _apply(level)
    else:
        _pending.append(level)


def logger(name: str) -> logging.Logger:
    """The logger ``name``, after applying a configuration :func:`configure` left waiting."""
    import logging

    if _pending:
        _apply(_pending.pop())
    return logging.getLogger(name)
