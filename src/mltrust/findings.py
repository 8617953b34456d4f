"""Shared result types: severities, rules, locations and findings.

Every rule that can produce a :class:`Finding` is declared once with :func:`define_rule`;
``mltrust rules``, the documentation and SARIF ``rules[]`` are generated from that registry
(:func:`all_rules`).
"""

from __future__ import annotations

import enum
import importlib
from dataclasses import dataclass, field
from typing import Any

from mltrust.errors import ConfigError

__all__ = [
    "Confidence",
    "Finding",
    "Location",
    "Rule",
    "Severity",
    "all_rules",
    "define_rule",
    "get_rule",
]


class Severity(enum.StrEnum):
    """How bad a finding is, ordered from ``info`` to ``critical``."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    @property
    def security_severity(self) -> str:
        """The GitHub code-scanning ``security-severity`` score (CVSS-like, 0.0-10.0)."""
        return _SECURITY_SEVERITY[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(s.value for s in cls)
            raise ConfigError(f"unknown severity {text!r}; choose one of: {choices}") from None


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}
_SECURITY_SEVERITY = {
    Severity.INFO: "0.0",
    Severity.LOW: "3.0",
    Severity.MEDIUM: "5.5",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}


class Confidence(enum.StrEnum):
    """How sure the rule is that the finding is real."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class Rule:
    """A documented check with a stable identifier (``MLT-PKL-001``)."""

    id: str
    name: str
    summary: str
    default_severity: Severity
    cwe: int | None = None
    atlas: tuple[str, ...] = ()
    remediation: str = ""
    tags: tuple[str, ...] = ()


_RULES: dict[str, Rule] = {}

# Modules whose import defines rules (every module calling ``define_rule``, or a package that
# imports them). ``all_rules`` imports each one so that the registry is complete without the core
# importing upward at module load time. Each must import with the core dependencies alone (no
# NumPy, Starlette...): `mltrust rules` runs on a minimal install (tests/test_cli_minimal.py).
_RULE_MODULES = (
    "mltrust.scan",
    "mltrust.evidence",
    "mltrust.policy",
    "mltrust.robust._rules",
    "mltrust.monitor._rules",
)


def define_rule(
    id: str,
    name: str,
    summary: str,
    severity: Severity,
    *,
    cwe: int | None = None,
    atlas: tuple[str, ...] = (),
    remediation: str = "",
    tags: tuple[str, ...] = (),
) -> Rule:
    """Declare a rule once, at import time of the module that reports it."""
    rule = Rule(id, name, summary, severity, cwe, atlas, remediation, tags)
    existing = _RULES.get(id)
    if existing is not None and existing != rule:
        raise ConfigError(f"rule {id} is defined twice with different contents")
    _RULES[id] = rule
    return rule


def get_rule(rule_id: str) -> Rule:
    try:
        return _RULES[rule_id]
    except KeyError:
        raise ConfigError(f"unknown rule {rule_id!r}") from None


def all_rules() -> list[Rule]:
    """Every registered rule, sorted by identifier."""
    for module in _RULE_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
    return sorted(_RULES.values(), key=lambda r: r.id)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding was made: a file, a path of archive members inside it, an offset."""

    path: str
    members: tuple[str, ...] = ()
    offset: int | None = None
    #: Index of the pickle opcode (or record, node, layer) the finding is about.
    index: int | None = None
    detail: str | None = None

    def member(self, name: str) -> Location:
        """The location of a member ``name`` inside this one."""
        return Location(self.path, (*self.members, name))

    def at(
        self, offset: int | None = None, *, index: int | None = None, detail: str | None = None
    ) -> Location:
        return Location(self.path, self.members, offset, index, detail)

    def __str__(self) -> str:
        text = self.path
        for m in self.members:
            text += f"!{m}"
        if self.offset is not None:
            text += f"@{self.offset}"
        if self.index is not None:
            text += f"#{self.index}"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.members:
            out["members"] = list(self.members)
        if self.offset is not None:
            out["offset"] = self.offset
        if self.index is not None:
            out["index"] = self.index
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact that a rule established about an artifact."""

    rule_id: str
    severity: Severity
    message: str
    location: Location
    confidence: Confidence = Confidence.HIGH
    cwe: int | None = None
    atlas: tuple[str, ...] = ()
    remediation: str = ""
    extra: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def of(
        cls,
        rule: Rule,
        message: str,
        location: Location,
        *,
        severity: Severity | None = None,
        confidence: Confidence = Confidence.HIGH,
        extra: dict[str, str] | None = None,
    ) -> Finding:
        """A finding for ``rule``, taking CWE, ATLAS and remediation from the rule."""
        return cls(
            rule.id,
            severity or rule.default_severity,
            message,
            location,
            confidence,
            rule.cwe,
            rule.atlas,
            rule.remediation,
            tuple(sorted((extra or {}).items())),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "confidence": self.confidence.value,
            "message": self.message,
            "location": self.location.to_dict(),
        }
        if self.cwe is not None:
            out["cwe"] = f"CWE-{self.cwe}"
        if self.atlas:
            out["atlas"] = list(self.atlas)
        if self.remediation:
            out["remediation"] = self.remediation
        if self.extra:
            out["extra"] = dict(self.extra)
        return out
