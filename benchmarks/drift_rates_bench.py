"""False-alarm and detection rates of every drift test, over many repetitions.

No shift: continuous (normal), integer (Poisson(2)) and mixed categorical data; shifts: a mean
shift of 0.2 sd in one of 4 features, a variance change (sd × 1.3) in one feature, and a
category mix change. Reference 300 rows, current 180 rows (unequal on purpose). Prints one
table; `python benchmarks/drift_rates_bench.py [REPS]` (default 200).
"""

from __future__ import annotations

import sys
import time
import zlib

import numpy as np
import pandas as pd


def _frame(data: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(data, columns=[f"x{i}" for i in range(data.shape[1])])


def _pair(scenario: str, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n, m, d = 300, 180, 4
    if scenario.startswith("integer"):
        R, C = rng.poisson(2.0, (n, d)).astype(float), rng.poisson(2.0, (m, d)).astype(float)
    else:
        R, C = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    if scenario == "mean shift":
        C[:, 0] += 0.4
    elif scenario == "variance":
        C[:, 0] *= 1.5
    elif scenario == "integer shift":
        C[:, 0] = rng.poisson(2.6, m)
    ref, cur = _frame(R), _frame(C)
    if scenario.startswith("categorical"):
        p_cur = [0.3, 0.3, 0.25, 0.15] if scenario == "categorical shift" else [0.4, 0.3, 0.2, 0.1]
        ref["c"] = rng.choice(list("abcd"), n, p=[0.4, 0.3, 0.2, 0.1])
        cur["c"] = rng.choice(list("abcd"), m, p=p_cur)
    return ref, cur


def main() -> None:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from mltrust.monitor import classifier_drift, detect_drift, feature_drift, mmd_test

    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    scenarios = [
        "continuous",
        "integer",
        "categorical",
        "mean shift",
        "variance",
        "integer shift",
        "categorical shift",
    ]
    tests = ["ks", "cvm", "chi2", "mmd", "classifier", "overall", "overall+clf"]
    print(f"rejection rate at α=0.05 over {reps} repetitions (no-shift rows: false alarms)")
    print(f"{'scenario':<18}" + "".join(f"{t:>12}" for t in tests))
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        for sc in scenarios:
            rng = np.random.default_rng(zlib.crc32(sc.encode()))
            hits = dict.fromkeys(tests, 0)
            runs = dict.fromkeys(tests, 0)
            for r in range(reps):
                ref, cur = _pair(sc, rng)
                num_r = ref.select_dtypes("number").to_numpy()
                num_c = cur.select_dtypes("number").to_numpy()
                for t in ("ks", "cvm"):
                    f = feature_drift(ref[["x0"]], cur[["x0"]], test=t, random_state=r)
                    hits[t] += f[0].drift
                    runs[t] += 1
                if "c" in ref:
                    hits["chi2"] += feature_drift(ref[["c"]], cur[["c"]])[0].drift
                    runs["chi2"] += 1
                hits["mmd"] += mmd_test(num_r, num_c, n_permutations=99, random_state=r).drift
                hits["classifier"] += classifier_drift(num_r, num_c, random_state=r).drift
                hits["overall"] += detect_drift(ref, cur, random_state=r).drift
                hits["overall+clf"] += detect_drift(ref, cur, classifier=True, random_state=r).drift
                for t in ("mmd", "classifier", "overall", "overall+clf"):
                    runs[t] += 1
            cells = "".join(
                f"{hits[t] / runs[t]:>12.3f}" if runs[t] else f"{'–':>12}" for t in tests
            )
            print(f"{sc:<18}{cells}", flush=True)
    print(f"({time.perf_counter() - t0:.0f}s)")


if __name__ == "__main__":
    main()
