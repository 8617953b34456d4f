"""A real uvicorn process: CLI smoke test, graceful shutdown, and kill -9 under load losing
nothing that was acknowledged."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from _net_helpers import free_port, self_signed_cert, start_serve
from mltrust.cli._main import main
from test_serve_support import ROW, add_onnx_model, infer_body

pytestmark = pytest.mark.timeout(120)


def _cli_key(repo, capsys) -> str:
    assert (
        main(
            [
                "serve",
                "keys",
                "create",
                "--repo",
                str(repo),
                "--name",
                "load",
                "--model",
                "iris-onnx",
                "--role",
                "infer",
            ]
        )
        == 0
    )
    return capsys.readouterr().out.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    # the server and `audit verify` find the audit key here (outside the repository)
    monkeypatch.setenv("MLTRUST_AUDIT_KEY", str(tmp_path / "audit-keys" / "audit.key"))
    repo = tmp_path / "repo"
    add_onnx_model(repo)
    return repo


def test_cli_smoke_and_graceful_shutdown(repo, capsys):
    key = _cli_key(repo, capsys)
    assert key.startswith("mlt_")
    assert main(["serve", "keys", "list", "--repo", str(repo)]) == 0
    assert "load" in capsys.readouterr().out
    port = free_port()
    proc = start_serve(repo, port)
    try:
        base = f"http://127.0.0.1:{port}"
        h = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{base}/v2/models/iris-onnx/infer",
            json=infer_body([ROW], name="X", datatype="FP32", id="smoke"),
            headers=h,
        )
        assert r.status_code == 200 and r.json()["id"] == "smoke"
        assert httpx.get(f"{base}/v2/models/iris-onnx").status_code == 401
        assert "server" not in r.headers  # no version banner
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    logs = (repo.parent / "server.log").read_text()
    # uvicorn re-raises SIGTERM after its graceful shutdown so callers see the signal
    assert proc.returncode in (0, -signal.SIGTERM), logs
    assert "allow-unsigned" in logs and "audit log flushed" in logs
    first = json.loads(logs.splitlines()[0])
    assert first["level"] == "warning"
    assert main(["audit", "verify", str(repo)]) == 0
    assert main(["serve", "keys", "revoke", "--repo", str(repo), "load"]) == 0


def test_kill_9_under_load_loses_no_acknowledged_request(repo, capsys):
    key = _cli_key(repo, capsys)
    port = free_port()
    proc = start_serve(repo, port)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=5,
            headers={"Authorization": f"Bearer {key}"},
        ) as c:
            i = 0
            while not stop.is_set():
                rid = f"c{n}-{i}"
                i += 1
                try:
                    r = c.post(
                        "/v2/models/iris-onnx/infer",
                        json=infer_body([ROW], name="X", datatype="FP32", id=rid),
                    )
                except httpx.HTTPError:
                    return
                if r.status_code == 200 and r.json().get("id") == rid:
                    with lock:
                        acked.append(rid)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    assert len(acked) > 20, "the load loop acknowledged too few requests to mean anything"
    assert main(["audit", "verify", str(repo)]) == 0
    db = sqlite3.connect(repo / ".mltrust" / "audit.db")
    logged = {json.loads(t).get("request_id") for (t,) in db.execute("SELECT entry FROM audit")}
    db.close()
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged requests missing from the audit log"


@pytest.mark.slow  # two worker processes each import and admit (~15 s here); the chain logic
# itself is covered fast by test_audit_chain.py::test_concurrent_writers_extend_one_chain
def test_two_workers_extend_one_valid_chain(repo, capsys):
    key = _cli_key(repo, capsys)
    port = free_port()
    proc = start_serve(repo, port, "--workers", "2")
    acked: list[str] = []

    def client(n: int) -> None:
        for i in range(15):
            # a fresh connection each time so the kernel spreads them over both workers
            r = httpx.post(
                f"http://127.0.0.1:{port}/v2/models/iris-onnx/infer",
                json=infer_body([ROW], name="X", datatype="FP32", id=f"w{n}-{i}"),
                headers={"Authorization": f"Bearer {key}"},
                timeout=10,
            )
            if r.status_code == 200:
                acked.append(f"w{n}-{i}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert len(acked) == 60
    assert main(["audit", "verify", str(repo)]) == 0
    db = sqlite3.connect(repo / ".mltrust" / "audit.db")
    entries = [json.loads(t) for (t,) in db.execute("SELECT entry FROM audit")]
    db.close()
    assert {e.get("request_id") for e in entries} >= set(acked)
    assert len({e["pid"] for e in entries}) == 2, "both workers should have served requests"


def test_tls_through_uvicorn_options(repo, tmp_path):
    cert, key = self_signed_cert(tmp_path)
    port = free_port()
    env = {**os.environ}
    log = open(tmp_path / "tls.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mltrust",
            "serve",
            str(repo),
            "--port",
            str(port),
            "--allow-unsigned",
            "--ssl-certfile",
            str(cert),
            "--ssl-keyfile",
            str(key),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(
                    f"https://127.0.0.1:{port}/v2/health/live", verify=str(cert), timeout=1
                )
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert r.status_code == 200 and r.json() == {"live": True}
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
