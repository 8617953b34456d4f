"""Drift reports: text, JSON, and HTML with per-feature distribution plots (inline SVG)."""

from __future__ import annotations

import html
import io
import json
from typing import Any

import numpy as np

from mltrust import __version__
from mltrust.errors import ConfigError
from mltrust.monitor._drift import DriftReport

__all__ = ["render_drift"]


def _family_alpha(report: DriftReport) -> float:
    return report.alpha if report.family_alpha is None else report.family_alpha


def _text(report: DriftReport) -> str:
    lines = [
        f"drift: {'YES' if report.drift else 'no'}  (reference {report.n_reference} rows, "
        f"current {report.n_current} rows, α={report.alpha} overall, "
        f"{_family_alpha(report):.3g} per test family, correction={report.correction})",
        f"{len(report.drifted)} of {len(report.features)} features drifted",
    ]
    ranked = sorted(report.features, key=lambda f: f.p_adjusted)
    for f in ranked[:20]:
        extra = ""
        if f.psi is not None and f.wasserstein is not None:
            extra = f"  PSI {f.psi:.3f}  W1/sd {f.wasserstein:.3f}"
        mark = "*" if f.drift else " "
        lines.append(
            f" {mark} {f.name:<24} {f.test:<4} stat {f.statistic:.4g}  "
            f"p {f.p_value:.3g}  p_adj {f.p_adjusted:.3g}{extra}"
        )
    if report.mmd is not None:
        m = report.mmd
        lines.append(
            f"MMD ({m.method}, bandwidth {m.bandwidth:.3g}, {m.n_reference}×"
            f"{m.n_current} rows): {m.statistic:.4g}, p {m.p_value:.3g}"
            f"{'  DRIFT' if m.drift else ''}"
        )
    if report.classifier is not None:
        c = report.classifier
        lines.append(f"classifier AUC {c.auc:.3f}, p {c.p_value:.3g}{'  DRIFT' if c.drift else ''}")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _plots(report: DriftReport, reference: Any, current: Any, limit: int) -> str:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("charts need matplotlib", hint="pip install 'mltrust[plots]'") from None

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = [f.name for f in sorted(report.features, key=lambda f: f.p_adjusted)][:limit]
    out = []
    for name in names:
        if hasattr(reference, "columns"):
            r, c = reference[name].to_numpy(), current[name].to_numpy()
        else:
            j = [f.name for f in report.features].index(name)
            r, c = np.asarray(reference)[:, j], np.asarray(current)[:, j]
        fig = Figure(figsize=(4.5, 2.8))
        ax = fig.add_subplot()
        if np.issubdtype(np.asarray(r).dtype, np.number):
            r = np.asarray(r, dtype=np.float64)
            c = np.asarray(c, dtype=np.float64)
            lo, hi = float(min(r.min(), c.min())), float(max(r.max(), c.max()))
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 31).tolist()
            ax.hist(r, bins=bins, density=True, alpha=0.5, label="reference")
            ax.hist(c, bins=bins, density=True, alpha=0.5, label="current")
        else:
            cats = sorted(set(map(str, r)) | set(map(str, c)))[:30]
            rr = [np.mean(np.asarray(r).astype(str) == k) for k in cats]
            cc = [np.mean(np.asarray(c).astype(str) == k) for k in cats]
            x = np.arange(len(cats))
            ax.bar(x - 0.2, rr, 0.4, label="reference")
            ax.bar(x + 0.2, cc, 0.4, label="current")
            ax.set_xticks(x, cats, rotation=45, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        svg = buf.getvalue()
        out.append(f"<figure>{svg[svg.find('<svg') :]}</figure>")
    return "".join(out)


def _html(report: DriftReport, reference: Any, current: Any, plots: int) -> str:
    rows = "".join(
        f"<tr{' style=background:#fdd' if f.drift else ''}><td>{html.escape(f.name)}</td>"
        f"<td>{f.test}</td><td>{f.statistic:.4g}</td><td>{f.p_value:.3g}</td>"
        f"<td>{f.p_adjusted:.3g}</td><td>{'' if f.psi is None else f'{f.psi:.3f}'}</td>"
        f"<td>{'' if f.wasserstein is None else f'{f.wasserstein:.3f}'}</td></tr>"
        for f in sorted(report.features, key=lambda f: f.p_adjusted)
    )
    charts = _plots(report, reference, current, plots) if reference is not None else ""
    summary = html.escape(_text(report).split("\n")[0])
    multi = ""
    if report.mmd is not None:
        m = report.mmd
        multi += (
            f"<tr{' style=background:#fdd' if m.drift else ''}><td>MMD ({html.escape(m.method)}"
            f", bandwidth {m.bandwidth:.3g}, {m.n_reference}×{m.n_current} rows)</td>"
            f"<td>{m.statistic:.4g}</td><td>{m.p_value:.3g}</td>"
            f"<td>{'DRIFT' if m.drift else 'no'}</td></tr>"
        )
    if report.classifier is not None:
        c = report.classifier
        multi += (
            f"<tr{' style=background:#fdd' if c.drift else ''}><td>classifier (held-out AUC, "
            f"{c.n} rows)</td><td>{c.auc:.3f}</td><td>{c.p_value:.3g}</td>"
            f"<td>{'DRIFT' if c.drift else 'no'}</td></tr>"
        )
    if multi:
        multi = (
            "<h2>Multivariate tests</h2><table><tr><th>test</th><th>statistic</th><th>p</th>"
            f"<th>verdict at α per family {_family_alpha(report):.3g}</th></tr>{multi}</table>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>mltrust drift report</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
        "figure{display:inline-block;margin:.3em}</style></head><body>"
        f"<h1>Drift report</h1><p>{summary}</p>"
        "<table><tr><th>feature</th><th>test</th><th>statistic</th><th>p</th><th>p adjusted"
        f"</th><th>PSI</th><th>W1/sd</th></tr>{rows}</table>"
        f"{multi}"
        f"<h2>Distributions (most drifted first)</h2>{charts}"
        f"<p><small>mltrust {html.escape(__version__)}</small></p></body></html>"
    )


def render_drift(
    report: DriftReport, fmt: str, *, reference: Any = None, current: Any = None, plots: int = 12
) -> str:
    """Render as ``text``, ``json`` or ``html`` (HTML plots need the data)."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2) + "\n"
    if fmt == "html":
        return _html(report, reference, current, plots)
    return _text(report)
