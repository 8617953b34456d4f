"""Robustness collector: statements in .mltrust/ (bare or DSSE) summarised for the policy."""

from __future__ import annotations

import base64
import json
from pathlib import Path

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


def test_robustness_threshold_from_attestations(tmp_path: Path) -> None:
    folder = tmp_path / ".mltrust"
    folder.mkdir()
    (folder / "robustness.json").write_text(json.dumps(_statement([0.9, 0.62])))
    payload = base64.b64encode(json.dumps(_statement([0.8, 0.41])).encode()).decode()
    (folder / "robustness2.bundle.json").write_text(
        json.dumps(
            {
                "dsseEnvelope": {
                    "payload": payload,
                    "payloadType": "application/vnd.in-toto+json",
                    "signatures": [],
                }
            }
        )
    )
    (folder / "garbage.json").write_text("{not json")
    bundle = collect_evidence(CollectContext(tmp_path))
    section = bundle.document["robustness"]
    assert section["present"] is True
    assert section["attestations"] == 2
    assert section["min_robust_accuracy"] == 0.41
    assert section["min_clean_accuracy"] == 0.97
    verdict = evaluate(bundle.document, load_profile("default"))
    result = next(r for r in verdict.results if r.control.id == "robustness-threshold")
    assert result.status is ControlStatus.FAIL
    assert "0.41" in result.details[0]


def test_no_attestation_means_absent(tmp_path: Path) -> None:
    bundle = collect_evidence(CollectContext(tmp_path))
    assert bundle.document["robustness"]["present"] is False
    verdict = evaluate(bundle.document, load_profile("default"))
    result = next(r for r in verdict.results if r.control.id == "robustness-threshold")
    assert result.status is ControlStatus.SKIP
