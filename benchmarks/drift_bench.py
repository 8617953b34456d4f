"""Drift at scale: 100,000 × 50 reference vs 10,000 × 50 current.

Prints seconds for each step: the KS tests with Benjamini–Hochberg (library), the per-feature
report with and without effect sizes, MMD, and `mltrust monitor drift --no-mmd` end to end
through the CLI on NPZ, CSV and Parquet files (in-process `main()`, and as a fresh process
including the interpreter start and imports: the best of ``--repeat`` runs, wall and CPU
seconds, and whether the process imported scipy.stats). Target: KS + FDR through the CLI, in
a fresh process, under 1 s. ``--fresh-only`` skips the library and in-process timings.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _fresh(args: list[str], repeat: int) -> tuple[float, float, int, bool]:
    """Best wall and CPU seconds of ``repeat`` fresh ``python -m mltrust`` runs, the exit code,
    and whether that process imported scipy.stats."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['mltrust', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('mltrust', run_name='__main__')\n"
        "finally:\n    print('scipy.stats' in sys.modules, file=sys.stderr)\n"
    )
    best_wall = best_cpu = float("inf")
    rc, stats = 0, False
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "mltrust", *args], capture_output=True, check=False
        )
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best_wall, best_cpu, rc = min(best_wall, wall), min(best_cpu, cpu), proc.returncode
    check = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=False
    )
    stats = check.stderr.strip().splitlines()[-1:] == ["True"]
    return best_wall, best_cpu, rc, stats


def fresh_cases(tmp: str, ref: np.ndarray, cur: np.ndarray, repeat: int) -> None:
    """`mltrust monitor drift --no-mmd` on CSV and Parquet files, each in a fresh process."""
    names = [f"f{i}" for i in range(ref.shape[1])]
    header = ",".join(names)
    for tag, arr in (("ref", ref), ("cur", cur)):
        np.savetxt(Path(tmp, f"{tag}.csv"), arr, delimiter=",", header=header, comments="")
    formats = ["csv"]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        for tag, arr in (("ref", ref), ("cur", cur)):
            table = pa.table({n: arr[:, j] for j, n in enumerate(names)})
            pq.write_table(table, Path(tmp, f"{tag}.parquet"))
        formats.append("parquet")
    except ImportError:
        print("parquet: skipped (no pyarrow)")
    for fmt in formats:
        for extra in (["--no-effect-sizes"], []):
            args = ["monitor", "drift", "--reference", f"{tmp}/ref.{fmt}"]
            args += ["--current", f"{tmp}/cur.{fmt}", "--no-mmd", "-f", "json"]
            args += ["-o", f"{tmp}/out.json", *extra]
            wall, cpu, rc, stats = _fresh(args, repeat)
            print(
                f"CLI fresh process, {fmt}, {' '.join(extra) or 'effect sizes on'}: "
                f"wall {wall:.3f}s, cpu {cpu:.3f}s (best of {repeat}; exit {rc}; "
                f"scipy.stats imported: {stats}; load {os.getloadavg()[0]:.1f})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--fresh-only", action="store_true")
    opts = parser.parse_args()
    if opts.fresh_only:
        rng = np.random.default_rng(0)
        ref = rng.normal(size=(100_000, 50))
        cur = rng.normal(size=(10_000, 50))
        cur[:, :5] += 0.05
        with tempfile.TemporaryDirectory() as tmp:
            fresh_cases(tmp, ref, cur, opts.repeat)
        return
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
        fresh_cases(tmp, ref, cur, opts.repeat)


if __name__ == "__main__":
    main()
