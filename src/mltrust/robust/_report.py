"""Robustness evidence: the in-toto predicate, an HTML report with inline charts, PNG files."""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from mltrust import __version__
from mltrust.errors import ConfigError
from mltrust.robust._evaluate import RobustnessReport

__all__ = ["PREDICATE_TYPE", "html_report", "predicate", "statement", "write_pngs"]

PREDICATE_TYPE = "https://mltrust.dev/robustness/v1"


def predicate(
    report: RobustnessReport, *, dataset: str = "", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The predicate body: figures a policy can test (e.g. minimum robust accuracy at ε)."""
    body = report.to_dict()
    body["dataset"] = dataset
    body["min_robust_accuracy"] = min(r.robust_accuracy for r in report.results)
    body["tool"] = {"name": "mltrust", "version": __version__}
    if extra:
        body.update(extra)
    return body


def statement(
    report: RobustnessReport, *, subject_name: str, sha256: str, dataset: str = ""
) -> dict[str, Any]:
    """An unsigned in-toto Statement v1 carrying :func:`predicate` about one model file."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject_name, "digest": {"sha256": sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate(report, dataset=dataset),
    }


def _figures(report: RobustnessReport) -> list[tuple[str, Any]]:
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("charts need matplotlib", hint="pip install 'mltrust[plots]'") from None

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figs: list[tuple[str, Any]] = []
    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.add_subplot()
    eps = [0.0] + [r.eps for r in report.results]
    acc = [report.clean_accuracy] + [r.robust_accuracy for r in report.results]
    ax.plot(eps, acc, marker="o")
    ax.set_xlabel(f"ε (L{'∞' if report.norm == 'inf' else '2'})")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"robust accuracy under {report.attack}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    figs.append(("accuracy_vs_eps", fig))
    if report.perturbation is not None:
        p = report.perturbation[np.isfinite(report.perturbation) & (report.perturbation > 0)]
        if p.size:
            fig = Figure(figsize=(5.5, 3.5))
            ax = fig.add_subplot()
            ax.hist(p, bins=30)
            ax.set_xlabel(f"minimal perturbation ({report.perturbation_kind})")
            ax.set_ylabel("samples")
            ax.set_title("distribution of the minimal adversarial perturbation")
            fig.tight_layout()
            figs.append(("perturbation_histogram", fig))
    return figs


def write_pngs(report: RobustnessReport, folder: str | Path) -> list[Path]:
    """Write the charts as PNG files into ``folder``; returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    from mltrust.store._atomic import atomic_path

    for name, fig in _figures(report):
        path = out / f"{name}.png"
        # written like the HTML and JSON reports (atomically, same file mode)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        paths.append(path)
    return paths


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.find("<svg") :]


def _threat_line(report: RobustnessReport) -> str:
    from mltrust.robust._evaluate import domain_text

    tm = report.threat
    if not tm:
        return "not recorded"
    line = (
        f"L{'∞' if tm['norm'] == 'inf' else '2'}, ε ∈ {{{', '.join(f'{e:g}' for e in tm['eps'])}}}"
        f", domain {domain_text(tm)}, attacks {' + '.join(tm['attacks_run'])}"
    )
    if tm.get("steps") is not None:
        line += f", {tm['steps']} steps × {tm['restarts']} restarts, loss {tm['loss']}"
    return line


def html_report(
    report: RobustnessReport, *, title: str = "mltrust robustness report", dataset: str = ""
) -> str:
    """A self-contained HTML page (inline SVG charts, no scripts, no external resources)."""
    rows = "".join(
        f"<tr><td>{r.eps:g}</td><td>{r.robust_accuracy:.3f}</td><td>{html.escape(r.bound)}"
        f"</td><td>{r.seconds:.3f}</td></tr>"
        for r in report.results
    )
    charts = "".join(f"<figure>{_svg(fig)}</figure>" for _, fig in _figures(report))
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    queries = (
        f"<p>queries: {report.queries} ({report.queries / max(report.n, 1):.0f} per sample)</p>"
        if report.queries is not None
        else ""
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .8em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>"
        f"<p>model: {html.escape(report.model_kind)} · data: {html.escape(dataset)} · "
        f"samples: {report.n} · attack: {html.escape(report.attack)} · norm: L"
        f"{'∞' if report.norm == 'inf' else '2'}</p>"
        f"<p>threat model: {html.escape(_threat_line(report))}</p>"
        f"<p>clean accuracy: <b>{report.clean_accuracy:.3f}</b></p>"
        "<table><tr><th>ε</th><th>robust accuracy</th><th>bound</th><th>seconds</th></tr>"
        f"{rows}</table>{queries}<ul>{notes}</ul>{charts}"
        f"<p><small>mltrust {html.escape(__version__)}</small></p></body></html>"
    )
