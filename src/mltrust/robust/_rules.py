"""Rules reported by the robustness, privacy and poisoning checks."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

LOW_ROBUST_ACCURACY = define_rule(
    "MLT-ROB-001",
    "low-robust-accuracy",
    "Under the evaluated evasion attack the model's accuracy falls below the required level "
    "within the perturbation budget ε (OWASP ML01 input manipulation).",
    Severity.MEDIUM,
    atlas=("AML.T0043",),
    remediation="Harden the model (`mltrust robustness harden`), restrict or validate inputs, "
    "or accept a smaller ε in the threat model.",
    tags=("robustness", "evasion"),
)
MEMBERSHIP_LEAKAGE = define_rule(
    "MLT-ROB-002",
    "membership-inference-leakage",
    "A membership-inference attack tells training records from unseen ones better than the "
    "allowed AUC (OWASP ML04).",
    Severity.MEDIUM,
    atlas=("AML.T0024.000",),
    remediation="Regularise more, train with differential privacy, or return labels instead "
    "of scores.",
    tags=("privacy",),
)
SUSPECT_LABELS = define_rule(
    "MLT-ROB-003",
    "suspect-training-labels",
    "More training rows than allowed carry labels that a cross-validated model confidently "
    "contradicts: likely flipped or planted labels (OWASP ML02 data poisoning).",
    Severity.MEDIUM,
    atlas=("AML.T0020",),
    remediation="Review the flagged rows and their provenance before training on them.",
    tags=("poisoning",),
)
BACKDOOR_TRIGGER = define_rule(
    "MLT-ROB-004",
    "backdoor-trigger",
    "A small input patch sends most inputs to one class, or a class's internal activations "
    "split into a small separate cluster: signs of a planted backdoor.",
    Severity.HIGH,
    atlas=("AML.T0020", "AML.T0018"),
    remediation="Retrain from audited data; do not deploy the model until the trigger is "
    "explained.",
    tags=("poisoning", "backdoor"),
)
