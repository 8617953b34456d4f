"""Evidence store: records, idempotence, concurrency (threads and processes), crash safety."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, main
from mltrust.errors import ConfigError, InputError
from mltrust.store import EvidenceStore, StoredStatement, StoredVerdict


def statement(n: int, ptype: str = "https://mltrust.dev/scan/v1") -> dict[str, object]:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"model{n % 3}", "digest": {"sha256": f"{n % 3:064x}"}}],
        "predicateType": ptype,
        "predicate": {"n": n, "padding": "x" * 2000},
    }


def test_default_path_and_wal_mode(tmp_path: Path) -> None:
    path = EvidenceStore.default_path(tmp_path)
    assert path == tmp_path / ".mltrust" / "evidence.db"
    with EvidenceStore.open(path):
        pass
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_add_and_query_statements_and_verdicts(tmp_path: Path) -> None:
    with EvidenceStore.open(tmp_path / "e.db") as store:
        sid = store.add_statement(statement(1), envelope={"payload": "x"}, signer="fp")
        assert store.add_statement(statement(1)) == sid  # idempotent
        store.add_statement(statement(2, "https://slsa.dev/provenance/v1"))
        vid = store.add_verdict(
            {"verdict": "fail", "controls": []}, subject_digest=f"{1:064x}", profile="default"
        )
        assert len(store.statements()) == 2
        only = store.statements(subject_digest=f"{1:064x}")
        assert [s.id for s in only] == [sid]
        assert only[0].signer == "fp" and only[0].envelope == {"payload": "x"}
        assert only[0].subject_name == "model1"
        prov = store.statements(predicate_type="https://slsa.dev/provenance/v1")
        assert len(prov) == 1 and prov[0].statement["predicate"]["n"] == 2
        verdicts = store.verdicts(subject_digest=f"{1:064x}")
        assert [v.verdict for v in verdicts] == ["fail"]
        got = store.get(sid[:12])
        assert isinstance(got, StoredStatement) and got.id == sid
        assert isinstance(store.get(vid), StoredVerdict)
        with pytest.raises(InputError):
            store.get("deadbeefdeadbeef")
        with pytest.raises(InputError):
            store.get("xyz")
        assert store.integrity_check() == "ok"


def test_subject_digest_override(tmp_path: Path) -> None:
    with EvidenceStore.open(tmp_path / "e.db") as store:
        store.add_statement(statement(1), subject_digest="ab" * 32)
        assert store.statements(subject_digest="ab" * 32)


def test_bad_records_rejected(tmp_path: Path) -> None:
    with EvidenceStore.open(tmp_path / "e.db") as store:
        with pytest.raises(InputError):
            store.add_statement({"predicateType": "x"})
        with pytest.raises(ConfigError):
            store.add_verdict({"verdict": "maybe"}, subject_digest="a", profile="p")
        assert store.statements() == [] and store.verdicts() == []


def test_not_a_database_is_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "e.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InputError):
        EvidenceStore.open(bad)


def test_concurrent_threads(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    EvidenceStore.open(path).close()
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            with EvidenceStore.open(path) as store:
                for i in range(40):
                    store.add_statement(statement(offset * 1000 + i))
                    store.statements(subject_digest=f"{i % 3:064x}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with EvidenceStore.open(path) as store:
        assert len(store.statements()) == 160


_WRITER = textwrap.dedent(
    """
    import sys
    from mltrust.store import EvidenceStore
    path, start = sys.argv[1], int(sys.argv[2])
    store = EvidenceStore.open(path)
    i = start
    while True:
        store.add_statement({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "m", "digest": {"sha256": "%064x" % i}}],
            "predicateType": "https://mltrust.dev/scan/v1",
            "predicate": {"i": i, "padding": "y" * 50000},
        })
        if i == start:
            print("ready", flush=True)
        i += 1
        if len(sys.argv) > 3 and i - start >= int(sys.argv[3]):
            break
    """
)


def _spawn(path: Path, start: int, count: int | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-c", _WRITER, str(path), str(start)]
    if count is not None:
        args.append(str(count))
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True)


def test_concurrent_processes(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    procs = [_spawn(path, k * 10_000, 30) for k in range(3)]
    for p in procs:
        assert p.wait(timeout=60) == 0
        assert p.stdout is not None
        p.stdout.close()
    with EvidenceStore.open(path) as store:
        assert len(store.statements()) == 90
        assert store.integrity_check() == "ok"


def test_crash_sigkill_mid_write_leaves_no_partial_record(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    proc = _spawn(path, 0)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.4)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    with EvidenceStore.open(path) as store:
        assert store.integrity_check() == "ok"
        records = store.statements()
        assert records, "the writer committed nothing before it was killed"
        # every record is complete: it parses and its id is the hash of what was stored
        import hashlib

        for r in records:
            text = json.dumps(r.statement, sort_keys=True, separators=(",", ":"))
            assert hashlib.sha256(text.encode()).hexdigest() == r.id
            assert r.statement["predicate"]["padding"] == "y" * 50000
        # numbering is gap-free: the killed transaction left nothing behind
        numbers = sorted(r.statement["predicate"]["i"] for r in records)
        assert numbers == list(range(len(numbers)))
        store.add_statement(statement(7))  # and the store is writable again


def test_evidence_cli_list_show_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with EvidenceStore.open(EvidenceStore.default_path(tmp_path)) as store:
        sid = store.add_statement(statement(1))
        store.add_statement(statement(2, "https://slsa.dev/provenance/v1"))
        store.add_verdict({"verdict": "pass"}, subject_digest=f"{1:064x}", profile="default")
    assert main(["evidence", "list"]) == EXIT_CLEAN
    out = capsys.readouterr().out
    assert len(out.strip().splitlines()) == 3 and "verdict pass" in out
    assert main(["evidence", "list", "--type", "https://slsa.dev/provenance/v1"]) == EXIT_CLEAN
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert main(["evidence", "list", "--subject", f"{1:064x}", "-f", "json"]) == EXIT_CLEAN
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["evidence", "show", sid[:10]]) == EXIT_CLEAN
    assert json.loads(capsys.readouterr().out)["id"] == sid
    assert main(["evidence", "show", "0000000000"]) == EXIT_ERROR
    capsys.readouterr()
    assert main(["evidence", "export", "--format", "jsonl", "--output", "all.jsonl"]) == EXIT_CLEAN
    lines = (tmp_path / "all.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["statement", "statement", "verdict"]
    assert main(["evidence", "export"]) == EXIT_CLEAN
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_evidence_cli_without_store_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["evidence", "list"]) == EXIT_ERROR
    assert "no evidence store" in capsys.readouterr().err


def test_one_store_object_shared_by_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with EvidenceStore.open(tmp_path / "e.db") as store:

        def work(offset: int) -> None:
            try:
                for i in range(25):
                    store.add_statement(statement(offset * 100 + i))
                    store.add_verdict(
                        {"verdict": "pass", "n": offset * 100 + i},
                        subject_digest="d",
                        profile="default",
                    )
                    store.verdicts(subject_digest="d")
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(store.statements()) == 100 and len(store.verdicts()) == 100
