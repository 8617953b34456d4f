"""Vault benchmark: reads/s and writes/s on SQLite and PostgreSQL, in process and over HTTP.

For each backend:

* **in process** — ``Vault.get_var`` / ``Vault.put_var`` in a loop (storage + AES-GCM, no HTTP,
  no audit): the ceiling the service can reach;
* **over HTTP** — ``mltrust vault serve`` in a child process (every security layer on: token
  check, role check, decryption, and a durable hash-chained audit entry written *before* each
  answer, fsynced with ``--audit-sync full``, group-committed), loaded by ``--procs`` client
  processes × ``--threads`` keep-alive connections each for ``--duration`` seconds. GET of one of
  100 variables (reads) and PUT of a 64-byte value to a per-connection variable (writes).

The clients run on the same machine as the server and compete with it for the CPU; the figures
are a floor, not a ceiling. PostgreSQL is used when reachable (``MLTRUST_TEST_POSTGRES`` or the
local server); otherwise that backend is reported as skipped.

Usage: python benchmarks/vault_bench.py [--duration 5] [--procs 2] [--threads 8]
       [--backend sqlite|postgresql|both] [--audit-sync full|normal]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from mltrust.vault._service import Vault  # noqa: E402
from mltrust.vault._state import init_state  # noqa: E402
from mltrust.vault._tokens import TokenStore  # noqa: E402

PG_CANDIDATES = (
    [os.environ["MLTRUST_TEST_POSTGRES"]]
    if os.environ.get("MLTRUST_TEST_POSTGRES")
    else [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://postgres@/test?host=/var/run/postgresql",
    ]
)
PASSPHRASE = "benchmark passphrase"
N_VARS = 100


def pg_schema() -> tuple[str, str] | None:
    try:
        import psycopg
    except ImportError:
        return None
    for url in PG_CANDIDATES:
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                schema = "vbench_" + secrets.token_hex(4)
                conn.execute(f"CREATE SCHEMA {schema}")
            sep = "&" if "?" in url else "?"
            return url, f"{url}{sep}options=-csearch_path%3D{schema}"
        except psycopg.Error:
            continue
    return None


def drop_schema(base: str, url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def in_process(state: Path, database: str | None, duration: float) -> dict[str, float]:
    storage, _ = init_state(state, database, kdf_log_n=14)
    vault = Vault(storage, max_versions=10)
    vault.unseal(vault.derive_kek(passphrase=PASSPHRASE))
    vault.create_env("inproc")
    for i in range(N_VARS):
        vault.create_var("inproc", f"VAR_{i}", secrets.token_hex(32))
    out = {}
    n, end = 0, time.perf_counter() + duration
    while time.perf_counter() < end:
        vault.get_var("inproc", f"VAR_{n % N_VARS}")
        n += 1
    out["reads_per_s"] = n / duration
    n, end = 0, time.perf_counter() + duration
    while time.perf_counter() < end:
        vault.put_var("inproc", f"VAR_{n % N_VARS}", secrets.token_hex(32))
        n += 1
    out["writes_per_s"] = n / duration
    storage.close()
    return out


def _client_proc(args: tuple[int, str, str, int, float, int, str]) -> tuple[int, int]:
    port, token, mode, threads, duration, proc_index, env = args
    counts = [0] * threads
    errors = [0] * threads
    start_at = time.time() + 0.5

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        own = f"W_{proc_index}_{i}"
        body = json.dumps({"value": "x" * 64})
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        n = 0
        while time.time() < end:
            if mode == "read":
                conn.request(
                    "GET", f"/environments/{env}/variables/VAR_{n % N_VARS}", headers=headers
                )
            else:
                conn.request(
                    "PUT", f"/environments/{env}/variables/{own}", body=body, headers=headers
                )
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                counts[i] += 1
            else:
                errors[i] += 1
            n += 1
        conn.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(counts), sum(errors)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def over_http(state: Path, database: str | None, args: argparse.Namespace) -> dict[str, float]:
    env = dict(
        os.environ,
        MLTRUST_VAULT_PASSPHRASE=PASSPHRASE,
        # the audit key lives outside the state folder (serve's rule); a throwaway one here
        MLTRUST_AUDIT_KEY=str(state.parent / "audit-key" / "audit.key"),
        PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    storage, _ = init_state(state, database, kdf_log_n=14)
    token, _ = TokenStore(storage).create("*", "admin")
    vault = Vault(storage)
    vault.unseal(vault.derive_kek(passphrase=PASSPHRASE))
    vault.create_env("bench")
    for i in range(N_VARS):
        vault.create_var("bench", f"VAR_{i}", secrets.token_hex(32))
    for p in range(args.procs):
        for t in range(args.threads):
            vault.create_var("bench", f"W_{p}_{t}", "0")
    storage.close()
    log = state.parent / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "mltrust",
        "vault",
        "serve",
        "--state",
        str(state),
        "--port",
        "0",
        "--audit-sync",
        args.audit_sync,
    ]
    if database:
        cmd += ["--database", database]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=fh, env=env)
    try:
        port = 0
        for _ in range(600):
            for line in log.read_text(errors="replace").splitlines():
                if '"vault listening"' in line:
                    port = int(json.loads(line)["port"])
            if port or proc.poll() is not None:
                break
            time.sleep(0.05)
        if not port:
            raise SystemExit(f"server did not start:\n{log.read_text()}")
        out = {}
        for mode in ("read", "write"):
            jobs = [
                (port, token, mode, args.threads, args.duration, p, "bench")
                for p in range(args.procs)
            ]
            cpu0 = cpu_seconds(proc.pid)
            with multiprocessing.get_context("fork").Pool(args.procs) as pool:
                results = pool.map(_client_proc, jobs)
            cpu = cpu_seconds(proc.pid) - cpu0
            ok = sum(r[0] for r in results)
            bad = sum(r[1] for r in results)
            out[f"{mode}s_per_s"] = ok / args.duration
            # load-independent: requests per second of server CPU (one core fully busy)
            out[f"{mode}s_per_cpu_s"] = ok / cpu if cpu > 0 else 0.0
            out[f"{mode}_errors"] = bad
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--audit-sync", choices=["full", "normal"], default="full")
    args = parser.parse_args()
    print(
        f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, "
        f"clients: {args.procs}x{args.threads}, {args.duration:.0f} s, "
        f"audit sync: {args.audit_sync}"
    )
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    for backend in backends:
        tmp = Path(tempfile.mkdtemp(prefix="mltrust-vault-bench-"))
        pg: tuple[str, str] | None = None
        try:
            if backend == "postgresql":
                pg = pg_schema()
                if pg is None:
                    print("postgresql: skipped (no server reachable)")
                    continue
            db = pg[1] if pg else None
            inproc = in_process(tmp / "inproc", db, args.duration)
            if pg:
                drop_schema(*pg)
                pg = pg_schema()
                db = pg[1] if pg else None
            http_figures = over_http(tmp / "http", db, args)
            print(
                f"{backend:10}  in process: {inproc['reads_per_s']:8.0f} reads/s "
                f"{inproc['writes_per_s']:7.0f} writes/s   over HTTP: "
                f"{http_figures['reads_per_s']:6.0f} reads/s "
                f"{http_figures['writes_per_s']:6.0f} writes/s "
                f"(errors {http_figures['read_errors']:.0f}/{http_figures['write_errors']:.0f})"
                f"\n{'':12}per second of server CPU: {http_figures['reads_per_cpu_s']:.0f} reads,"
                f" {http_figures['writes_per_cpu_s']:.0f} writes"
            )
        finally:
            if pg:
                drop_schema(*pg)
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
