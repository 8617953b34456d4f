"""The audit log's hash chain: tampering of any kind is detected by `mltrust audit verify`."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from mltrust.cli._main import main
from mltrust.serve._audit import AuditLog, canonical, chain_hash, verify_chain

SECRET = b"s" * 32


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / ".mltrust" / "audit.db"
    log = AuditLog(path, secret=SECRET)
    for i in range(20):
        log.append_sync({"i": i, "identity": "key:x:alice", "status": 200})
    log.close()
    (tmp_path / ".mltrust" / "secret").write_bytes(SECRET)
    return path


def _exec(path, sql, *args):
    db = sqlite3.connect(path)
    with db:
        db.execute(sql, args)
    db.close()


def test_intact_chain_verifies(log_path):
    report = verify_chain(log_path, secret=SECRET)
    assert report.ok and report.entries == 20 and report.head_seq == 20
    assert main(["audit", "verify", str(log_path)]) == 0


def test_edited_entry_detected(log_path):
    _exec(log_path, "UPDATE audit SET entry = replace(entry, 'alice', 'mallory') WHERE seq = 7")
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and any("seq 7" in p and "edited" in p for p in report.problems)
    assert main(["audit", "verify", str(log_path)]) == 1


def test_edit_with_recomputed_hash_breaks_next_link(log_path):
    db = sqlite3.connect(log_path)
    text, prev = db.execute("SELECT entry, prev_hash FROM audit WHERE seq = 7").fetchone()
    forged = text.replace("alice", "mallory")
    with db:
        db.execute(
            "UPDATE audit SET entry = ?, entry_hash = ? WHERE seq = 7",
            (forged, chain_hash(prev, forged)),
        )
    db.close()
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and any("seq 8" in p for p in report.problems)


def test_deleted_entry_detected(log_path):
    _exec(log_path, "DELETE FROM audit WHERE seq = 5")
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and any("seq 6" in p for p in report.problems)


def test_inserted_entry_detected(log_path):
    db = sqlite3.connect(log_path)
    with db:
        db.execute("UPDATE audit SET seq = seq + 1000 WHERE seq > 10")
        prev = db.execute("SELECT entry_hash FROM audit WHERE seq = 10").fetchone()[0]
        text = canonical({"i": 99, "identity": "forged", "seq": 11, "prev": prev})
        db.execute("INSERT INTO audit VALUES (11, ?, ?, ?)", (text, prev, chain_hash(prev, text)))
        db.execute("UPDATE audit SET seq = seq - 999 WHERE seq > 1000")
    db.close()
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and report.entries == 21


def test_reordered_entries_detected(log_path):
    db = sqlite3.connect(log_path)
    with db:
        db.execute("UPDATE audit SET seq = -1 WHERE seq = 3")
        db.execute("UPDATE audit SET seq = 3 WHERE seq = 4")
        db.execute("UPDATE audit SET seq = 4 WHERE seq = -1")
    db.close()
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and any("reordered" in p or "prev_hash" in p for p in report.problems)


def test_truncated_tail_detected_by_head(log_path):
    _exec(log_path, "DELETE FROM audit WHERE seq > 15")
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and any("removed from the tail" in p for p in report.problems)
    assert main(["audit", "verify", str(log_path.parent.parent)]) == 1


def test_forged_head_detected(log_path):
    head = log_path.with_name("audit.db.head")
    doc = json.loads(head.read_text())
    _exec(log_path, "DELETE FROM audit WHERE seq > 15")
    db = sqlite3.connect(log_path)
    doc["seq"], doc["hash"] = (
        15,
        db.execute("SELECT entry_hash FROM audit WHERE seq = 15").fetchone()[0],
    )
    db.close()
    head.write_text(json.dumps(doc))  # the attacker cannot recompute the MAC without the secret
    report = verify_chain(log_path, secret=SECRET)
    assert not report.ok and any("MAC" in p for p in report.problems)


def test_concurrent_writers_extend_one_chain(tmp_path):
    path = tmp_path / "audit.db"
    logs = [AuditLog(path, secret=SECRET) for _ in range(3)]

    def work(log, n):
        for i in range(n):
            log.append_sync({"writer": id(log), "i": i})

    threads = [threading.Thread(target=work, args=(log, 40)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    report = verify_chain(path, secret=SECRET)
    assert report.ok, report.problems
    assert report.entries == 120 and report.head_seq == 120


def test_tail_and_export(log_path, capsys):
    assert main(["audit", "tail", str(log_path), "-n", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [18, 19, 20]
    out = log_path.parent / "export.csv"
    assert main(["audit", "export", str(log_path), "-f", "csv", "-o", str(out)]) == 0
    assert len(out.read_text().strip().splitlines()) == 21


def test_closed_log_refuses_appends(tmp_path):
    log = AuditLog(tmp_path / "a.db")
    log.close()
    with pytest.raises(RuntimeError):
        log.append_sync({"x": 1})
