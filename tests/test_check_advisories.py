"""Attacks on the advisory database behind the dependency controls: an emptied, foreign, stale
or missing database must fail the gate, withdrawn advisories never match, and `db import URL`
fetches the OSV zip from the URL given (a local server here)."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import sqlite3
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mltrust.advisories import AdvisoryDB
from mltrust.advisories._db import _SCHEMA, _SCHEMA_VERSION
from mltrust.cli._main import main

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _advisory(aid: str, package: str, fixed: str, *, modified: str = NOW, **extra: object) -> dict:
    return {
        "id": aid,
        "modified": modified,
        "summary": f"{package} is vulnerable",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {"name": package, "ecosystem": "PyPI"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
        **extra,
    }


def _osv_folder(root: Path, *docs: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (root / f"{doc['id']}.json").write_text(json.dumps(doc))
    return root


def _project(root: Path, requirement: str = "demo==1.0") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "requirements.txt").write_text(requirement + "\n")
    return root


def _controls(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict]]:
    code = main(["check", *args, "-f", "json", "--no-store"])
    out, _ = capsys.readouterr()
    if code == 2:
        return code, {}
    return code, {c["id"]: c for c in json.loads(out)["controls"]}


def test_attack_emptied_import_is_refused_and_old_database_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "adv.db"
    good = _osv_folder(tmp_path / "good", _advisory("OSV-1", "demo", "2.0"))
    assert main(["db", "import", str(good), "--db", str(db)]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["db", "import", str(empty), "--db", str(db)]) == 2
    assert "no OSV advisories" in capsys.readouterr().err
    with AdvisoryDB.open(db) as opened:
        assert opened.info()["advisories"] == 1
    code, controls = _controls(capsys, str(_project(tmp_path / "p")), "--db", str(db))
    assert code == 1
    assert controls["no-vulnerable-dependencies"]["status"] == "fail"


def test_attack_wrong_schema_import_is_refused(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "a.json").write_text(json.dumps({"id": "x", "name": "not osv"}))
    (foreign / "b.json").write_text(json.dumps([1, 2, 3]))
    (foreign / "c.json").write_text(json.dumps({"id": "y", "affected": []}))
    assert main(["db", "import", str(foreign), "--db", str(tmp_path / "adv.db")]) == 2
    assert not (tmp_path / "adv.db").exists()


def test_attack_empty_database_file_fails_both_controls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "empty.db"
    conn = sqlite3.connect(db)
    conn.executescript(_SCHEMA)
    conn.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
    conn.commit()
    conn.close()
    code, controls = _controls(capsys, str(_project(tmp_path / "p")), "--db", str(db))
    assert code == 1
    assert controls["advisory-database-available"]["status"] == "fail"
    assert controls["no-vulnerable-dependencies"]["status"] == "fail"


def test_missing_database_fails_even_without_pins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "p", "demo>=1.0")
    code, controls = _controls(capsys, str(project), "--db", str(tmp_path / "none.db"))
    assert code == 1
    assert controls["advisory-database-available"]["status"] == "fail"
    assert controls["no-vulnerable-dependencies"]["status"] == "fail"


def test_stale_database_fails_the_gate_unless_age_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "old.db"
    old = _osv_folder(
        tmp_path / "old", _advisory("OSV-1", "other", "2.0", modified="2020-01-01T00:00:00Z")
    )
    AdvisoryDB.import_osv(old, db)
    project = str(_project(tmp_path / "p"))
    _, controls = _controls(capsys, project, "--db", str(db))
    assert controls["advisory-database-available"]["status"] == "fail"
    assert "days old" in json.dumps(controls["advisory-database-available"])
    _, controls = _controls(capsys, project, "--db", str(db), "--db-max-age", "100000")
    assert controls["advisory-database-available"]["status"] == "pass"


def test_withdrawn_advisory_never_matches(tmp_path: Path) -> None:
    src = _osv_folder(
        tmp_path / "osv",
        _advisory("OSV-LIVE", "demo", "2.0"),
        _advisory("OSV-GONE", "redis", "99.0", withdrawn="2023-01-01T00:00:00Z"),
    )
    stats = AdvisoryDB.import_osv(src, tmp_path / "adv.db")
    assert (stats.advisories, stats.withdrawn) == (1, 1)
    with AdvisoryDB.open(tmp_path / "adv.db") as db:
        assert db.matches("redis", "4.0") == []
        assert [m.advisory.id for m in db.matches("demo", "1.0")] == ["OSV-LIVE"]


def test_withdrawn_in_real_snapshot_never_matches(tmp_path: Path) -> None:
    from _check_helpers import subset_db

    db = subset_db(tmp_path, ("redis", "selenium"))
    with AdvisoryDB.open(db) as opened:
        ids = {m.advisory.id for m in opened.matches("redis", "5.0.0")}
        ids |= {m.advisory.id for m in opened.matches("selenium", "4.10.0")}
    assert "PYSEC-2023-73" not in ids and "PYSEC-2023-101" not in ids


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local http.server on 127.0.0.1 serving a folder the test fills."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_db_import_url_fetches_the_osv_zip(
    tmp_path: Path, served: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = served
    with zipfile.ZipFile(root / "all.zip", "w") as zf:
        zf.writestr("OSV-1.json", json.dumps(_advisory("OSV-1", "demo", "2.0")))
        zf.writestr(
            "OSV-2.json",
            json.dumps(_advisory("OSV-2", "demo", "3.0", withdrawn="2024-01-01T00:00:00Z")),
        )
    db = tmp_path / "adv.db"
    assert main(["db", "import", f"{base}/all.zip", "--db", str(db)]) == 0
    assert "withdrawn" in capsys.readouterr().out
    with AdvisoryDB.open(db) as opened:
        assert [m.advisory.id for m in opened.matches("demo", "1.0")] == ["OSV-1"]
    # A URL that serves nothing usable keeps the database.
    (root / "empty.zip").write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    assert main(["db", "import", f"{base}/empty.zip", "--db", str(db)]) == 2
    assert main(["db", "import", f"{base}/missing.zip", "--db", str(db)]) == 2
    with AdvisoryDB.open(db) as opened:
        assert opened.info()["advisories"] == 1


def test_garbage_db_and_key_are_setup_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path / "p")
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"this is not a database\n" * 10)
    assert main(["check", str(project), "--db", str(garbage), "--no-store"]) == 2
    assert main(["check", str(project), "--key", str(garbage), "--no-store"]) == 2
    capsys.readouterr()


def test_aliases_of_one_vulnerability_are_one_finding(tmp_path: Path) -> None:
    a = _advisory("GHSA-aaaa-bbbb-cccc", "demo", "2.0")
    a["aliases"] = ["CVE-2099-1"]
    b = _advisory("PYSEC-2099-1", "demo", "2.0")
    b["aliases"] = ["CVE-2099-1", "GHSA-aaaa-bbbb-cccc"]
    c = _advisory("PYSEC-2099-2", "demo", "2.0")
    AdvisoryDB.import_osv(_osv_folder(tmp_path / "osv", a, b, c), tmp_path / "adv.db")
    with AdvisoryDB.open(tmp_path / "adv.db") as db:
        found = {m.advisory.id: m.advisory.aliases for m in db.matches("demo", "1.0")}
    assert set(found) == {"GHSA-aaaa-bbbb-cccc", "PYSEC-2099-2"}
    assert "PYSEC-2099-1" in found["GHSA-aaaa-bbbb-cccc"]
