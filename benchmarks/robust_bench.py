"""Attacks: mltrust vs IBM ART on the same models and data, in the same run.

1. digits ÷ 16, stratified 70/30 split (random_state=0), LogisticRegression(max_iter=5000):
   robust accuracy per ε under L∞ in the box [0, 1] — mltrust exact (the optimum), mltrust PGD,
   ART PGD and FGSM (ART gets the very same coefficients) — and seconds.
2. An RBF SVC on the same data: mltrust PGD (gradient of the RBF decision functions from the
   support vectors and dual coefficients) vs ART's PGD (bounded by a time limit).

ART is a benchmark-only dependency: the script creates ``.bench/venv-art`` with
``pip install adversarial-robustness-toolbox scikit-learn numpy`` when it is missing and runs
ART there in a subprocess; without it (no network, install failure) ART's columns say why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".bench" / "venv-art"
EPS = (0.05, 0.1, 0.2, 0.3)
SVC_EPS = (0.05, 0.1)
SVC_SUBSET = 60  # rows for a strength comparison that ART finishes within its limit
ART_SVC_LIMIT = float(os.environ.get("ART_SVC_LIMIT", "120"))

ART_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC
    from art.estimators.classification import SklearnClassifier
    from art.attacks.evasion import ProjectedGradientDescent, FastGradientMethod
    job = sys.argv[1]
    d = np.load(sys.argv[2])
    X, y = d["X"], d["y"]
    if len(sys.argv) > 4:
        X, y = X[: int(sys.argv[4])], y[: int(sys.argv[4])]
    out = {}
    if job == "lr":
        lr = LogisticRegression(max_iter=5000)
        lr.classes_ = d["classes"]
        lr.coef_ = d["W"]
        lr.intercept_ = d["b"]
        lr.n_features_in_ = X.shape[1]
        clf = SklearnClassifier(model=lr, clip_values=(0.0, 1.0))
        out["clean"] = float(np.mean(lr.predict(X) == y))
        for eps in [float(e) for e in sys.argv[3].split(",")]:
            t = time.perf_counter()
            pgd = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=eps / 10,
                                           max_iter=100, num_random_init=1, verbose=False)
            adv = pgd.generate(X)
            out[f"pgd_{eps}"] = [float(np.mean(lr.predict(adv) == y)), time.perf_counter() - t]
            t = time.perf_counter()
            adv = FastGradientMethod(clf, norm=np.inf, eps=eps).generate(X)
            out[f"fgsm_{eps}"] = [float(np.mean(lr.predict(adv) == y)), time.perf_counter() - t]
            print(json.dumps(out), flush=True)
    else:
        # probability=True only adds Platt scaling (ART's predict needs predict_proba); the
        # support vectors, dual coefficients and predict() are those of the plain SVC
        svc = SVC(kernel="rbf", probability=True, random_state=0).fit(d["Xtr"], d["ytr"])
        from art.estimators.classification.scikitlearn import ScikitlearnSVC
        clf = ScikitlearnSVC(model=svc, clip_values=(0.0, 1.0))
        out["clean"] = float(np.mean(svc.predict(X) == y))
        print(json.dumps(out), flush=True)
        for eps in [float(e) for e in sys.argv[3].split(",")]:
            t = time.perf_counter()
            pgd = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=eps / 10,
                                           max_iter=100, num_random_init=1, verbose=False)
            adv = pgd.generate(X, y=np.eye(10)[y])
            out[f"pgd_{eps}"] = [float(np.mean(svc.predict(adv) == y)), time.perf_counter() - t]
            print(json.dumps(out), flush=True)
    """
)


def ensure_art() -> Path | None:
    python = VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import sklearn; from art.attacks.evasion import FastGradientMethod",
            ],
            capture_output=True,
        )
        if probe.returncode == 0:
            return python
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [
                str(VENV / "bin" / "pip"),
                "install",
                "-q",
                "adversarial-robustness-toolbox",
                "scikit-learn",
                "numpy",
                "packaging",
            ],
            check=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"ART unavailable: {exc}", file=sys.stderr)
        return None
    return python


def run_art(
    python: Path, job: str, data: Path, eps: tuple[float, ...], limit: float, rows: int = 0
) -> tuple[dict[str, object], bool]:
    """Run the ART job; returns the last JSON line printed and whether it hit the limit."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(ART_SCRIPT)
        script = fh.name
    try:
        proc = subprocess.run(
            [str(python), script, job, str(data), ",".join(map(str, eps))]
            + ([str(rows)] if rows else []),
            capture_output=True,
            text=True,
            timeout=limit,
        )
        timed_out = False
        stdout = proc.stdout
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
    except subprocess.TimeoutExpired as exc:
        timed_out = True
        stdout = (
            (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        )
    finally:
        os.unlink(script)
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    return (json.loads(lines[-1]) if lines else {}), timed_out


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from mltrust.robust import adapt, exact_linear, fgsm, load_dataset, pgd

    train = load_dataset("sklearn:digits:train")
    test = load_dataset("sklearn:digits:test")
    X, y = test.X, test.y
    lr = LogisticRegression(max_iter=5000).fit(train.X, train.y)
    clf = adapt(lr)
    print(f"digits LR: clean accuracy {np.mean(lr.predict(X) == y):.3f} on {len(y)} rows")
    ours: dict[float, dict[str, tuple[float, float]]] = {}
    for eps in EPS:
        row = {}
        t = time.perf_counter()
        row["exact"] = (
            exact_linear(clf, X, y, eps, lower=0, upper=1).robust_accuracy,
            time.perf_counter() - t,
        )
        t = time.perf_counter()
        row["pgd"] = (
            pgd(clf, X, y, eps, lower=0, upper=1, steps=100, restarts=3).robust_accuracy,
            time.perf_counter() - t,
        )
        t = time.perf_counter()
        row["fgsm"] = (
            fgsm(clf, X, y, eps, lower=0, upper=1).robust_accuracy,
            time.perf_counter() - t,
        )
        ours[eps] = row
    python = ensure_art()
    art: dict[str, object] = {}
    art_svc: dict[str, object] = {}
    art_sub: dict[str, object] = {}
    sub_timed_out = False
    svc_timed_out = False
    svc = SVC(kernel="rbf").fit(train.X, train.y)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "d.npz"
        np.savez(
            data,
            X=X,
            y=y,
            W=lr.coef_,
            b=lr.intercept_,
            classes=lr.classes_,
            Xtr=train.X,
            ytr=train.y,
        )
        if python is not None:
            art, _ = run_art(python, "lr", data, EPS, 600)
            art_svc, svc_timed_out = run_art(python, "svc", data, SVC_EPS, ART_SVC_LIMIT)
            art_sub, sub_timed_out = run_art(
                python, "svc", data, SVC_EPS, ART_SVC_LIMIT, rows=SVC_SUBSET
            )
    print(f"ART clean accuracy on the same coefficients: {art.get('clean', 'n/a')}")
    print("\nL∞ robust accuracy (seconds), box [0,1]:")
    print(
        f"{'eps':>5} | {'mltrust exact':>16} | {'mltrust PGD':>16} | {'mltrust FGSM':>16} |"
        f" {'ART PGD':>16} | {'ART FGSM':>16}"
    )
    for eps in EPS:
        row = ours[eps]

        def cell(v: object) -> str:
            if isinstance(v, (list, tuple)):
                return f"{v[0]:.3f} ({v[1]:.2f}s)"
            return "n/a"

        print(
            f"{eps:>5} | {cell(row['exact']):>16} | {cell(row['pgd']):>16} | "
            f"{cell(row['fgsm']):>16} | {cell(art.get(f'pgd_{eps}')):>16} | "
            f"{cell(art.get(f'fgsm_{eps}')):>16}"
        )
    svc_clf = adapt(svc)
    print(
        f"\nRBF SVC on digits: clean accuracy {np.mean(svc.predict(X) == y):.3f} (ART's "
        f"retrained copy: {art_svc.get('clean', 'n/a')})"
    )
    for eps in SVC_EPS:
        t = time.perf_counter()
        r = pgd(svc_clf, X, y, eps, lower=0, upper=1, steps=100, restarts=1).robust_accuracy
        ours_s = time.perf_counter() - t
        theirs = art_svc.get(f"pgd_{eps}")
        if isinstance(theirs, list):
            tcell = f"{theirs[0]:.3f} ({theirs[1]:.1f}s)"
        elif python is None:
            tcell = "n/a (ART not installed)"
        else:
            tcell = f"> {ART_SVC_LIMIT:.0f}s limit" if svc_timed_out else "failed"
        print(f"  ε={eps}: mltrust PGD {r:.3f} ({ours_s:.2f}s) | ART PGD {tcell}")

    print(f"  strength on the first {SVC_SUBSET} rows (ART within the limit):")
    for eps in SVC_EPS:
        t = time.perf_counter()
        r = pgd(
            svc_clf, X[:SVC_SUBSET], y[:SVC_SUBSET], eps, lower=0, upper=1, steps=100, restarts=1
        ).robust_accuracy
        ours_s = time.perf_counter() - t
        theirs = art_sub.get(f"pgd_{eps}")
        if isinstance(theirs, list):
            tcell = f"{theirs[0]:.3f} ({theirs[1]:.1f}s)"
        else:
            tcell = f"> {ART_SVC_LIMIT:.0f}s limit" if sub_timed_out else "n/a"
        print(f"  ε={eps}: mltrust PGD {r:.3f} ({ours_s:.2f}s) | ART PGD {tcell}")


if __name__ == "__main__":
    main()
