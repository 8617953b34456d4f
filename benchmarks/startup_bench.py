"""Start-up cost of the command line: `mltrust --help`, and one small file per process.

    python benchmarks/startup_bench.py [--runs 15] [--imports]

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


def _imports(argv: list[str]) -> tuple[int, list[tuple[int, str]]]:
    """Modules imported by ``mltrust ARGV`` and the ten slowest (cumulative µs, name), from
    ``python -X importtime`` (less noisy than wall time on a busy machine)."""
    code = "import sys\nfrom mltrust.cli._main import main\nmain(sys.argv[1:])"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *argv],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line[len("import time:") :].split("|")
            if cumulative.strip().isdigit():
                rows.append((int(cumulative), name.rstrip()))
    top = sorted((c, n.strip()) for c, n in rows if not n.startswith("   "))[-10:]
    return len(rows), top[::-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--imports", action="store_true", help="also list what each command imports"
    )
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
        if args.imports:
            for argv in (["--help"], ["scan", str(small)]):
                count, top = _imports(argv)
                print(f"mltrust {argv[0]}: {count} modules imported; slowest (cumulative):")
                print("  " + ", ".join(f"{name} {us / 1000:.0f}ms" for us, name in top))
        if picklescan:
            ours, theirs = rows[1][2], rows[2][2]
            print(f"scan / picklescan (median): {ours / theirs:.2f}x")
        else:
            print("picklescan not installed: pip install picklescan for the comparison")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
