"""How `mltrust check` scales: BOM validation in model files, and a mixed project per file.

Prints one line per size: files, seconds per collector, total. The BOM column must grow
linearly with the number of model files (it was quadratic: jsonschema compares the items of
a ``uniqueItems`` array pairwise). Run: ``python benchmarks/check_bench.py [--max 5000]
[--jobs N]``.
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from pathlib import Path

from mltrust.evidence import CollectContext, collect_evidence


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


def run(root: Path, jobs: int) -> str:
    started = time.perf_counter()
    bundle = collect_evidence(CollectContext(root, jobs=jobs))
    total = time.perf_counter() - started
    parts = " ".join(f"{c.collector}={c.seconds:.2f}s" for c in bundle.collected)
    return f"files={bundle.document['subject']['files']:6d} total={total:7.2f}s  {parts}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max", type=int, default=5000)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    sizes = [s for s in (500, 1000, 2000, 5000, 10000, 20000) if s <= args.max]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            print("npy  ", run(npy_project(Path(tmp) / f"npy{n}", n), args.jobs), flush=True)
        for n in sizes:
            print("mixed", run(mixed_project(Path(tmp) / f"mix{n}", n), args.jobs), flush=True)


if __name__ == "__main__":
    main()
