"""Results of evaluating a profile: one :class:`ControlResult` per control, one
:class:`Verdict` overall."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mltrust.policy._profile import Control, Profile
from mltrust.policy._waivers import Waiver

__all__ = ["ControlResult", "ControlStatus", "Verdict", "VerdictStatus"]


class ControlStatus(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - not a password
    FAIL = "fail"
    #: A warning-level control whose check was false.
    WARN = "warn"
    #: Could not be evaluated: never counted as passed.
    ERROR = "error"
    #: ``only_if`` was false: the control does not apply to this subject.
    SKIP = "skip"
    #: Failed, but covered by a valid waiver.
    WAIVED = "waived"


class VerdictStatus(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - not a password
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class ControlResult:
    control: Control
    status: ControlStatus
    message: str
    details: tuple[str, ...] = ()
    waiver: Waiver | None = None
    #: A waiver for this control that expired (and so did not apply).
    expired_waiver: Waiver | None = None
    micros: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.control.id,
            "title": self.control.title,
            "status": self.status.value,
            "impact": self.control.impact,
            "severity": self.control.severity,
            "enforcement": self.control.enforcement.value,
            "message": self.message,
            "details": list(self.details),
            "tags": {k: list(v) for k, v in self.control.tags.items()},
            "remediation": self.control.remediation,
            "micros": round(self.micros, 2),
        }
        if self.waiver is not None:
            out["waiver"] = self.waiver.to_dict()
        if self.expired_waiver is not None:
            out["expired_waiver"] = self.expired_waiver.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    status: VerdictStatus
    profile: Profile
    subject: Mapping[str, Any]
    results: tuple[ControlResult, ...]
    #: ``{"collector", "message"}`` of collectors that failed (make the verdict an error).
    collector_errors: tuple[Mapping[str, str], ...] = ()
    expired_waivers: tuple[Waiver, ...] = ()
    unused_waivers: tuple[Waiver, ...] = ()
    evaluated_at: str = ""
    seconds: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Finding fingerprint -> the finding waiver that removed it from the evidence.
    waived_findings: Mapping[str, Waiver] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {VerdictStatus.PASS: 0, VerdictStatus.FAIL: 1, VerdictStatus.ERROR: 2}[self.status]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in ControlStatus}
        for r in self.results:
            out[r.status.value] += 1
        return out

    def by_status(self, *statuses: ControlStatus) -> list[ControlResult]:
        return [r for r in self.results if r.status in statuses]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.status.value,
            "profile": {
                "name": self.profile.name,
                "title": self.profile.title,
                "source": self.profile.source,
            },
            "subject": dict(self.subject),
            "evaluated_at": self.evaluated_at,
            "seconds": round(self.seconds, 6),
            "summary": self.counts(),
            "controls": [r.to_dict() for r in self.results],
            "collector_errors": [dict(e) for e in self.collector_errors],
            "expired_waivers": [w.to_dict() for w in self.expired_waivers],
            "unused_waivers": [w.to_dict() for w in self.unused_waivers],
            "waived_findings": [
                {"fingerprint": fp, "waiver": w.to_dict()}
                for fp, w in sorted(self.waived_findings.items())
            ],
        }
