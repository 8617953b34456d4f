"""Human-readable output of ``mltrust check`` (rich)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mltrust.policy import ControlStatus, VerdictStatus
from mltrust.report._check import CheckReport
from mltrust.report._text import output_width

__all__ = ["check_text"]

_STYLE = {
    ControlStatus.PASS: "green",
    ControlStatus.FAIL: "bold red",
    ControlStatus.ERROR: "bold magenta",
    ControlStatus.WARN: "yellow",
    ControlStatus.SKIP: "dim",
    ControlStatus.WAIVED: "cyan",
}
#: Details printed per control (presentation only, so not in :class:`~mltrust.config.Limits`).
_SHOWN_DETAILS = 8


def check_text(report: CheckReport, *, color: bool = False) -> str:
    verdict = report.verdict
    buf = io.StringIO()
    console = Console(
        file=buf,
        force_terminal=color,
        no_color=not color,
        width=output_width(),
        highlight=False,
    )
    subject = verdict.subject
    table = Table(
        title=f"mltrust check: {escape(verdict.profile.title)} — {escape(str(subject.get('name')))}"
    )
    table.add_column("status")
    table.add_column("control")
    table.add_column("title / details", overflow="fold")
    order = {
        ControlStatus.FAIL: 0,
        ControlStatus.ERROR: 1,
        ControlStatus.WARN: 2,
        ControlStatus.WAIVED: 3,
        ControlStatus.PASS: 4,
        ControlStatus.SKIP: 5,
    }
    for r in sorted(verdict.results, key=lambda r: order[r.status]):
        text = escape(r.control.title)
        if r.status in (ControlStatus.ERROR, ControlStatus.WAIVED):
            text += f"\n  {escape(r.message)}"
        shown = r.details[:_SHOWN_DETAILS]
        for d in shown:
            text += f"\n  - {escape(d)}"
        if len(r.details) > len(shown):
            text += f"\n  ... {len(r.details) - len(shown)} more"
        if r.expired_waiver is not None:
            text += f"\n  waiver expired on {r.expired_waiver.expires.isoformat()}"
        table.add_row(f"[{_STYLE[r.status]}]{r.status.value}[/]", escape(r.control.id), text)
    console.print(table)
    for err in verdict.collector_errors:
        console.print(
            f"[bold magenta]collector error[/]: {escape(err['collector'])}: "
            f"{escape(err['message'])}"
        )
    for fp, w in sorted(verdict.waived_findings.items()):
        console.print(
            f"[cyan]waived finding[/]: {escape(w.describe())} ({fp}) until "
            f"{w.expires.isoformat()}: {escape(w.justification)}"
        )
    not_evaluated = report.document.get("subject", {}).get("not_evaluated", [])
    for line in not_evaluated[:_SHOWN_DETAILS]:
        console.print(f"[yellow]not evaluated[/]: {escape(str(line))}")
    if len(not_evaluated) > _SHOWN_DETAILS:
        console.print(f"[yellow]not evaluated[/]: ... {len(not_evaluated) - _SHOWN_DETAILS} more")
    for w in verdict.expired_waivers:
        console.print(
            f"[yellow]expired waiver[/]: {escape(w.describe())} (expired {w.expires.isoformat()}) "
            "no longer applies"
        )
    counts = verdict.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    style = {
        VerdictStatus.PASS: "bold green",
        VerdictStatus.FAIL: "bold red",
        VerdictStatus.ERROR: "bold magenta",
    }[verdict.status]
    console.print(
        f"[{style}]{verdict.status.value.upper()}[/] {escape(str(subject.get('digest', '')))} "
        f"profile {escape(verdict.profile.name)}: {summary}"
    )
    return buf.getvalue()
