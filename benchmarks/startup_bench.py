"""Start-up cost of the command line: `mltrust --help`, and one small file per process.

    python benchmarks/startup_bench.py [--runs 15]

Prints the best and median wall time of each command over `--runs` processes, and for the
one-small-file scan the ratio against picklescan (the anchor named by the issue) when it is
installed. Goals: `--help` under 150 ms; `scan` of one small file below picklescan's
per-process time. Bytecode caches are allowed (PYTHONDONTWRITEBYTECODE is removed), as a user's
install has them; one warm-up run per command is not counted.
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time(cmd: list[str], runs: int) -> tuple[float, float]:
    subprocess.run(cmd, capture_output=True, env=ENV, check=False)  # warm-up, caches
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=ENV, check=False)
        samples.append(time.perf_counter() - t0)
    return min(samples), statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "model.pkl"
        small.write_bytes(pickle.dumps({"weights": [0.5] * 64, "bias": 0.1}, protocol=4))
        rows: list[tuple[str, float, float]] = []
        mltrust = str(BIN / "mltrust")
        rows.append(("mltrust --help", *_time([mltrust, "--help"], args.runs)))
        rows.append(
            ("mltrust scan (1 small file)", *_time([mltrust, "scan", str(small)], args.runs))
        )
        picklescan = shutil.which("picklescan", path=str(BIN)) or shutil.which("picklescan")
        if picklescan:
            rows.append(
                ("picklescan -p (1 small file)", *_time([picklescan, "-p", str(small)], args.runs))
            )
        print(f"{'command':<32} {'best':>9} {'median':>9}")
        for name, best, median in rows:
            print(f"{name:<32} {best * 1000:>7.0f}ms {median * 1000:>7.0f}ms")
        if picklescan:
            ours, theirs = rows[1][2], rows[2][2]
            print(f"scan / picklescan (median): {ours / theirs:.2f}x")
        else:
            print("picklescan not installed: pip install picklescan for the comparison")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
