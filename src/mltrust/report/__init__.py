"""Rendering of results: human text, JSON, SARIF 2.1.0 (and, from the policy engine, more).

Each format is one module; :func:`render_scan` dispatches through one table.
"""

from __future__ import annotations

from mltrust.report._check import CheckFormat, CheckReport, render_check
from mltrust.report._formats import OutputFormat, render_scan, write_output
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
