"""Output formats for scan results and atomic writing of reports."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import assert_never

from mltrust.scan._result import ScanReport

__all__ = ["OutputFormat", "render_scan", "write_output"]


class OutputFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"


def render_scan(
    report: ScanReport, fmt: OutputFormat, *, color: bool = False, verbose: bool = False
) -> str:
    """Render a scan report as text in the chosen format."""
    if fmt is OutputFormat.TEXT:
        from mltrust.report._text import scan_text

        return scan_text(report, color=color, verbose=verbose)
    if fmt is OutputFormat.JSON:
        return scan_json(report)
    if fmt is OutputFormat.SARIF:
        from mltrust.report._sarif import sarif_log

        return json.dumps(sarif_log(report.files, report.tool_version), indent=2) + "\n"
    assert_never(fmt)


def scan_json(report: ScanReport) -> str:
    """The report as JSON: the summary indented, then one compact line per file.

    One line per file keeps large reports greppable and lets the C JSON encoder do the work
    (``indent`` would force the pure-Python encoder: seconds on reports of many files).
    """
    data = report.to_dict()
    files = data.pop("files")
    head = json.dumps(data, indent=2)[:-2]  # drop the closing "\n}"
    if not files:
        return head + ',\n  "files": []\n}\n'
    lines = ",\n    ".join(json.dumps(f, separators=(", ", ": ")) for f in files)
    return head + ',\n  "files": [\n    ' + lines + "\n  ]\n}\n"


def write_output(text: str, output: str | Path | None) -> None:
    """Write ``text`` to stdout, or atomically to ``output`` (temp file + rename)."""
    if output is None or str(output) == "-":
        try:
            sys.stdout.write(text)  # encoded whole before any of it is written
        except UnicodeEncodeError:
            # stdout that cannot encode the text (PYTHONIOENCODING=ascii, a latin-1 locale):
            # what it cannot encode as its escape, rather than no report at all
            sys.stdout.flush()
            encoding = sys.stdout.encoding or "ascii"
            sys.stdout.buffer.write(text.encode(encoding, "backslashreplace"))
        sys.stdout.flush()
        return
    from mltrust.store._atomic import atomic_write_bytes

    atomic_write_bytes(output, text.encode("utf-8"))
