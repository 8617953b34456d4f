"""Rules for engine-level findings of the policy gate (reported next to control results)."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

COLLECTOR_ERROR = define_rule(
    "MLT-POL-001",
    "collector-error",
    "An evidence collector failed; the evidence it should have produced is missing, so the "
    "verdict is an error (fail closed).",
    Severity.HIGH,
    remediation="Rerun with -vv to see the failure; report it if it is a bug.",
)
WAIVER_EXPIRED = define_rule(
    "MLT-POL-002",
    "waiver-expired",
    "A waiver's expiry date has passed; the control it covered applies again.",
    Severity.MEDIUM,
    remediation="Fix the underlying issue or renew the waiver with a new justification.",
)
