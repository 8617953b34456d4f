"""``mltrust robustness``: adversarial evaluation, hardening, privacy and poisoning checks.

``mltrust robustness MODEL --data DATA --attack pgd --eps 0.05,0.1`` runs the default
evaluation (the hidden ``run`` subcommand); ``harden``, ``privacy`` and ``poisoning`` are
subcommands. MODEL files are loaded only through mltrust's safe loader.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mltrust.cli._common import (
    Format,
    format_option,
    no_conflict,
    output_option,
    progress_option,
    stderr_is_terminal,
)
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import ConfigError, Error
from mltrust.report import write_output

if TYPE_CHECKING:
    import numpy as np


def _finding(rule_id: str, message: str, path: str) -> dict[str, Any]:
    """A finding (as a dict) for one of the MLT-ROB rules, about ``path``."""
    import mltrust.robust  # noqa: F401 - registers the rules
    from mltrust.findings import Finding, Location, get_rule

    return Finding.of(get_rule(rule_id), message, Location(path)).to_dict()


class _DefaultGroup(click.Group):
    """A group that runs its ``run`` command when the first word is not a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The hidden ``run`` command is the main one: list its options first."""
        main = self.commands.get("run")
        if main is not None:
            rows = [
                rec
                for p in main.get_params(ctx)
                if isinstance(p, click.Option)
                and "--help" not in p.opts
                and (rec := p.get_help_record(ctx)) is not None
            ]
            with formatter.section("Options (mltrust robustness MODEL --data DATA ...)"):
                formatter.write_dl(rows)
        super().format_options(ctx, formatter)


@click.group(cls=_DefaultGroup)
def robustness() -> None:
    """Adversarial robustness of a classifier: attacks, hardening, privacy, poisoning.

    \b
    mltrust robustness MODEL --data DATA --attack pgd --eps 0.05,0.1 [--format json]
    mltrust robustness harden MODEL --data DATA --eps 0.1 --save HARDENED.joblib
    mltrust robustness privacy MODEL --train TRAIN --holdout HOLDOUT
    mltrust robustness poisoning --data DATA [--model MODEL]

    DATA is a CSV/Parquet/NPZ file with a label column, or sklearn:NAME[:train|:test].
    """


def load_model(path: str, arch: str | None = None, arch_kwargs: str | None = None) -> Any:
    """Load MODEL through the safe loader (never a bare unpickle): scikit-learn files,
    TorchScript, torch.export programs, or a state dict with ``--arch module:Class``."""
    from mltrust.robust._torchload import load_model as _load

    if not Path(path).exists():
        raise ConfigError(f"model {path!r} not found")
    kwargs: dict[str, Any] | None = None
    if arch_kwargs is not None:
        try:
            kwargs = json.loads(arch_kwargs)
        except ValueError:
            raise click.BadParameter("--arch-kwargs takes a JSON object") from None
        if not isinstance(kwargs, dict):
            raise click.BadParameter("--arch-kwargs takes a JSON object")
    return _load(path, arch=arch, arch_kwargs=kwargs)


def _arch_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--arch-kwargs",
        default=None,
        help="JSON object of keyword arguments for --arch.",
    )(f)
    return click.option(
        "--arch",
        default=None,
        metavar="MODULE:CLASS",
        help="For a PyTorch state dict: the architecture to build and load it into (imported "
        "from your environment, never from the file).",
    )(f)


def _parse_eps(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or any(not (v >= 0 and math.isfinite(v)) for v in values):
        raise click.BadParameter("ε values must be finite and non-negative")
    return values


def _domain(ds: Any, clip: str) -> tuple[Any, Any]:
    if clip == "auto":
        return ds.lower, ds.upper
    if clip == "none":
        return None, None
    if clip == "data":
        return ds.X.min(axis=0), ds.X.max(axis=0)
    try:
        lo, hi = (float(v) for v in clip.split(","))
    except ValueError:
        raise click.BadParameter("--clip takes auto, none, data or LO,HI") from None
    if lo > hi:
        raise click.BadParameter("--clip: LO above HI")
    return lo, hi


@contextmanager
def _progress(label: str, total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled or total <= 0:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=total)
        yield lambda k: bar.update(task, advance=k)


def _subsample(
    X: np.ndarray, y: np.ndarray, limit: int | None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    if limit is None or X.shape[0] <= limit:
        return X, y
    import numpy as np

    idx = np.sort(np.random.default_rng(seed).choice(X.shape[0], size=limit, replace=False))
    return X[idx], y[idx]


@robustness.command("run", hidden=True)
@click.argument("model_path", metavar="MODEL")
@click.option("--data", "data", required=True, help="CSV/Parquet/NPZ file or sklearn:NAME.")
@click.option("--label", default=None, help="Label column (default: label/target/y/last).")
@click.option(
    "--attack",
    type=click.Choice(["auto", "pgd", "apgd", "pgd-l2", "fgsm", "exact", "tree", "hsj"]),
    default="auto",
    show_default=True,
    help="auto: the strongest applicable set (exact for linear models, the tree attack for "
    "tree ensembles, PGD with cross-entropy and margin restarts plus AutoPGD for other "
    "differentiable models, HopSkipJump for black boxes).",
)
@click.option(
    "--eps",
    "eps_text",
    default="0.05,0.1",
    show_default=True,
    help="Comma-separated perturbation budgets.",
)
@click.option(
    "--norm",
    type=click.Choice(["inf", "2"]),
    default=None,
    help="Threat-model norm [default: inf; 2 for pgd-l2].",
)
@click.option(
    "--clip",
    default="auto",
    show_default=True,
    help="Feature domain the adversary must stay in: auto (the data set's own bounds: "
    "sklearn:/NPZ data that declares them, else unbounded), none (unbounded), data (each "
    "feature's observed min/max), LO,HI (one box for all features). Recorded in the output.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Attack at most this many rows (a seeded random subset).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Iterations of each gradient attack.",
)
@click.option(
    "--restarts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Random restarts of each gradient attack (a row counts as broken if any breaks it).",
)
@format_option(Format.TEXT, Format.JSON)
@output_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write an HTML report with charts.",
)
@click.option(
    "--png-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write the charts as PNG files here.",
)
@click.option(
    "--statement",
    "statement_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write an (unsigned) in-toto statement with the robustness predicate.",
)
@click.option(
    "--fail-under",
    type=float,
    default=None,
    help="Exit 1 when robust accuracy at any ε is below this.",
)
@_arch_options
@progress_option
def run(
    model_path: str,
    data: str,
    label: str | None,
    attack: str,
    eps_text: str,
    norm: str | None,
    clip: str,
    limit: int | None,
    steps: int,
    restarts: int,
    fmt: str,
    output: str | None,
    html_path: str | None,
    png_dir: str | None,
    statement_path: str | None,
    fail_under: float | None,
    arch: str | None,
    arch_kwargs: str | None,
    progress: bool | None,
) -> int:
    """Clean and robust accuracy of MODEL on DATA under an attack, per ε."""
    from mltrust.robust import evaluate_robustness, html_report, load_dataset, statement, write_pngs
    from mltrust.robust._evaluate import domain_text

    eps = _parse_eps(eps_text)
    ds = load_dataset(data, label=label)
    lower, upper = _domain(ds, clip)
    model = load_model(model_path, arch, arch_kwargs)
    X, y = _subsample(ds.X, ds.labels(), limit)
    show = stderr_is_terminal() if progress is None else progress
    total = X.shape[0] if attack == "hsj" else len(eps)
    with _progress(f"{attack} attack", total, show) as tick:
        report = evaluate_robustness(
            model,
            X,
            y,
            eps,
            attack=attack,
            norm=norm,
            lower=lower,
            upper=upper,
            steps=steps,
            restarts=restarts,
            pool=ds.X,
            progress=tick,
            clip=clip,
        )
    if html_path is not None:
        write_output(html_report(report, dataset=data), html_path)
    if png_dir is not None:
        write_pngs(report, png_dir)
    if statement_path is not None:
        from mltrust.digest import sha256_file

        st = statement(
            report, subject_name=Path(model_path).name, sha256=sha256_file(model_path), dataset=data
        )
        write_output(json.dumps(st, indent=2) + "\n", statement_path)
    body = report.to_dict()
    body["dataset"] = data
    below = [r for r in report.results if fail_under is not None and r.robust_accuracy < fail_under]
    body["findings"] = [
        _finding(
            "MLT-ROB-001",
            f"robust accuracy {r.robust_accuracy:.3f} < {fail_under} at ε={r.eps:g} under {attack}",
            model_path,
        )
        for r in below
    ]
    if fmt == "json":
        text = json.dumps(body, indent=2) + "\n"
    else:
        tm = report.threat
        lines = [
            f"model: {report.model_kind}  data: {data} ({report.n} rows)  attack: "
            f"{attack} ({' + '.join(tm['attacks_run'])})",
            f"threat model: L{'∞' if report.norm == 'inf' else '2'}, ε ∈ "
            f"{{{', '.join(f'{e:g}' for e in tm['eps'])}}}, domain {domain_text(tm)}"
            + (
                f", {tm['steps']} steps × {tm['restarts']} restarts, loss {tm['loss']}"
                if tm["steps"] is not None
                else ""
            ),
            f"clean accuracy: {report.clean_accuracy:.3f}",
        ]
        for r in report.results:
            lines.append(
                f"  ε={r.eps:<8g} robust accuracy {r.robust_accuracy:.3f} "
                f"({r.bound}, {r.seconds:.2f}s)"
            )
        mp = body.get("min_perturbation")
        if mp and mp["quantiles"]:
            q = mp["quantiles"]
            lines.append(
                f"minimal perturbation ({mp['kind']}): median {q['0.5']:.4g}, "
                f"10%–90% {q['0.1']:.4g}–{q['0.9']:.4g}, none found {mp['none_found']}"
            )
        if report.queries is not None:
            lines.append(
                f"queries: {report.queries} ({report.queries / max(report.n, 1):.0f} per sample)"
            )
        lines += [f"note: {n}" for n in report.notes]
        lines += [f"{f['rule_id']} {f['severity']}: {f['message']}" for f in body["findings"]]
        text = "\n".join(lines) + "\n"
    write_output(text, output)
    if below:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _train_eval(data: str, label: str | None) -> tuple[Any, Any]:
    from mltrust.robust import load_dataset

    if data.startswith("sklearn:") and data.count(":") == 1:
        return load_dataset(data + ":train"), load_dataset(data + ":test")
    ds = load_dataset(data, label=label)
    return ds, ds


def _save_joblib(obj: Any, path: str) -> None:
    import joblib

    from mltrust.store._atomic import atomic_path

    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp)


@robustness.command("harden")
@click.argument("model_path", metavar="MODEL")
@click.option(
    "--data",
    required=True,
    help="Training data (sklearn:NAME trains on its 70% split and evaluates on the 30%).",
)
@click.option("--eval-data", default=None, help="Evaluation data [default: see --data].")
@click.option(
    "--label", default=None, help="Label column (default: label/target/y/class or the last column)."
)
@click.option("--eps", type=float, required=True, help="Perturbation budget trained against.")
@click.option(
    "--norm",
    type=click.Choice(["inf", "2"]),
    default="inf",
    show_default=True,
    help="Threat-model norm.",
)
@click.option(
    "--attack",
    type=click.Choice(["pgd", "fgsm"]),
    default="pgd",
    show_default=True,
    help="Attack that makes the adversarial training examples.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Rounds of attack-then-retrain.",
)
@click.option(
    "--clip", default="auto", show_default=True, help="Feature domain, as for `robustness`."
)
@click.option(
    "--save",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to save the hardened model (joblib).",
)
@format_option(Format.TEXT, Format.JSON)
@output_option
@progress_option
def harden(
    model_path: str,
    data: str,
    eval_data: str | None,
    label: str | None,
    eps: float,
    norm: str,
    attack: str,
    rounds: int,
    clip: str,
    out_path: str,
    fmt: str,
    output: str | None,
    progress: bool | None,
) -> int:
    """Adversarial training; reports clean and robust accuracy before and after."""
    from mltrust.robust import adversarial_training, load_dataset

    if not (eps > 0 and math.isfinite(eps)):
        raise click.BadParameter("--eps must be positive")
    train, evaluation = _train_eval(data, label)
    if eval_data is not None:
        evaluation = load_dataset(eval_data, label=label)
    lower, upper = _domain(train, clip)
    model = load_model(model_path)
    show = stderr_is_terminal() if progress is None else progress
    with _progress("adversarial training", rounds, show) as tick:
        result = adversarial_training(
            model,
            train.X,
            train.labels(),
            eps,
            X_eval=evaluation.X,
            y_eval=evaluation.labels(),
            norm=norm,
            attack=attack,
            rounds=rounds,
            lower=lower,
            upper=upper,
            progress=tick,
        )
    _save_joblib(result.model, out_path)
    from mltrust.robust import threat_model
    from mltrust.robust._evaluate import domain_text

    body = result.to_dict()
    body["output"] = out_path
    # the figures before/after: exact for linear models under L∞, else PGD (CE + margin)
    exact = result.before.method == "exact"
    tm = threat_model(
        attack=result.before.method,
        norm=norm,
        eps=[eps],
        lower=lower,
        upper=upper,
        steps=None if exact else 100,
        restarts=None if exact else 3,
        loss=None if exact else "ce+margin",
        clip=clip,
    )
    body["threat_model"] = tm
    if fmt == "json":
        text = json.dumps(body, indent=2) + "\n"
    else:
        b, a = result.before, result.after
        text = (
            f"hardened model written to {out_path} (ε={eps}, L{'∞' if norm == 'inf' else '2'}, "
            f"domain {domain_text(tm)})\n"
            f"  before: clean {b.clean_accuracy:.3f}  robust {b.robust_accuracy:.3f} ({b.method})\n"
            f"  after:  clean {a.clean_accuracy:.3f}  robust {a.robust_accuracy:.3f} ({a.method})\n"
        )
    write_output(text, output)
    return EXIT_CLEAN


@robustness.command("privacy")
@click.argument("model_path", metavar="MODEL")
@click.option("--train", "train_data", default=None, help="The model's training data (members).")
@click.option("--holdout", default=None, help="Data the model never saw (non-members).")
@click.option(
    "--data", default=None, help="sklearn:NAME: members = its 70% split, non-members = the 30%."
)
@click.option(
    "--label", default=None, help="Label column (default: label/target/y/class or the last column)."
)
@click.option(
    "--shadow/--no-shadow",
    default=True,
    show_default=True,
    help="Also run the shadow-model attack (clones of the model trained on half the holdout).",
)
@click.option(
    "--fail-above",
    type=float,
    default=None,
    help="Exit 1 when any attack's AUC exceeds this (e.g. 0.6).",
)
@format_option(Format.TEXT, Format.JSON)
@output_option
def privacy(
    model_path: str,
    train_data: str | None,
    holdout: str | None,
    data: str | None,
    label: str | None,
    shadow: bool,
    fail_above: float | None,
    fmt: str,
    output: str | None,
) -> int:
    """Membership inference (loss, confidence and shadow-model attacks): AUC and advantage."""
    no_conflict(**{"--data": data, "--train": train_data})
    no_conflict(**{"--data": data, "--holdout": holdout})
    from mltrust.robust import load_dataset, membership_inference

    if data is not None:
        if not data.startswith("sklearn:") or data.count(":") != 1:
            raise click.BadParameter(
                "--data takes sklearn:NAME; use --train and --holdout for files"
            )
        members, others = _train_eval(data, label)
    elif train_data is not None and holdout is not None:
        members = load_dataset(train_data, label=label)
        others = load_dataset(holdout, label=label)
    else:
        raise click.UsageError("give --train and --holdout, or --data sklearn:NAME")
    model = load_model(model_path)
    report = membership_inference(
        model, members.X, members.labels(), others.X, others.labels(), shadow=shadow
    )
    body = report.to_dict()
    leak = fail_above is not None and report.worst.auc > fail_above
    body["findings"] = (
        [
            _finding(
                "MLT-ROB-002",
                f"{report.worst.name} attack AUC {report.worst.auc:.3f} > {fail_above}",
                model_path,
            )
        ]
        if leak
        else []
    )
    if fmt == "json":
        text = json.dumps(body, indent=2) + "\n"
    else:
        lines = [
            f"members {report.members}, non-members {report.non_members}; accuracy "
            f"train {report.train_accuracy:.3f}, holdout {report.holdout_accuracy:.3f}"
        ]
        lines += [
            f"  {a.name:<22} AUC {a.auc:.3f}  advantage {a.advantage:.3f}" for a in report.attacks
        ]
        lines += [f"note: {n}" for n in report.notes]
        lines += [f"{f['rule_id']} {f['severity']}: {f['message']}" for f in body["findings"]]
        text = "\n".join(lines) + "\n"
    write_output(text, output)
    if leak:
        return EXIT_FINDINGS
    return EXIT_CLEAN


@robustness.command("poisoning")
@click.option("--data", required=True, help="Training data with labels.")
@click.option(
    "--label", default=None, help="Label column (default: label/target/y/class or the last column)."
)
@click.option(
    "--model",
    "model_path",
    default=None,
    help="Also search MODEL for a backdoor trigger (and cluster MLP activations).",
)
@click.option(
    "--clip", default="auto", show_default=True, help="Feature domain, as for `robustness`."
)
@click.option(
    "--cv",
    type=click.IntRange(min=2),
    default=5,
    show_default=True,
    help="Cross-validation folds for the out-of-sample label probabilities.",
)
@click.option(
    "--max-suspect-rate",
    type=float,
    default=0.02,
    show_default=True,
    help="Exit 1 when more than this share of rows is flagged.",
)
@format_option(Format.TEXT, Format.JSON)
@output_option
def poisoning(
    data: str,
    label: str | None,
    model_path: str | None,
    clip: str,
    cv: int,
    max_suspect_rate: float,
    fmt: str,
    output: str | None,
) -> int:
    """Flag likely flipped or planted labels; optionally search for a backdoor trigger."""
    from mltrust.robust import activation_clusters, audit_labels, find_trigger, load_dataset

    ds = load_dataset(data, label=label)
    audit = audit_labels(ds.X, ds.labels(), cv=cv)
    body: dict[str, Any] = {"dataset": data, "labels": audit.to_dict()}
    failed = audit.suspects.size > max_suspect_rate * ds.n
    trigger = None
    clusters: list[Any] = []
    if model_path is not None:
        model = load_model(model_path)
        lower, upper = _domain(ds, clip)
        trigger = find_trigger(model, ds.X, lower=lower, upper=upper)
        body["trigger"] = trigger.to_dict()
        failed = failed or trigger.suspicious
        try:
            clusters = activation_clusters(model, ds.X, ds.labels())
        except Error:
            clusters = []
        if clusters:
            body["activation_clusters"] = [
                {
                    "label": c.label,
                    "minority_share": c.minority_share,
                    "silhouette": c.silhouette,
                    "suspicious": c.suspicious,
                }
                for c in clusters
            ]
            failed = failed or any(c.suspicious for c in clusters)
    findings = []
    if audit.suspects.size > max_suspect_rate * ds.n:
        findings.append(
            _finding(
                "MLT-ROB-003",
                f"{audit.suspects.size} of {ds.n} rows look mislabelled "
                f"(more than {max_suspect_rate:.1%})",
                data,
            )
        )
    if trigger is not None and trigger.suspicious:
        findings.append(
            _finding(
                "MLT-ROB-004",
                f"a patch on features {list(trigger.features)} sends {trigger.flip_rate:.0%} "
                f"of inputs to class {trigger.target!s}",
                model_path or data,
            )
        )
    for c in clusters:
        if c.suspicious:
            findings.append(
                _finding(
                    "MLT-ROB-004",
                    f"class {c.label!s} activations split {c.minority_share:.0%} off "
                    f"(silhouette {c.silhouette:.2f})",
                    model_path or data,
                )
            )
    body["findings"] = findings
    if fmt == "json":
        text = json.dumps(body, indent=2, default=str) + "\n"
    else:
        lines = [
            f"{audit.suspects.size} of {ds.n} rows look mislabelled (cross-validated, {cv} folds)"
        ]
        for r, g, s in zip(audit.suspects, audit.given, audit.suggested, strict=True):
            lines.append(
                f"  row {int(r)}: label {g!s}, looks like {s!s} (p(label)={audit.p_given[r]:.3f})"
            )
        if trigger is not None:
            verdict = "SUSPICIOUS" if trigger.suspicious else "no strong trigger"
            lines.append(
                f"trigger search: {verdict}: patch on features {list(trigger.features)}"
                f" sends {trigger.flip_rate:.0%} of inputs to class {trigger.target!s}"
            )
        for c in clusters:
            if c.suspicious:
                lines.append(
                    f"activation clustering: class {c.label!s} splits "
                    f"{c.minority_share:.0%} off (silhouette {c.silhouette:.2f})"
                )
        lines += [f"{f['rule_id']} {f['severity']}: {f['message']}" for f in findings]
        text = "\n".join(lines) + "\n"
    write_output(text, output)
    return EXIT_FINDINGS if failed else EXIT_CLEAN
