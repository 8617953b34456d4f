"""The audit log cannot be rewritten by whoever can write the state folder.

The attacker here holds the database (and, where said, the anchor file) but not the audit key,
which lives outside the state folder. Every attack is done with plain sqlite3 and file edits,
re-chaining hashes exactly as the log computes them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from mltrust.cli._main import main
from mltrust.errors import ConfigError
from mltrust.store._audit import (
    AuditLog,
    AuditTampered,
    canonical,
    chain_hash,
    load_audit_key,
    verify_chain,
)


class Log:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.db = root / "repo" / ".mltrust" / "audit.db"
        self.key_path = root / "keys" / "audit.key"
        self.key = load_audit_key(self.key_path, create=True)
        self.anchor = root / "keys" / "anchor.json"

    def open(self) -> AuditLog:
        return AuditLog(self.db, key=self.key, anchor=self.anchor)

    def verify(self, **kw):
        return verify_chain(self.db, key=self.key, anchor=self.anchor, **kw)

    def cli(self, *extra: str) -> int:
        return main(
            [
                "audit",
                "verify",
                str(self.db),
                "--key",
                str(self.key_path),
                "--anchor",
                str(self.anchor),
                *extra,
            ]
        )


@pytest.fixture
def log(tmp_path):
    lg = Log(tmp_path)
    audit = lg.open()
    for i in range(20):
        audit.append_sync({"i": i, "identity": "key:x:alice", "status": 200})
    audit.close()
    return lg


def _exec(path, sql, *args):
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, args)
    db.close()


def _rechain_from(path, start, edit):
    """Rewrite entry ``start`` with ``edit`` and recompute every later hash (no key needed)."""
    db = sqlite3.connect(path)
    rows = db.execute(
        "SELECT seq, entry, prev_hash FROM audit WHERE seq >= ? ORDER BY seq", (start,)
    ).fetchall()
    prev = rows[0][2]
    with db:
        for seq, text, _ in rows:
            doc = json.loads(text)
            if seq == start:
                doc = edit(doc)
            doc["prev"] = prev
            new = canonical(doc)
            digest = chain_hash(prev, new)
            db.execute(
                "UPDATE audit SET entry = ?, prev_hash = ?, entry_hash = ? WHERE seq = ?",
                (new, prev, digest, seq),
            )
            prev = digest
    db.close()


def test_intact_chain_verifies(log):
    report = log.verify()
    assert report.ok and report.entries == 20 and report.anchor_seq == 20 and report.macs_checked
    assert log.cli() == 0


def test_edited_entry_detected(log):
    _exec(log.db, "UPDATE audit SET entry = replace(entry, 'alice', 'mallory') WHERE seq = 7")
    report = log.verify()
    assert not report.ok and any("seq 7" in p and "edited" in p for p in report.problems)
    assert log.cli() == 1


def test_full_rewrite_with_rechaining_detected(log):
    _rechain_from(log.db, 3, lambda d: {**d, "identity": "key:x:mallory"})
    report = log.verify()
    assert not report.ok
    assert any("seq 3" in p and "MAC" in p for p in report.problems)
    assert any("differs from the anchor" in p for p in report.problems)
    with pytest.raises(AuditTampered):
        log.open()  # the server refuses to start on it


def test_rewrite_with_the_public_key_only_still_detected(log, tmp_path):
    pub = tmp_path / "audit.pub"
    pub.write_text(log.key.public_pem())
    _rechain_from(log.db, 3, lambda d: {**d, "identity": "key:x:mallory"})
    report = verify_chain(log.db, key=load_audit_key(pub), anchor=log.anchor)
    assert not report.macs_checked and not report.ok
    assert any("differs from the anchor" in p for p in report.problems)


def test_deleted_entry_detected(log):
    _exec(log.db, "DELETE FROM audit WHERE seq = 5")
    report = log.verify()
    assert not report.ok and any("seq 6" in p for p in report.problems)


def test_inserted_entry_detected(log):
    db = sqlite3.connect(log.db)
    with db:
        db.execute("UPDATE audit SET seq = seq + 1000 WHERE seq > 10")
        prev = db.execute("SELECT entry_hash FROM audit WHERE seq = 10").fetchone()[0]
        text = canonical({"i": 99, "identity": "forged", "seq": 11, "prev": prev})
        db.execute(
            "INSERT INTO audit VALUES (11, ?, ?, ?, 'f' || ?)",
            (text, prev, chain_hash(prev, text), "0" * 63),
        )
        db.execute("UPDATE audit SET seq = seq - 999 WHERE seq > 1000")
    db.close()
    report = log.verify()
    assert not report.ok and report.entries == 21


def test_reordered_entries_detected(log):
    db = sqlite3.connect(log.db)
    with db:
        db.execute("UPDATE audit SET seq = -1 WHERE seq = 3")
        db.execute("UPDATE audit SET seq = 3 WHERE seq = 4")
        db.execute("UPDATE audit SET seq = 4 WHERE seq = -1")
    db.close()
    report = log.verify()
    assert not report.ok and any("reordered" in p or "prev_hash" in p for p in report.problems)


def test_cut_tail_detected_and_server_refuses(log):
    _exec(log.db, "DELETE FROM audit WHERE seq > 15")
    report = log.verify()
    assert not report.ok and any("removed from the tail" in p for p in report.problems)
    assert log.cli() == 1
    with pytest.raises(AuditTampered, match="truncated or rewritten"):
        log.open()


def test_emptied_table_detected_and_server_refuses(log):
    _exec(log.db, "DELETE FROM audit")
    report = log.verify()
    assert not report.ok and any("removed from the tail" in p for p in report.problems)
    with pytest.raises(AuditTampered):
        log.open()


def test_replaced_database_detected(log):
    log.db.unlink()
    for suffix in ("-wal", "-shm"):
        log.db.with_name(log.db.name + suffix).unlink(missing_ok=True)
    with pytest.raises(AuditTampered):
        log.open()  # a fresh, empty log where the anchor names seq 20


def test_deleted_anchor_detected_and_server_refuses(log):
    log.anchor.unlink()
    report = log.verify()
    assert not report.ok and any("missing" in p for p in report.problems)
    assert log.cli() == 1
    with pytest.raises(AuditTampered, match=r"anchor .* is missing"):
        log.open()


def test_forged_anchor_detected(log):
    doc = json.loads(log.anchor.read_text())
    _exec(log.db, "DELETE FROM audit WHERE seq > 15")
    db = sqlite3.connect(log.db)
    doc["seq"], doc["hash"] = (
        15,
        db.execute("SELECT entry_hash FROM audit WHERE seq = 15").fetchone()[0],
    )
    db.close()
    log.anchor.write_text(json.dumps(doc))  # no key: the signature cannot be recomputed
    report = log.verify()
    assert not report.ok and any("signature" in p for p in report.problems)
    with pytest.raises(AuditTampered, match="signature"):
        log.open()


def test_appended_forged_entry_detected_and_not_blessed(log):
    db = sqlite3.connect(log.db)
    prev = db.execute("SELECT entry_hash FROM audit WHERE seq = 20").fetchone()[0]
    text = canonical({"identity": "key:x:alice", "status": 200, "seq": 21, "prev": prev})
    with db:
        db.execute(
            "INSERT INTO audit VALUES (21, ?, ?, ?, ?)",
            (text, prev, chain_hash(prev, text), "a" * 64),
        )
    db.close()
    assert not log.verify().ok
    with pytest.raises(AuditTampered, match="entry 21"):
        log.open()


def test_live_rewrite_then_append_is_refused(log):
    """A running writer must not sign a chain rewritten under it."""
    audit = log.open()
    try:
        audit.append_sync({"i": "before"})
        _rechain_from(log.db, 2, lambda d: {**d, "identity": "key:x:mallory"})
        with pytest.raises(AuditTampered):
            audit.append_sync({"i": "after"})
    finally:
        audit.close()
    assert json.loads(log.anchor.read_text())["seq"] == 21  # not moved onto the forgery
    assert not log.verify().ok


def test_rollback_of_log_and_anchor_caught_by_external_checkpoint(log, tmp_path):
    old_db = log.db.read_bytes()
    old_anchor = log.anchor.read_bytes()
    audit = log.open()
    for i in range(5):
        audit.append_sync({"i": f"later-{i}"})
    audit.close()
    out = tmp_path / "elsewhere" / "checkpoint.json"
    out.parent.mkdir()
    assert (
        main(
            [
                "audit",
                "checkpoint",
                "export",
                str(log.db),
                "--key",
                str(log.key_path),
                "--anchor",
                str(log.anchor),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads(out.read_text())["anchor"]["seq"] == 25
    for suffix in ("-wal", "-shm"):
        log.db.with_name(log.db.name + suffix).unlink(missing_ok=True)
    log.db.write_bytes(old_db)  # the attacker restores an older consistent pair
    log.anchor.write_bytes(old_anchor)
    assert log.verify().ok  # the anchor alone cannot tell
    report = log.verify(checkpoint=json.loads(out.read_text())["anchor"])
    assert not report.ok and any("checkpoint" in p for p in report.problems)
    assert log.cli("--checkpoint", str(out)) == 1


def test_verify_on_another_host_with_public_key_and_checkpoint(log, tmp_path):
    out = tmp_path / "cp.json"
    args = ["--key", str(log.key_path), "--anchor", str(log.anchor), "-o", str(out)]
    assert main(["audit", "checkpoint", "export", str(log.db), *args]) == 0
    pub = tmp_path / "audit.pub"
    pub.write_text(json.loads(out.read_text())["public_key"])
    base = ["audit", "verify", str(log.db), "--key", str(pub), "--no-anchor"]
    assert main([*base, "--checkpoint", str(out)]) == 0
    _exec(log.db, "DELETE FROM audit WHERE seq > 10")
    assert main([*base, "--checkpoint", str(out)]) == 1


def test_checkpoint_of_a_tampered_log_is_refused(log, tmp_path):
    _exec(log.db, "DELETE FROM audit WHERE seq > 15")
    out = tmp_path / "cp.json"
    args = ["--key", str(log.key_path), "--anchor", str(log.anchor), "-o", str(out)]
    assert main(["audit", "checkpoint", "export", str(log.db), *args]) == 2
    assert not out.exists()


def test_key_inside_the_state_folder_refused(tmp_path):
    state = tmp_path / "repo" / ".mltrust"
    with pytest.raises(ConfigError, match="outside"):
        load_audit_key(state / "audit.key", create=True, forbidden=(state,))


def test_concurrent_writers_extend_one_chain(tmp_path):
    lg = Log(tmp_path)
    logs = [lg.open() for _ in range(3)]

    def work(audit, n):
        for i in range(n):
            audit.append_sync({"writer": id(audit), "i": i})

    threads = [threading.Thread(target=work, args=(a, 40)) for a in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a in logs:
        a.close()
    report = lg.verify()
    assert report.ok, report.problems
    assert report.entries == 120 and report.anchor_seq == 120


def test_tail_and_export(log, capsys):
    assert main(["audit", "tail", str(log.db), "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [18, 19, 20]
    out = log.db.parent / "export.csv"
    assert main(["audit", "export", str(log.db), "-f", "csv", "-o", str(out)]) == 0
    assert len(out.read_text().strip().splitlines()) == 21


def test_csv_export_neutralises_formula_injection(tmp_path):
    import csv

    lg = Log(tmp_path)
    audit = lg.open()
    payloads = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "plain"]
    for p in payloads:
        audit.append_sync({"identity": "key:x:alice", "request_id": p, "status": 200})
    audit.close()
    out = tmp_path / "export.csv"
    assert main(["audit", "export", str(lg.db), "-f", "csv", "-o", str(out)]) == 0
    with open(out, newline="") as fh:
        ids = [row["request_id"] for row in csv.DictReader(fh)]
    assert ids == ["'" + p for p in payloads[:-1]] + ["plain"]
    assert not any(i.startswith(("=", "+", "-", "@", "\t")) for i in ids)


def test_closed_log_refuses_appends(tmp_path):
    audit = Log(tmp_path).open()
    audit.close()
    with pytest.raises(RuntimeError):
        audit.append_sync({"x": 1})


def test_live_server_refuses_to_answer_over_a_rewritten_log(tmp_path):
    """Against a running server: rewrite the log and re-chain it, then send a request."""
    import httpx

    from test_serve_stalls import Live
    from test_serve_support import ROW, infer_body

    live = Live(tmp_path)
    try:
        with httpx.Client(base_url=live.base, timeout=10) as c:
            for _ in range(3):
                r = c.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=live.key)
                assert r.status_code == 200
            db = live.repo / ".mltrust" / "audit.db"
            _rechain_from(db, 1, lambda d: {**d, "identity": "key:x:mallory"})
            r = c.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=live.key)
            assert r.status_code == 503  # no durable, anchored audit entry: no answer
            assert c.get("/v2/health/ready").status_code == 503
    finally:
        live.stop()
    key = load_audit_key(tmp_path / "audit-keys" / "audit.key")
    from mltrust.serve._app import audit_locations

    _, _, anchor, _ = audit_locations(live.app.config)
    report = verify_chain(live.repo / ".mltrust" / "audit.db", key=key, anchor=anchor)
    assert not report.ok and any("differs from the anchor" in p for p in report.problems)


def test_folder_names_with_uri_characters(tmp_path):
    lg = Log(tmp_path / "we?ird#dir%20")
    audit = lg.open()
    audit.append_sync({"i": 1})
    audit.close()
    assert lg.verify().ok and lg.verify().entries == 1
    assert main(["audit", "tail", str(lg.db), "-n", "1"]) == 0


def test_server_refuses_an_audit_key_or_anchor_inside_the_repository(tmp_path):
    from mltrust.serve import ServerConfig, create_app

    repo = tmp_path / "repo"
    repo.mkdir()
    for where in (repo / "audit.key", repo / ".mltrust" / "audit.key"):
        with pytest.raises(ConfigError, match="outside"):
            create_app(ServerConfig(repo=repo, allow_unsigned=True, audit_key=where))
    with pytest.raises(ConfigError, match="outside"):
        create_app(
            ServerConfig(
                repo=repo,
                allow_unsigned=True,
                audit_key=tmp_path / "keys" / "audit.key",
                audit_anchor=repo / ".mltrust" / "anchor.json",
            )
        )


def test_audit_key_readable_by_others_refused(tmp_path):
    path = tmp_path / "keys" / "audit.key"
    load_audit_key(path, create=True)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_audit_key(path)
