"""The policy engine: profiles of CEL controls over an evidence document, waivers, verdicts.

>>> from mltrust.policy import evaluate, load_profile
>>> profile = load_profile("default")
>>> verdict = evaluate(bundle.document, profile)      # doctest: +SKIP
>>> verdict.status                                    # doctest: +SKIP
<VerdictStatus.FAIL: 'fail'>
"""

from __future__ import annotations

from mltrust.policy import _rules as _rules  # registers the engine's rules
from mltrust.policy._engine import (
    EvaluationContext,
    apply_finding_waivers,
    evaluate,
    evaluate_control,
)
from mltrust.policy._profile import (
    TAG_FRAMEWORKS,
    Control,
    Enforcement,
    Profile,
    builtin_profiles,
    control_catalogue,
    load_profile,
    parse_profile,
)
from mltrust.policy._verdict import ControlResult, ControlStatus, Verdict, VerdictStatus
from mltrust.policy._waivers import Waiver, load_waivers, parse_waivers

__all__ = [
    "TAG_FRAMEWORKS",
    "Control",
    "ControlResult",
    "ControlStatus",
    "Enforcement",
    "EvaluationContext",
    "Profile",
    "Verdict",
    "VerdictStatus",
    "Waiver",
    "apply_finding_waivers",
    "builtin_profiles",
    "control_catalogue",
    "evaluate",
    "evaluate_control",
    "load_profile",
    "load_waivers",
    "parse_profile",
    "parse_waivers",
]
