"""Start-up cost of the command line: `mltrust --help`, and one small file per process.

    python benchmarks/startup_bench.py [--runs 15] [--imports]

Prints the best and median wall time of each command over `--runs` processes, and for the
one-small-file scan the ratio against picklescan (the anchor named by the issue) when it is
installed. Goals: `--help` under 150 ms; `scan` of one small file below picklescan's
per-process time. Bytecode caches are allowed (PYTHONDONTWRITEBYTECODE is removed), as a user's
install has them; one warm-up run per command is not counted. The commands take turns (one
run of each, then the next round), so that load from other processes on the machine falls on
all of them alike, and run in an empty folder (no configuration file to find).

``--instructions`` also counts the instructions each process executes under valgrind's
callgrind (when valgrind is installed): unlike wall time, the count does not move with the
machine's load, so it shows small differences reliably.
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


def _time_all(cmds: list[list[str]], runs: int, cwd: str) -> list[tuple[float, float]]:
    """Best and median wall time of each command, the commands taking turns."""
    for cmd in cmds:
        subprocess.run(cmd, capture_output=True, env=ENV, check=False, cwd=cwd)  # warm caches
    samples: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, out in zip(cmds, samples, strict=True):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=ENV, check=False, cwd=cwd)
            out.append(time.perf_counter() - t0)
    return [(min(s), statistics.median(s)) for s in samples]


def _instructions(cmd: list[str], cwd: str) -> int | None:
    """Instructions one run of ``cmd`` executes, counted by callgrind; None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    proc = subprocess.run(
        [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
        cwd=cwd,
    )
    for line in proc.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    return None


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
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of one run of each scan (needs valgrind)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "model.pkl"
        small.write_bytes(pickle.dumps({"weights": [0.5] * 64, "bias": 0.1}, protocol=4))
        mltrust = str(BIN / "mltrust")
        commands = [
            ("mltrust --help", [mltrust, "--help"]),
            ("mltrust scan (1 small file)", [mltrust, "scan", str(small)]),
        ]
        picklescan = shutil.which("picklescan", path=str(BIN)) or shutil.which("picklescan")
        if picklescan:
            commands.append(("picklescan -p (1 small file)", [picklescan, "-p", str(small)]))
        timed = _time_all([cmd for _, cmd in commands], args.runs, tmp)
        rows = [(name, *t) for (name, _), t in zip(commands, timed, strict=True)]
        print(f"{'command':<32} {'best':>9} {'median':>9}")
        for name, best, median in rows:
            print(f"{name:<32} {best * 1000:>7.0f}ms {median * 1000:>7.0f}ms")
        if args.instructions:
            counts = {name: _instructions(cmd, tmp) for name, cmd in commands[1:]}
            for name, count in counts.items():
                shown = "valgrind not installed" if count is None else f"{count / 1e6:.1f} M"
                print(f"instructions, {name}: {shown}")
            ours_n, theirs_n = [*counts.values(), None][:2]
            if ours_n and theirs_n:
                print(f"scan / picklescan (instructions): {ours_n / theirs_n:.2f}x")
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
