"""``mltrust monitor``: data drift (batch and streaming) and scorer calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mltrust.cli._common import Format, format_option, output_option
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import ConfigError, InputError
from mltrust.report import write_output

if TYPE_CHECKING:
    import numpy as np


@click.group()
def monitor() -> None:
    """Monitor data: drift between data sets or over a stream, and per-request scorers.

    \b
    mltrust monitor drift --reference REF --current CUR
    mltrust monitor stream --reference REF --stream CUR.csv --window 1000
    mltrust monitor stream --reference REF --audit-db audit.db --window 500
    mltrust monitor calibrate --reference REF --scorer mahalanobis --far 0.01 --save S.npz
    mltrust monitor score --scorer S.npz --data NEW.csv
    """


def _read(spec: str, drop: tuple[str, ...]) -> Any:
    """A DataFrame from CSV/Parquet, or from NPZ / sklearn:NAME features."""
    import pandas as pd

    from mltrust.robust import load_dataset

    text = str(spec)
    if text.startswith("sklearn:") or text.lower().endswith(".npz"):
        ds = load_dataset(text, labeled=False)
        frame = pd.DataFrame(ds.X, columns=list(ds.feature_names))
    else:
        from mltrust.robust._data import read_frame

        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"data file {text!r} not found")
        frame = read_frame(path)
    frame.columns = [str(c) for c in frame.columns]
    missing = [c for c in drop if c not in frame.columns]
    if missing:
        raise ConfigError(f"{spec}: no column(s) {missing} to drop")
    frame = frame.drop(columns=list(drop))
    if len(frame) < 2 or frame.shape[1] == 0:
        raise InputError(f"{spec}: need at least two rows and one column")
    return frame


_drift_options = [
    click.option(
        "--test",
        type=click.Choice(["ks", "cvm"]),
        default="ks",
        show_default=True,
        help="Per-feature test for numeric features (categorical: χ²).",
    ),
    click.option(
        "--correction",
        type=click.Choice(["bh", "bonferroni", "none"]),
        default="bh",
        show_default=True,
        help="Multiple-testing correction over the features: Benjamini-Hochberg (false "
        "discovery rate), Bonferroni (family-wise rate) or none.",
    ),
    click.option(
        "--alpha",
        type=float,
        default=0.05,
        show_default=True,
        help="Significance level of the overall drift verdict.",
    ),
    click.option("--categorical", multiple=True, help="Treat this column as categorical."),
    click.option("--drop", multiple=True, help="Ignore this column (e.g. the label)."),
    click.option("--mmd/--no-mmd", default=True, show_default=True, help="Multivariate MMD test."),
    click.option(
        "--mmd-method",
        type=click.Choice(["auto", "permutation", "linear"]),
        default="auto",
        show_default=True,
        help="auto: the permutation test on up to --mmd-samples rows per side, or the "
        "linear-time statistic on all rows when there are so many rows (pairs ≥ samples²) "
        "that it is the more powerful.",
    ),
    click.option(
        "--mmd-samples",
        type=click.IntRange(min=4),
        default=2000,
        show_default=True,
        help="Rows per side for the MMD permutation test (a seeded subsample above that).",
    ),
    click.option(
        "--classifier/--no-classifier",
        default=False,
        show_default=True,
        help="Classifier-based drift (held-out AUC, Mann–Whitney p-value).",
    ),
    click.option(
        "--effect-sizes/--no-effect-sizes",
        default=True,
        show_default=True,
        help="PSI and Wasserstein-1 beside each numeric feature's test.",
    ),
]


def _with_drift_options(f: Any) -> Any:
    for opt in reversed(_drift_options):
        f = opt(f)
    return f


@monitor.command("drift")
@click.option("--reference", required=True, help="Reference data (CSV/Parquet/NPZ/sklearn:).")
@click.option("--current", required=True, help="Current data, same columns.")
@_with_drift_options
@format_option(Format.TEXT, Format.JSON, Format.HTML)
@output_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the HTML report with per-feature plots here.",
)
def drift(
    reference: str,
    current: str,
    test: str,
    correction: str,
    alpha: float,
    categorical: tuple[str, ...],
    drop: tuple[str, ...],
    mmd: bool,
    mmd_method: str,
    mmd_samples: int,
    classifier: bool,
    effect_sizes: bool,
    fmt: str,
    output: str | None,
    html_path: str | None,
) -> int:
    """Compare CURRENT with REFERENCE; exit 1 when drift is detected."""
    from mltrust.monitor import detect_drift, render_drift

    ref = _read(reference, drop)
    cur = _read(current, drop)
    report = detect_drift(
        ref,
        cur,
        test=test,
        correction=correction,
        alpha=alpha,
        categorical=categorical,
        mmd=mmd,
        mmd_method=mmd_method,
        mmd_samples=mmd_samples,
        classifier=classifier,
        effect_sizes=effect_sizes,
    )
    finding = None
    if report.drift:
        from mltrust.findings import Finding, Location, get_rule

        what = ", ".join(f.name for f in report.drifted[:10]) or "multivariate tests"
        finding = Finding.of(
            get_rule("MLT-MON-001"), f"drift detected in {what}", Location(current)
        ).to_dict()
    if fmt == "json":
        body = report.to_dict()
        body["findings"] = [finding] if finding else []
        text = json.dumps(body, indent=2) + "\n"
    else:
        text = render_drift(report, fmt, reference=ref, current=cur)
        if finding and fmt == "text":
            text += f"{finding['rule_id']} {finding['severity']}: {finding['message']}\n"
    write_output(text, output)
    if html_path is not None:
        write_output(render_drift(report, "html", reference=ref, current=cur), html_path)
    return EXIT_FINDINGS if report.drift else EXIT_CLEAN


@monitor.command("stream")
@click.option("--reference", required=True, help="Reference data (CSV/Parquet/NPZ/sklearn:).")
@click.option("--stream", "stream_path", default=None, help="CSV/Parquet file read in windows.")
@click.option("--audit-db", default=None, help="The gateway's SQLite audit log.")
@click.option("--model", "model_name", default=None, help="Audit log: only this model.")
@click.option(
    "--window",
    type=click.IntRange(min=2),
    default=1000,
    show_default=True,
    help="Rows per window compared with the reference.",
)
@_with_drift_options
@format_option(Format.TEXT, Format.JSON)
@output_option
def stream(
    reference: str,
    stream_path: str | None,
    audit_db: str | None,
    model_name: str | None,
    window: int,
    test: str,
    correction: str,
    alpha: float,
    categorical: tuple[str, ...],
    drop: tuple[str, ...],
    mmd: bool,
    mmd_method: str,
    mmd_samples: int,
    classifier: bool,
    effect_sizes: bool,
    fmt: str,
    output: str | None,
) -> int:
    """Drift of each window of a stream against REFERENCE; exit 1 if any window drifted."""
    from mltrust.monitor import iter_audit_windows, iter_table_windows, stream_drift

    if (stream_path is None) == (audit_db is None):
        raise click.UsageError("give exactly one of --stream and --audit-db")
    ref = _read(reference, drop)
    options = {
        "test": test,
        "correction": correction,
        "alpha": alpha,
        "categorical": categorical,
        "mmd": mmd,
        "mmd_method": mmd_method,
        "mmd_samples": mmd_samples,
        "classifier": classifier,
        "effect_sizes": effect_sizes,
    }
    windows: Any
    if stream_path is not None:
        cols = list(ref.columns)
        windows = iter_table_windows(stream_path, window, columns=cols)
    else:
        windows = iter_audit_windows(audit_db or "", window, model=model_name)
    lines: list[str] = []
    any_drift = False
    for w in stream_drift(ref, windows, **options):
        any_drift = any_drift or w.report.drift
        if fmt == "json":
            lines.append(json.dumps(w.to_dict()))
        else:
            names = ", ".join(f.name for f in w.report.drifted[:8])
            mmd_txt = f"  MMD p {w.report.mmd.p_value:.3g}" if w.report.mmd is not None else ""
            lines.append(
                f"window {w.index} rows {w.first_row}–{w.first_row + w.rows - 1}: "
                f"{'DRIFT' if w.report.drift else 'ok'}  "
                f"{len(w.report.drifted)} features{': ' + names if names else ''}"
                f"{mmd_txt}"
            )
    if not lines:
        raise InputError("the stream held fewer than two rows")
    write_output("\n".join(lines) + "\n", output)
    return EXIT_FINDINGS if any_drift else EXIT_CLEAN


@monitor.command("calibrate")
@click.option("--reference", required=True, help="Clean reference inputs.")
@click.option("--drop", multiple=True, help="Ignore this column (e.g. the label).")
@click.option(
    "--scorer",
    "scorer_name",
    type=click.Choice(["mahalanobis", "knn", "lid"]),
    default="mahalanobis",
    show_default=True,
    help="Outlier score: Mahalanobis distance, k-nearest-neighbour distance or local "
    "intrinsic dimensionality.",
)
@click.option("--far", type=float, default=0.01, show_default=True, help="Target false-alarm rate.")
@click.option(
    "--holdout",
    type=float,
    default=0.3,
    show_default=True,
    help="Share of the reference held out for calibration (the rest fits).",
)
@click.option("--k", type=click.IntRange(min=1), default=None, help="Neighbours (knn, lid).")
@click.option(
    "--save",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Write the fitted, calibrated scorer (NPZ, no pickle).",
)
@format_option(Format.TEXT, Format.JSON)
@output_option
def calibrate(
    reference: str,
    drop: tuple[str, ...],
    scorer_name: str,
    far: float,
    holdout: float,
    k: int | None,
    out_path: str,
    fmt: str,
    output: str | None,
) -> int:
    """Fit a per-request scorer and set its threshold for a false-alarm rate."""
    import numpy as np

    from mltrust.monitor import make_scorer, save_scorer

    if not 0 < far < 1 or not 0 < holdout < 1:
        raise click.BadParameter("--far and --holdout must be between 0 and 1")
    X = _read(reference, drop).to_numpy(dtype=np.float64)
    rng = np.random.default_rng(0)
    perm = rng.permutation(X.shape[0])
    cut = round(X.shape[0] * (1 - holdout))
    fit_rows, cal_rows = X[perm[:cut]], X[perm[cut:]]
    if cal_rows.shape[0] < 2:
        raise InputError("too few reference rows to hold some out for calibration")
    kwargs: dict[str, Any] = {"k": k} if (k is not None and scorer_name != "mahalanobis") else {}
    scorer = make_scorer(scorer_name, **kwargs).fit(fit_rows)
    threshold = scorer.calibrate(cal_rows, far)
    save_scorer(scorer, out_path)
    body = {
        "scorer": scorer_name,
        "threshold": threshold,
        "target_false_alarm_rate": far,
        "fit_rows": int(fit_rows.shape[0]),
        "calibration_rows": int(cal_rows.shape[0]),
        "calibration_false_alarm_rate": float(np.mean(scorer.score(cal_rows) > threshold)),
        "output": out_path,
    }
    if fmt == "json":
        text = json.dumps(body, indent=2) + "\n"
    else:
        text = (
            f"{scorer_name} scorer: threshold {threshold:.6g} for a false-alarm rate of "
            f"{far} (fit on {body['fit_rows']} rows, calibrated on "
            f"{body['calibration_rows']}); written to {out_path}\n"
        )
    write_output(text, output)
    return EXIT_CLEAN


def _score_findings(flags: np.ndarray, data: str, name: str) -> list[dict[str, Any]]:
    if not flags.any():
        return []
    import numpy as np

    from mltrust.findings import Finding, Location, get_rule

    rows = ", ".join(str(int(i)) for i in np.flatnonzero(flags)[:20])
    message = f"{int(flags.sum())} rows above the {name} threshold (rows {rows})"
    return [Finding.of(get_rule("MLT-MON-002"), message, Location(data)).to_dict()]


@monitor.command("score")
@click.option(
    "--scorer",
    "scorer_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="A scorer written by `monitor calibrate`.",
)
@click.option("--data", required=True, help="Inputs to score (CSV/Parquet/NPZ).")
@click.option("--drop", multiple=True, help="Ignore this column (e.g. the label).")
@format_option(Format.TEXT, Format.JSON)
@output_option
def score(scorer_path: str, data: str, drop: tuple[str, ...], fmt: str, output: str | None) -> int:
    """Score rows with a calibrated scorer; exit 1 when any row is above its threshold."""
    import numpy as np

    from mltrust.monitor import load_scorer

    sc = load_scorer(scorer_path)
    X = _read(data, drop).to_numpy(dtype=np.float64)
    s = sc.score(X)
    flags = s > sc.threshold if sc.threshold is not None else np.zeros(s.size, dtype=bool)
    if fmt == "json":
        text = (
            json.dumps(
                {
                    "threshold": sc.threshold,
                    "alerts": int(flags.sum()),
                    "rows": int(s.size),
                    "scores": [float(v) for v in s],
                    "findings": _score_findings(flags, data, sc.name),
                }
            )
            + "\n"
        )
    else:
        text = (
            f"{int(flags.sum())} of {s.size} rows above the threshold "
            f"{sc.threshold}\n"
            + "".join(f"  row {int(i)}: {s[i]:.4g}\n" for i in np.flatnonzero(flags)[:50])
        )
    write_output(text, output)
    return EXIT_FINDINGS if flags.any() else EXIT_CLEAN
