"""Signing and verification throughput: mltrust vs OpenSSF model-signing vs the SHA-256 bound.

A 2 GiB folder of four 512 MiB files is generated once under ``.bench/hash2g`` and reused.
Each measured operation runs in its own subprocess (so peak RSS is that operation's alone);
the time reported is the operation itself, measured inside the subprocess, with a warm page
cache. The bound is ``bytes / (2 x single-core hashlib.sha256 throughput)``, the single-core
figure measured in this run on the same files.

The bound uses the strict single-core rate (hashing data already in memory), so a tool that
must also read its input can only approach it. CPU seconds are printed too: on a shared
machine wall time depends on the scheduler, CPU time much less.

``--small-files N`` measures the other end instead: N files of ``--small-kib`` KiB (4) in
folders of 500 (``.bench/small-N``), where per-file work and interpreter start dominate and
the hash rate does not matter; it prints times, CPU, peak RSS and the ratios to model_signing.

``mltrust-sign-blake3``/``mltrust-verify-blake3`` rows show the BLAKE3 fast path (``sign --hash
blake3``, the ``blake3`` extra): it is not bounded by SHA-256 at all, so it only helps users
who control both ends (model_signing 1.x verifies it too).

Run: ``.venv/bin/python benchmarks/hash_bench.py [--size-mib 512] [--files 4] [--repeat 3]``
or ``.venv/bin/python benchmarks/hash_bench.py --small-files 10000``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".bench"

_CHILD = textwrap.dedent(
    """
    import json, sys, time
    op, model, key, sig = sys.argv[1:5]
    if op.startswith("mltrust"):
        from mltrust.attest import PinnedKeys, sign, verify
        t, c = time.perf_counter(), time.process_time()
        alg = "blake3" if op.endswith("-blake3") else "sha256"
        if op.startswith("mltrust-sign"):
            sign(model, key=key, output=sig, hash_algorithm=alg)
        else:
            verify(model, trust=PinnedKeys(key), signature=sig)
    else:
        import model_signing
        t, c = time.perf_counter(), time.process_time()
        if op == "model_signing-sign":
            hashing = model_signing.hashing.Config().set_ignored_paths(paths=[])
            (model_signing.signing.Config().use_elliptic_key_signer(private_key=key)
                .set_hashing_config(hashing).sign(model, sig))
        else:
            (model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key)
                .verify(model, sig))
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    hwm = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024.0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_rss_mib": hwm}))
    """
)


def make_data(folder: Path, files: int, size: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    block = 16 * 1024 * 1024
    for i in range(files):
        p = folder / f"shard-{i}.bin"
        if p.exists() and p.stat().st_size == size:
            continue
        print(f"generating {p} ({size >> 20} MiB)", file=sys.stderr)
        with open(p, "wb") as fh:
            left = size
            while left:
                n = min(block, left)
                fh.write(os.urandom(n))
                left -= n
    for extra in folder.iterdir():
        if extra.is_file() and not extra.name.startswith("shard-"):
            extra.unlink()
    return files * size


def warm(folder: Path) -> None:
    buf = bytearray(16 * 1024 * 1024)
    for p in sorted(folder.iterdir()):
        with open(p, "rb", buffering=0) as fh:
            while fh.readinto(buf):
                pass


def single_core_sha256(folder: Path) -> tuple[float, float, float]:
    """One thread's SHA-256 rate on the benchmark files, in bytes per second:

    (in-memory rate: ``hashlib.sha256`` over 64 MiB pieces of each file already read into
    memory, only hashing timed, the strict reference for the bound;
    read+hash rate: a plain ``readinto`` + ``update`` loop from the warm page cache;
    in-memory rate per CPU second, for the CPU-time reference).
    """
    piece = 64 * 1024 * 1024
    hashing, hashing_cpu, total = 0.0, 0.0, 0
    for p in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as fh:
            while data := fh.read(piece):
                t, c = time.perf_counter(), time.process_time()
                h.update(data)
                hashing += time.perf_counter() - t
                hashing_cpu += time.process_time() - c
                total += len(data)
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    t = time.perf_counter()
    for p in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
    return total / hashing, total / (time.perf_counter() - t), total / hashing_cpu


def run_child(op: str, model: Path, key: Path, sig: Path) -> tuple[float, float, float]:
    """(seconds, CPU seconds, peak RSS MiB) of one operation in a fresh interpreter."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, op, str(model), str(key), str(sig)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{op} failed ({proc.returncode}): {err.strip()[-2000:]}")
    doc = json.loads(out.strip().splitlines()[-1])
    # VmHWM is the child's own peak RSS (ru_maxrss of a forked child can report the parent's).
    return float(doc["seconds"]), float(doc["cpu"]), float(doc["peak_rss_mib"])


def run_cli(op: str, model: Path, key: Path, sig: Path) -> float:
    """End-to-end wall seconds of one command-line run (interpreter start and imports too)."""
    exe = Path(sys.executable)
    tool, verb = op.split(" ")[0], op.split(" ")[1]
    if tool == "mltrust":
        flag = "-o" if verb == "sign" else "-s"
        cmd = [str(exe.with_name("mltrust")), verb, str(model), "--key", str(key), flag, str(sig)]
        cmd.append("--no-progress")
    else:
        key_flag = "--private_key" if verb == "sign" else "--public_key"
        cmd = [
            str(exe.with_name("model_signing")),
            verb,
            "key",
            str(model),
            "--signature",
            str(sig),
            key_flag,
            str(key),
        ]
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"{op} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
    return seconds


def make_small(folder: Path, count: int, size: int) -> int:
    """``count`` files of ``size`` random bytes, 500 per sub-folder (reused when present)."""
    marker = folder.with_name(f"{folder.name}.complete-{size}")
    if marker.exists():
        return count * size
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    print(f"generating {count} files of {size} bytes in {folder}", file=sys.stderr)
    for i in range(count):
        sub = folder / f"d{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:06d}.bin").write_bytes(os.urandom(size))
    marker.write_text("")
    return count * size


def small_main(args: argparse.Namespace, key: Path, pub: Path, sigdir: Path) -> int:
    """Per-file overhead and start-up: many small files, operation and command line."""
    folder = BENCH / f"small-{args.small_files}"
    total = make_small(folder, args.small_files, args.small_kib * 1024)
    warm_tree(folder)
    print(f"data: {args.small_files} files x {args.small_kib} KiB = {total / 2**20:.1f} MiB")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    ops = [("mltrust-sign", key), ("mltrust-verify", pub)]
    cli_ops = [("mltrust sign (CLI)", key), ("mltrust verify (CLI)", pub)]
    if have_model_signing():
        ops += [("model_signing-sign", key), ("model_signing-verify", pub)]
        cli_ops += [("model_signing sign (CLI)", key), ("model_signing verify (CLI)", pub)]
    samples: dict[str, list[tuple[float, float, float]]] = {op: [] for op, _ in ops}
    cli_samples: dict[str, list[float]] = {op: [] for op, _ in cli_ops}
    for _ in range(args.repeat):
        for op, k in ops:
            sig = sigdir / ("small-ours.sig" if op.startswith("mltrust") else "small-ms.sig")
            samples[op].append(run_child(op, folder, k, sig))
        for op, k in cli_ops:
            name = "small-cli-ours.sig" if op.startswith("mltrust") else "small-cli.sig"
            sig = sigdir / name
            cli_samples[op].append(run_cli(op, folder, k, sig))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"{'operation':<28}{'seconds':>9}{'CPU s':>8}{'peak RSS MiB':>14}")
    med = {}
    for op, vals in samples.items():
        med[op] = (statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals))
        rss = max(v[2] for v in vals)
        print(f"{op:<28}{med[op][0]:>9.3f}{med[op][1]:>8.2f}{rss:>14.1f}")
    for op, vals in cli_samples.items():
        print(f"{op:<28}{statistics.median(vals):>9.3f}")
    for verb in ("sign", "verify"):
        ours, theirs = med.get(f"mltrust-{verb}"), med.get(f"model_signing-{verb}")
        if ours and theirs:
            print(
                f"speed-up vs model_signing ({verb}, operation): {theirs[0] / ours[0]:.2f}x "
                f"wall, {theirs[1] / ours[1]:.2f}x CPU"
            )
        o, t = (
            cli_samples.get(f"mltrust {verb} (CLI)"),
            cli_samples.get(f"model_signing {verb} (CLI)"),
        )
        if o and t:
            ratio = statistics.median(t) / statistics.median(o)
            print(f"speed-up vs model_signing ({verb}, command line): {ratio:.2f}x")
    print("(median of", args.repeat, "runs; the machine may be shared, so figures are noisy)")
    return 0


def warm_tree(folder: Path) -> None:
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as fh:
                fh.read()


def have_model_signing() -> bool:
    try:
        import model_signing  # noqa: F401
    except Exception:  # any import failure means "skip the anchor"
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--small-files", type=int, default=0, help="many-small-files mode")
    ap.add_argument("--small-kib", type=int, default=4)
    args = ap.parse_args()

    from mltrust.attest import generate_keypair

    keydir = BENCH / "hash-keys"
    keydir.mkdir(parents=True, exist_ok=True)
    key, pub = keydir / "bench.key", keydir / "bench.pub"
    if not key.exists() or not pub.exists():
        for p in (key, pub):
            p.unlink(missing_ok=True)
        generate_keypair(keydir / "bench", passphrase=None)
    sigdir = BENCH / "hash-sigs"
    sigdir.mkdir(exist_ok=True)
    if args.small_files:
        return small_main(args, key, pub, sigdir)
    folder = BENCH / ("hash2g" if (args.files, args.size_mib) == (4, 512) else "hash-custom")
    total = make_data(folder, args.files, args.size_mib * 1024 * 1024)

    warm(folder)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"data: {args.files} x {args.size_mib} MiB = {total / 2**30:.2f} GiB, {cpus} CPUs")
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    ops = [("mltrust-sign", key), ("mltrust-verify", pub)]
    if have_model_signing():
        ops += [("model_signing-sign", key), ("model_signing-verify", pub)]
    else:
        print("model_signing not importable: anchor skipped", file=sys.stderr)
    try:
        import blake3  # noqa: F401

        ops += [("mltrust-sign-blake3", key), ("mltrust-verify-blake3", pub)]
    except ImportError:
        print("blake3 not installed: the fast path is not measured", file=sys.stderr)
    results: dict[str, tuple[float, float, float]] = {}
    # interleave repetitions so background noise hits every tool alike
    samples: dict[str, list[tuple[float, float, float]]] = {op: [] for op, _ in ops}
    rates: list[float] = []
    read_rates: list[float] = []
    cpu_rates: list[float] = []
    cli_ops = [("mltrust sign (CLI)", key), ("mltrust verify (CLI)", pub)]
    if len(ops) > 2:
        cli_ops += [("model_signing sign (CLI)", key), ("model_signing verify (CLI)", pub)]
    cli_samples: dict[str, list[float]] = {op: [] for op, _ in cli_ops}
    for _ in range(args.repeat):
        # the single-core reference is re-measured every round, like the tools
        rate, read_rate, cpu_rate = single_core_sha256(folder)
        rates.append(rate)
        read_rates.append(read_rate)
        cpu_rates.append(cpu_rate)
        for op, k in ops:
            sig = sigdir / (
                ("mltrust-blake3.sig" if op.endswith("-blake3") else "mltrust.sig")
                if op.startswith("mltrust")
                else "model_signing.sig"
            )
            samples[op].append(run_child(op, folder, k, sig))
        for op, k in cli_ops:
            sig = sigdir / ("cli-mltrust.sig" if op.startswith("mltrust") else "cli-ms.sig")
            cli_samples[op].append(run_cli(op, folder, k, sig))
    for op, vals in samples.items():
        results[op] = (
            statistics.median(v[0] for v in vals),
            statistics.median(v[1] for v in vals),
            max(v[2] for v in vals),
        )
        runs = ", ".join(f"{v[0]:.3f}" for v in vals)
        print(f"{op}: runs {runs} s", file=sys.stderr)

    one_core = statistics.median(rates)
    bound = total / (2 * one_core)
    print(
        f"single-core sha256: {one_core / 1e9:.2f} GB/s (median; runs: "
        + ", ".join(f"{r / 1e9:.2f}" for r in rates)
        + f"); two-core bound: {bound:.3f} s"
    )
    print(
        f"(plain readinto+sha256 loop from the page cache: "
        f"{statistics.median(read_rates) / 1e9:.2f} GB/s single-core, for reference)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    head = f"{'operation':<22}{'seconds':>9}{'GB/s':>8}{'x bound':>9}{'CPU s':>8}"
    print(head + f"{'peak RSS MiB':>14}")
    for op, (secs, cpu, rss) in results.items():
        print(
            f"{op:<22}{secs:>9.3f}{total / secs / 1e9:>8.2f}{secs / bound:>9.2f}"
            f"{cpu:>8.2f}{rss:>14.1f}"
        )
    cpu_min = total / statistics.median(cpu_rates)
    print(f"{'(two-core bound)':<22}{bound:>9.3f}{'':>8}{1:>9.2f}{cpu_min:>8.2f}")
    for op, (_secs, cpu, _rss) in results.items():
        print(f"CPU per byte, {op}: {cpu / cpu_min:.2f}x pure in-memory SHA-256")
    for op, cli_vals in cli_samples.items():
        cli_secs = statistics.median(cli_vals)
        cli_runs = ", ".join(f"{v:.3f}" for v in cli_vals)
        print(f"{op:<28}{cli_secs:>9.3f} s  x bound {cli_secs / bound:.2f}  (runs {cli_runs})")
    for verb in ("sign", "verify"):
        ours, theirs = results.get(f"mltrust-{verb}"), results.get(f"model_signing-{verb}")
        if ours and theirs:
            print(f"speed-up vs model_signing ({verb}, operation): {theirs[0] / ours[0]:.2f}x")
        fast = results.get(f"mltrust-{verb}-blake3")
        if ours and fast:
            print(f"BLAKE3 vs SHA-256 ({verb}, operation): {ours[0] / fast[0]:.2f}x")
        ours_cli = cli_samples.get(f"mltrust {verb} (CLI)")
        theirs_cli = cli_samples.get(f"model_signing {verb} (CLI)")
        if ours_cli and theirs_cli:
            ratio = statistics.median(theirs_cli) / statistics.median(ours_cli)
            print(f"speed-up vs model_signing ({verb}, command line): {ratio:.2f}x")
    print("(median of", args.repeat, "runs; the machine may be shared, so figures can be noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
