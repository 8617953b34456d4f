"""Analysis time against size for the adversarial pickles of ``tests/_adversarial_pickles.py``.

    python benchmarks/pickle_dos_bench.py [--max-kb 1024]

For each generator, doubles ``n`` until the pickle passes ``--max-kb`` and prints its size,
opcodes, value-graph visits (``PickleSummary.visits``, bounded by the analysis budget) and
wall time. Linear analysis shows as visits and seconds roughly doubling with the size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _adversarial_pickles import GENERATORS
from mltrust.config import ScanConfig
from mltrust.findings import Location
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import scan_pickle_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-kb", type=int, default=1024)
    parser.add_argument("names", nargs="*", default=sorted(GENERATORS))
    args = parser.parse_args()
    print(f"{'generator':24} {'n':>8} {'KiB':>8} {'opcodes':>9} {'visits':>9} {'s':>7}  worst")
    for name in args.names:
        n = 16
        while True:
            data = GENERATORS[name](n)
            ctx = ScanContext(config=ScanConfig(), deadline=time.monotonic() + 60)
            started = time.perf_counter()
            summary = scan_pickle_stream(memoryview(data), ctx, Location("bench.pkl"))
            seconds = time.perf_counter() - started
            worst = max((f.severity for f in ctx.findings), key=lambda s: s.rank, default=None)
            print(
                f"{name:24} {n:>8} {len(data) / 1024:>8.1f} {summary.opcodes:>9} "
                f"{summary.visits:>9} {seconds:>7.3f}  {worst.name if worst else '-'}"
            )
            if len(data) > args.max_kb * 1024:
                break
            n *= 2


if __name__ == "__main__":
    main()
