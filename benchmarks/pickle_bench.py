"""Pickle analyser throughput: opcodes per second and a large joblib file with NumPy arrays.

    python benchmarks/pickle_bench.py [--size-mb 100]

Generates its inputs under .bench/ (git-ignored) and prints the figures.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from mltrust.config import ScanConfig
from mltrust.findings import Location
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
            f"{label:28s} {summary.opcodes:>9d} opcodes  "
            f"{seconds * 1e9 / summary.opcodes:6.0f} ns/op"
            f"  {summary.opcodes / seconds / 1e6:5.2f} Mop/s"
        )


def joblib_file(size_mb: int) -> None:
    """Scan a joblib dump of large float arrays in a fresh process (for a clean peak RSS)."""
    import joblib

    BENCH.mkdir(exist_ok=True)
    path = BENCH / f"arrays_{size_mb}mb.joblib"
    if not path.exists():
        n = size_mb * (1 << 20) // 8 // 4
        rng = np.random.default_rng(0)
        joblib.dump({f"layer{i}": rng.random(n) for i in range(4)}, path)
    child = textwrap.dedent(
        f"""
        import time
        from mltrust.scan import scan_file
        scan_file({str(path)!r})
        started = time.perf_counter()
        result = scan_file({str(path)!r})
        seconds = time.perf_counter() - started
        # VmHWM: this process's own peak (ru_maxrss would include the parent's before exec).
        status = open("/proc/self/status").read()
        peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
        serious = sum(f.severity.rank >= 2 for f in result.findings)
        size = result.size
        print(f"joblib {{size / 1e6:.0f}} MB: {{seconds * 1000:.1f}} ms, "
              f"{{size / seconds / 1e9:.1f}} GB/s, peak RSS {{peak:.0f}} MB, "
              f"findings >= medium: {{serious}}, formats: {{result.formats}}")
        """
    )
    subprocess.run([sys.executable, "-c", child], check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=100)
    args = parser.parse_args()
    opcode_throughput()
    joblib_file(args.size_mb)
