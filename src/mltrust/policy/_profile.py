"""Profiles: YAML lists of controls whose checks are CEL expressions, compiled once at load."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError
from mltrust.policy._threat import ThreatModel, parse_threat_model, reads_robust_figures

__all__ = [
    "TAG_FRAMEWORKS",
    "Control",
    "Enforcement",
    "Profile",
    "builtin_profiles",
    "control_catalogue",
    "load_profile",
    "parse_profile",
]

#: Framework tags a control may carry.
TAG_FRAMEWORKS = ("atlas", "owasp_ml", "aisvs", "nist_ai_rmf")
_IMPACT_WORDS = {"none": 0.0, "low": 0.3, "medium": 0.5, "high": 0.7, "critical": 1.0}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,79}$")
_CONTROL_KEYS = frozenset(
    {
        "id",
        "title",
        "description",
        "impact",
        "tags",
        "only_if",
        "check",
        "details",
        "remediation",
        "enforcement",
        "threat_model",
    }
)


class Enforcement(enum.StrEnum):
    #: A failed check fails the verdict.
    FAIL = "fail"
    #: A failed check is reported as a warning; the verdict can still pass.
    WARN = "warn"


def _compile(expression: str, control_id: str, what: str) -> Any:
    try:
        import cel
    except ImportError:
        raise ConfigError(
            "the policy engine needs the common-expression-language package",
            hint="pip install 'mltrust[policy]'",
        ) from None

    if not isinstance(expression, str) or not expression.strip():
        raise ConfigError(f"control {control_id}: {what} must be a non-empty CEL expression")
    try:
        return cel.compile(expression)
    except (ValueError, RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"control {control_id}: {what} does not compile: {first}") from None


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    title: str
    impact: float
    check_source: str
    check: Any = field(repr=False, compare=False)
    only_if_source: str | None = None
    only_if: Any = field(default=None, repr=False, compare=False)
    details_source: str | None = None
    details: Any = field(default=None, repr=False, compare=False)
    #: the threat model a robustness control applies to: its check sees only figures under it
    threat_model: ThreatModel | None = None
    description: str = ""
    remediation: str = ""
    enforcement: Enforcement = Enforcement.FAIL
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """The impact as a severity name (for SARIF and summaries)."""
        if self.impact >= 0.9:
            return "critical"
        if self.impact >= 0.7:
            return "high"
        if self.impact >= 0.4:
            return "medium"
        if self.impact > 0.0:
            return "low"
        return "info"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "impact": self.impact,
            "severity": self.severity,
            "enforcement": self.enforcement.value,
            "check": self.check_source,
            "tags": {k: list(v) for k, v in self.tags.items()},
        }
        if self.only_if_source:
            out["only_if"] = self.only_if_source
        if self.remediation:
            out["remediation"] = self.remediation
        if self.threat_model is not None:
            out["threat_model"] = self.threat_model.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: str
    controls: tuple[Control, ...]
    description: str = ""
    source: str = ""
    #: Longest a waiver may run (days); see :mod:`mltrust.policy._waivers`.
    waiver_max_days: int = 365
    #: Whether the inline suppression comments of the checked project suppress its
    #: code findings (``code: {inline_suppressions: true}``). Off unless a profile opts in: the
    #: markers are written by the project under check, so honouring them lets it waive itself.
    inline_suppressions: bool = False

    def control(self, control_id: str) -> Control | None:
        return next((c for c in self.controls if c.id == control_id), None)


def _impact(value: Any, control_id: str) -> float:
    if isinstance(value, str) and value.lower() in _IMPACT_WORDS:
        return _IMPACT_WORDS[value.lower()]
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise ConfigError(
        f"control {control_id}: impact must be 0..1 or one of {', '.join(_IMPACT_WORDS)}, "
        f"not {value!r}"
    )


def _tags(value: Any, control_id: str) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"control {control_id}: tags must be a mapping")
    out: dict[str, tuple[str, ...]] = {}
    for key, items in value.items():
        if key not in TAG_FRAMEWORKS:
            raise ConfigError(
                f"control {control_id}: unknown tag framework {key!r} "
                f"(use {', '.join(TAG_FRAMEWORKS)})"
            )
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"control {control_id}: tags.{key} must be a list of strings")
        out[str(key)] = tuple(items)
    return out


def _control(raw: Any, index: int) -> Control:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"control #{index + 1} must be a mapping")
    cid = raw.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ConfigError(f"control #{index + 1}: id must be a short identifier, not {cid!r}")
    unknown = set(raw) - _CONTROL_KEYS
    if unknown:
        raise ConfigError(f"control {cid}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    title = raw.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConfigError(f"control {cid}: title is required")
    check_src = raw.get("check")
    if not isinstance(check_src, str):
        raise ConfigError(f"control {cid}: check must be a CEL expression (a string)")
    check = _compile(check_src, cid, "check")
    only_src = raw.get("only_if")
    details_src = raw.get("details")
    for what, value in (("only_if", only_src), ("details", details_src)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"control {cid}: {what} must be a CEL expression (a string)")
    only = _compile(only_src, cid, "only_if") if only_src is not None else None
    details = _compile(details_src, cid, "details") if details_src is not None else None
    threat = raw.get("threat_model")
    tm = parse_threat_model(threat, cid) if threat is not None else None
    if tm is None and reads_robust_figures(check_src, details_src):
        raise ConfigError(
            f"control {cid}: it compares robust accuracy, so it must state the threat model it "
            "applies to (threat_model: {norm: linf, epsilon: 0.05, domain: [0, 1]})"
        )
    try:
        enforcement = Enforcement(str(raw.get("enforcement", "fail")))
    except ValueError:
        raise ConfigError(f"control {cid}: enforcement must be 'fail' or 'warn'") from None
    return Control(
        id=cid,
        title=title.strip(),
        impact=_impact(raw.get("impact", "medium"), cid),
        check_source=check_src,
        check=check,
        only_if_source=only_src,
        only_if=only,
        details_source=details_src,
        details=details,
        threat_model=tm,
        description=str(raw.get("description", "")).strip(),
        remediation=str(raw.get("remediation", "")).strip(),
        enforcement=enforcement,
        tags=_tags(raw.get("tags"), cid),
    )


_PROFILE_KEYS = frozenset(
    {"name", "title", "description", "controls", "extends", "waiver_max_days", "code"}
)
_CODE_KEYS = frozenset({"inline_suppressions"})


def parse_profile(data: Any, *, source: str = "<profile>", _depth: int = 0) -> Profile:
    """A :class:`Profile` from parsed YAML; every expression is compiled here, once.

    ``extends: NAME`` (a shipped profile, or a path relative to the profile file) starts from
    that profile's controls: a control with the same ``id`` replaces the inherited one, others
    are added after them. ``waiver_max_days`` bounds waiver expiry (default: inherited, else
    365). ``code: {inline_suppressions: true}`` lets the project's own inline markers suppress
    its code findings (default: inherited, else off).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: a profile must be a mapping with 'controls'")
    unknown = set(data) - _PROFILE_KEYS
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    base: Profile | None = None
    extends = data.get("extends")
    if extends is not None:
        if not isinstance(extends, str) or not extends.strip():
            raise ConfigError(f"{source}: extends must name a profile")
        if _depth >= DEFAULT_LIMITS.max_profile_extends_depth:
            raise ConfigError(
                f"{source}: extends nested more than "
                f"{DEFAULT_LIMITS.max_profile_extends_depth} deep"
            )
        target: str | Path = extends.strip()
        if str(target) not in builtin_profiles() and not Path(str(target)).is_absolute():
            target = Path(source).parent / str(target)
        base = load_profile(target, _depth=_depth + 1)
    controls_raw = data.get("controls")
    if controls_raw is None and base is not None:
        controls_raw = []
    if not isinstance(controls_raw, list) or (not controls_raw and base is None):
        raise ConfigError(f"{source}: a profile needs a non-empty 'controls' list")
    own = tuple(_control(c, i) for i, c in enumerate(controls_raw))
    seen: set[str] = set()
    for c in own:
        if c.id in seen:
            raise ConfigError(f"{source}: control {c.id} is defined twice")
        seen.add(c.id)
    controls = own
    if base is not None:
        replaced = {c.id: c for c in own}
        controls = tuple(replaced.pop(c.id, c) for c in base.controls) + tuple(
            c for c in own if c.id in replaced
        )
    max_days = data.get("waiver_max_days", base.waiver_max_days if base else 365)
    if not isinstance(max_days, int) or isinstance(max_days, bool) or not 1 <= max_days <= 3650:
        raise ConfigError(f"{source}: waiver_max_days must be a whole number of days (1-3650)")
    inline = _code_settings(data.get("code"), source, base.inline_suppressions if base else False)
    name = str(data.get("name") or Path(source).stem)
    return Profile(
        name=name,
        title=str(data.get("title") or (base.title if base else name)),
        controls=controls,
        description=str(data.get("description", "")).strip(),
        source=source,
        waiver_max_days=max_days,
        inline_suppressions=inline,
    )


def _code_settings(raw: Any, source: str, inherited: bool) -> bool:
    """``inline_suppressions`` from a profile's ``code:`` mapping (the only key it has)."""
    if raw is None:
        return inherited
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: code must be a mapping (inline_suppressions: true|false)")
    unknown = set(raw) - _CODE_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) under code: {', '.join(sorted(map(str, unknown)))}"
        )
    value = raw.get("inline_suppressions", inherited)
    if not isinstance(value, bool):
        raise ConfigError(f"{source}: code.inline_suppressions must be true or false")
    return value


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped inside the package."""
    folder = resources.files("mltrust.policy") / "profiles"
    return sorted(
        p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml")
    )


def control_catalogue(profile: Profile | None = None) -> frozenset[str]:
    """The one catalogue of control IDs a waiver may name: every control of every shipped
    profile, plus those of ``profile`` (a custom one). A waiver naming a control of the
    catalogue stays valid whichever profile is used."""
    ids: set[str] = set()
    for name in builtin_profiles():
        ids.update(c.id for c in load_profile(name).controls)
    if profile is not None:
        ids.update(c.id for c in profile.controls)
    return frozenset(ids)


def load_profile(name_or_path: str | Path, *, _depth: int = 0) -> Profile:
    """A shipped profile by name (``default``, ``atlas``...) or a YAML file by path."""
    text: str
    source: str
    candidate = Path(name_or_path)
    if str(name_or_path) in builtin_profiles():
        res = resources.files("mltrust.policy") / "profiles" / f"{name_or_path}.yaml"
        text, source = res.read_text(encoding="utf-8"), f"builtin:{name_or_path}"
    elif candidate.is_file():
        if candidate.stat().st_size > DEFAULT_LIMITS.max_profile_bytes:
            raise ConfigError(f"profile {candidate} is too large")
        text, source = candidate.read_text(encoding="utf-8"), str(candidate)
    else:
        raise ConfigError(
            f"no profile {str(name_or_path)!r}",
            hint=f"use one of {', '.join(builtin_profiles())} or a path to a YAML file",
        )
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"profile {source} is not valid YAML: {exc}") from None
    return parse_profile(data, source=source, _depth=_depth)
