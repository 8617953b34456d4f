"""`mltrust report pr`: base vs head evidence as a pull-request comment."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from _check_helpers import MALICIOUS_PICKLE, clean_project, subset_db
from mltrust.cli import main
from mltrust.report._pr import MARKER


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real check reports of a clean project (base) and the same with a payload added (head)."""
    tmp = tmp_path_factory.mktemp("pr")
    db = subset_db(tmp, ("numpy",))
    project = clean_project(tmp / "project")
    out = {}
    for name in ("base", "head"):
        if name == "head":
            (project / "extra.pkl").write_bytes(MALICIOUS_PICKLE)
        path = tmp / f"{name}.json"
        args = ["check", str(project), "--db", str(db), "--db-max-age", "0", "--no-store"]
        main([*args, "-f", "json", "-o", str(path)])
        out[name] = path
    return out["base"], out["head"]


def _pr(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", "pr", *args])
    got = capsys.readouterr()
    return code, got.out, got.err


def test_new_payload_shows_as_a_new_finding_and_needs_review(
    reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = reports
    code, out, _ = _pr(capsys, str(base), str(head))
    assert code == 1
    assert out.startswith(MARKER)
    new = out.split("### New findings", 1)[1].split("###", 1)[0]
    assert "extra.pkl" in new and "critical" in new
    assert "### Fixed findings" not in out
    assert "needs a security review" in out


def test_reverse_direction_lists_the_fix(
    reports: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = reports
    code, out, _ = _pr(capsys, str(head), str(base))
    fixed = out.split("### Fixed findings", 1)[1]
    assert "extra.pkl" in fixed
    assert "### New findings" not in out
    head_doc = json.loads(base.read_text())
    assert code == (0 if head_doc["verdict"] == "pass" else 1)


def test_findings_carry_distinct_fingerprints(reports: tuple[Path, Path]) -> None:
    _, head = reports
    findings = json.loads(head.read_text())["findings"]
    fps = [f["fingerprint"] for f in findings]
    assert fps and len(fps) == len(set(fps))


def test_hostile_finding_text_cannot_inject_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = "x | <img src=x onerror=alert(1)> [click](https://evil.example)\n## fake"
    doc = {
        "verdict": "fail",
        "controls": [],
        "findings": [
            {"rule_id": "R", "severity": "high", "message": evil, "location": {"path": evil}}
        ],
    }
    base = tmp_path / "b.json"
    head = tmp_path / "h.json"
    base.write_text(json.dumps({"verdict": "pass", "controls": [], "findings": []}))
    head.write_text(json.dumps(doc))
    _, out, _ = _pr(capsys, str(base), str(head))
    # Markdown renders a backslash-escaped character literally; nothing may stay unescaped.
    assert not re.search(r"(?<!\\)<img", out)
    assert not re.search(r"(?<!\\)\]\(https", out)
    assert "\n## fake" not in out


def test_request_review_calls_gh_only_when_needed(
    reports: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """gh is the GitHub CLI (a network client); a recording stand-in takes its place here."""
    base, head = reports
    log = tmp_path / "gh.log"
    gh = tmp_path / "bin" / "gh"
    gh.parent.mkdir()
    gh.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{gh.parent}{os.pathsep}{os.environ['PATH']}")
    code, _, _ = _pr(capsys, str(base), str(head), "--request-review", "org/security", "--pr", "7")
    assert code == 1
    assert log.read_text().split() == ["pr", "edit", "7", "--add-reviewer", "org/security"]
    log.unlink()
    _pr(capsys, str(base), str(base), "--request-review", "org/security", "--pr", "7")
    base_doc = json.loads(base.read_text())
    assert log.exists() == (base_doc["verdict"] != "pass")


def test_not_a_report_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    code, _, err = _pr(capsys, str(bad), str(bad))
    assert code == 2
    assert "not a `mltrust check --format json` report" in err


def test_charts_are_written(
    reports: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = reports
    _pr(
        capsys,
        str(base),
        str(head),
        "--charts",
        str(tmp_path / "charts"),
        "-o",
        str(tmp_path / "c.md"),
    )
    png = tmp_path / "charts" / "severity.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "c.md").read_text().startswith(MARKER)
