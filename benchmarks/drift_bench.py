"""Drift at scale: 100,000 × 50 reference vs 10,000 × 50 current.

Prints seconds for each step: the KS tests with Benjamini–Hochberg (library), the per-feature
report with and without effect sizes, MMD, and `mltrust monitor drift --no-mmd` end to end
through the CLI on NPZ files (in-process `main()`, and as a fresh process including the
interpreter start and imports). Target: KS + FDR through the CLI under 1 s.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from mltrust.cli._main import main as cli
    from mltrust.monitor import adjust_pvalues, feature_drift, ks_columns, mmd_test

    rng = np.random.default_rng(0)
    # warm-up: pay the one-off imports (scipy.stats, ...) before timing
    mmd_test(rng.normal(size=(20, 2)), rng.normal(size=(20, 2)), n_permutations=5)
    feature_drift(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)))
    ref = rng.normal(size=(100_000, 50))
    cur = rng.normal(size=(10_000, 50))
    cur[:, :5] += 0.05  # a small shift in 5 features
    t = time.perf_counter()
    _, p = ks_columns(ref, cur)
    adj = adjust_pvalues(p, "bh")
    print(
        f"KS + Benjamini–Hochberg, 50 features: {time.perf_counter() - t:.3f}s; drifted: "
        f"{np.flatnonzero(adj < 0.05).tolist()}"
    )
    for eff in (False, True):
        t = time.perf_counter()
        feats = feature_drift(ref, cur, effect_sizes=eff)
        print(
            f"per-feature report {'with' if eff else 'without'} PSI and Wasserstein: "
            f"{time.perf_counter() - t:.3f}s ({sum(f.drift for f in feats)} drifted)"
        )
    for method, samples in (("permutation", 1000), ("permutation", 2000), ("linear", 0)):
        t = time.perf_counter()
        res = mmd_test(ref, cur, method=method, n_permutations=200, max_samples=max(samples, 4))
        print(
            f"MMD {method} ({res.n_reference}×{res.n_current} rows): "
            f"{time.perf_counter() - t:.3f}s, p={res.p_value:.3g}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        names = np.array([f"f{i}" for i in range(50)])
        np.savez(Path(tmp, "ref.npz"), X=ref, feature_names=names)
        np.savez(Path(tmp, "cur.npz"), X=cur, feature_names=names)
        args = ["monitor", "drift", "--reference", f"{tmp}/ref.npz", "--current"]
        args += [f"{tmp}/cur.npz", "--no-mmd", "-f", "json", "-o", f"{tmp}/out.json"]
        cli([*args, "--no-effect-sizes"])  # warm-up: the CLI's own imports, paid once
        for extra in ([], ["--no-effect-sizes"]):
            t = time.perf_counter()
            rc = cli([*args, *extra])
            print(
                f"CLI in-process {' '.join(extra) or '(effect sizes on)'}: "
                f"{time.perf_counter() - t:.3f}s (exit {rc})"
            )
            t = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "mltrust", *args, *extra], capture_output=True, check=False
            )
            print(
                f"CLI fresh process {' '.join(extra) or '(effect sizes on)'}: "
                f"{time.perf_counter() - t:.3f}s (exit {proc.returncode})"
            )


if __name__ == "__main__":
    main()
