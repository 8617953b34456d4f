"""Human-readable output (a rich table) for scan reports.

rich is imported only when there is something to lay out: the output of a clean scan without
colour (the usual CI or pre-commit run on one file) is its one summary line, written directly;
importing rich would cost more than scanning a small file.
"""

from __future__ import annotations

import io

from mltrust.findings import Severity
from mltrust.scan._result import FileStatus, ScanReport

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
    if raw.isdigit() and int(raw) > 0:
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
    plain = f"{verdict} {line}"
    width = output_width()
    if not color and not findings and not not_scanned and _fits(plain, width):
        # What rich writes for this line without colour: the text, as it fits the width.
        return plain + "\n"

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(
        file=buf, force_terminal=color, no_color=not color, width=width, highlight=False
    )
    if findings:
        table = Table(title="mltrust scan findings", show_lines=False)
        table.add_column("severity")
        table.add_column("rule")
        table.add_column("location", overflow="fold")
        table.add_column("message", overflow="fold")
        order = sorted(findings, key=lambda f: (-f.severity.rank, str(f.location)))
        for f in order:
            table.add_row(
                f"[{_STYLE[f.severity]}]{f.severity.value}[/]",
                escape(f.rule_id),
                # Escaped: locations and messages quote the scanned file (a pickle's global
                # named "system[/x]" made rich raise a MarkupError instead of printing).
                escape(str(f.location)),
                escape(f.message),
            )
        console.print(table)
    for r in not_scanned:
        console.print(f"[yellow]not scanned[/]: {escape(f'{r.path} ({r.reason})')}")
    style = "bold red" if verdict != "PASS" else "bold green"
    console.print(f"[{style}]{verdict}[/] {escape(line)}")
    return buf.getvalue()


def _fits(line: str, width: int) -> bool:
    """Whether rich would write ``line`` unchanged: one printable ASCII line within the width
    (no wrapping, no markup, one cell per character)."""
    return len(line) < width and line.isascii() and line.isprintable() and "[" not in line
