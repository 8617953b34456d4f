"""Per-file cost of one ``mltrust scan`` process against one ``picklescan`` process.

What a CI job or a pre-commit hook pays per invocation: a fresh interpreter, imports, one small
pickle scanned, exit. Each tool is run ``--runs`` times on the same small file (a benign joblib
dump and a malicious pickle), the two tools taking turns, and the median and best wall times
are printed. picklescan runs from its own virtual environment under ``.bench/`` (installed on
first use, as in ``scan_bench.py``); it is skipped when it cannot be installed.

    python benchmarks/cli_cost_bench.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scan_bench import _mltrust_cmd, ensure_venv  # noqa: E402


def _samples(folder: Path) -> dict[str, Path]:
    benign = folder / "model.pkl"
    benign.write_bytes(pickle.dumps({"weights": [0.5] * 1000, "name": "linear"}, protocol=4))
    evil = folder / "evil.pkl"
    evil.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    return {"benign": benign, "malicious": evil}


#: As users run the tools: with bytecode caches (the first, warming run writes them).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _time_pair(cmds: list[list[str]], runs: int) -> list[tuple[float, float]]:
    """Median and best wall time of each command; the commands take turns, so that load from
    other processes falls on each alike."""
    for cmd in cmds:
        subprocess.run(cmd, capture_output=True, check=False, env=_ENV)  # warm caches, .pyc
    samples: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, out in zip(cmds, samples, strict=True):
            started = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=False, env=_ENV)
            out.append(time.perf_counter() - started)
    return [(statistics.median(s), min(s)) for s in samples]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    picklescan = ensure_venv("picklescan")
    with tempfile.TemporaryDirectory() as tmp:
        samples = _samples(Path(tmp))
        print(f"{'tool':<12} {'file':<10} {'median s':>9} {'best s':>8}")
        for label, path in samples.items():
            cmds = [[*_mltrust_cmd(), "scan", str(path)]]
            if picklescan is not None:
                cmds.append([str(picklescan / "picklescan"), "-p", str(path)])
            for tool, (median, best) in zip(
                ("mltrust", "picklescan"), _time_pair(cmds, args.runs), strict=False
            ):
                print(f"{tool:<12} {label:<10} {median:>9.3f} {best:>8.3f}")
    if picklescan is None:
        print("picklescan could not be installed; only mltrust was measured")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
