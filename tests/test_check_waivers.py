"""Waivers name findings, not whole controls: waiving one CVE must not hide another; unknown
ids are errors; expiry is bounded; profiles extend `default` and share one control catalogue."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mltrust.advisories import AdvisoryDB
from mltrust.cli._main import main

SOON = (dt.date.today() + dt.timedelta(days=200)).isoformat()
CRIT = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"


def _adv(aid: str, alias: str) -> dict:
    return {
        "id": aid,
        "aliases": [alias],
        "modified": "2099-01-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": CRIT}],
        "affected": [
            {
                "package": {"name": "evilpkg", "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9"}]}],
            }
        ],
    }


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "osv"
    src.mkdir()
    for aid, alias in (("OSV-A", "CVE-2099-0001"), ("OSV-B", "CVE-2099-0002")):
        (src / f"{aid}.json").write_text(json.dumps(_adv(aid, alias)))
    db = tmp_path / "adv.db"
    AdvisoryDB.import_osv(src, db)
    p = tmp_path / "p"
    p.mkdir()
    (p / "requirements.txt").write_text("evilpkg==1.0\n")
    return p, db


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "-f", "json", "--no-store"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code != 2 else {"err": err})


def _status(report: dict, control: str) -> str:
    return next(c["status"] for c in report["controls"] if c["id"] == control)


def _waivers(tmp_path: Path, text: str) -> str:
    path = tmp_path / "waivers.yaml"
    path.write_text(text)
    return str(path)


def test_attack_waiving_one_cve_does_not_hide_another(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    p, db = project
    one = _waivers(
        tmp_path,
        f"waivers:\n- advisory: CVE-2099-0001\n  package: EvilPkg\n  justification: j\n"
        f"  expires: {SOON}\n",
    )
    code, report = _run(capsys, str(p), "--db", str(db), "--waivers", one)
    assert code == 1
    assert _status(report, "no-vulnerable-dependencies") == "fail"
    details = " ".join(
        next(c for c in report["controls"] if c["id"] == "no-vulnerable-dependencies")["details"]
    )
    assert "OSV-B" in details and "OSV-A" not in details
    assert len(report["waived_findings"]) == 1
    both = _waivers(
        tmp_path,
        f"- {{advisory: OSV-A, package: evilpkg, justification: j, expires: {SOON}}}\n"
        f"- {{advisory: OSV-B, package: evilpkg, justification: j, expires: {SOON}}}\n",
    )
    _, report = _run(capsys, str(p), "--db", str(db), "--waivers", both)
    assert _status(report, "no-vulnerable-dependencies") == "pass"
    # The finding waivers hold under another profile too (one catalogue of findings).
    _, report = _run(capsys, str(p), "--db", str(db), "--waivers", both, "-p", "nist-ai-rmf")
    assert _status(report, "GOVERN-6.1") == "pass"


def test_distinct_fingerprints_and_fingerprint_waiver(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    p, db = project
    _, report = _run(capsys, str(p), "--db", str(db))
    vulns = report["evidence"]["deps"]["vulnerabilities"]
    fps = {v["fingerprint"] for v in vulns}
    assert len(vulns) == 2 and len(fps) == 2  # two advisories on one line: two findings
    first = vulns[0]
    w = _waivers(
        tmp_path, f"- {{fingerprint: {first['fingerprint']}, justification: j, expires: {SOON}}}\n"
    )
    _, report = _run(capsys, str(p), "--db", str(db), "--waivers", w)
    assert [x["fingerprint"] for x in report["waived_findings"]] == [first["fingerprint"]]
    details = next(c for c in report["controls"] if c["id"] == "no-vulnerable-dependencies")[
        "details"
    ]
    assert len(details) == 1 and vulns[1]["id"] in details[0]


def test_rule_and_path_waiver_for_a_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "p"
    (p / "templates").mkdir(parents=True)
    (p / "templates" / "app.py").write_text("{% if x %}\nimport os\n")
    (p / "ok.py").write_text("print(1)\n")
    _, report = _run(capsys, str(p))
    assert _status(report, "no-dangerous-code") == "fail"
    w = _waivers(
        tmp_path,
        f"- {{rule: MLT-CODE-012, path: 'templates/*', justification: jinja, expires: {SOON}}}\n",
    )
    _, report = _run(capsys, str(p), "--waivers", w)
    assert _status(report, "no-dangerous-code") == "pass"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{control: no-such-control, justification: j, expires: SOON}", "unknown control"),
        ("{rule: MLT-NOPE-999, path: '*', justification: j, expires: SOON}", "unknown rule"),
        ("{fingerprint: xyz, justification: j, expires: SOON}", "16 hex"),
        ("{advisory: CVE-2099-0001, justification: j, expires: SOON}", "package"),
        ("{control: model-signed, justification: j, expires: 2999-01-01}", "365 days"),
        (
            "{control: model-signed, rule: MLT-CODE-001, path: x, justification: j, expires: SOON}",
            "exactly one",
        ),
    ],
)
def test_bad_waivers_are_setup_errors(
    tmp_path: Path,
    project: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    entry: str,
    message: str,
) -> None:
    p, db = project
    w = _waivers(tmp_path, "- " + entry.replace("SOON", SOON) + "\n")
    code, out = _run(capsys, str(p), "--db", str(db), "--waivers", w)
    assert code == 2
    assert message in out["err"]


def test_control_of_another_shipped_profile_is_in_the_catalogue(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    p, db = project
    w = _waivers(tmp_path, f"- {{control: AML.M0016, justification: j, expires: {SOON}}}\n")
    code, _ = _run(capsys, str(p), "--db", str(db), "--waivers", w)
    assert code == 1  # accepted (not a setup error); it just does not apply under default


def test_profile_extends_default_and_sets_waiver_max(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    p, db = project
    profile = tmp_path / "team.yaml"
    profile.write_text(
        "name: team\nextends: default\nwaiver_max_days: 1000\ncontrols:\n"
        "  - id: no-vulnerable-dependencies\n    title: relaxed\n    enforcement: warn\n"
        "    check: deps.vulnerabilities.size() == 0\n"
        "  - id: team-extra\n    title: always\n    check: 'true'\n"
    )
    far = (dt.date.today() + dt.timedelta(days=900)).isoformat()
    w = _waivers(tmp_path, f"- {{control: model-signed, justification: j, expires: {far}}}\n")
    code, report = _run(capsys, str(p), "--db", str(db), "-p", str(profile), "--waivers", w)
    ids = [c["id"] for c in report["controls"]]
    assert "model-scan-clean" in ids and ids[-1] == "team-extra"
    assert _status(report, "no-vulnerable-dependencies") == "warn"
    assert _status(report, "team-extra") == "pass"
    assert code in (0, 1)


def test_markdown_names_waived_findings_and_not_evaluated(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    p, db = project
    (p / "node_modules").mkdir()
    (p / "node_modules" / "x.js").write_text("1\n")
    w = _waivers(
        tmp_path, f"- {{advisory: OSV-A, package: evilpkg, justification: jj, expires: {SOON}}}\n"
    )
    main(["check", str(p), "--db", str(db), "--waivers", w, "-f", "markdown", "--no-store"])
    out = capsys.readouterr()[0]
    assert "`OSV-A in evilpkg`" in out and "jj" in out
    assert "### Not evaluated" in out and "node_modules/" in out


def test_broken_fixture_dependency_file_can_be_waived_by_rule_and_path(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    p, db = project
    (p / "requirements.txt").write_text("flask==3.0.0\n")
    (p / "tests" / "fixtures").mkdir(parents=True)
    (p / "tests" / "fixtures" / "pyproject.toml").write_text("[project\nbroken")
    _, report = _run(capsys, str(p), "--db", str(db))
    assert _status(report, "dependency-files-readable") == "fail"
    assert _status(report, "no-vulnerable-dependencies") == "fail"
    w = _waivers(
        tmp_path,
        f"- {{rule: MLT-DEP-006, path: 'tests/fixtures/*', justification: fixture, "
        f"expires: {SOON}}}\n",
    )
    _, report = _run(capsys, str(p), "--db", str(db), "--waivers", w)
    assert _status(report, "dependency-files-readable") == "pass"
    assert _status(report, "no-vulnerable-dependencies") == "pass"


# --- Path globs: '*' stays within one folder, '**' crosses folders --------------------------


def _template_project(tmp_path: Path) -> Path:
    p = tmp_path / "p"
    for folder in ("tests", "tests/a/b", "src/deep"):
        (p / folder).mkdir(parents=True, exist_ok=True)
    for rel in ("tests/top.py", "tests/a/b/payload.py", "src/deep/x.py", "root.py"):
        (p / rel).write_text("{% if x %}\nimport os\n")
    return p


def _unparsable(report: dict) -> set[str]:
    detail = next(c for c in report["controls"] if c["id"] == "no-dangerous-code")["details"]
    return {d.split(":")[0] for d in detail}


@pytest.mark.parametrize(
    ("pattern", "still_failing"),
    [
        ("tests/*", {"tests/a/b/payload.py", "src/deep/x.py", "root.py"}),
        ("*.py", {"tests/top.py", "tests/a/b/payload.py", "src/deep/x.py"}),
        ("tests/**", {"src/deep/x.py", "root.py"}),
        ("**/*.py", set()),
        ("src/**/x.py", {"tests/top.py", "tests/a/b/payload.py", "root.py"}),
        ("t?sts/*", {"tests/a/b/payload.py", "src/deep/x.py", "root.py"}),
    ],
)
def test_attack_waiver_star_does_not_cross_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str, still_failing: set[str]
) -> None:
    p = _template_project(tmp_path)
    w = _waivers(
        tmp_path,
        f"- {{rule: MLT-CODE-012, path: '{pattern}', justification: j, expires: {SOON}}}\n",
    )
    _, report = _run(capsys, str(p), "--waivers", w)
    assert _unparsable(report) == still_failing
    assert _status(report, "no-dangerous-code") == ("fail" if still_failing else "pass")


def test_attack_dotdot_in_finding_path_matches_no_waiver() -> None:
    from mltrust.policy._waivers import path_matches

    assert path_matches("tests/*", "tests/x.py")
    for path in ("tests/a/b/../payload", "tests/../x.py", "/tests/x.py", "tests\\x.py", ""):
        assert not path_matches("tests/**", path)
    assert not path_matches("a[!x]b", "a/b") and not path_matches("a[.-0]b", "a/b")


@pytest.mark.parametrize(
    "pattern", ["../x.py", "/etc/*", "tests\\\\*.py", "tests//x.py", "./x.py", "a/**b", "C:/x"]
)
def test_attack_bad_waiver_path_globs_are_errors(
    tmp_path: Path, project: tuple[Path, Path], capsys: pytest.CaptureFixture[str], pattern: str
) -> None:
    p, db = project
    w = _waivers(
        tmp_path,
        f'- {{rule: MLT-CODE-012, path: "{pattern}", justification: j, expires: {SOON}}}\n',
    )
    code, out = _run(capsys, str(p), "--db", str(db), "--waivers", w)
    assert code == 2
    assert "path" in out["err"]


def test_repository_waivers_still_load_and_match() -> None:
    from mltrust.policy._waivers import load_waivers

    repo = Path(__file__).resolve().parents[1]
    # the file loads under the segment-wise glob rules (it may hold no waiver at all)
    waivers = load_waivers(repo / "mltrust-waivers.yaml")
    for w in waivers:
        if w.rule:
            row = {"rule_id": w.rule, "path": w.path}
            assert w.matches_row(row), w.path
            assert not w.matches_row({"rule_id": w.rule, "path": "x/" + str(w.path)})
