"""Human-readable output (a rich table) for scan reports."""

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


def scan_text(report: ScanReport, *, color: bool = False, verbose: bool = False) -> str:
    findings = [f for f in report.findings if verbose or f.severity >= Severity.LOW]
    not_scanned = [r for r in report.files if r.status is FileStatus.NOT_SCANNED]
    summary = report.to_dict()["summary"]
    counts = ", ".join(f"{n} {s}" for s, n in summary["findings"].items() if n)
    verdict = "FAIL" if report.failed else ("ERROR" if report.errored else "PASS")
    style = "bold red" if verdict != "PASS" else "bold green"
    line = (
        f"{summary['files']} file(s), {summary['scanned']} scanned, "
        f"{summary['not_scanned']} not scanned, {summary['errors']} unreadable; "
        f"findings: {counts or 'none'} (fail on {report.fail_on.value} and above) "
        f"in {summary['seconds']:.2f}s"
    )
    if not (color or findings or not_scanned):
        # Nothing to lay out: the summary alone, without loading rich (a third of the
        # start-up of `mltrust scan` on one clean file).
        return f"{verdict} {line}\n"

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(
        file=buf, force_terminal=color, no_color=not color, width=120, highlight=False
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
                f.rule_id,
                str(f.location),
                f.message,
            )
        console.print(table)
    for r in not_scanned:
        console.print(f"[yellow]not scanned[/]: {r.path} ({r.reason})")
    console.print(f"[{style}]{verdict}[/] {escape(line)}")
    return buf.getvalue()
