"""Serving benchmark: mltrust serve (every security layer on) vs MLServer 1.7, same model, same run.

wrk on loopback, 2 threads, 32 connections, 10 s, POSTing one iris row to a scikit-learn
LogisticRegression saved with joblib.

mltrust runs with: a signed model verified against a pinned key at start (or --allow-unsigned
when signing is unavailable), admission scan, API-key authentication, per-identity and per-model
rate limits (set high so they never trigger, but evaluated on every request), schema validation
with training-data value ranges, the PRADA extraction monitor, and the hash-chained audit log
with a durable commit before every response, each entry MACed and the head signed (Ed25519)
into an anchor outside the repository; connection guards (header size/time, body time,
connection caps) on.

MLServer 1.7.1 (+ mlserver-sklearn) runs in its own venv (.bench/venv-mlserver, created when
missing) with ``parallel_workers: 0`` and no authentication (it has none).

Usage: python benchmarks/serve_bench.py [--duration 10] [--connections 32] [--threads 2]
       [--mltrust-workers N] [--state redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench" / "serve"
MLSERVER_VENV = ROOT / ".bench" / "venv-mlserver"
PY = sys.executable
ROW = [5.1, 3.5, 1.4, 0.2]


def ensure_wrk() -> str | None:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk (apt-get install -y wrk) ...", file=sys.stderr)
        subprocess.run(
            ["apt-get", "install", "-y", "wrk"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return shutil.which("wrk")
    print("wrk is not installed and we are not root: skipping (apt-get install wrk)")
    return None


def ensure_mlserver() -> Path | None:
    exe = MLSERVER_VENV / "bin" / "mlserver"
    if exe.exists():
        return exe
    print(
        "creating .bench/venv-mlserver (mlserver==1.7.1, mlserver-sklearn==1.7.1) ...",
        file=sys.stderr,
    )
    subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=False)
    pip = MLSERVER_VENV / "bin" / "pip"
    rc = subprocess.run(
        [str(pip), "install", "-q", "mlserver==1.7.1", "mlserver-sklearn==1.7.1"], check=False
    ).returncode
    if rc != 0 or not exe.exists():
        print("could not install MLServer: its figures are skipped")
        return None
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not become ready")


def build_model() -> Path:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    BENCH.mkdir(parents=True, exist_ok=True)
    data = load_iris()
    clf = LogisticRegression(max_iter=500).fit(data.data, data.target)
    path = BENCH / "model.joblib"
    joblib.dump(clf, path)
    np.savetxt(BENCH / "train.csv", data.data, delimiter=",")
    return path


def mltrust_repo(model: Path) -> tuple[Path, list[str]]:
    import numpy as np
    import yaml

    repo = BENCH / "mltrust-repo"
    if repo.exists():
        shutil.rmtree(repo)
    # a fresh log each round needs a fresh anchor: the audit key (and the anchor beside it)
    # live outside the repository, and a server refuses a log its anchor says was cut
    audit_keys = BENCH / "audit-key"
    if audit_keys.exists():
        shutil.rmtree(audit_keys)
    folder = repo / "iris"
    folder.mkdir(parents=True)
    shutil.copy(model, folder / "model.joblib")
    train = np.loadtxt(BENCH / "train.csv", delimiter=",")
    settings = {
        "name": "iris",
        "version": "1",
        "runtime": "sklearn",
        "uri": "model.joblib",
        "inputs": [
            {
                "name": "predict",
                "datatype": "FP32",
                "shape": [-1, 4],
                "min": [float(v) for v in train.min(0)],
                "max": [float(v) for v in train.max(0)],
            }
        ],
        "policy": {
            "rate_limit": {
                "identity_rps": 1e6,
                "identity_burst": 1e6,
                "model_rps": 1e6,
                "model_burst": 1e6,
            },
            "extraction": {"enabled": True, "mode": "annotate"},
            "timeout_s": 5,
        },
    }
    (folder / "mltrust-model.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    extra: list[str] = []
    try:
        from mltrust import attest

        prefix = BENCH / "bench-signer"
        for suffix in (".key", ".pub"):
            prefix.with_suffix(suffix).unlink(missing_ok=True)
        keys = attest.generate_keypair(prefix, passphrase=None)
        attest.sign(folder, key=keys.private_path)
        extra = ["--trusted-key", str(keys.public_path)]
    except ImportError:
        print("mltrust.attest unavailable: mltrust runs with --allow-unsigned", file=sys.stderr)
        extra = ["--allow-unsigned"]
    return repo, [*extra, "--audit-key", str(audit_keys / "audit.key")]


def mlserver_repo(model: Path, port: int) -> Path:
    repo = BENCH / "mlserver-repo"
    if repo.exists():
        shutil.rmtree(repo)
    folder = repo / "iris"
    folder.mkdir(parents=True)
    shutil.copy(model, folder / "model.joblib")
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "iris",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    (repo / "settings.json").write_text(
        json.dumps(
            {
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "host": "127.0.0.1",
                "parallel_workers": 0,
                "debug": False,
                "metrics_endpoint": None,
            }
        )
    )
    return repo


def lua_script(path: Path, headers: dict[str, str]) -> Path:
    body = json.dumps(
        {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    )
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNITS[m.group(2)]


def _tree_cpu_seconds(pid: int) -> float:
    """utime+stime of a process and its descendants (Linux /proc), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree = {pid}
    changed = True
    while changed:
        changed = False
        for child, parent in parents.items():
            if parent in tree and child not in tree:
                tree.add(child)
                changed = True
    return sum(cpu.get(p, 0.0) for p in tree)


def run_wrk(
    wrk: str, url: str, script: Path, args: argparse.Namespace, pid: int
) -> dict[str, float]:
    # short warm-up, then the measured run
    subprocess.run(
        [wrk, "-t2", "-c8", "-d2s", "-s", str(script), url],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cpu_before = _tree_cpu_seconds(pid)
    out = subprocess.run(
        [
            wrk,
            f"-t{args.threads}",
            f"-c{args.connections}",
            f"-d{args.duration}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    cpu = _tree_cpu_seconds(pid) - cpu_before
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"\s50%\s+(\S+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50_ms": _ms(p50.group(1)) if p50 else float("nan"),
        "p99_ms": _ms(p99.group(1)) if p99 else float("nan"),
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "socket_errors": 1.0 if errors else 0.0,
        "cpu_us_per_request": cpu / float(total.group(1)) * 1e6 if total else float("nan"),
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_mltrust(wrk: str, model: Path, args: argparse.Namespace) -> dict[str, float]:
    repo, extra = mltrust_repo(model)
    key = subprocess.run(
        [
            PY,
            "-m",
            "mltrust",
            "serve",
            "keys",
            "create",
            "--repo",
            str(repo),
            "--name",
            "bench",
            "--model",
            "iris",
            "--role",
            "infer",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    log = open(BENCH / "mltrust.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "mltrust",
            "serve",
            str(repo),
            "--port",
            str(port),
            "--workers",
            str(args.mltrust_workers),
            *(["--state", args.state] if args.state else []),
            *extra,
        ],
        stdout=log,
        stderr=log,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/v2/health/ready", proc)
        script = lua_script(BENCH / "mltrust.lua", {"Authorization": f"Bearer {key}"})
        result = run_wrk(
            wrk, f"http://127.0.0.1:{port}/v2/models/iris/infer", script, args, proc.pid
        )
    finally:
        stop(proc)
        log.close()
    verify = subprocess.run(
        [PY, "-m", "mltrust", "audit", "verify", str(repo)],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"  mltrust audit verify: exit {verify.returncode}: {verify.stdout.strip()}")
    return result


def bench_mlserver(wrk: str, exe: Path, model: Path, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    repo = mlserver_repo(model, port)
    log = open(BENCH / "mlserver.log", "wb")  # noqa: SIM115
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    env["PATH"] = f"{exe.parent}:{env.get('PATH', '')}"
    proc = subprocess.Popen(
        [str(exe), "start", str(repo)], stdout=log, stderr=log, env=env, cwd=str(repo)
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/v2/models/iris/ready", proc)
        script = lua_script(BENCH / "mlserver.lua", {})
        return run_wrk(wrk, f"http://127.0.0.1:{port}/v2/models/iris/infer", script, args, proc.pid)
    finally:
        stop(proc)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mltrust-workers", type=int, default=1)
    parser.add_argument("--skip-mlserver", action="store_true")
    parser.add_argument(
        "--state",
        default=None,
        help="mltrust's shared state, e.g. redis://127.0.0.1:6379/0 (CPU of the Redis server "
        "itself is not counted in CPU us/req)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    args = parser.parse_args()
    wrk = ensure_wrk()
    if wrk is None:
        return 0
    model = build_model()
    exe = None if args.skip_mlserver else ensure_mlserver()
    names = {"mlserver": "MLServer 1.7.1 (no auth)", "mltrust": "mltrust (all security on)"}
    rounds: dict[str, list[dict[str, float]]] = {k: [] for k in names}
    # alternate the servers so that load from other processes on a shared machine hits both
    for i in range(args.rounds):
        if exe is not None:
            print(f"round {i + 1}: MLServer 1.7.1 ...", file=sys.stderr)
            try:
                rounds["mlserver"].append(bench_mlserver(wrk, exe, model, args))
            except RuntimeError as exc:
                print(f"MLServer failed: {exc} (see .bench/serve/mlserver.log)")
        print(f"round {i + 1}: mltrust serve ...", file=sys.stderr)
        rounds["mltrust"].append(bench_mltrust(wrk, model, args))
    for key, runs in rounds.items():
        for j, r in enumerate(runs):
            print(
                f"  {names[key]:28} round {j + 1}: {r['rps']:8.0f} req/s  p50 "
                f"{r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
            )
    # each server is represented by its median round by throughput (of two: the better one)
    results = {
        names[k]: sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
        for k, runs in rounds.items()
        if runs
    }
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration}s, loopback, "
        f"{os.cpu_count()} CPUs (shared machine: expect noise)"
    )
    print(
        f"{'server':28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU us/req':>10}"
    )
    for name, r in results.items():
        print(
            f"{name:28} {r['rps']:10.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non2xx']:8.0f} "
            f"{r['cpu_us_per_request']:10.0f}"
        )
    print("(each server: its median round by throughput; of an even count, the upper)")
    if len(results) == 2:
        ml, mt = results.values()
        print(
            f"server CPU per request: mltrust {mt['cpu_us_per_request']:.0f} us vs MLServer "
            f"{ml['cpu_us_per_request']:.0f} us "
            f"({ml['cpu_us_per_request'] / mt['cpu_us_per_request']:.2f}x less)"
        )
        print(
            f"\nthroughput ratio mltrust/MLServer: {mt['rps'] / ml['rps']:.2f}x; "
            f"p99 {mt['p99_ms']:.1f} ms vs {ml['p99_ms']:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
