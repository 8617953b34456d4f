"""Evidence from an :class:`~mltrust.explain.Explanation`: the in-toto statement and an HTML
report with inline SVG charts (no scripts, no network, every name from the data escaped)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mltrust.explain._explain import Explanation

__all__ = ["PREDICATE_TYPE", "html_report", "predicate", "statement"]

PREDICATE_TYPE = "https://mltrust.dev/explain/v1"
_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_COLOURS = {"shap": "#3b6ea8", "permutation": "#d08c2f", "integrated_gradients": "#4a9a5b"}


def predicate(
    exp: Explanation, *, dataset: str, dataset_sha256: str | None = None
) -> dict[str, Any]:
    """The ``https://mltrust.dev/explain/v1`` predicate: the whole report plus when and on what."""
    from mltrust import __version__

    body = exp.to_dict()
    body["dataset"] = {"name": dataset}
    if dataset_sha256:
        body["dataset"]["digest"] = {"sha256": dataset_sha256}
    body["explainer"] = {"name": "mltrust", "version": __version__}
    body["explainedAt"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return body


def statement(
    exp: Explanation,
    *,
    subject_name: str,
    sha256: str,
    dataset: str,
    dataset_sha256: str | None = None,
) -> dict[str, Any]:
    """An (unsigned) in-toto Statement v1 about the model file ``sha256``."""
    return {
        "_type": _STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(exp, dataset=dataset, dataset_sha256=dataset_sha256),
    }


def _bars(exp: Explanation, top: int = 20) -> str:
    """Grouped horizontal bars: the ``top`` features by primary importance, one bar per method."""
    order = np.argsort(-exp.importance, kind="stable")[:top]
    methods = sorted(exp.methods, key=lambda m: (m != exp.primary, m))
    bar_h, gap, label_w, width = 9, 8, 170, 640
    group_h = bar_h * len(methods) + gap
    height = group_h * len(order) + 40
    peak = max(float(max(v[order].max() for v in exp.methods.values())), 1e-12)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="feature importance">'
    ]
    for i, j in enumerate(order):
        y0 = 10 + i * group_h
        name = html.escape(exp.feature_names[j][:28])
        parts.append(
            f'<text x="{label_w - 6}" y="{y0 + group_h / 2}" text-anchor="end" '
            f'font-size="11" dominant-baseline="middle">{name}</text>'
        )
        for k, m in enumerate(methods):
            w = (width - label_w - 60) * float(exp.methods[m][j]) / peak
            parts.append(
                f'<rect x="{label_w}" y="{y0 + k * bar_h}" width="{w:.1f}" '
                f'height="{bar_h - 1}" fill="{_COLOURS.get(m, "#777")}">'
                f"<title>{html.escape(m)}: {float(exp.methods[m][j]):.4f}</title></rect>"
            )
    ly = height - 18
    for k, m in enumerate(methods):
        x = label_w + k * 150
        parts.append(
            f'<rect x="{x}" y="{ly}" width="10" height="10" fill="{_COLOURS.get(m, "#777")}"/>'
            f'<text x="{x + 14}" y="{ly + 9}" font-size="11">{html.escape(m)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _lines(curves: Sequence[tuple[str, np.ndarray, str, bool]], title: str) -> str:
    """A line chart of curves over the fraction of features removed/inserted."""
    width, height, pad = 420, 260, 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="12">'
        f"{html.escape(title)}</text>",
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - 10}" y2="{height - pad}" '
        'stroke="#444"/>',
        f'<line x1="{pad}" y1="24" x2="{pad}" y2="{height - pad}" stroke="#444"/>',
        f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
        "fraction of features, most attributed first</text>",
        f'<text x="12" y="{height / 2}" font-size="11" transform="rotate(-90 12 {height / 2})" '
        'text-anchor="middle">p(explained class)</text>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = height - pad - (height - pad - 24) * tick
        parts.append(
            f'<line x1="{pad - 4}" y1="{y:.1f}" x2="{pad}" y2="{y:.1f}" stroke="#444"/>'
            f'<text x="{pad - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{tick:g}</text>'
        )
    for name, curve, colour, dashed in curves:
        n = len(curve)
        pts = " ".join(
            f"{pad + (width - pad - 10) * i / max(n - 1, 1):.1f},"
            f"{height - pad - (height - pad - 24) * float(np.clip(v, 0, 1)):.1f}"
            for i, v in enumerate(curve)
        )
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="{pts}">'
            f"<title>{html.escape(name)}</title></polyline>"
        )
    for k, (name, _, colour, dashed) in enumerate(curves):
        y = 30 + 14 * k
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        parts.append(
            f'<line x1="{width - 150}" y1="{y}" x2="{width - 130}" y2="{y}" stroke="{colour}" '
            f'stroke-width="2"{dash}/><text x="{width - 126}" y="{y + 4}" font-size="10">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def html_report(exp: Explanation, *, model: str, dataset: str) -> str:
    """A self-contained HTML page: verdicts of the checks, importance chart, curves, table."""
    c = exp.curves
    rows = "".join(
        f"<tr class='{ch.status.value}'><td>{html.escape(ch.name)}</td>"
        f"<td><b>{ch.status.value.upper()}</b></td><td>{html.escape(ch.detail)}</td></tr>"
        for ch in exp.checks
    )
    methods = sorted(exp.methods, key=lambda m: (m != exp.primary, m))
    head = "".join(f"<th>{html.escape(m)}</th>" for m in methods)
    table = "".join(
        f"<tr><td>{html.escape(f['name'])}</td>"
        + "".join(f"<td>{f[m]:.4f}</td>" for m in methods)
        + "</tr>"
        for f in exp.features()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in exp.notes)
    verdict = "all checks passed" if exp.passed else "some checks did not pass"
    shap_kind = "exact Shapley values" if exp.shap_exact else "Kernel SHAP estimate"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>mltrust explain: {html.escape(model)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 3px 8px; font-size: 13px; text-align: left; }}
tr.pass td:nth-child(2) {{ color: #1d7a33; }} tr.fail td:nth-child(2) {{ color: #b3261e; }}
tr.skip td:nth-child(2) {{ color: #8a6d00; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 1em; }}
</style></head><body>
<h1>Explanation of {html.escape(model)}</h1>
<p>Data: {html.escape(dataset)} · model {html.escape(exp.model_kind)} · {exp.rows} rows explained
against {exp.background} background rows · {shap_kind} · <b>{verdict}</b></p>
<h2>Sanity checks</h2>
<table><tr><th>check</th><th>result</th><th>figures</th></tr>{rows}</table>
<h2>Feature importance</h2>
<p>Mean absolute attribution per feature, normalised to sum 1 for each method.</p>
{_bars(exp)}
<h2>Faithfulness</h2>
<div class="charts">
{
        _lines(
            [
                ("attribution order", c["deletion"], "#b3261e", False),
                ("random order", c["random_deletion"], "#999", True),
            ],
            "deletion curve",
        )
    }
{
        _lines(
            [
                ("attribution order", c["insertion"], "#1d7a33", False),
                ("random order", c["random_insertion"], "#999", True),
            ],
            "insertion curve",
        )
    }
</div>
<h2>All features</h2>
<table><tr><th>feature</th>{head}</tr>{table}</table>
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""
