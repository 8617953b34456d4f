"""A robust-accuracy control states its threat model; evidence under another one never
satisfies it (the control fails closed and says how the evidence's threat model differs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mltrust.errors import ConfigError
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile, parse_profile

PREDICATE = "https://mltrust.dev/robustness/v1"
UNIT_BOX = {"lower": 0.0, "upper": 1.0}


def _model(root: Path) -> str:
    from mltrust.digest import sha256_file

    model = root / "model.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return sha256_file(model)


def _evidence(tmp_path: Path, threat: dict, results: list[tuple[float, float]]) -> dict:
    """A real signed robustness statement beside a model, collected as `mltrust check` does."""
    attest = pytest.importorskip("mltrust.attest", reason="signing (mltrust.attest) not present")
    project = tmp_path / "p"
    project.mkdir()
    keys = attest.generate_keypair(tmp_path / "keys" / "tm", passphrase=None)
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": _model(project)}}],
        "predicateType": PREDICATE,
        "predicate": {
            "attack": threat.get("attack", "pgd"),
            "clean_accuracy": 0.97,
            "threat_model": threat,
            "results": [{"eps": e, "robust_accuracy": a, "bound": "upper"} for e, a in results],
        },
    }
    bundle = attest.sign_statement(statement, attest.load_private_key(keys.private_path))
    (project / ".mltrust").mkdir()
    (project / ".mltrust" / "robustness.json").write_text(json.dumps(bundle))
    return collect_evidence(CollectContext(project, keys=(keys.public_path,))).document


def _pgd(domain: object = UNIT_BOX, norm: str = "inf", steps: int = 40, restarts: int = 2) -> dict:
    return {"attack": "pgd", "norm": norm, "domain": domain, "steps": steps, "restarts": restarts}


def _default_result(document: dict):  # type: ignore[no-untyped-def]
    verdict = evaluate(document, load_profile("default"))
    return next(r for r in verdict.results if r.control.id == "robustness-threshold")


def _profile(threat_model: dict | None, check: str = "robustness.min_robust_accuracy >= 0.5"):  # type: ignore[no-untyped-def]
    control: dict = {"id": "robust", "title": "Robust accuracy", "check": check}
    if threat_model is not None:
        control["threat_model"] = threat_model
    return parse_profile({"name": "t", "controls": [control]})


def test_figure_under_the_named_threat_model_passes(tmp_path: Path) -> None:
    result = _default_result(_evidence(tmp_path, _pgd(), [(0.05, 0.8)]))
    assert result.status is ControlStatus.PASS
    assert result.details == () or all("0.8" in d for d in result.details)


def test_attack_pixel_scale_domain_does_not_satisfy_unit_domain_control(tmp_path: Path) -> None:
    """eps 0.05 on features in [0, 255] is a 255 times weaker adversary than on [0, 1]: the
    domain kind alone ("bounded") used to let it through."""
    document = _evidence(tmp_path, _pgd({"lower": 0, "upper": 255}), [(0.05, 0.99)])
    result = _default_result(document)
    assert result.status is ControlStatus.FAIL
    assert "threat model differs" in result.message
    assert "domain [0, 255]" in result.message


def test_attack_per_feature_box_does_not_satisfy_a_shared_box(tmp_path: Path) -> None:
    document = _evidence(tmp_path, _pgd({"lower": [0, 0], "upper": [1, 255]}), [(0.05, 0.99)])
    result = _default_result(document)
    assert result.status is ControlStatus.FAIL
    assert "per-feature bounds" in result.message


def test_attack_other_norm_fails_closed_with_the_difference(tmp_path: Path) -> None:
    result = _default_result(_evidence(tmp_path, _pgd(norm="2"), [(0.05, 0.99)]))
    assert result.status is ControlStatus.FAIL
    assert "norm 2" in result.message and "norm inf, eps 0.05, domain [0, 1]" in result.message


def test_attack_figure_only_at_a_smaller_epsilon_fails_closed(tmp_path: Path) -> None:
    result = _default_result(_evidence(tmp_path, _pgd(), [(0.01, 0.99)]))
    assert result.status is ControlStatus.FAIL
    assert "eps 0.01: matches but at another eps" in result.message


def test_smaller_epsilon_figure_still_bounds_the_named_one(tmp_path: Path) -> None:
    result = _default_result(_evidence(tmp_path, _pgd(), [(0.02, 0.4), (0.05, 0.9)]))
    assert result.status is ControlStatus.FAIL
    assert result.message == "check is false"


def test_attack_weak_attack_does_not_satisfy_a_control_that_names_attack_strength(
    tmp_path: Path,
) -> None:
    """A one-step attack's figure bounds the true robust accuracy far more loosely."""
    profile = _profile(
        {"norm": "linf", "epsilon": 0.05, "domain": [0, 1], "min_steps": 20, "min_restarts": 1}
    )
    weak = _evidence(tmp_path, _pgd(steps=1, restarts=0), [(0.05, 0.99)])
    (result,) = evaluate(weak, profile).results
    assert result.status is ControlStatus.FAIL
    assert "1 attack steps" in result.message


def test_attack_strength_met_and_attack_named(tmp_path: Path) -> None:
    tm = {"norm": "linf", "epsilon": 0.05, "domain": [0, 1], "min_steps": 20, "attacks": ["pgd"]}
    document = _evidence(tmp_path, _pgd(steps=40, restarts=2), [(0.05, 0.7)])
    (result,) = evaluate(document, _profile(tm)).results
    assert result.status is ControlStatus.PASS
    (other,) = evaluate(document, _profile(dict(tm, attacks=["autoattack"]))).results
    assert other.status is ControlStatus.FAIL and "attack pgd" in other.message


def test_l2_control_matches_l2_evidence_only(tmp_path: Path) -> None:
    document = _evidence(tmp_path, _pgd(norm="2"), [(0.5, 0.75)])
    (ok,) = evaluate(document, _profile({"norm": "l2", "epsilon": 0.5, "domain": [0, 1]})).results
    assert ok.status is ControlStatus.PASS
    (no,) = evaluate(
        document, _profile({"norm": "l2", "epsilon": 0.5, "domain": "unbounded"})
    ).results
    assert no.status is ControlStatus.FAIL


def test_no_robustness_evidence_fails_a_control_without_only_if(tmp_path: Path) -> None:
    (result,) = evaluate(
        {"robustness": {"present": False, "figures": []}},
        _profile({"norm": "linf", "epsilon": 0.05, "domain": [0, 1]}),
    ).results
    assert result.status is ControlStatus.FAIL
    assert "no robust-accuracy figure" in result.message


@pytest.mark.parametrize(
    "check",
    [
        "robustness.min_robust_accuracy >= 0.5",
        "robustness.by_threat_model.exists(t, t.robust_accuracy >= 0.5)",
        "robustness.figures.all(f, f.eps > 0.0)",
    ],
)
def test_control_on_robust_accuracy_must_state_its_threat_model(check: str) -> None:
    with pytest.raises(ConfigError, match="must state the threat model"):
        _profile(None, check)


@pytest.mark.parametrize(
    "threat_model",
    [
        {"norm": "linf", "epsilon": 0.05},  # no domain
        {"norm": "l3", "epsilon": 0.05, "domain": [0, 1]},
        {"norm": "linf", "epsilon": 0, "domain": [0, 1]},
        {"norm": "linf", "epsilon": True, "domain": [0, 1]},
        {"norm": "linf", "epsilon": 0.05, "domain": [1, 0]},
        {"norm": "linf", "epsilon": 0.05, "domain": "bounded"},
        {"norm": "linf", "epsilon": 0.05, "domain": [0, 1], "steps": 3},  # unknown key
        {"norm": "linf", "epsilon": 0.05, "domain": [0, 1], "min_steps": -1},
        "linf 0.05",
    ],
)
def test_malformed_threat_model_is_rejected(threat_model: object) -> None:
    with pytest.raises(ConfigError, match="threat_model"):
        _profile(threat_model)  # type: ignore[arg-type]


def test_every_shipped_robust_accuracy_control_states_a_threat_model() -> None:
    from mltrust.policy._profile import builtin_profiles

    for name in builtin_profiles():
        for control in load_profile(name).controls:
            if "robust_accuracy" in control.check_source:
                assert control.threat_model is not None, (name, control.id)
                assert control.threat_model.domain == (0.0, 1.0)
