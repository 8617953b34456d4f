"""Human-readable output of ``mltrust check``: a table of controls and a verdict line.

Drawn by :mod:`mltrust.report._table` (as ``mltrust scan``'s), which shows the text quoted from
checked files (details, messages, waivers) with control characters escaped, and has no markup.
"""

from __future__ import annotations

from mltrust.policy import ControlStatus, VerdictStatus
from mltrust.report._check import CheckReport
from mltrust.report._table import Cell, Styled, lines, table
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
    width = output_width()
    subject = verdict.subject
    order = {
        ControlStatus.FAIL: 0,
        ControlStatus.ERROR: 1,
        ControlStatus.WARN: 2,
        ControlStatus.WAIVED: 3,
        ControlStatus.PASS: 4,
        ControlStatus.SKIP: 5,
    }
    rows: list[list[Cell]] = []
    for r in sorted(verdict.results, key=lambda r: order[r.status]):
        text = [r.control.title]
        if r.status in (ControlStatus.ERROR, ControlStatus.WAIVED):
            text.append(f"  {r.message}")
        shown = r.details[:_SHOWN_DETAILS]
        text += [f"  - {d}" for d in shown]
        if len(r.details) > len(shown):
            text.append(f"  ... {len(r.details) - len(shown)} more")
        if r.expired_waiver is not None:
            text.append(f"  waiver expired on {r.expired_waiver.expires.isoformat()}")
        rows.append([Styled(r.status.value, _STYLE[r.status]), r.control.id, tuple(text)])
    out = [
        table(
            f"mltrust check: {verdict.profile.title} — {subject.get('name')}",
            ["status", "control", "title / details"],
            rows,
            width,
            color=color,
        )
    ]

    def line(label: str, style: str, text: str) -> None:
        out.append(lines([Styled(label, style), text], width, color=color))

    for err in verdict.collector_errors:
        line("collector error", "bold magenta", f": {err['collector']}: {err['message']}")
    for fp, w in sorted(verdict.waived_findings.items()):
        line(
            "waived finding",
            "cyan",
            f": {w.describe()} ({fp}) until {w.expires.isoformat()}: {w.justification}",
        )
    not_evaluated = report.document.get("subject", {}).get("not_evaluated", [])
    for item in not_evaluated[:_SHOWN_DETAILS]:
        line("not evaluated", "yellow", f": {item}")
    if len(not_evaluated) > _SHOWN_DETAILS:
        line("not evaluated", "yellow", f": ... {len(not_evaluated) - _SHOWN_DETAILS} more")
    for w in verdict.expired_waivers:
        line(
            "expired waiver",
            "yellow",
            f": {w.describe()} (expired {w.expires.isoformat()}) no longer applies",
        )
    counts = verdict.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    style = {
        VerdictStatus.PASS: "bold green",
        VerdictStatus.FAIL: "bold red",
        VerdictStatus.ERROR: "bold magenta",
    }[verdict.status]
    line(
        verdict.status.value.upper(),
        style,
        f" {subject.get('digest', '')} profile {verdict.profile.name}: {summary}",
    )
    return "".join(out)
