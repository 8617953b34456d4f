"""Attacks and failures against a running vault, on SQLite and PostgreSQL:

* plaintext at rest: planted values must not appear anywhere in the state folder (database,
  its WAL, the audit log and its WAL, backups), the server log or the database rows;
* lost updates: two writers racing with check-and-set must not overwrite each other;
* kill -9 during writes: no torn value, every acknowledged write survives, the audit chain
  still verifies.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from _vault_helpers import (  # noqa: F401 - fixtures
    Server,
    cli_env,
    database,
    init_vault,
    mltrust,
    new_token,
    pg_url,
    verify_audit,
)
from mltrust.vault._client import VaultClient, VaultHTTPError


def _all_bytes(folder: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()]


def _pg_rows_text(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        parts = []
        for table in (
            "vault_meta",
            "vault_environments",
            "vault_variables",
            "vault_versions",
            "vault_tokens",
        ):
            rows = conn.execute(f"SELECT t::text FROM {table} t").fetchall()
            parts.extend(r[0] for r in rows)
    return "\n".join(parts)


def test_no_plaintext_at_rest_in_logs_or_audit(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    token = new_token(state, database, "*", "admin")
    probe = secrets.token_hex(8)
    planted = [
        "PLANTED-" + secrets.token_hex(16),
        "PLANTED-multi\nline-" + secrets.token_hex(8),
        "PLANTED-ünïcødé-" + secrets.token_hex(8),
    ]
    srv = Server(state, database)
    try:
        c = VaultClient(srv.addr, token)
        c.env_create("prod")
        c.set("prod", "NAMEPROBE_" + probe, "x")
        for i, value in enumerate(planted):
            c.set("prod", f"V{i}", value)
            c.set("prod", f"V{i}", value + "-v2")
            assert c.get("prod", f"V{i}", 1)["value"] == value
        assert set(c.values("prod").values()) == {"x"} | {v + "-v2" for v in planted}
        c.rollback("prod", "V0", 1)
        c.delete("prod", "V1")
        c.undelete("prod", "V1", [2])
        # error paths that carry a value in the request must not echo it
        for bad in (
            {"name": "BAD-NAME", "value": planted[0]},
            {"name": "V0", "value": planted[0]},  # name taken
            {"name": "BIG", "value": planted[0] * 5000},  # over the value limit
        ):
            with pytest.raises(VaultHTTPError) as e:
                c.request("POST", "/environments/prod/variables", bad)
            assert planted[0] not in str(e.value)
        with pytest.raises(VaultHTTPError):
            c.request("PUT", "/environments/prod/variables/V0", {"value": planted[0], "cas": 99})
        # key rotation and a backup while the server runs
        db_args = ["--database", database] if database else []
        env = cli_env(MLTRUST_VAULT_NEW_PASSPHRASE="a brand new passphrase")
        mltrust("vault", "rotate", "--state", str(state), *db_args, env=env)
        mltrust(
            "vault", "backup", "--state", str(state), *db_args, "-o", str(state / "backup.json")
        )
        assert c.get("prod", "V2")["value"] == planted[2] + "-v2"  # cached data key still works
        # while running: the WAL files are there and hold the latest writes
        snapshots = _all_bytes(state)
        assert any(p.name.endswith("-wal") for p, _ in snapshots)
    finally:
        srv.stop()
    snapshots += _all_bytes(state)
    snapshots.append((srv.log_path, srv.log_path.read_bytes()))
    if database:
        snapshots.append((Path("postgresql rows"), _pg_rows_text(database).encode()))
    else:
        assert any(p.name == "vault.db" for p, _ in snapshots)
    # the search itself works: a name (metadata, stored in clear) is found the same way
    assert any(b"NAMEPROBE_" + probe.encode() in data for _, data in snapshots)
    needles = [n.encode() for v in planted for n in (v, v.split("\n")[-1], v[:24])]
    for path, data in snapshots:
        for needle in needles:
            assert needle not in data, f"plaintext found in {path}"
    # the values are all still there, under the new KEK only
    srv = Server(state, database, env=cli_env(MLTRUST_VAULT_PASSPHRASE="a brand new passphrase"))
    try:
        assert VaultClient(srv.addr, token).get("prod", "V0")["value"] == planted[0]
    finally:
        srv.stop()


def test_two_writers_with_cas_lose_no_update(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    token = new_token(state, database, "*", "write")
    srv = Server(state, database)
    rounds = 20
    conflicts = [0]
    errors: list[BaseException] = []
    try:
        VaultClient(srv.addr, new_token(state, database, "*", "admin")).env_create("e")
        c = VaultClient(srv.addr, token)
        c.set("e", "COUNTER", "0", cas=0)

        def writer() -> None:
            client = VaultClient(srv.addr, token)
            try:
                for _ in range(rounds):
                    while True:
                        doc = client.get("e", "COUNTER")
                        try:
                            client.set(
                                "e", "COUNTER", str(int(doc["value"]) + 1), cas=doc["version"]
                            )
                            break
                        except VaultHTTPError as exc:
                            if exc.status != 409:
                                raise
                            conflicts[0] += 1
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        doc = c.get("e", "COUNTER")
        assert doc["value"] == str(2 * rounds)
        assert doc["version"] == 2 * rounds + 1
    finally:
        srv.stop()


def test_kill_9_during_writes_no_torn_value_audit_verifies(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    token = new_token(state, database, "*", "admin")
    srv = Server(state, database)
    acked: dict[str, list[tuple[int, str]]] = {}
    stop = threading.Event()
    c = VaultClient(srv.addr, token, timeout=10)
    c.env_create("crash")
    pad = secrets.token_hex(4096)  # 8 KiB values: several pages each

    def writer(name: str) -> None:
        client = VaultClient(srv.addr, token, timeout=10)
        mine = acked.setdefault(name, [])
        n = 0
        while not stop.is_set():
            value = f"{name}-{n}-{pad}"
            try:
                doc = client.set("crash", name, value)
            except Exception:
                return
            mine.append((int(doc["version"]), value))
            n += 1

    threads = [threading.Thread(target=writer, args=(f"W{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    while sum(len(v) for v in acked.values()) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    srv.kill9()  # mid-write: the writers are still going
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert sum(len(v) for v in acked.values()) >= 40

    report = verify_audit(state)
    assert report.ok, report.problems
    audit_text = mltrust("audit", "verify", str(state)).stdout
    assert "intact" in audit_text

    srv = Server(state, database)
    try:
        c = VaultClient(srv.addr, token)
        for name, writes in acked.items():
            if not writes:
                continue
            hist = c.history("crash", name)
            live = [v["version"] for v in hist["versions"]]
            for version in live:  # every kept version decrypts: nothing torn
                value = c.get("crash", name, version)["value"]
                assert value.startswith(f"{name}-") and value.endswith(pad)
            for version, value in writes:  # every acknowledged write that is still kept
                if version in live:
                    assert c.get("crash", name, version)["value"] == value
            assert hist["current_version"] >= writes[-1][0]
        report = verify_audit(state)
        assert report.ok, report.problems
        n_writes = sum(len(v) for v in acked.values())
        assert report.entries >= n_writes  # every acknowledged write was audited first
    finally:
        srv.stop()
