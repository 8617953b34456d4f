"""Rules reported by drift monitoring and the per-request scorers."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

DATA_DRIFT = define_rule(
    "MLT-MON-001",
    "data-drift",
    "Current data differ significantly from the reference data (per-feature tests after "
    "multiple-testing correction, MMD or classifier-based drift) (OWASP ML08 model skewing).",
    Severity.MEDIUM,
    remediation="Investigate the drifted features' sources; retrain or recalibrate if the "
    "change is legitimate, block the feed if it is not.",
    tags=("monitoring", "drift"),
)
ANOMALOUS_INPUTS = define_rule(
    "MLT-MON-002",
    "anomalous-inputs",
    "Inputs scored above a scorer's calibrated threshold (out of distribution or possibly "
    "adversarial).",
    Severity.LOW,
    atlas=("AML.T0043",),
    remediation="Review the flagged requests; consider blocking mode on the gateway.",
    tags=("monitoring", "detector"),
)
