"""Dependency collector: requirement/lock parsing, vulnerable pins, unpinned, drift, outdated."""

from __future__ import annotations

from pathlib import Path

import pytest

from _check_helpers import subset_db
from mltrust.evidence import CollectContext
from mltrust.evidence._deps import DependencyCollector, dependency_files
from mltrust.evidence._depsources import (
    DependencyFileError,
    environment_dependencies,
    parse_lock,
    parse_pyproject,
    parse_requirements,
)


def test_requirements_pins_includes_hashes_and_markers(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("Flask==2.0.1 ; python_version >= '3.8'\n")
    (tmp_path / "requirements.txt").write_text(
        "# comment\n-r base.txt\n--index-url https://example.invalid/simple\n"
        "jinja2==2.10 \\\n    --hash=sha256:abc\nrequests>=2.0  # range\nnumpy==1.*\n"
        "torch===2.3.0\n-e .\n"
    )
    deps = parse_requirements(tmp_path / "requirements.txt", "requirements.txt")
    by_name = {d.name: d for d in deps}
    assert by_name["flask"].version == "2.0.1" and by_name["flask"].source == "base.txt"
    assert by_name["jinja2"].version == "2.10" and by_name["jinja2"].line == 4
    assert by_name["requests"].version is None
    assert by_name["numpy"].version is None  # a wildcard is not a pin
    assert by_name["torch"].version == "2.3.0"


def test_invalid_requirement_raises(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("not a valid ==== line\n")
    with pytest.raises(DependencyFileError, match=r"requirements\.txt:1"):
        parse_requirements(tmp_path / "requirements.txt", "requirements.txt")


def test_pyproject_pep621_and_poetry(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["jinja2==2.10", "click>=8"]\n'
        '[project.optional-dependencies]\ndev = ["pytest"]\n'
        '[tool.poetry.dependencies]\npython = "^3.11"\nnumpy = "1.26.4"\npandas = "^2.0"\n'
        'torch = {version = "==2.3.0"}\n'
    )
    deps = {d.name: d for d in parse_pyproject(tmp_path / "pyproject.toml", "pyproject.toml")}
    assert deps["jinja2"].version == "2.10"
    assert deps["click"].version is None and deps["pytest"].version is None
    assert deps["numpy"].version == "1.26.4"
    assert deps["pandas"].version is None
    assert deps["torch"].version == "2.3.0"
    assert "python" not in deps


def test_poetry_and_uv_locks(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "Jinja2"\nversion = "2.10"\n\n[[package]]\nname = "six"\n'
        'version = "1.16.0"\n'
    )
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "myproj"\nversion = "0.1.0"\n'
        'source = { editable = "." }\n'
        '[[package]]\nname = "werkzeug"\nversion = "2.2.2"\n'
    )
    poetry = parse_lock(tmp_path / "poetry.lock", "poetry.lock")
    assert [(d.name, d.version) for d in poetry] == [("jinja2", "2.10"), ("six", "1.16.0")]
    uv = parse_lock(tmp_path / "uv.lock", "uv.lock")
    assert [(d.name, d.version) for d in uv] == [("werkzeug", "2.2.2")]
    (tmp_path / "bad.lock").write_text("[[package]\n")
    with pytest.raises(DependencyFileError):
        parse_lock(tmp_path / "bad.lock", "bad.lock")


def test_environment_lists_installed_and_drifting_ranges() -> None:
    deps, drift = environment_dependencies()
    names = {d.name for d in deps}
    assert {"click", "packaging", "pyyaml"} <= names
    assert all(d.version for d in deps)
    assert any(x.required_by == "mltrust" for x in drift)  # mltrust's own ranges can drift


def test_dependency_files_found_at_any_depth(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("x==1\n")
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "prod.txt").write_text("y==1\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    (tmp_path / "deep" / "er" / "requirements.txt").write_text("z==1\n")
    found = [rel for rel, _ in dependency_files(CollectContext(tmp_path))]
    assert found == ["deep/er/requirements.txt", "requirements.txt", "requirements/prod.txt"]


def test_vulnerable_pin_from_real_snapshot(tmp_path: Path) -> None:
    db = subset_db(tmp_path)
    project = tmp_path / "p"
    project.mkdir()
    (project / "requirements.txt").write_text("jinja2==2.10\nwerkzeug==2.2.2\nrequests>=2\n")
    ctx = CollectContext(project, advisory_db=db)
    result = DependencyCollector().collect(ctx)
    section = result.section
    vulns = section["vulnerabilities"]
    jinja = [v for v in vulns if v["package"] == "jinja2"]
    assert {"PYSEC-2019-217", "PYSEC-2021-66"} <= {v["id"] for v in jinja}
    v217 = next(v for v in jinja if v["id"] == "PYSEC-2019-217")
    assert v217["cve"] == ["CVE-2019-10906"]
    assert v217["fixed"] == ["2.10.1"]
    assert v217["line"] == 1 and v217["source"] == "requirements.txt"
    assert "CVE-2019-10906" in v217["title"]
    assert section["vulnerabilities_by_severity"]["high"] >= 1  # werkzeug has CVSS vectors
    assert [
        {k: u[k] for k in ("package", "specifier", "source", "line")} for u in section["unpinned"]
    ] == [{"package": "requests", "specifier": ">=2", "source": "requirements.txt", "line": 3}]
    assert any(o["package"] == "jinja2" for o in section["outdated"])
    assert section["db"]["present"] is True
    rule_ids = {f.rule_id for f in result.findings}
    assert {"MLT-DEP-001", "MLT-DEP-002"} <= rule_ids
    assert any("CVE-2019-10906" in f.message for f in result.findings)


def test_missing_database_is_recorded_not_clean(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("jinja2==2.10\n")
    ctx = CollectContext(tmp_path, advisory_db=tmp_path / "none.db")
    section = DependencyCollector().collect(ctx).section
    assert section["db"]["present"] is False
    assert section["vulnerabilities"] == []


def test_unreadable_file_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("=== nope\n")
    ctx = CollectContext(tmp_path, advisory_db=tmp_path / "none.db")
    result = DependencyCollector().collect(ctx)
    assert result.section["errors"]
    assert [f.rule_id for f in result.findings] == ["MLT-DEP-006"]


def test_lock_file_makes_pyproject_ranges_acceptable(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname="x"\ndependencies=["click>=8"]\n')
    ctx = CollectContext(tmp_path, advisory_db=tmp_path / "none.db")
    assert DependencyCollector().collect(ctx).section["unpinned"][0]["package"] == "click"
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "click"\nversion = "8.1.7"\n'
    )
    ctx = CollectContext(tmp_path, advisory_db=tmp_path / "none.db")
    section = DependencyCollector().collect(ctx).section
    assert section["unpinned"] == []
    assert section["pinned"] == 1
