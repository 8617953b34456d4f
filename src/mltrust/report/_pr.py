"""A pull-request comment comparing the `mltrust check` evidence of the base and the head.

Input: two JSON reports (``mltrust check --format json``), one for the base commit and one for
the head. Output: Markdown for one PR comment (it starts with a hidden marker so a workflow can
find and update its own comment), listing the verdict change, controls whose status changed,
new findings, fixed findings, and robustness deltas, with small severity charts drawn in text
(GitHub renders no inline images from data URIs); :func:`write_charts` optionally draws the same
as PNG files to attach as workflow artifacts.

Findings are matched by their ``fingerprint`` (the one SARIF and waivers use), falling back to
rule, path and message for reports written by older versions. A finding that moved lines keeps
its fingerprint only where the fingerprint ignores lines; otherwise it shows as fixed + new,
which is the honest reading.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import InputError

__all__ = ["MARKER", "PrDiff", "compare_reports", "load_report", "render_pr_markdown"]

MARKER = "<!-- mltrust-report -->"
_SEVERITIES = ("critical", "high", "medium", "low", "info")
_RANK = {s: i for i, s in enumerate(_SEVERITIES)}
#: Findings listed in the comment (presentation only, so not in :class:`~mltrust.config.Limits`).
_SHOWN_ROWS = 50


@dataclass(frozen=True, slots=True)
class PrDiff:
    base_verdict: str
    head_verdict: str
    new: tuple[Mapping[str, Any], ...]
    fixed: tuple[Mapping[str, Any], ...]
    #: ``(control id, title, base status, head status)`` for controls whose status changed.
    controls: tuple[tuple[str, str, str, str], ...]
    base_counts: Mapping[str, int]
    head_counts: Mapping[str, int]
    #: ``(epsilon, base robust accuracy, head robust accuracy)``.
    robustness: tuple[tuple[float, float | None, float | None], ...]

    @property
    def needs_review(self) -> bool:
        """Head does not pass, or it brings a new finding at high or above."""
        return self.head_verdict != "pass" or any(
            _RANK.get(str(f.get("severity")), 9) <= _RANK["high"] for f in self.new
        )


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a `mltrust check --format json` report (bounded, regular file, no links)."""
    from mltrust.files import read_bounded

    data = read_bounded(path, DEFAULT_LIMITS.max_pr_report_bytes, what="check report")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a JSON check report: {exc}") from None
    if (
        not isinstance(doc, dict)
        or "verdict" not in doc
        or not isinstance(doc.get("controls"), list)
    ):
        raise InputError(f"{path} is not a `mltrust check --format json` report")
    return doc


def _key(f: Mapping[str, Any]) -> str:
    fp = f.get("fingerprint")
    if isinstance(fp, str) and fp:
        return fp
    loc = f.get("location") if isinstance(f.get("location"), Mapping) else {}
    return f"{f.get('rule_id')}|{loc.get('path', '') if loc else ''}|{f.get('message')}"


def _findings(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    rows = doc.get("findings") or []
    return {_key(f): f for f in rows if isinstance(f, Mapping)}


def _counts(findings: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    out = dict.fromkeys(_SEVERITIES, 0)
    for f in findings.values():
        sev = str(f.get("severity"))
        if sev in out:
            out[sev] += 1
    return out


def _robust(doc: Mapping[str, Any]) -> dict[float, float]:
    section = (doc.get("evidence") or {}).get("robustness") or {}
    out: dict[float, float] = {}
    rows = section.get("results") if isinstance(section, Mapping) else None
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping):
            try:
                out[float(row["eps"])] = float(row["robust_accuracy"])
            except (KeyError, TypeError, ValueError):
                continue
    return out


def _order(f: Mapping[str, Any]) -> tuple[int, str]:
    return (_RANK.get(str(f.get("severity")), 9), str(f.get("rule_id")))


def compare_reports(base: Mapping[str, Any], head: Mapping[str, Any]) -> PrDiff:
    b, h = _findings(base), _findings(head)
    bc = {c.get("id"): c for c in base.get("controls", []) if isinstance(c, Mapping)}
    changed = []
    for c in head.get("controls", []):
        if not isinstance(c, Mapping):
            continue
        before = bc.get(c.get("id"), {}).get("status", "absent")
        if before != c.get("status"):
            changed.append(
                (str(c.get("id")), str(c.get("title", "")), str(before), str(c.get("status")))
            )
    rb, rh = _robust(base), _robust(head)
    robustness = tuple((e, rb.get(e), rh.get(e)) for e in sorted(set(rb) | set(rh)))
    return PrDiff(
        base_verdict=str(base.get("verdict")),
        head_verdict=str(head.get("verdict")),
        new=tuple(sorted((f for k, f in h.items() if k not in b), key=_order)),
        fixed=tuple(sorted((f for k, f in b.items() if k not in h), key=_order)),
        controls=tuple(changed),
        base_counts=_counts(b),
        head_counts=_counts(h),
        robustness=robustness,
    )


def _cell(text: object) -> str:
    """Markdown table cell: no pipes, no newlines, no HTML or link injection from findings."""
    s = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    for ch in "<>[]`":
        s = s.replace(ch, "\\" + ch)
    return s[:300]


def _num(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _bar(n: int, scale: int) -> str:
    if n == 0 or scale == 0:
        return ""
    width = max(1, round(20 * n / scale))
    return "█" * width


def _finding_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    out = ["| severity | rule | where | message |", "|---|---|---|---|"]
    for f in rows[:_SHOWN_ROWS]:
        loc = f.get("location") if isinstance(f.get("location"), Mapping) else {}
        where = (loc or {}).get("path", "")
        out.append(
            f"| {_cell(f.get('severity'))} | {_cell(f.get('rule_id'))} | {_cell(where)} "
            f"| {_cell(f.get('message'))} |"
        )
    if len(rows) > _SHOWN_ROWS:
        out.append(f"| | | | … and {len(rows) - _SHOWN_ROWS} more |")
    return out


def render_pr_markdown(diff: PrDiff, *, title: str = "mltrust") -> str:
    arrow = "unchanged" if diff.base_verdict == diff.head_verdict else "changed"
    lines = [
        MARKER,
        f"## {_cell(title)}: {diff.base_verdict} → **{diff.head_verdict}** ({arrow})",
        "",
        f"{len(diff.new)} new finding(s), {len(diff.fixed)} fixed, "
        f"{len(diff.controls)} control(s) changed status.",
        "",
    ]
    if diff.controls:
        lines += ["### Controls", "", "| control | base | head |", "|---|---|---|"]
        lines += [
            f"| {_cell(cid)} — {_cell(t)} | {b} | **{h}** |" for cid, t, b, h in diff.controls
        ]
        lines.append("")
    if diff.new:
        lines += ["### New findings", "", *_finding_rows(diff.new), ""]
    if diff.fixed:
        lines += ["### Fixed findings", "", *_finding_rows(diff.fixed), ""]
    scale = max([*diff.base_counts.values(), *diff.head_counts.values(), 1])
    lines += ["### Findings by severity", "", "```text"]
    for sev in _SEVERITIES:
        b, h = diff.base_counts.get(sev, 0), diff.head_counts.get(sev, 0)
        lines.append(f"{sev:<8} base {b:>4} {_bar(b, scale):<20}  head {h:>4} {_bar(h, scale)}")
    lines += ["```", ""]
    if diff.robustness:
        lines += ["### Robust accuracy", "", "| ε | base | head | Δ |", "|---|---|---|---|"]
        for eps, b_acc, h_acc in diff.robustness:
            delta = f"{h_acc - b_acc:+.3f}" if b_acc is not None and h_acc is not None else "n/a"
            lines.append(f"| {eps:g} | {_num(b_acc)} | {_num(h_acc)} | {delta} |")
        lines.append("")
    if diff.needs_review:
        lines.append("_This change needs a security review before it merges._")
    return "\n".join(lines) + "\n"


def write_charts(diff: PrDiff, folder: str | Path) -> list[Path]:
    """PNG charts of the severity counts (and robustness when present), for workflow artifacts."""
    import matplotlib

    matplotlib.use("Agg")  # type: ignore[no-untyped-call]
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    fig, ax = plt.subplots(figsize=(5, 2.5))
    xs = range(len(_SEVERITIES))
    ax.bar(
        [x - 0.2 for x in xs], [diff.base_counts.get(s, 0) for s in _SEVERITIES], 0.4, label="base"
    )
    ax.bar(
        [x + 0.2 for x in xs], [diff.head_counts.get(s, 0) for s in _SEVERITIES], 0.4, label="head"
    )
    ax.set_xticks(list(xs), list(_SEVERITIES))
    ax.set_ylabel("findings")
    ax.legend()
    fig.tight_layout()
    path = out / "severity.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    if diff.robustness:
        fig, ax = plt.subplots(figsize=(5, 2.5))
        eps = [e for e, _, _ in diff.robustness]
        ax.plot(
            eps,
            [b if b is not None else float("nan") for _, b, _ in diff.robustness],
            "o-",
            label="base",
        )
        ax.plot(
            eps,
            [h if h is not None else float("nan") for _, _, h in diff.robustness],
            "o-",
            label="head",
        )
        ax.set_xlabel("ε")
        ax.set_ylabel("robust accuracy")
        ax.legend()
        fig.tight_layout()
        path = out / "robustness.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written
