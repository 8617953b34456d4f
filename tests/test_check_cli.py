"""`mltrust check` end to end: the release gate on real projects, every output format."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from _check_helpers import REPO, bad_project, clean_project, subset_db
from mltrust.cli._main import main


@pytest.fixture(scope="module")
def advisory_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return subset_db(tmp_path_factory.mktemp("adv"), ("jinja2", "numpy"))


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    if "--db" in args and "--db-max-age" not in args:
        # The PyPA snapshot these tests import is from 2024: stale by the default age on
        # purpose (test_stale_database_fails_the_gate); accept its age here.
        args = (*args, "--db-max-age", "0")
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_project_fails_and_names_each_problem(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bad_project(tmp_path / "bad")
    code, out, _ = _run(capsys, str(project), "--db", str(advisory_db), "-f", "json")
    assert code == 1
    report = json.loads(out)
    assert report["verdict"] == "fail"
    failed = {c["id"]: c for c in report["controls"] if c["status"] == "fail"}
    assert {
        "model-scan-clean",
        "model-signed",
        "no-vulnerable-dependencies",
        "no-dangerous-code",
        "no-committed-secrets",
    } <= set(failed)
    text = json.dumps(failed)
    assert "jinja2==2.10" in text and "PYSEC-2019-217" in text and "CVE-2019-10906" in text
    assert "train.py:6" in text and "pickle.load" in text
    assert "deploy_key.pem" in text and "MLT-CODE-009" in text
    assert "models/model.pkl" in text
    # the text report names them too
    code, out, _ = _run(capsys, str(project), "--db", str(advisory_db), "--no-store")
    assert code == 1
    for needle in ("FAIL", "jinja2==2.10", "train.py", "deploy_key.pem", "model.pkl"):
        assert needle in out


def test_unknown_model_format_fails_closed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x01\x02 no known model format \xff" * 10)
    code, out, _ = _run(capsys, str(folder), "-f", "json", "--no-store")
    assert code == 1
    controls = {c["id"]: c for c in json.loads(out)["controls"]}
    assert controls["model-scanned"]["status"] == "fail"
    assert "weights.bin" in controls["model-scanned"]["details"][0]


def _signed_clean(tmp_path: Path) -> tuple[Path, Path, Path]:
    attest = pytest.importorskip("mltrust.attest", reason="signing (mltrust.attest) not present")
    project = clean_project(tmp_path / "clean")
    keys = attest.generate_keypair(tmp_path / "keys" / "release", passphrase=None)
    attest.sign(project, key=keys.private_path)
    return project, keys.public_path, keys.private_path


def test_clean_signed_project_passes_and_tampering_fails(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, pub, _ = _signed_clean(tmp_path)
    code, out, err = _run(
        capsys, str(project), "--db", str(advisory_db), "--key", str(pub), "-f", "json"
    )
    assert code == 0, out + err
    report = json.loads(out)
    assert report["verdict"] == "pass"
    assert all(c["status"] in ("pass", "skip") for c in report["controls"])
    # the evidence (and .mltrust/evidence.db) does not break the signature on a second run
    code, _, _ = _run(capsys, str(project), "--db", str(advisory_db), "--key", str(pub))
    assert code == 0
    (project / "serve.py").write_text("import os\n")
    code, out, _ = _run(
        capsys, str(project), "--db", str(advisory_db), "--key", str(pub), "-f", "json"
    )
    assert code == 1
    signed = next(c for c in json.loads(out)["controls"] if c["id"] == "model-signed")
    assert signed["status"] == "fail"
    assert any("serve.py" in d for d in signed["details"])


def test_evidence_and_verdict_are_stored_signed(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_mod = pytest.importorskip("mltrust.store", reason="evidence store not present")
    project, pub, key = _signed_clean(tmp_path)
    code, out, _ = _run(
        capsys,
        str(project),
        "--db",
        str(advisory_db),
        "--key",
        str(pub),
        "--sign-key",
        str(key),
        "-f",
        "json",
    )
    assert code == 0
    stored = json.loads(out)["stored"]
    assert Path(stored["store"]) == project / ".mltrust" / "evidence.db"
    with store_mod.EvidenceStore.open(stored["store"]) as store:
        statements = store.statements()
        types = {s.to_dict()["predicate_type"] for s in statements}
        assert "https://cyclonedx.org/bom/v1.6" in types
        assert "https://mltrust.dev/scan/v1" in types
        assert all(
            s.to_dict().get("signer")
            for s in statements
            if s.to_dict()["predicate_type"].startswith("https://mltrust.dev/")
        )
        verdicts = store.verdicts()
        assert verdicts and verdicts[0].to_dict()["verdict"] == "pass"
    code, out, _ = _run(
        capsys,
        str(project),
        "--db",
        str(advisory_db),
        "--key",
        str(pub),
        "--no-store",
        "-f",
        "json",
    )
    assert "stored" not in json.loads(out)


def _sarif_validator():  # type: ignore[no-untyped-def]
    import jsonschema

    path = REPO.parent / "shared" / "data" / "schemas" / "sarif-schema-2.1.0.json"
    if not path.is_file():
        pytest.skip("SARIF schema not found at ../shared/data/schemas")
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def test_sarif_validates_and_has_line_numbers(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bad_project(tmp_path / "bad")
    out_file = tmp_path / "check.sarif"
    code, _, _ = _run(
        capsys,
        str(project),
        "--db",
        str(advisory_db),
        "-f",
        "sarif",
        "-o",
        str(out_file),
        "--no-store",
    )
    assert code == 1
    sarif = json.loads(out_file.read_text())
    _sarif_validator().validate(sarif)
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    results = run["results"]
    control = next(r for r in results if r["ruleId"] == "no-dangerous-code")
    assert rule_ids[control["ruleIndex"]] == "no-dangerous-code"
    pickle_call = next(r for r in results if r["ruleId"] == "MLT-CODE-001")
    loc = pickle_call["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "train.py"  # relative to the checked project
    assert loc["region"]["startLine"] == 6
    assert any(r["ruleId"] == "MLT-DEP-001" for r in results)


def test_junit_one_testcase_per_control(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bad_project(tmp_path / "bad")
    code, out, _ = _run(capsys, str(project), "--db", str(advisory_db), "-f", "junit", "--no-store")
    assert code == 1
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    from mltrust.policy import load_profile

    # one testcase per control of the profile
    assert len(cases) == int(suite.get("tests", "0")) == len(load_profile("default").controls)
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == int(suite.get("failures", "0")) >= 5
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == int(suite.get("skipped", "0"))
    for case in cases:
        assert case.get("classname") and case.get("name") and case.get("time") is not None
        float(case.get("time", "x"))
    names = {c.get("name", "").split(":")[0] for c in failures}
    assert "no-committed-secrets" in names
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "fail"


def test_markdown_and_html_reports(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bad_project(tmp_path / "bad")
    code, md, _ = _run(
        capsys, str(project), "--db", str(advisory_db), "-f", "markdown", "--no-store"
    )
    assert code == 1
    assert md.startswith("## mltrust check: ❌ **FAIL**")
    assert "| ❌ fail | 5 |" in md
    assert "### Failing controls" in md and "`no-vulnerable-dependencies`" in md
    code, html, _ = _run(capsys, str(project), "--db", str(advisory_db), "-f", "html", "--no-store")
    assert code == 1
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html and "<style>" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html.lower()


def test_html_and_markdown_escape_hostile_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "controls:\n"
        "  - id: xss\n"
        '    title: "<script>alert(1)</script> | pipe"\n'
        "    check: 'false'\n"
        "    details: \"['<img src=x onerror=alert(1)>']\"\n"
        '    remediation: "<b>bold</b>"\n'
    )
    folder = tmp_path / "empty"
    folder.mkdir()
    code, html, _ = _run(capsys, str(folder), "--profile", str(profile), "-f", "html", "--no-store")
    assert code == 1
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "<img" not in html and "<b>bold" not in html
    code, md, _ = _run(
        capsys, str(folder), "--profile", str(profile), "-f", "markdown", "--no-store"
    )
    assert "<script>" not in md and "<img" not in md
    assert "\\| pipe" in md


def test_broken_profile_exits_2_with_control_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("controls:\n  - {id: my-control-7, title: t, check: 'scan.files >'}\n")
    code, _, err = _run(capsys, str(tmp_path), "--profile", str(profile))
    assert code == 2
    assert "my-control-7" in err
    profile.write_text("controls:\n  - {id: typo-control, title: t, check: 'scan.filez == 0'}\n")
    code, out, _ = _run(
        capsys, str(tmp_path), "--profile", str(profile), "-f", "json", "--no-store"
    )
    assert code == 2
    (control,) = json.loads(out)["controls"]
    assert control["status"] == "error" and "typo-control" in control["message"]


def test_waivers_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    waivers = tmp_path / "waivers.yaml"
    soon = (dt.date.today() + dt.timedelta(days=300)).isoformat()
    waivers.write_text(
        "waivers:\n"
        "  - control: model-signed\n    justification: signed by the registry at release\n"
        f"    expires: {soon}\n"
        "  - control: ml-bom-present\n    justification: old exception\n"
        "    expires: 2001-01-01\n"
    )
    code, out, _ = _run(capsys, str(folder), "--waivers", str(waivers), "-f", "json", "--no-store")
    report = json.loads(out)
    signed = next(c for c in report["controls"] if c["id"] == "model-signed")
    assert signed["status"] == "waived"
    assert signed["waiver"]["justification"] == "signed by the registry at release"
    assert [w["control"] for w in report["expired_waivers"]] == ["ml-bom-present"]
    assert code == 0
    code, text, _ = _run(capsys, str(folder), "--waivers", str(waivers), "--no-store")
    assert "expired waiver" in text and "ml-bom-present" in text
    waivers.write_text("- control: model-signed\n  expires: 2999-01-01\n")
    code, _, err = _run(capsys, str(folder), "--waivers", str(waivers))
    assert code == 2 and "justification" in err


def test_image_report_and_bom_output_on_a_model_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mltrust.bom import validate_bom

    model = clean_project(tmp_path / "p") / "model.safetensors"
    report = tmp_path / "grype.json"
    report.write_text(
        json.dumps(
            {
                "matches": [
                    {
                        "vulnerability": {
                            "id": "CVE-2023-4911",
                            "severity": "High",
                            "fix": {"versions": ["2.36-9+deb12u3"]},
                        },
                        "artifact": {"name": "libc6", "version": "2.36-9", "type": "deb"},
                    }
                ]
            }
        )
    )
    bom_file = tmp_path / "bom.json"
    code, out, _ = _run(
        capsys,
        str(model),
        "--image-report",
        str(report),
        "--bom-output",
        str(bom_file),
        "-f",
        "json",
        "--no-store",
    )
    assert code == 1
    controls = {c["id"]: c for c in json.loads(out)["controls"]}
    assert controls["image-no-fixable-high"]["status"] == "fail"
    assert "libc6" in controls["image-no-fixable-high"]["details"][0]
    bom = json.loads(bom_file.read_text())
    validate_bom(bom)
    assert bom["components"][0]["name"] == "model.safetensors"


def test_other_profiles_run_end_to_end(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bad_project(tmp_path / "bad")
    for name in ("atlas", "owasp-ml-top10", "nist-ai-rmf"):
        code, out, _ = _run(
            capsys,
            str(project),
            "--db",
            str(advisory_db),
            "--profile",
            name,
            "-f",
            "json",
            "--no-store",
        )
        assert code == 1, name
        report = json.loads(out)
        assert report["profile"]["name"] == name
        assert not [c for c in report["controls"] if c["status"] == "error"]


def test_sarif_reports_expired_waivers_and_collector_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrust.evidence._licenses import LicenseCollector

    def boom(self: object, ctx: object) -> object:
        raise RuntimeError("simulated collector bug")

    monkeypatch.setattr(LicenseCollector, "collect", boom)
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    waivers = tmp_path / "w.yaml"
    waivers.write_text("- {control: model-signed, justification: old, expires: 2001-01-01}\n")
    code, out, _ = _run(capsys, str(folder), "--waivers", str(waivers), "-f", "sarif", "--no-store")
    assert code == 1  # model-signed fails (its waiver expired) and dominates the error
    sarif = json.loads(out)
    _sarif_validator().validate(sarif)
    ids = [r["ruleId"] for r in sarif["runs"][0]["results"]]
    assert "MLT-POL-001" in ids and "MLT-POL-002" in ids
    code, out, _ = _run(
        capsys, str(folder), "-f", "json", "--no-store", "--profile", str(_profile_file(tmp_path))
    )
    assert code == 2  # nothing failed, but a collector did: fail closed as an error
    assert json.loads(out)["collector_errors"][0]["collector"] == "licenses"


def _profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "always.yaml"
    path.write_text("controls:\n  - {id: always, title: t, check: 'true'}\n")
    return path


def test_environment_mode_reads_installed_packages(
    tmp_path: Path, advisory_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    code, out, _ = _run(
        capsys, str(folder), "--environment", "--db", str(advisory_db), "-f", "json", "--no-store"
    )
    report = json.loads(out)
    deps = report["evidence"]["deps"]
    assert deps["sources"] == ["environment"]
    assert deps["pinned"] > 20
    assert any(d["required_by"] == "mltrust" for d in deps["drifting"])
    licenses = report["evidence"]["licenses"]
    assert any(s["source"] == "package:click" and s["spdx"] for s in licenses["sources"])
    assert report["evidence"]["bom"]["packages"] == deps["pinned"]
    assert code in (0, 1)
    assert any(f["rule_id"] == "MLT-DEP-003" for f in report["findings"])
