"""Markdown for ``mltrust check``: a pull-request comment (summary, failing controls, waivers)."""

from __future__ import annotations

from mltrust.policy import ControlResult, ControlStatus, VerdictStatus
from mltrust.report._check import CheckReport

__all__ = ["check_markdown"]

_ICON = {
    ControlStatus.PASS: "✅",
    ControlStatus.FAIL: "❌",
    ControlStatus.ERROR: "⛔",
    ControlStatus.WARN: "⚠️",
    ControlStatus.SKIP: "➖",
    ControlStatus.WAIVED: "🏳️",
}
#: Details written per control (presentation only, so not in :class:`~mltrust.config.Limits`).
_SHOWN_DETAILS = 10


def _cell(text: str) -> str:
    """Text safe inside a table cell: no pipes, no newlines, no HTML."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", " ")
        .replace("\n", "<br>")
    )


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _details(r: ControlResult) -> str:
    items = [_cell(d) for d in r.details[:_SHOWN_DETAILS]]
    if len(r.details) > _SHOWN_DETAILS:
        items.append(f"… {len(r.details) - _SHOWN_DETAILS} more")
    return "<br>".join(items) or _cell(r.message)


def check_markdown(report: CheckReport) -> str:
    verdict = report.verdict
    counts = verdict.counts()
    head = {
        VerdictStatus.PASS: "✅ **PASS**",
        VerdictStatus.FAIL: "❌ **FAIL**",
        VerdictStatus.ERROR: "⛔ **ERROR**",
    }[verdict.status]
    subject = verdict.subject
    lines = [
        f"## mltrust check: {head}",
        "",
        f"Profile **{_cell(verdict.profile.title)}** (`{verdict.profile.name}`) on "
        f"{_code(str(subject.get('name', '')))} — {_code(str(subject.get('digest', '')))}",
        "",
        "| status | controls |",
        "|---|---:|",
    ]
    for status in ControlStatus:
        lines.append(f"| {_ICON[status]} {status.value} | {counts[status.value]} |")
    lines.append("")
    failing = verdict.by_status(ControlStatus.FAIL, ControlStatus.ERROR)
    if failing:
        lines += [
            "### Failing controls",
            "",
            "| | control | severity | title | details |",
            "|---|---|---|---|---|",
        ]
        for r in failing:
            lines.append(
                f"| {_ICON[r.status]} | {_code(r.control.id)} | {r.control.severity} | "
                f"{_cell(r.control.title)} | {_details(r)} |"
            )
        lines.append("")
        remediations = [r for r in failing if r.control.remediation]
        if remediations:
            lines += ["<details><summary>Remediation</summary>", ""]
            for r in remediations:
                lines.append(f"- {_code(r.control.id)}: {_cell(r.control.remediation)}")
            lines += ["", "</details>", ""]
    warnings = verdict.by_status(ControlStatus.WARN)
    if warnings:
        lines += ["### Warnings", "", "| control | title | details |", "|---|---|---|"]
        for r in warnings:
            lines.append(f"| {_code(r.control.id)} | {_cell(r.control.title)} | {_details(r)} |")
        lines.append("")
    waived = verdict.by_status(ControlStatus.WAIVED)
    if waived or verdict.expired_waivers or verdict.waived_findings:
        lines += [
            "### Waivers",
            "",
            "| control | state | expires | justification |",
            "|---|---|---|---|",
        ]
        for r in waived:
            if r.waiver is not None:
                lines.append(
                    f"| {_code(r.control.id)} | applied | {r.waiver.expires.isoformat()} | "
                    f"{_cell(r.waiver.justification)} |"
                )
        for fp, w in sorted(verdict.waived_findings.items()):
            lines.append(
                f"| {_code(w.describe())} (finding {_code(fp)}) | applied | "
                f"{w.expires.isoformat()} | {_cell(w.justification)} |"
            )
        for w in verdict.expired_waivers:
            lines.append(
                f"| {_code(w.describe())} | **expired** (no longer applies) | "
                f"{w.expires.isoformat()} | {_cell(w.justification)} |"
            )
        lines.append("")
    not_evaluated = report.document.get("subject", {}).get("not_evaluated", [])
    if not_evaluated:
        lines += ["### Not evaluated", ""]
        lines += [f"- {_cell(str(x))}" for x in not_evaluated[:50]]
        if len(not_evaluated) > 50:
            lines.append(f"- ... {len(not_evaluated) - 50} more")
        lines.append("")
    if verdict.collector_errors:
        lines += ["### Collector errors", ""]
        for e in verdict.collector_errors:
            lines.append(f"- {_code(e['collector'])}: {_cell(e['message'])}")
        lines.append("")
    lines += [
        "<details><summary>All controls</summary>",
        "",
        "| | control | title |",
        "|---|---|---|",
    ]
    for r in verdict.results:
        lines.append(f"| {_ICON[r.status]} | {_code(r.control.id)} | {_cell(r.control.title)} |")
    lines += ["", "</details>", "", f"<sub>mltrust {report.tool_version}</sub>", ""]
    return "\n".join(lines)
