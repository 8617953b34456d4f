"""Signing and verification throughput: mltrust vs OpenSSF model-signing vs the SHA-256 bound.

A 2 GiB folder of four 512 MiB files is generated once under ``.bench/hash2g`` and reused.
Each measured operation runs in its own subprocess (so peak RSS is that operation's alone);
the time reported is the operation itself, measured inside the subprocess, with a warm page
cache. The bound is ``bytes / (2 x single-core hashlib.sha256 throughput)``, the single-core
figure measured in this run on the same files.

Run: ``.venv/bin/python benchmarks/hash_bench.py [--size-mib 512] [--files 4] [--repeat 3]``
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
        from mltrust.attest import sign, verify
        t = time.perf_counter()
        if op == "mltrust-sign":
            sign(model, key=key, output=sig)
        else:
            verify(model, key=key, signature=sig)
    else:
        import model_signing
        t = time.perf_counter()
        if op == "model_signing-sign":
            hashing = model_signing.hashing.Config().set_ignored_paths(paths=[])
            (model_signing.signing.Config().use_elliptic_key_signer(private_key=key)
                .set_hashing_config(hashing).sign(model, sig))
        else:
            (model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key)
                .verify(model, sig))
    seconds = time.perf_counter() - t
    hwm = 0.0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024.0
    print(json.dumps({"seconds": seconds, "peak_rss_mib": hwm}))
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


def single_core_sha256(folder: Path) -> float:
    """Bytes per second of one thread reading (from cache) and hashing every file."""
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    total = 0
    t = time.perf_counter()
    for p in sorted(folder.iterdir()):
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as fh:
            while n := fh.readinto(buf):
                h.update(view[:n])
                total += n
    return total / (time.perf_counter() - t)


def run_child(op: str, model: Path, key: Path, sig: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of one operation in a fresh interpreter (Linux /proc)."""
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
    return float(doc["seconds"]), float(doc["peak_rss_mib"])


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
    args = ap.parse_args()

    from mltrust.attest import generate_keypair

    folder = BENCH / ("hash2g" if (args.files, args.size_mib) == (4, 512) else "hash-custom")
    total = make_data(folder, args.files, args.size_mib * 1024 * 1024)
    keydir = BENCH / "hash-keys"
    keydir.mkdir(parents=True, exist_ok=True)
    key, pub = keydir / "bench.key", keydir / "bench.pub"
    if not key.exists() or not pub.exists():
        for p in (key, pub):
            p.unlink(missing_ok=True)
        generate_keypair(keydir / "bench", passphrase=None)
    sigdir = BENCH / "hash-sigs"
    sigdir.mkdir(exist_ok=True)

    warm(folder)
    rates = [single_core_sha256(folder) for _ in range(2)]
    one_core = max(rates)
    bound = total / (2 * one_core)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"data: {args.files} x {args.size_mib} MiB = {total / 2**30:.2f} GiB, {cpus} CPUs")
    print(f"single-core sha256: {one_core / 1e9:.2f} GB/s; two-core bound: {bound:.3f} s")

    ops = [("mltrust-sign", key), ("mltrust-verify", pub)]
    if have_model_signing():
        ops += [("model_signing-sign", key), ("model_signing-verify", pub)]
    else:
        print("model_signing not importable: anchor skipped", file=sys.stderr)
    results: dict[str, tuple[float, float]] = {}
    # interleave repetitions so background noise hits every tool alike
    samples: dict[str, list[tuple[float, float]]] = {op: [] for op, _ in ops}
    for _ in range(args.repeat):
        for op, k in ops:
            sig = sigdir / ("mltrust.sig" if op.startswith("mltrust") else "model_signing.sig")
            samples[op].append(run_child(op, folder, k, sig))
    for op, vals in samples.items():
        results[op] = (statistics.median(v[0] for v in vals), max(v[1] for v in vals))

    print()
    print(f"{'operation':<22}{'seconds':>9}{'GB/s':>8}{'x bound':>9}{'peak RSS MiB':>14}")
    for op, (secs, rss) in results.items():
        print(f"{op:<22}{secs:>9.3f}{total / secs / 1e9:>8.2f}{secs / bound:>9.2f}{rss:>14.1f}")
    for verb in ("sign", "verify"):
        ours, theirs = results.get(f"mltrust-{verb}"), results.get(f"model_signing-{verb}")
        if ours and theirs:
            print(f"speed-up vs model_signing ({verb}): {theirs[0] / ours[0]:.2f}x")
    print("(median of", args.repeat, "runs; the machine may be shared, so figures can be noisy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
