"""Rules reported by the policy engine itself (one per kind of control outcome)."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

CONTROL_FAILED = define_rule(
    "MLT-POL-001",
    "control-failed",
    "A policy control's check evaluated to false on the collected evidence.",
    Severity.HIGH,
    remediation="Follow the control's remediation, or record a justified, expiring waiver.",
)
CONTROL_ERROR = define_rule(
    "MLT-POL-002",
    "control-error",
    "A policy control could not be evaluated (missing evidence or a type error in its CEL "
    "expression); it is treated as not passed (fail closed).",
    Severity.HIGH,
    remediation="Fix the control's expression or provide the evidence it reads.",
)
COLLECTOR_ERROR = define_rule(
    "MLT-POL-003",
    "collector-error",
    "An evidence collector failed; the evidence it should have produced is missing.",
    Severity.HIGH,
    remediation="Rerun with -vv to see the failure; report it if it is a bug.",
)
WAIVER_EXPIRED = define_rule(
    "MLT-POL-004",
    "waiver-expired",
    "A waiver's expiry date has passed; the control it covered applies again.",
    Severity.MEDIUM,
    remediation="Fix the underlying issue or renew the waiver with a new justification.",
)
CONTROL_WARNING = define_rule(
    "MLT-POL-005",
    "control-warning",
    "A warning-level control's check evaluated to false; it does not fail the verdict.",
    Severity.LOW,
    remediation="Follow the control's remediation.",
)
