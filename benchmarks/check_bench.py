"""How `mltrust check` scales: a mixed project per file, and BOM validation in model files.

The goal (issue 11): the checks of a 20,000-file project in under 30 s wall on two cores, and
the BOM linear in the number of model files (it was quadratic: jsonschema compares the items
of a ``uniqueItems`` array pairwise).

Prints one line per project: files, wall and CPU seconds of the whole run, then each
collector's wall seconds with its CPU seconds in brackets, and ``other`` (what runs outside
the collectors: the file walk's tail, the subject's manifest). CPU is this process and its
worker processes (``--jobs``), so a loaded machine shows in wall but not much in CPU: compare
runs on one machine, back to back. The projects are written to a temporary folder first
(20,000 small files take a while on a slow disk; that time is not counted).

Run: ``python benchmarks/check_bench.py [--sizes 1000,5000,20000] [--kind mixed|npy|both]
[--jobs N]``; the figure for the goal is ``--sizes 20000 --kind mixed``.
"""

from __future__ import annotations

import argparse
import os
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mltrust.evidence import CollectContext, collect_evidence
from mltrust.evidence._registry import all_collectors
from mltrust.evidence.interface import Collected


def _npy(values: int = 4) -> bytes:
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % values
    header += b" " * (63 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 4 * values


def npy_project(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    data = _npy()
    for i in range(n):
        (root / f"w{i:05d}.npy").write_bytes(data)
    return root


def mixed_project(root: Path, n: int) -> Path:
    """``n`` files: Python sources, notebooks-free text, configs and small arrays."""
    root.mkdir(parents=True)
    data = _npy()
    for i in range(n):
        folder = root / f"pkg{i // 200:03d}"
        folder.mkdir(exist_ok=True)
        kind = i % 4
        if kind == 0:
            (folder / f"m{i}.py").write_text(f"import os\n\n\ndef f{i}(x):\n    return x + {i}\n")
        elif kind == 1:
            (folder / f"n{i}.md").write_text(f"# note {i}\n\nplain text\n")
        elif kind == 2:
            (folder / f"c{i}.yaml").write_text(f"name: c{i}\nvalue: {i}\n")
        else:
            (folder / f"w{i}.npy").write_bytes(data)
    (root / "requirements.txt").write_text("numpy==1.26.4\n")
    return root


def _cpu() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run(root: Path, jobs: int) -> str:
    collectors = all_collectors()
    cpu: dict[str, float] = {}
    for collector in collectors:

        def timed(
            ctx: CollectContext,
            _inner: Callable[[CollectContext], Collected] = collector.collect,
            _name: str = collector.name,
        ) -> Collected:
            before = _cpu()
            try:
                return _inner(ctx)
            finally:
                cpu[_name] = _cpu() - before

        collector.collect = timed  # type: ignore[method-assign]
    started, cpu_started = time.perf_counter(), _cpu()
    bundle = collect_evidence(CollectContext(root, jobs=jobs), collectors)
    total, total_cpu = time.perf_counter() - started, _cpu() - cpu_started
    parts = " ".join(
        f"{c.collector}={c.seconds:.2f}s({cpu.get(c.collector, 0.0):.2f})" for c in bundle.collected
    )
    other = total - sum(c.seconds for c in bundle.collected)
    other_cpu = total_cpu - sum(cpu.values())
    return (
        f"files={bundle.document['subject']['files']:6d} wall={total:7.2f}s "
        f"cpu={total_cpu:7.2f}s  {parts} other={other:.2f}s({other_cpu:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000,20000", help="comma-separated file counts")
    parser.add_argument("--kind", choices=("mixed", "npy", "both"), default="both")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = {"mixed": ("mixed",), "npy": ("npy",), "both": ("npy", "mixed")}[args.kind]
    makers = {"npy": npy_project, "mixed": mixed_project}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for n in sizes:
                root = makers[kind](Path(tmp) / f"{kind}{n}", n)
                print(f"{kind:5s}", run(root, args.jobs), flush=True)


if __name__ == "__main__":
    main()
