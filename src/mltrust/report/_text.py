"""Human-readable output (a table of findings and a summary line) for scan reports.

Drawn by :mod:`mltrust.report._table`, not rich: importing rich cost more than scanning a small
file (~30% of a ``mltrust scan`` process with findings). The table looks as rich drew it. A clean
scan's one summary line is written without importing even that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrust.findings import Severity
from mltrust.scan._result import FileStatus, ScanReport

if TYPE_CHECKING:
    from mltrust.report._table import Cell

__all__ = ["scan_text"]

_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


#: Console width of the text output.
_WIDTH = 120  # when neither COLUMNS nor a terminal says otherwise (files, pipes, CI logs)
_MIN_WIDTH = 40


def output_width() -> int:
    """The width text reports are laid out to: ``COLUMNS`` when it is a number, else the
    terminal's width when standard output is one, else 120 (stable for files and CI logs)."""
    import os
    import sys

    raw = os.environ.get("COLUMNS", "").strip()
    # ASCII digits only (str.isdigit also takes "²", which int() refuses), and few of them
    # (int() refuses over 4300): a wider terminal than 5 digits is no terminal
    if raw.isascii() and raw.isdigit() and len(raw) <= 5 and int(raw) > 0:
        return max(_MIN_WIDTH, int(raw))
    try:
        if sys.stdout.isatty():
            import shutil  # only for a terminal: shutil loads bz2 and lzma, a piped run need not

            return max(_MIN_WIDTH, shutil.get_terminal_size((_WIDTH, 24)).columns)
    except (AttributeError, ValueError, OSError):
        pass
    return _WIDTH


def scan_text(report: ScanReport, *, color: bool = False, verbose: bool = False) -> str:
    findings = [f for f in report.findings if verbose or f.severity >= Severity.LOW]
    summary = report.to_dict()["summary"]
    not_scanned = [r for r in report.files if r.status is FileStatus.NOT_SCANNED]
    counts = ", ".join(f"{n} {s}" for s, n in summary["findings"].items() if n)
    verdict = "FAIL" if report.failed else ("ERROR" if report.errored else "PASS")
    line = (
        f"{summary['files']} file(s), {summary['scanned']} scanned, "
        f"{summary['not_scanned']} not scanned, {summary['errors']} unreadable; "
        f"findings: {counts or 'none'} (fail on {report.fail_on.value} and above) "
        f"in {summary['seconds']:.2f}s"
    )
    width = output_width()
    plain = f"{verdict} {line}"
    if (
        not color
        and not findings
        and not not_scanned
        and len(plain) <= width
        and plain.isascii()
        and plain.isprintable()
    ):
        # The usual CI or pre-commit run on one clean file: one line, as lines() would lay it
        # out, without importing the table module.
        return plain + "\n"

    from mltrust.report._table import Styled, lines, table

    out = []
    if findings:
        order = sorted(findings, key=lambda f: (-f.severity.rank, str(f.location)))
        rows: list[list[Cell]] = [
            # Locations and messages quote the scanned file: the table escapes what a
            # terminal would not simply draw, and has no markup.
            [Styled(f.severity.value, _STYLE[f.severity]), f.rule_id, str(f.location), f.message]
            for f in order
        ]
        out.append(
            table(
                "mltrust scan findings",
                ["severity", "rule", "location", "message"],
                rows,
                width,
                color=color,
            )
        )
    for r in not_scanned:
        out.append(
            lines([Styled("not scanned", "yellow"), f": {r.path} ({r.reason})"], width, color=color)
        )
    style = "bold red" if verdict != "PASS" else "bold green"
    out.append(lines([Styled(verdict, style), f" {line}"], width, color=color))
    return "".join(out)
