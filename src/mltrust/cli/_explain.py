"""``mltrust explain MODEL --data DATA``: feature attributions of a classifier, checked.

MODEL is loaded only through mltrust's safe loader (scikit-learn files, TorchScript,
torch.export programs, or a state dict with ``--arch``); DATA is a CSV/Parquet/NPZ file with a
label column, or ``sklearn:NAME``. Exit 0 when every sanity check passes, 1 when one fails
(the report is still written), 2 on a usage or processing error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from mltrust.cli._common import Format, format_option, output_option
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.option("--data", "data", required=True, help="CSV/Parquet/NPZ file or sklearn:NAME.")
@click.option(
    "--label",
    default=None,
    help="Label column (default: label/target/y/class or the last column).",
)
@click.option(
    "--unlabeled",
    is_flag=True,
    help="DATA has no label column: permutation importance then measures agreement with the "
    "model's own predictions.",
)
@format_option(Format.TEXT, Format.JSON, Format.HTML)
@output_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the HTML report (charts) to this file.",
)
@click.option(
    "--statement",
    "statement_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write an (unsigned) in-toto statement; sign it with `mltrust attest explain`.",
)
@click.option(
    "--samples",
    type=click.IntRange(min=2),
    default=64,
    show_default=True,
    help="Rows explained (a seeded random subset).",
)
@click.option(
    "--background",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Background rows standing in for an absent feature.",
)
@click.option(
    "--coalitions",
    type=click.IntRange(min=16),
    default=1024,
    show_default=True,
    help="Coalitions sampled per row by Kernel SHAP (above 10 features).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (permutations, sampling)."
)
@click.option(
    "--arch",
    default=None,
    metavar="MODULE:CLASS",
    help="For a PyTorch state dict: the architecture to load it into.",
)
@click.option("--arch-kwargs", default=None, help="JSON object of keyword arguments for --arch.")
def explain(
    model_path: str,
    data: str,
    label: str | None,
    unlabeled: bool,
    fmt: str,
    output: str | None,
    html_path: str | None,
    statement_path: str | None,
    samples: int,
    background: int,
    coalitions: int,
    seed: int,
    arch: str | None,
    arch_kwargs: str | None,
) -> int:
    """Explain a classifier: feature attributions with sanity checks (JSON, HTML, statement)."""
    from mltrust.cli._robustness import load_model
    from mltrust.digest import sha256_file
    from mltrust.explain import ExplainConfig, html_report, statement
    from mltrust.explain import explain as run_explain
    from mltrust.report import write_output
    from mltrust.robust import load_dataset

    ds = load_dataset(data, label=label, labeled=not unlabeled)
    model = load_model(model_path, arch, arch_kwargs)
    cfg = ExplainConfig(samples=samples, background=background, coalitions=coalitions, seed=seed)
    exp = run_explain(model, ds.X, None if unlabeled else ds.labels(), ds.feature_names, cfg)
    data_digest = sha256_file(data) if Path(data).is_file() else None
    name = Path(model_path).name
    report = html_report(exp, model=name, dataset=data)
    if html_path is not None:
        write_output(report, html_path)
    if statement_path is not None:
        st = statement(
            exp,
            subject_name=name,
            sha256=sha256_file(model_path),
            dataset=data,
            dataset_sha256=data_digest,
        )
        write_output(json.dumps(st, indent=2) + "\n", statement_path)
    if fmt == "json":
        body = exp.to_dict()
        body["model"]["path"] = model_path
        body["dataset"] = {"name": data, **({"sha256": data_digest} if data_digest else {})}
        text = json.dumps(body, indent=2) + "\n"
    elif fmt == "html":
        text = report
    else:
        kind = "exact Shapley" if exp.shap_exact else "Kernel SHAP"
        lines = [
            f"model: {exp.model_kind}  data: {data}  rows explained: {exp.rows} "
            f"(background {exp.background}, {kind}; methods: {', '.join(sorted(exp.methods))})",
            "top features:",
        ]
        lines += [f"  {f['name']:<24} {f['importance']:.4f}" for f in exp.features()[:10]]
        lines.append("checks:")
        lines += [f"  {c.name:<14} {c.status.value.upper():<5} {c.detail}" for c in exp.checks]
        lines += [f"note: {n}" for n in exp.notes]
        text = "\n".join(lines) + "\n"
    write_output(text, output)
    return EXIT_CLEAN if exp.passed else EXIT_FINDINGS
