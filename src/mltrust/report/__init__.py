"""Rendering of results: human text, JSON, SARIF 2.1.0, and for policy verdicts JUnit XML,
Markdown and HTML.

Each format is one module. The policy-report names and SARIF are imported on first use, so
that ``mltrust scan`` does not pay for loading the policy engine or formats it does not print.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mltrust.report._formats import OutputFormat, render_scan, write_output

if TYPE_CHECKING:
    from mltrust.report._check import CheckFormat, CheckReport, render_check
    from mltrust.report._sarif import sarif_log

__all__ = [
    "CheckFormat",
    "CheckReport",
    "OutputFormat",
    "render_check",
    "render_scan",
    "sarif_log",
    "write_output",
]

_LAZY = {"CheckFormat", "CheckReport", "render_check"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from mltrust.report import _check

        return getattr(_check, name)
    if name == "sarif_log":  # only the SARIF output needs it
        from mltrust.report import _sarif

        return _sarif.sarif_log
    raise AttributeError(f"module 'mltrust.report' has no attribute {name!r}")
