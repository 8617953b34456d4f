"""Fleet scanning and hashing: one process vs ``-j N`` (process pool) vs Ray, on one machine.

    python benchmarks/ray_bench.py [--files 10000] [--cpus 2] [--big 8]

1. ``scan``: a registry of ``--files`` small files (pickles of a few hundred bytes, one in
   nine malicious, JSON configs), scanned by ``scan_paths`` with jobs=1, jobs=CPUS and a local
   Ray cluster of CPUS workers. The reports are checked to be identical (timings apart).
2. ``sign``: the same registry hashed into a manifest (``build_manifest``), locally (thread
   pool) and on Ray; then ``--big`` files of 64 MiB, where per-task overhead matters less.

Ray's cluster start is timed apart from the work (a long-lived cluster pays it once). On one
machine Ray cannot be faster than the local pool: it runs the same code on the same cores and
adds task scheduling, result serialisation and, for the first batches, worker start-up; it is
there to use *more* machines. The figures say how much it costs here.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from mltrust.attest import build_manifest  # noqa: E402
from mltrust.report import OutputFormat, render_scan  # noqa: E402
from mltrust.scan import scan_paths  # noqa: E402

_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."
_TIMING = re.compile(r'"seconds": [0-9.e-]+')


def _registry(root: Path, files: int) -> None:
    per_model = 100
    for i in range(files):
        folder = root / f"model-{i // per_model:04d}"
        folder.mkdir(exist_ok=True)
        if i % 10 == 9:
            (folder / f"config-{i}.json").write_text(json.dumps({"layer": i, "units": 64}))
        else:
            data = _SYSTEM if i % 9 == 0 else pickle.dumps({"layer": i, "w": list(range(20))})
            (folder / f"w-{i}.pkl").write_bytes(data)


def _big(root: Path, count: int) -> None:
    root.mkdir()
    block = os.urandom(1 << 20)
    for i in range(count):
        with (root / f"shard-{i}.bin").open("wb") as fh:
            for _ in range(64):
                fh.write(block)


def _timed(label: str, fn, rows: list[tuple[str, float]]):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - started
    rows.append((label, seconds))
    print(f"  {label:<44} {seconds:8.2f} s", flush=True)
    return out


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    text = [_TIMING.sub("", render_scan(r, OutputFormat.JSON)) for r in (a, b)]
    return text[0] == text[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--big", type=int, default=8, help="64 MiB files to hash (0: skip)")
    args = parser.parse_args()

    import ray

    from mltrust.executors._ray import RayExecutor

    work = Path(tempfile.mkdtemp(prefix="mltrust-ray-bench-"))
    rows: list[tuple[str, float]] = []
    try:
        reg = work / "registry"
        reg.mkdir()
        _registry(reg, args.files)
        print(f"{args.files} files, {args.cpus} CPUs, os.cpu_count()={os.cpu_count()}")
        print("scan")
        one = _timed("scan, one process", lambda: scan_paths([reg]), rows)
        pool = _timed(f"scan, -j {args.cpus}", lambda: scan_paths([reg], jobs=args.cpus), rows)
        _timed(
            "ray cluster start (local)",
            lambda: ray.init(
                num_cpus=args.cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                log_to_driver=False,
            ),
            rows,
        )
        ex = RayExecutor("local")
        cold = _timed(
            "scan, ray (first run: workers start)", lambda: scan_paths([reg], executor=ex), rows
        )
        warm = _timed("scan, ray (warm workers)", lambda: scan_paths([reg], executor=ex), rows)
        print(
            f"  reports identical: -j {_same(one, pool)}, "
            f"ray {_same(one, cold) and _same(one, warm)}"
        )
        print("sign (hashing into a manifest)")
        local = _timed("small files, local threads", lambda: build_manifest(reg), rows)
        remote = _timed("small files, ray", lambda: build_manifest(reg, executor=ex), rows)
        print(f"  root digests identical: {local.root_digest == remote.root_digest}")
        if args.big:
            big = work / "big"
            _big(big, args.big)
            size = args.big * 64
            loc = _timed(
                f"{size} MiB in {args.big} files, local threads", lambda: build_manifest(big), rows
            )
            rem = _timed(
                f"{size} MiB in {args.big} files, ray",
                lambda: build_manifest(big, executor=ex),
                rows,
            )
            print(f"  root digests identical: {loc.root_digest == rem.root_digest}")
        ray.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n| run | seconds | files/s |")
    print("|---|---:|---:|")
    for label, seconds in rows:
        rate = (
            f"{args.files / seconds:,.0f}" if "small" in label or label.startswith("scan") else ""
        )
        print(f"| {label} | {seconds:.2f} | {rate} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
