"""The audit log in a real PostgreSQL server: one chain for every replica, the same MACs and
signed anchor as SQLite (the same code), tampering caught, nothing acknowledged lost on kill -9.

Marked ``services`` (PostgreSQL on 127.0.0.1:5432, trust auth, user postgres; scripts/
services.sh starts it). Each test works in a database of its own. With ``CI=true`` an
unreachable server fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import threading
import time

import httpx
import pytest

from _net_helpers import free_port, start_serve
from mltrust.cli._main import main
from mltrust.store._audit import AuditLog, AuditTampered, load_audit_key, verify_chain
from test_serve_kill import _cli_key
from test_serve_support import ROW, add_onnx_model, infer_body

psycopg = pytest.importorskip("psycopg")

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url():
    """A fresh database for this test (dropped afterwards)."""
    try:
        admin = psycopg.connect(ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 unreachable (CI=true): {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 unreachable: {exc}")
    name = "mlt_" + secrets.token_hex(6)
    admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def _sql(url, query, params=()):
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def key(tmp_path):
    return load_audit_key(tmp_path / "keys" / "audit.key", create=True)


def test_concurrent_appenders_on_two_replicas_extend_one_chain(pg_url, key, tmp_path):
    # two writers as two replicas would be: separate connections, the same key, each its anchor
    logs = [
        AuditLog(pg_url, key=key, anchor=tmp_path / f"anchor-{i}.json", sync="normal")
        for i in range(2)
    ]
    try:

        def write(log, n):
            for i in range(60):
                log.append_sync({"who": n, "i": i})

        threads = [threading.Thread(target=write, args=(log, n)) for n, log in enumerate(logs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for log in logs:
            log.close()
    seqs = [s for (s,) in _sql(pg_url, "SELECT seq FROM audit ORDER BY seq")]
    assert seqs == list(range(1, 121))
    for i in range(2):
        report = verify_chain(pg_url, key=key, anchor=tmp_path / f"anchor-{i}.json")
        assert report.ok and report.entries == 120 and report.macs_checked, report.problems


def test_an_edited_row_breaks_verify_and_stops_appends(pg_url, key, tmp_path):
    anchor = tmp_path / "anchor.json"
    log = AuditLog(pg_url, key=key, anchor=anchor)
    for i in range(3):
        log.append_sync({"i": i, "decision": "deny"})
    # whoever can write the database rewrites entry 2 and re-chains its hash (no key: no MAC)
    text = _sql(pg_url, "SELECT entry FROM audit WHERE seq = 2")[0][0]
    forged = text.replace('"deny"', '"allow"')
    from mltrust.store._audit import chain_hash

    prev = _sql(pg_url, "SELECT prev_hash FROM audit WHERE seq = 2")[0][0]
    _sql(
        pg_url,
        "UPDATE audit SET entry = %s, entry_hash = %s WHERE seq = 2",
        (forged, chain_hash(prev, forged)),
    )
    report = verify_chain(pg_url, key=key, anchor=anchor)
    assert not report.ok and any("seq 2" in p for p in report.problems)
    # truncating the tail is caught by the anchor
    _sql(pg_url, "DELETE FROM audit WHERE seq = 3")
    with pytest.raises(AuditTampered):
        log.append_sync({"i": 9})
    log.close()
    assert not verify_chain(pg_url, key=key, anchor=anchor).ok


def test_two_servers_on_one_postgres_log_every_acknowledged_request_kill_9(
    pg_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MLTRUST_AUDIT_KEY", str(tmp_path / "audit-keys" / "audit.key"))
    repo = tmp_path / "repo"
    add_onnx_model(repo)
    token = _cli_key(repo, capsys)
    ports = [free_port(), free_port()]
    procs = [start_serve(repo, p, "--audit-db", pg_url) for p in ports]
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(port: int, n: int) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            timeout=5,
            headers={"Authorization": f"Bearer {token}"},
        ) as c:
            for i in range(2000):  # bounded
                if stop.is_set():
                    return
                rid = f"{port}-{n}-{i}"
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

    threads = [threading.Thread(target=client, args=(p, n)) for p in ports for n in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(2.0)
        os.kill(procs[0].pid, signal.SIGKILL)  # one replica dies mid-append
        procs[0].wait(timeout=10)
        time.sleep(1.0)  # the other keeps appending to the same chain
        stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
    served = {rid.split("-")[0] for rid in acked}
    assert served == {str(p) for p in ports}, "both replicas must have answered"
    assert len(acked) > 20
    assert main(["audit", "verify", pg_url]) == 0
    assert "intact" in capsys.readouterr().out
    checkpoint = tmp_path / "checkpoint.json"
    assert main(["audit", "checkpoint", "export", pg_url, "-o", str(checkpoint)]) == 0
    assert main(["audit", "verify", pg_url, "--no-anchor", "--checkpoint", str(checkpoint)]) == 0
    logged = {json.loads(t).get("request_id") for (t,) in _sql(pg_url, "SELECT entry FROM audit")}
    missing = [rid for rid in acked if rid not in logged]
    assert not missing, f"{len(missing)} acknowledged requests missing from the audit log"
