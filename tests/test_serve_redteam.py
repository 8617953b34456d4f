"""Regression tests for the red-team findings against `mltrust serve` (one per attack).

Each test replays its attack with the real server (ASGI or live uvicorn on 127.0.0.1), real
sockets, real sqlite3 and the real CLI, and fails if the attack works again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator

import pytest

from mltrust.cli._main import main
from mltrust.serve._audit import AuditTampered, load_audit_key, verify_chain
from test_serve_support import ROW, add_python_model, infer_body, make_server, new_key, plugin_dir


@pytest.fixture
def served(tmp_path) -> Iterator[tuple]:
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    plugins = plugin_dir(tmp_path)
    client, app = make_server(repo, plugin_path=plugins)
    key = new_key(repo, "alice", [("calc", "infer")])
    app.keys.refresh(max_age=0)  # type: ignore[union-attr]
    yield repo, plugins, client, app, key
    if not client.loop.is_closed():
        client.close()


def _audit_cli(repo, key_path) -> int:
    return main(["audit", "verify", str(repo), "--key", str(key_path)])


# -- 01: audit.db swapped for a symlink to an empty log -----------------------------------------
def test_01_audit_db_symlink_swap_refused_by_verify_and_server(served):
    repo, plugins, client, _app, key = served
    for _ in range(5):
        assert client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).is_success
    client.close()
    key_path = repo.parent / "audit-keys" / "audit.key"
    assert _audit_cli(repo, key_path) == 0
    state = repo / ".mltrust"
    for f in state.glob("audit.db*"):
        f.unlink()
    (state / "old").mkdir()
    os.symlink("old/audit.db", state / "audit.db")
    db = sqlite3.connect(state / "audit.db")
    db.execute(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL, prev_hash TEXT NOT "
        "NULL, entry_hash TEXT NOT NULL, mac TEXT)"
    )
    db.commit()
    db.close()
    assert _audit_cli(repo, key_path) == 1
    with pytest.raises(AuditTampered, match="symbolic link"):
        make_server(repo, plugin_path=plugins)


def test_01_audit_db_replaced_by_another_log_refused(served, tmp_path):
    """A real file (no link) holding another log signed by the same key: the log id differs."""
    repo, plugins, client, _app, key = served
    assert client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).is_success
    client.close()
    key_path = repo.parent / "audit-keys" / "audit.key"
    state = repo / ".mltrust"
    db = sqlite3.connect(state / "audit.db")
    db.execute("UPDATE audit_meta SET v = ? WHERE k = 'log_id'", ("0" * 32,))
    db.commit()
    db.close()
    assert _audit_cli(repo, key_path) == 1
    with pytest.raises(AuditTampered, match="not the log its anchor names"):
        make_server(repo, plugin_path=plugins)


def test_01_anchor_binds_the_log_id(served):
    repo, _plugins, client, _app, key = served
    assert client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).is_success
    anchors = list((repo.parent / "audit-keys" / "audit-anchors").glob("*.json"))
    assert len(anchors) == 1
    doc = json.loads(anchors[0].read_text())
    db = sqlite3.connect(repo / ".mltrust" / "audit.db")
    (log_id,) = db.execute("SELECT v FROM audit_meta WHERE k = 'log_id'").fetchone()
    db.close()
    assert doc["v"] == 2 and doc["log"] == log_id


# -- 12: live edit of the anchored head's text --------------------------------------------------
def test_12_live_edit_of_anchored_head_text_stops_signing(served):
    repo, _plugins, client, _app, key = served
    for _ in range(3):
        assert client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).is_success
    db = sqlite3.connect(repo / ".mltrust" / "audit.db")
    with db:
        (seq, text) = db.execute(
            "SELECT seq, entry FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        db.execute("UPDATE audit SET entry = ? WHERE seq = ?", (text.replace("2", "3", 1), seq))
    db.close()
    anchor = next((repo.parent / "audit-keys" / "audit-anchors").glob("*.json"))
    before = anchor.read_bytes()
    r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
    assert r.status_code == 503
    assert anchor.read_bytes() == before  # nothing signed over the edited head
    audit_key = load_audit_key(repo.parent / "audit-keys" / "audit.key")
    report = verify_chain(repo / ".mltrust" / "audit.db", key=audit_key, anchor=anchor)
    assert not report.ok
