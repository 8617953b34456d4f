"""A self-contained HTML report for ``mltrust check``: inline CSS and an inline SVG chart, no
external assets or scripts; every value is HTML-escaped."""

from __future__ import annotations

import math
from html import escape

from mltrust.policy import ControlStatus, VerdictStatus
from mltrust.report._check import CheckReport

__all__ = ["check_html"]

_COLOR = {
    ControlStatus.PASS: "#2e7d32",
    ControlStatus.FAIL: "#c62828",
    ControlStatus.ERROR: "#6a1b9a",
    ControlStatus.WARN: "#ef6c00",
    ControlStatus.WAIVED: "#0277bd",
    ControlStatus.SKIP: "#9e9e9e",
}
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;color:#fff;font-weight:600}
table{border-collapse:collapse;width:100%;margin-top:.5rem}
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top;
font-size:.9rem}
th{background:#f5f5f5}code{background:#f2f2f2;padding:0 .2rem;border-radius:.2rem}
ul{margin:.2rem 0;padding-left:1.2rem}.muted{color:#666}
.summary{display:flex;gap:2rem;align-items:center}
"""


def _donut(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    radius, width, size = 60.0, 22.0, 160
    center = size / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img" aria-label="controls by status">'
    ]
    if total == 0:
        parts.append(
            f'<circle cx="{center}" cy="{center}" r="{radius}" fill="none" '
            f'stroke="#ddd" stroke-width="{width}"/>'
        )
    circumference = 2 * math.pi * radius
    offset = 0.0
    for status in ControlStatus:
        n = counts.get(status.value, 0)
        if not n or not total:
            continue
        length = circumference * n / total
        parts.append(
            f'<circle cx="{center}" cy="{center}" r="{radius}" fill="none" '
            f'stroke="{_COLOR[status]}" stroke-width="{width}" '
            f'stroke-dasharray="{length:.3f} {circumference - length:.3f}" '
            f'stroke-dashoffset="{-offset:.3f}" transform="rotate(-90 {center} {center})">'
            f"<title>{escape(status.value)}: {n}</title></circle>"
        )
        offset += length
    parts.append(
        f'<text x="{center}" y="{center + 6}" text-anchor="middle" font-size="20" '
        f'font-family="sans-serif">{total}</text></svg>'
    )
    return "".join(parts)


def check_html(report: CheckReport) -> str:
    verdict = report.verdict
    counts = verdict.counts()
    color = {
        VerdictStatus.PASS: "#2e7d32",
        VerdictStatus.FAIL: "#c62828",
        VerdictStatus.ERROR: "#6a1b9a",
    }[verdict.status]
    subject = verdict.subject
    legend = "".join(
        f'<li><span class="badge" style="background:{_COLOR[s]}">{escape(s.value)}</span> '
        f"{counts[s.value]}</li>"
        for s in ControlStatus
    )
    rows = []
    for r in verdict.results:
        details = "".join(f"<li>{escape(d)}</li>" for d in r.details)
        tags = "; ".join(f"{escape(k)}: {escape(', '.join(v))}" for k, v in r.control.tags.items())
        note = escape(r.message)
        if r.waiver is not None:
            note = escape(f"waived until {r.waiver.expires}: {r.waiver.justification}")
        if r.expired_waiver is not None:
            note += escape(f" (waiver expired on {r.expired_waiver.expires})")
        rows.append(
            "<tr>"
            f'<td><span class="badge" style="background:{_COLOR[r.status]}">'
            f"{escape(r.status.value)}</span></td>"
            f"<td><code>{escape(r.control.id)}</code></td>"
            f'<td>{escape(r.control.title)}<div class="muted">{note}</div>'
            f"{'<ul>' + details + '</ul>' if details else ''}</td>"
            f"<td>{escape(r.control.severity)}</td>"
            f'<td class="muted">{tags}</td>'
            f"<td>{escape(r.control.remediation)}</td>"
            "</tr>"
        )
    errors = "".join(
        f"<li><code>{escape(e['collector'])}</code>: {escape(e['message'])}</li>"
        for e in verdict.collector_errors
    )
    expired = "".join(
        f"<li><code>{escape(w.describe())}</code> expired on {escape(w.expires.isoformat())}: "
        f"{escape(w.justification)}</li>"
        for w in verdict.expired_waivers
    )
    title = f"mltrust check — {subject.get('name', '')}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)} "
        f'<span class="badge" style="background:{color}">{escape(verdict.status.value.upper())}'
        "</span></h1>"
        f"<p>Profile <strong>{escape(verdict.profile.title)}</strong> "
        f"(<code>{escape(verdict.profile.name)}</code>) · subject digest "
        f"<code>{escape(str(subject.get('digest', '')))}</code> · evaluated "
        f"{escape(verdict.evaluated_at)}</p>"
        f'<div class="summary">{_donut(counts)}<ul style="list-style:none">{legend}</ul></div>'
        + (f"<h2>Collector errors</h2><ul>{errors}</ul>" if errors else "")
        + (f"<h2>Expired waivers</h2><ul>{expired}</ul>" if expired else "")
        + "<h2>Controls</h2><table><thead><tr><th>status</th><th>control</th><th>title</th>"
        "<th>severity</th><th>frameworks</th><th>remediation</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        f'<p class="muted">mltrust {escape(report.tool_version)}</p></body></html>\n'
    )
