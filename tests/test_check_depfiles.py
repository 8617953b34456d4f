"""Attacks on dependency discovery: a vulnerable pin must not hide behind a file name, a
folder depth, an include, an encoding, a bad neighbouring line or a lock format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrust.advisories import AdvisoryDB
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile

NOW = "2099-01-01T00:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    src = tmp_path / "osv"
    src.mkdir()
    doc = {
        "id": "OSV-EVIL-1",
        "modified": NOW,
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [
            {
                "package": {"name": "evilpkg", "ecosystem": "PyPI"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}
                ],
                "versions": ["1.0", "1.5", "1.9"],
            }
        ],
    }
    (src / "OSV-EVIL-1.json").write_text(json.dumps(doc))
    target = tmp_path / "adv.db"
    AdvisoryDB.import_osv(src, target)
    return target


def _check(project: Path, db: Path):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(project, advisory_db=db))
    verdict = evaluate(bundle.document, load_profile("default"))
    return bundle, {r.control.id: r for r in verdict.results}


def _assert_found(project: Path, db: Path, source: str, line: int) -> None:
    bundle, controls = _check(project, db)
    vulns = bundle.document["deps"]["vulnerabilities"]
    assert [(v["source"], v["line"], v["id"]) for v in vulns] == [(source, line, "OSV-EVIL-1")]
    assert controls["no-vulnerable-dependencies"].status is ControlStatus.FAIL


@pytest.mark.parametrize(
    "rel",
    [
        "dev-requirements.txt",
        "test_requirements.txt",
        "requirements-dev.in",
        "requirements/base/prod.txt",
        "a/b/c/d/requirements.txt",
        "env/requirements.txt",
        "venv/requirements.txt",
        "requirements.d/extra.txt",
    ],
)
def test_attack_vulnerable_pin_in_overlooked_requirements_file(
    tmp_path: Path, db: Path, rel: str
) -> None:
    path = tmp_path / "p" / rel
    path.parent.mkdir(parents=True)
    path.write_text("# pinned\nevilpkg==1.5\n")
    _assert_found(tmp_path / "p", db, rel, 2)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom"])
def test_attack_vulnerable_pin_behind_a_bom(tmp_path: Path, db: Path, encoding: str) -> None:
    text = "flask==3.0.0\nevilpkg==1.5\n"
    if encoding == "utf-16-le-bom":
        data = b"\xff\xfe" + text.encode("utf-16-le")
    elif encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    (tmp_path / "requirements.txt").write_bytes(data)
    _assert_found(tmp_path, db, "requirements.txt", 2)


def test_attack_one_bad_line_does_not_drop_the_file(tmp_path: Path, db: Path) -> None:
    (tmp_path / "requirements.txt").write_text("this is ((( not a requirement\nevilpkg==1.5\n")
    bundle, controls = _check(tmp_path, db)
    assert [v["line"] for v in bundle.document["deps"]["vulnerabilities"]] == [2]
    assert bundle.document["deps"]["errors"] == [
        "requirements.txt:1: not a valid requirement: 'this is ((( not a requirement'"
    ]
    assert controls["dependency-files-readable"].status is ControlStatus.FAIL


def test_attack_unreadable_dependency_file_fails_vulnerability_control(
    tmp_path: Path, db: Path
) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.0\n")
    (tmp_path / "Pipfile.lock").write_text("{ this is not json")
    bundle, controls = _check(tmp_path, db)
    assert bundle.document["deps"]["vulnerabilities"] == []
    assert controls["no-vulnerable-dependencies"].status is ControlStatus.FAIL
    assert "Pipfile.lock" in " ".join(controls["no-vulnerable-dependencies"].details)


@pytest.mark.parametrize(
    "form", ["-r inc/more.txt", "-rinc/more.txt", "--requirement=inc/more.txt", "-c inc/more.txt"]
)
def test_attack_vulnerable_pin_behind_an_include(tmp_path: Path, db: Path, form: str) -> None:
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "more.txt").write_text("evilpkg==1.5\n")
    (tmp_path / "setup-reqs.cfg").write_text("")  # noise
    (tmp_path / "requirements.txt").write_text(f"{form}\n")
    bundle, _ = _check(tmp_path, db)
    assert {(v["source"], v["line"]) for v in bundle.document["deps"]["vulnerabilities"]} == {
        ("inc/more.txt", 1)
    }


def test_include_of_missing_file_is_a_problem(tmp_path: Path, db: Path) -> None:
    (tmp_path / "requirements.txt").write_text("-r nope.txt\nevilpkg==1.5\n")
    bundle, _ = _check(tmp_path, db)
    assert bundle.document["deps"]["errors"] == [
        "requirements.txt:1: included file 'nope.txt' not found"
    ]
    assert len(bundle.document["deps"]["vulnerabilities"]) == 1


@pytest.mark.parametrize(
    ("name", "content", "line"),
    [
        ("Pipfile", '[packages]\nflask = "*"\nevilpkg = "==1.5"\n', 3),
        (
            "Pipfile.lock",
            json.dumps({"default": {"evilpkg": {"version": "==1.5"}}, "develop": {}}, indent=1),
            3,
        ),
        ("pdm.lock", '[[package]]\nname = "evilpkg"\nversion = "1.5"\n', 2),
        ("uv.lock", 'version = 1\n[[package]]\nname = "evilpkg"\nversion = "1.5"\n', 3),
        ("setup.cfg", "[options]\ninstall_requires =\n    flask>=2\n    evilpkg==1.5\n", 4),
        (
            "environment.yml",
            "name: x\ndependencies:\n  - python=3.11\n  - pip:\n    - evilpkg==1.5\n",
            5,
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\n[dependency-groups]\ndev = [\n  "evilpkg==1.5",\n]\n',
            5,
        ),
        (
            "pyproject.toml",
            '[tool.poetry.group.test.dependencies]\nevilpkg = "1.5"\n',
            2,
        ),
        ("pyproject.toml", '[tool.poetry.dev-dependencies]\nevilpkg = "1.5"\n', 2),
    ],
)
def test_attack_vulnerable_pin_in_other_formats(
    tmp_path: Path, db: Path, name: str, content: str, line: int
) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / name).write_text(content)
    _assert_found(tmp_path, db, f"svc/{name}", line)


def test_unpinned_range_reports_allowed_vulnerable_versions(tmp_path: Path, db: Path) -> None:
    (tmp_path / "requirements.txt").write_text("evilpkg>=1.4\nflask>=2\n")
    bundle, controls = _check(tmp_path, db)
    rows = bundle.document["deps"]["unpinned_vulnerable"]
    assert [(r["package"], r["line"], r["id"], r["versions"]) for r in rows] == [
        ("evilpkg", 1, "OSV-EVIL-1", ["1.5", "1.9"])
    ]
    assert any(
        "allows versions affected by OSV-EVIL-1" in d
        for d in controls["dependencies-pinned"].details
    )
    (tmp_path / "requirements.txt").write_text("evilpkg>=2.0\n")
    bundle, _ = _check(tmp_path, db)
    assert bundle.document["deps"]["unpinned_vulnerable"] == []


def test_virtualenv_site_packages_are_not_project_dependencies(tmp_path: Path, db: Path) -> None:
    venv = tmp_path / ".venv"
    (venv / "lib" / "site-packages" / "pkg").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr\n")
    (venv / "lib" / "site-packages" / "pkg" / "requirements.txt").write_text("evilpkg==1.5\n")
    (tmp_path / "requirements.txt").write_text("flask==3.0.0\n")
    bundle, _ = _check(tmp_path, db)
    assert bundle.document["deps"]["sources"] == ["requirements.txt"]
    assert any(line.startswith(".venv/") for line in bundle.document["deps"]["not_evaluated"])


def test_egg_info_metadata_is_not_a_broken_requirements_file(tmp_path: Path, db: Path) -> None:
    egg = tmp_path / "src" / "pkg.egg-info"
    egg.mkdir(parents=True)
    (egg / "requires.txt").write_text("flask>=2\n\n[dev]\npytest\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "pkg"\ndependencies = ["evilpkg==1.5"]\n'
    )
    bundle, controls = _check(tmp_path, db)
    assert bundle.document["deps"]["sources"] == ["pyproject.toml"]
    assert controls["dependency-files-readable"].status is ControlStatus.PASS
