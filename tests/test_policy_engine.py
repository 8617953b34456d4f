"""Policy engine: CEL controls compiled once, fail-closed evaluation, waivers, shipped profiles."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from _check_helpers import REPO
from mltrust.errors import ConfigError
from mltrust.evidence import CollectContext, all_collectors
from mltrust.policy import (
    ControlStatus,
    VerdictStatus,
    builtin_profiles,
    evaluate,
    load_profile,
    parse_profile,
    parse_waivers,
)

TODAY = dt.date(2026, 6, 1)


def _doc(**overrides: Any) -> dict[str, Any]:
    """An evidence document with every collector's absent section (as check builds it)."""
    doc: dict[str, Any] = {c.name: c.absent() for c in all_collectors()}
    doc["subject"] = {
        "name": "demo",
        "digest": "sha256:" + "0" * 64,
        "kind": "folder",
        "files": 1,
        "not_evaluated": [],
        "unanalysed": [],
        "unanalysed_untracked": [],
        "git_index": False,
    }
    doc["errors"] = []
    for key, value in overrides.items():
        doc[key] = {**doc[key], **value}
    return doc


def _profile(*controls: dict[str, Any]) -> Any:
    return parse_profile({"name": "t", "controls": list(controls)})


def test_compile_error_names_the_control() -> None:
    with pytest.raises(ConfigError, match="control broken-one: check does not compile"):
        _profile(
            {"id": "ok", "title": "t", "check": "true"},
            {"id": "broken-one", "title": "t", "check": "scan.files >"},
        )
    with pytest.raises(ConfigError, match="control c1: only_if does not compile"):
        _profile({"id": "c1", "title": "t", "check": "true", "only_if": "(("})


@pytest.mark.parametrize(
    ("control", "match"),
    [
        ({"id": "x", "title": "t"}, "check must be"),
        ({"id": "x", "title": "t", "check": "true", "impact": 3}, "impact"),
        ({"id": "x", "title": "t", "check": "true", "tags": {"mitre": ["a"]}}, "unknown tag"),
        ({"id": "x", "title": "t", "check": "true", "enforcement": "maybe"}, "enforcement"),
        ({"id": "x", "title": "t", "check": "true", "chek": "typo"}, "unknown key"),
        ({"id": "bad id!", "title": "t", "check": "true"}, "id must be"),
        ({"id": "x", "check": "true"}, "title is required"),
    ],
)
def test_profile_validation(control: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _profile(control)


def test_duplicate_and_empty_profiles_rejected() -> None:
    with pytest.raises(ConfigError, match="defined twice"):
        _profile(
            {"id": "a", "title": "t", "check": "true"}, {"id": "a", "title": "t", "check": "true"}
        )
    with pytest.raises(ConfigError, match="non-empty 'controls'"):
        parse_profile({"controls": []})


def test_evaluation_errors_fail_closed_with_control_id() -> None:
    profile = _profile(
        {"id": "missing-key", "title": "t", "check": "scan.no_such_key == 0"},
        {"id": "type-error", "title": "t", "check": "scan.files + 'x' == 1"},
        {"id": "not-bool", "title": "t", "check": "scan.files"},
        {"id": "bad-only-if", "title": "t", "check": "true", "only_if": "nope.x"},
    )
    verdict = evaluate(_doc(), profile, today=TODAY)
    assert verdict.status is VerdictStatus.ERROR
    assert verdict.exit_code == 2
    for r in verdict.results:
        assert r.status is ControlStatus.ERROR
        assert r.control.id in r.message
    assert "no_such_key" in verdict.results[0].message
    assert "not bool" in verdict.results[2].message


def test_only_if_skip_warn_and_fail() -> None:
    profile = _profile(
        {"id": "skipped", "title": "t", "only_if": "scan.present", "check": "false"},
        {"id": "warned", "title": "t", "enforcement": "warn", "check": "false"},
        {"id": "passed", "title": "t", "check": "signature.status == 'absent'"},
    )
    verdict = evaluate(_doc(), profile, today=TODAY)
    assert [r.status for r in verdict.results] == [
        ControlStatus.SKIP,
        ControlStatus.WARN,
        ControlStatus.PASS,
    ]
    assert verdict.status is VerdictStatus.PASS
    failing = _profile({"id": "f", "title": "t", "check": "false", "details": "['one', 'two']"})
    verdict = evaluate(_doc(), failing, today=TODAY)
    assert verdict.status is VerdictStatus.FAIL and verdict.exit_code == 1
    assert verdict.results[0].details == ("one", "two")


def test_collector_error_makes_verdict_error() -> None:
    profile = _profile({"id": "p", "title": "t", "check": "true"})
    verdict = evaluate(
        _doc(), profile, today=TODAY, collector_errors=[{"collector": "code", "message": "boom"}]
    )
    assert verdict.status is VerdictStatus.ERROR


def _waivers(*items: dict[str, Any]) -> Any:
    return parse_waivers({"waivers": list(items)}, today=TODAY, max_days=3650)


def test_waiver_applies_until_expiry_then_stops() -> None:
    profile = _profile({"id": "model-signed", "title": "t", "check": "false"})
    waivers = _waivers(
        {
            "control": "model-signed",
            "justification": "signing key rotation",
            "expires": "2026-06-01",
        }
    )
    on_day = evaluate(_doc(), profile, waivers=waivers, today=TODAY)
    assert on_day.results[0].status is ControlStatus.WAIVED
    assert on_day.status is VerdictStatus.PASS
    assert "signing key rotation" in on_day.results[0].message
    after = evaluate(_doc(), profile, waivers=waivers, today=TODAY + dt.timedelta(days=1))
    assert after.results[0].status is ControlStatus.FAIL
    assert "waiver expired on 2026-06-01" in after.results[0].message
    assert after.expired_waivers == waivers
    assert after.status is VerdictStatus.FAIL


def test_waiver_subject_glob_and_errors_not_waivable() -> None:
    profile = _profile(
        {"id": "c", "title": "t", "check": "false"}, {"id": "e", "title": "t", "check": "nope == 1"}
    )
    waivers = _waivers(
        {"control": "c", "justification": "j", "expires": "2030-01-01", "subject": "other-*"},
        {"control": "e", "justification": "j", "expires": "2030-01-01"},
        {"control": "unknown", "justification": "j", "expires": "2030-01-01"},
    )
    verdict = evaluate(_doc(), profile, waivers=waivers, today=TODAY)
    assert verdict.results[0].status is ControlStatus.FAIL  # subject does not match
    assert verdict.results[1].status is ControlStatus.ERROR  # errors are never waived
    assert "unknown" in [w.control for w in verdict.unused_waivers]
    matching = _waivers(
        {"control": "c", "justification": "j", "expires": "2030-01-01", "subject": "de*"}
    )
    assert evaluate(_doc(), profile, waivers=matching, today=TODAY).results[0].status is (
        ControlStatus.WAIVED
    )


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ({"control": "c", "expires": "2030-01-01"}, "justification is required"),
        ({"control": "c", "justification": "  ", "expires": "2030-01-01"}, "justification"),
        ({"control": "c", "justification": "j"}, "expires"),
        ({"control": "c", "justification": "j", "expires": "next year"}, "YYYY-MM-DD"),
        ({"justification": "j", "expires": "2030-01-01"}, "name exactly one of control"),
        ({"control": "c", "justification": "j", "expires": "2030-01-01", "until": 1}, "unknown"),
    ],
)
def test_waiver_config_errors(item: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _waivers(item)


def test_waiver_dates_from_yaml() -> None:
    (w,) = parse_waivers(
        yaml.safe_load("- control: c\n  justification: j\n  expires: 2027-01-31\n")
    )
    assert w.expires == dt.date(2027, 1, 31)


def test_every_shipped_profile_compiles_and_evaluates_absent_evidence() -> None:
    assert set(builtin_profiles()) >= {"default", "atlas", "owasp-ml-top10", "nist-ai-rmf"}
    for name in builtin_profiles():
        profile = load_profile(name)
        verdict = evaluate(_doc(), profile, today=TODAY)
        errors = [r.message for r in verdict.results if r.status is ControlStatus.ERROR]
        assert errors == [], f"{name}: {errors}"
        for control in profile.controls:
            assert control.remediation, f"{name}/{control.id} has no remediation"


def _atlas() -> dict[str, str]:
    path = REPO.parent / "shared" / "data" / "atlas" / "dist" / "ATLAS.yaml"
    if not path.is_file():
        pytest.skip("ATLAS.yaml not found at ../shared/data/atlas/dist")
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    names: dict[str, str] = {}
    for matrix in data["matrices"]:
        for kind in ("mitigations", "techniques", "tactics"):
            for item in matrix.get(kind, []):
                names[item["id"]] = item["name"]
    return names


def test_atlas_tags_exist_and_atlas_profile_titles_match_atlas_names() -> None:
    names = _atlas()
    for name in builtin_profiles():
        for control in load_profile(name).controls:
            for tag in control.tags.get("atlas", ()):
                assert tag in names, f"{name}/{control.id}: unknown ATLAS id {tag}"
    atlas = load_profile("atlas")
    for m in ("AML.M0011", "AML.M0013", "AML.M0014", "AML.M0016", "AML.M0023"):
        assert atlas.control(m) is not None, m
    for control in atlas.controls:
        assert control.title == names[control.id]
        assert control.tags["atlas"] == (control.id,)


OWASP_ML = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}


def test_owasp_and_nist_identifiers() -> None:
    owasp = load_profile("owasp-ml-top10")
    for control in owasp.controls:
        assert OWASP_ML[control.id] == control.title
    for name in builtin_profiles():
        for control in load_profile(name).controls:
            for tag in control.tags.get("owasp_ml", ()):
                assert tag in OWASP_ML
            for tag in control.tags.get("nist_ai_rmf", ()):
                assert re.fullmatch(r"(GOVERN|MAP|MEASURE|MANAGE) \d+\.\d+", tag), tag


def test_profile_from_file_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("controls:\n  - {id: c, title: t, check: 'bom.present'}\n")
    assert load_profile(path).name == "mine"
    with pytest.raises(ConfigError, match="no profile"):
        load_profile("does-not-exist")
    (tmp_path / "bad.yaml").write_text("controls: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(tmp_path / "bad.yaml")


def test_evaluation_under_one_millisecond_per_control(tmp_path: Path) -> None:
    from _check_helpers import bad_project
    from mltrust.evidence import collect_evidence

    bundle = collect_evidence(
        CollectContext(bad_project(tmp_path / "p"), advisory_db=tmp_path / "none.db")
    )
    profile = load_profile("default")
    evaluate(bundle.document, profile, today=TODAY)  # warm up
    rounds = 50
    started = time.perf_counter()
    for _ in range(rounds):
        evaluate(bundle.document, profile, today=TODAY)
    per_control = (time.perf_counter() - started) / rounds / len(profile.controls)
    assert per_control < 1e-3, f"{per_control * 1e6:.0f} µs per control"


def test_top_level_evaluate_verb_accepts_bundle_and_profile_name(tmp_path: Path) -> None:
    import mltrust
    from mltrust.evidence import collect_evidence

    (tmp_path / "model.pkl").write_bytes(
        b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    )
    bundle = collect_evidence(CollectContext(tmp_path))
    verdict = mltrust.evaluate(bundle, profile="atlas", today=TODAY)
    assert verdict.profile.name == "atlas"
    assert verdict.status is VerdictStatus.FAIL
    assert mltrust.evaluate(bundle.document).profile.name == "default"
    with pytest.raises(ConfigError, match="cannot evaluate"):
        evaluate(42)
