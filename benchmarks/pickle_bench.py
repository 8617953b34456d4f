"""Pickle analyser throughput: opcodes per second and a large joblib file with NumPy arrays.

    python benchmarks/pickle_bench.py [--size-mb 100]

Generates its inputs under .bench/ (git-ignored) and prints the figures.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import time
from pathlib import Path

import numpy as np

from mltrust.config import ScanConfig
from mltrust.findings import Location
from mltrust.scan import scan_file
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import scan_pickle_stream

BENCH = Path(__file__).resolve().parent.parent / ".bench"


def opcode_throughput() -> None:
    cases = {
        "ints (BININT/APPENDS)": list(range(1_000_000)),
        "short strings (+MEMOIZE)": [f"s{i}" for i in range(300_000)],
        "dicts of lists": [{"a": i, "b": [i, 2.0]} for i in range(100_000)],
    }
    for label, obj in cases.items():
        data = memoryview(pickle.dumps(obj, protocol=4))
        ctx = ScanContext(config=ScanConfig())
        started = time.perf_counter()
        summary = scan_pickle_stream(data, ctx, Location(label))
        seconds = time.perf_counter() - started
        print(
            f"{label:28s} {summary.opcodes:>9d} opcodes  {seconds * 1e9 / summary.opcodes:6.0f} ns/op"
            f"  {summary.opcodes / seconds / 1e6:5.2f} Mop/s"
        )


def joblib_file(size_mb: int) -> None:
    import joblib

    BENCH.mkdir(exist_ok=True)
    path = BENCH / f"arrays_{size_mb}mb.joblib"
    if not path.exists():
        n = size_mb * (1 << 20) // 8 // 4
        rng = np.random.default_rng(0)
        joblib.dump({f"layer{i}": rng.random(n) for i in range(4)}, path)
    size = path.stat().st_size
    scan_file(path)  # warm the page cache
    started = time.perf_counter()
    result = scan_file(path)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    serious = [f for f in result.findings if f.severity.rank >= 2]
    print(
        f"joblib {size / 1e6:.0f} MB: {seconds * 1000:.1f} ms, {size / seconds / 1e9:.1f} GB/s, "
        f"peak RSS {peak:.0f} MB, findings >= medium: {len(serious)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=100)
    args = parser.parse_args()
    opcode_throughput()
    joblib_file(args.size_mb)
