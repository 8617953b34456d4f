"""OSV advisory database: offline import (folder, zip), PEP 440 matching, CVSS severities."""

from __future__ import annotations

import json
import sqlite3
import time
import zipfile
from pathlib import Path

import pytest

from _check_helpers import require_snapshot, subset_db
from mltrust.advisories import (
    AdvisoryDB,
    cvss3_base_score,
    is_affected,
    max_known_version,
    normalize_name,
    severity_from_score,
)
from mltrust.cli._main import main
from mltrust.errors import ConfigError

RANGE = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.10.1"}]}]


def test_fixed_range_is_exclusive_and_pep440_ordered() -> None:
    assert is_affected("2.10", RANGE, [])
    assert is_affected("2.10.0", RANGE, [])
    assert is_affected("2.9.6", RANGE, [])
    assert is_affected("2.10.1rc1", RANGE, [])  # a pre-release of the fix is still before it
    assert not is_affected("2.10.1", RANGE, [])
    assert not is_affected("2.11", RANGE, [])


def test_last_affected_is_inclusive_and_reintroduced_ranges() -> None:
    ranges = [
        {
            "type": "ECOSYSTEM",
            "events": [
                {"introduced": "1.0"},
                {"last_affected": "1.4"},
                {"introduced": "2.0"},
                {"fixed": "2.2"},
            ],
        }
    ]
    assert not is_affected("0.9", ranges, [])
    assert is_affected("1.4", ranges, [])
    assert not is_affected("1.5", ranges, [])
    assert is_affected("2.1.9", ranges, [])
    assert not is_affected("2.2", ranges, [])


def test_open_ended_introduced_and_explicit_versions() -> None:
    ranges = [{"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}]}]
    assert is_affected("9.9", ranges, [])
    assert not is_affected("2.9", ranges, [])
    assert is_affected("1.0.0", [], ["1.0"])  # PEP 440 equality, not string equality
    assert is_affected("weird-version", [], ["weird-version"])
    assert not is_affected("weird-version", RANGE, [])
    git_only = [{"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc"}]}]
    assert not is_affected("1.0", git_only, [])


def test_max_known_version_prefers_final_releases() -> None:
    assert max_known_version(RANGE, ["2.0", "2.10", "3.0rc1"]) == "2.10.1"
    assert normalize_name("Jinja_2.x") == "jinja-2-x"


@pytest.mark.parametrize(
    ("vector", "score", "severity"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "high"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"),
        ("CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8, "low"),
    ],
)
def test_cvss3_base_scores(vector: str, score: float, severity: str) -> None:
    got = cvss3_base_score(vector)
    assert got == score
    assert severity_from_score(got) == severity


def test_cvss_rejects_non_v3_vectors() -> None:
    assert cvss3_base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") is None
    assert cvss3_base_score("CVSS:3.1/AV:N") is None


def test_real_snapshot_jinja2_matches(tmp_path: Path) -> None:
    db_path = subset_db(tmp_path)
    with AdvisoryDB.open(db_path) as db:
        ids = {m.advisory.id for m in db.matches("Jinja2", "2.10")}
        assert "PYSEC-2019-217" in ids
        match = next(m for m in db.matches("jinja2", "2.10") if m.advisory.id == "PYSEC-2019-217")
        assert "CVE-2019-10906" in match.advisory.aliases
        assert "2.10.1" in match.advisory.fixed
        assert db.matches("jinja2", "3.1.4") == []
        werk = db.matches("werkzeug", "2.2.2")
        assert any(m.advisory.severity == "high" and m.advisory.score == 7.5 for m in werk)
        # fixed versions come only from ECOSYSTEM ranges, never git commit hashes
        assert all(len(f) < 40 for m in werk for f in m.advisory.fixed)
        assert db.latest_known("jinja2") is not None


def test_full_snapshot_import_is_fast_and_indexed(tmp_path: Path) -> None:
    snap = require_snapshot()
    target = tmp_path / "full.db"
    started = time.perf_counter()
    stats = AdvisoryDB.import_osv(snap, target)
    elapsed = time.perf_counter() - started
    assert stats.advisories >= 2500
    assert stats.skipped == 0
    assert elapsed < 30, f"import took {elapsed:.1f}s"
    conn = sqlite3.connect(target)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM affected WHERE ecosystem='PyPI' AND package='jinja2'"
    ).fetchall()
    conn.close()
    assert any("affected_package" in str(row) for row in plan)


def test_import_from_zip_with_json_and_yaml(tmp_path: Path) -> None:
    doc = {
        "id": "OSV-TEST-1",
        "summary": "demo",
        "aliases": ["CVE-2099-0001"],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {"name": "Demo_Pkg", "ecosystem": "PyPI"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}
                ],
            }
        ],
    }
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/OSV-TEST-1.json", json.dumps(doc))
        zf.writestr("b/OSV-TEST-2.yaml", "id: OSV-TEST-2\naffected: []\n")
        zf.writestr("b/broken.yaml", "id: [unclosed\n")
        zf.writestr("readme.txt", "ignored")
    stats = AdvisoryDB.import_osv(archive, tmp_path / "z.db")
    assert stats.advisories == 2
    assert stats.skipped == 1
    with AdvisoryDB.open(tmp_path / "z.db") as db:
        (m,) = db.matches("demo-pkg", "1.1")
        assert m.advisory.severity == "critical"
        assert db.matches("demo-pkg", "1.2") == []


def test_failed_import_keeps_previous_database(tmp_path: Path) -> None:
    good = tmp_path / "osv"
    good.mkdir()
    (good / "x.json").write_text(
        json.dumps({"id": "X-1", "affected": [{"package": {"name": "demo"}}]})
    )
    target = tmp_path / "adv.db"
    AdvisoryDB.import_osv(good, target)
    with pytest.raises(ConfigError):
        AdvisoryDB.import_osv(tmp_path / "nope", target)
    with AdvisoryDB.open(target) as db:
        assert db.info()["advisories"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_open_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no advisory database"):
        AdvisoryDB.open(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(ConfigError):
        AdvisoryDB.open(other)


def test_db_cli_import_and_info(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snap = require_snapshot()
    src = tmp_path / "osv"
    import shutil

    shutil.copytree(snap / "vulns" / "jinja2", src / "jinja2")
    target = tmp_path / "cli.db"
    assert main(["db", "import", str(src), "--db", str(target)]) == 0
    assert "imported" in capsys.readouterr().out
    assert main(["db", "info", "--db", str(target), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["advisories"] >= 4
    assert info["packages"] == 1
    assert main(["db", "info", "--db", str(tmp_path / "none.db")]) == 2
