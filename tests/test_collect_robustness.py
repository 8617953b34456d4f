"""Robustness collector: statements in .mltrust/ (bare or DSSE) summarised for the policy."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, evaluate, load_profile

PREDICATE = "https://mltrust.dev/robustness/v1"


def _statement(robust: list[float]) -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": "0" * 64}}],
        "predicateType": PREDICATE,
        "predicate": {
            "attack": "pgd",
            "clean_accuracy": 0.97,
            "results": [
                {"eps": 0.05 * (i + 1), "robust_accuracy": r} for i, r in enumerate(robust)
            ],
        },
    }


def _signed(tmp_path: Path, robust: list[float], digest: str):  # type: ignore[no-untyped-def]
    attest = pytest.importorskip("mltrust.attest", reason="signing (mltrust.attest) not present")
    keys = attest.generate_keypair(tmp_path / "keys" / "robust", passphrase=None)
    statement = _statement(robust)
    statement["subject"][0]["digest"]["sha256"] = digest
    bundle = attest.sign_statement(statement, attest.load_private_key(keys.private_path))
    return keys, bundle


def _model(root: Path) -> str:
    from mltrust.digest import sha256_file

    model = root / "model.safetensors"
    model.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return sha256_file(model)


def test_robustness_threshold_from_signed_attestation(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    keys, bundle = _signed(tmp_path, [0.8, 0.41], _model(project))
    folder = project / ".mltrust" / "attestations"
    folder.mkdir(parents=True)
    (folder / "robustness.bundle.json").write_text(json.dumps(bundle))
    (project / ".mltrust" / "garbage.json").write_text("{not json")
    evidence = collect_evidence(CollectContext(project, keys=(keys.public_path,)))
    section = evidence.document["robustness"]
    assert section["present"] is True
    assert section["attestations"] == 1
    assert section["min_robust_accuracy"] == 0.41
    assert section["min_clean_accuracy"] == 0.97
    assert [i["source"] for i in section["ignored"]] == [".mltrust/garbage.json"]
    verdict = evaluate(evidence.document, load_profile("default"))
    result = next(r for r in verdict.results if r.control.id == "robustness-threshold")
    assert result.status is ControlStatus.FAIL
    # recorded without a threat model: not compared, and the message says what differs
    assert "threat model differs" in result.message
    assert "eps 0.1: norm unrecorded" in result.message


def test_attack_hand_edited_evidence_cannot_flip_fail_to_pass(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    keys, bundle = _signed(tmp_path, [0.3], _model(project))
    folder = project / ".mltrust"
    (folder / "attestations").mkdir(parents=True)
    (folder / "attestations" / "robustness.bundle.json").write_text(json.dumps(bundle))
    # The attacker adds a bare statement, an envelope with the payload rewritten (signature
    # kept), and a bare envelope without a signature, all claiming robust accuracy 0.99.
    (folder / "robustness.json").write_text(json.dumps(_statement([0.99])))
    edited = json.loads(json.dumps(bundle))
    forged = json.loads(base64.b64decode(edited["dsseEnvelope"]["payload"]))
    forged["predicate"]["results"][0]["robust_accuracy"] = 0.99
    edited["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(forged).encode()).decode()
    (folder / "robustness-edited.json").write_text(json.dumps(edited))
    payload = base64.b64encode(json.dumps(_statement([0.99])).encode()).decode()
    (folder / "robustness2.json").write_text(
        json.dumps(
            {"payload": payload, "payloadType": "application/vnd.in-toto+json", "signatures": []}
        )
    )
    evidence = collect_evidence(CollectContext(project, keys=(keys.public_path,)))
    section = evidence.document["robustness"]
    assert section["min_robust_accuracy"] == 0.3
    assert section["sources"] == [".mltrust/attestations/robustness.bundle.json"]
    assert sorted(i["source"] for i in section["ignored"]) == [
        ".mltrust/robustness-edited.json",
        ".mltrust/robustness.json",
        ".mltrust/robustness2.json",
    ]
    verdict = evaluate(evidence.document, load_profile("default"))
    result = next(r for r in verdict.results if r.control.id == "robustness-threshold")
    assert result.status is ControlStatus.FAIL
    assert any(f.rule_id == "MLT-EVD-001" for f in evidence.findings)


def test_attack_unsigned_evidence_alone_counts_for_nothing(tmp_path: Path) -> None:
    folder = tmp_path / ".mltrust"
    folder.mkdir()
    (folder / "robustness.json").write_text(json.dumps(_statement([0.99])))
    evidence = collect_evidence(CollectContext(tmp_path))
    section = evidence.document["robustness"]
    assert section["present"] is False
    assert section["ignored"] == [
        {"source": ".mltrust/robustness.json", "reason": "not signed (a bare statement)"}
    ]


def test_attack_signed_evidence_about_another_model_is_ignored(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    _model(project)
    keys, bundle = _signed(tmp_path, [0.99], "ab" * 32)
    (project / ".mltrust").mkdir()
    (project / ".mltrust" / "robustness.json").write_text(json.dumps(bundle))
    evidence = collect_evidence(CollectContext(project, keys=(keys.public_path,)))
    section = evidence.document["robustness"]
    assert section["present"] is False
    assert "another subject" in section["ignored"][0]["reason"]


def test_no_attestation_means_absent(tmp_path: Path) -> None:
    bundle = collect_evidence(CollectContext(tmp_path))
    assert bundle.document["robustness"]["present"] is False
    verdict = evaluate(bundle.document, load_profile("default"))
    result = next(r for r in verdict.results if r.control.id == "robustness-threshold")
    assert result.status is ControlStatus.SKIP


def _figures_statement(
    project: Path, tmp_path: Path, threat: dict, results: list[tuple[float, float]]
):  # type: ignore[no-untyped-def]
    attest = pytest.importorskip("mltrust.attest", reason="signing (mltrust.attest) not present")
    keys = attest.generate_keypair(tmp_path / "keys" / "tm", passphrase=None)
    statement = _statement([])
    statement["subject"][0]["digest"]["sha256"] = _model(project)
    statement["predicate"]["threat_model"] = threat
    statement["predicate"]["results"] = [{"eps": e, "robust_accuracy": a} for e, a in results]
    bundle = attest.sign_statement(statement, attest.load_private_key(keys.private_path))
    (project / ".mltrust").mkdir(exist_ok=True)
    (project / ".mltrust" / "robustness.json").write_text(json.dumps(bundle))
    return keys


def _threshold(project: Path, keys, profile: str = "default"):  # type: ignore[no-untyped-def]
    evidence = collect_evidence(CollectContext(project, keys=(keys.public_path,)))
    verdict = evaluate(evidence.document, load_profile(profile))
    wanted = {"default": "robustness-threshold", "atlas": "AML.M0003", "owasp-ml-top10": "ML01"}
    return evidence.document["robustness"], next(
        r for r in verdict.results if r.control.id == wanted[profile]
    )


BOX = {"norm": "inf", "domain": {"lower": 0.0, "upper": 1.0}, "attack": "pgd"}


@pytest.mark.parametrize("profile", ["default", "atlas", "owasp-ml-top10"])
def test_robustness_passes_only_under_the_named_threat_model(tmp_path: Path, profile: str) -> None:
    project = tmp_path / "p"
    project.mkdir()
    keys = _figures_statement(project, tmp_path, BOX, [(0.05, 0.8), (0.1, 0.3)])
    section, result = _threshold(project, keys, profile)
    assert [(t["eps"], t["robust_accuracy"]) for t in section["by_threat_model"]] == [
        (0.05, 0.8),
        (0.1, 0.3),
    ]
    # 0.3 at eps 0.1 is a larger budget than the one named: it is not compared
    assert result.status is ControlStatus.PASS


def test_attack_unbounded_figures_are_not_compared_under_a_bounded_threat_model(
    tmp_path: Path,
) -> None:
    project = tmp_path / "p"
    project.mkdir()
    open_domain = dict(BOX, domain="unbounded")
    keys = _figures_statement(project, tmp_path, open_domain, [(0.05, 0.9)])
    _, result = _threshold(project, keys)
    assert result.status is ControlStatus.FAIL
    assert "threat model differs" in result.message and "domain unbounded" in result.message


def test_attack_l2_figure_does_not_stand_in_for_linf(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    keys = _figures_statement(project, tmp_path, dict(BOX, norm="2"), [(0.05, 0.95)])
    _, result = _threshold(project, keys)
    assert result.status is ControlStatus.FAIL


def test_smaller_budget_figure_bounds_the_named_one(tmp_path: Path) -> None:
    # A figure at eps 0.02 of 0.4 means the accuracy at 0.05 is at most 0.4, whatever a weaker
    # attack reported at 0.05.
    project = tmp_path / "p"
    project.mkdir()
    keys = _figures_statement(project, tmp_path, BOX, [(0.02, 0.4), (0.05, 0.9)])
    section, result = _threshold(project, keys)
    assert section["by_threat_model"][1]["robust_accuracy"] == 0.4
    assert result.status is ControlStatus.FAIL


def test_figure_only_at_other_budgets_fails_closed(tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    keys = _figures_statement(project, tmp_path, BOX, [(0.1, 0.9)])
    _, result = _threshold(project, keys)
    assert result.status is ControlStatus.FAIL
