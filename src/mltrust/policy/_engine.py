"""Evaluating a profile's compiled CEL controls over one evidence document."""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mltrust.errors import ConfigError
from mltrust.policy._profile import Control, Enforcement, Profile, load_profile
from mltrust.policy._verdict import ControlResult, ControlStatus, Verdict, VerdictStatus
from mltrust.policy._waivers import Waiver

__all__ = ["EvaluationContext", "apply_finding_waivers", "evaluate", "evaluate_control"]

#: Details one control's result keeps, the rest counted (a presentation cap, not a bound on
#: input, so not in :class:`~mltrust.config.Limits`).
_SHOWN_DETAILS = 50
#: The finding lists of the evidence document that finding waivers filter, and the counts
#: recomputed from them afterwards.
_FINDING_LISTS = (
    ("scan", "findings"),
    ("code", "findings"),
    ("code", "dangerous"),
    ("code", "secrets"),
    ("deps", "vulnerabilities"),
    ("deps", "unpinned_vulnerable"),
    ("deps", "unpinned"),
    ("deps", "unverifiable"),
    ("deps", "problems"),
)


def apply_finding_waivers(
    document: Mapping[str, Any], waivers: Sequence[Waiver], today: _dt.date
) -> tuple[dict[str, Any], dict[str, Waiver], set[Waiver], set[Waiver]]:
    """The document without the findings that valid finding waivers name.

    Returns ``(document, {fingerprint: waiver}, used waivers, expired waivers)``. Counts that
    summarise a filtered list are recomputed from what is left, so no control sees a waived
    finding by another road.
    """
    from mltrust.evidence import severity_counts

    subject = document.get("subject", {})
    subject_name = str(subject.get("name", "")) if isinstance(subject, Mapping) else ""
    active = [w for w in waivers if w.is_finding and w.applies_to_subject(subject_name)]
    if not active:
        return dict(document), {}, set(), set()
    waived: dict[str, Waiver] = {}
    used: set[Waiver] = set()
    expired: set[Waiver] = set()
    out = dict(document)
    for section_name, key in _FINDING_LISTS:
        section = out.get(section_name)
        if not isinstance(section, Mapping) or not isinstance(section.get(key), list):
            continue
        kept = []
        for row in section[key]:
            waiver = None
            if isinstance(row, Mapping):
                for w in active:
                    if w.matches_row(row):
                        if w.expired(today):
                            expired.add(w)
                            continue
                        waiver = w
                        break
            if waiver is None:
                kept.append(row)
            else:
                used.add(waiver)
                waived[str(row.get("fingerprint", ""))] = waiver
        new_section = dict(section)
        new_section[key] = kept
        out[section_name] = new_section
    for name in ("scan", "code"):
        section = out.get(name)
        if isinstance(section, dict) and isinstance(section.get("findings"), list):
            section["findings_by_severity"] = severity_counts(
                str(r.get("severity", "")) for r in section["findings"] if isinstance(r, Mapping)
            )
    code = out.get("code")
    if isinstance(code, dict) and isinstance(code.get("findings"), list):
        code["not_analysed"] = [
            r.get("path")
            for r in code["findings"]
            if isinstance(r, Mapping) and r.get("kind") == "not-analysed"
        ]
        code["secrets_not_searched"] = [
            r
            for r in code["findings"]
            if isinstance(r, Mapping) and r.get("kind") == "not-searched"
        ]
    deps = out.get("deps")
    if isinstance(deps, dict) and isinstance(deps.get("problems"), list):
        from collections import Counter

        deps["errors"] = [
            f"{r['source']}:{r['line']}: {r['message']}"
            if r.get("line")
            else f"{r['source']}: {r['message']}"
            for r in deps["problems"]
        ]
        counts = Counter(str(v.get("severity", "unknown")) for v in deps.get("vulnerabilities", []))
        by = dict.fromkeys(("critical", "high", "medium", "low", "info", "unknown"), 0)
        for sev, n in counts.items():
            by[sev if sev in by else "unknown"] += n
        deps["vulnerabilities_by_severity"] = by
    return out, waived, used, expired


class EvaluationContext:
    """The evidence document bound once into a CEL context, reused by every control."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        import cel

        self.document = document
        self.cel = cel.Context(_cel_safe(dict(document)))
        self._scoped: dict[Any, tuple[EvaluationContext, str]] = {}

    def under(self, control: Control) -> tuple[EvaluationContext, str]:
        """This document as ``control`` sees it: its robustness section reduced to the figures
        measured under the control's threat model (see :mod:`mltrust.policy._threat`), and why
        there are none at its ε (empty when there are)."""
        from mltrust.policy._threat import scoped_robustness

        tm = control.threat_model
        if tm is None:
            return self, ""
        if tm not in self._scoped:
            section = self.document.get("robustness")
            scoped, reason = scoped_robustness(section if isinstance(section, Mapping) else {}, tm)
            self._scoped[tm] = (EvaluationContext({**self.document, "robustness": scoped}), reason)
        return self._scoped[tm]


def _cel_safe(value: Any) -> Any:
    """``value`` with every string valid Unicode: CEL rejects lone surrogates, which is how
    Python holds a file name that is not UTF-8 (the bytes are shown backslash-escaped)."""
    if isinstance(value, str):
        if value.isascii():
            return value
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return value
    if isinstance(value, dict):
        return {_cel_safe(k): _cel_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cel_safe(v) for v in value]
    return value


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing evidence key {exc.args[0]!r}" if exc.args else "missing evidence key"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _details(control: Control, ctx: EvaluationContext) -> tuple[str, ...]:
    if control.details is None:
        return ()
    ctx = ctx.under(control)[0]
    try:
        value = control.details.execute(ctx.cel)
    except Exception as exc:  # noqa: BLE001 - details are informative; status already decided
        return (f"(details unavailable: {_describe(exc)})",)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        items = [str(v) for v in value]
        if len(items) > _SHOWN_DETAILS:
            items = [*items[:_SHOWN_DETAILS], f"... and {len(items) - _SHOWN_DETAILS} more"]
        return tuple(items)
    return (str(value),)


def evaluate_control(control: Control, ctx: EvaluationContext) -> tuple[ControlStatus, str]:
    """The raw outcome of one control (before waivers). Errors fail closed."""
    if control.only_if is not None:
        try:
            applies = control.only_if.execute(ctx.cel)
        except Exception as exc:  # noqa: BLE001 - CEL raises Key/Type/Value/RuntimeError
            return ControlStatus.ERROR, f"control {control.id}: only_if failed: {_describe(exc)}"
        if not isinstance(applies, bool):
            return (
                ControlStatus.ERROR,
                f"control {control.id}: only_if returned {type(applies).__name__}, not bool",
            )
        if not applies:
            return ControlStatus.SKIP, "not applicable (only_if is false)"
    if control.threat_model is not None:
        scoped, reason = ctx.under(control)
        if reason:  # no figure under the control's threat model: fail closed, say why
            if control.enforcement is Enforcement.WARN:
                return ControlStatus.WARN, reason
            return ControlStatus.FAIL, reason
        ctx = scoped
    try:
        result = control.check.execute(ctx.cel)
    except Exception as exc:  # noqa: BLE001 - any evaluation failure fails closed
        return ControlStatus.ERROR, f"control {control.id}: check failed: {_describe(exc)}"
    if not isinstance(result, bool):
        return (
            ControlStatus.ERROR,
            f"control {control.id}: check returned {type(result).__name__}, not bool",
        )
    if result:
        return ControlStatus.PASS, "passed"
    if control.enforcement is Enforcement.WARN:
        return ControlStatus.WARN, "check is false (warning only)"
    return ControlStatus.FAIL, "check is false"


def evaluate(
    evidence: Mapping[str, Any] | EvaluationContext | Any,
    profile: Profile | str = "default",
    *,
    waivers: Sequence[Waiver] = (),
    today: _dt.date | None = None,
    collector_errors: Sequence[Mapping[str, str]] | None = None,
) -> Verdict:
    """Evaluate every control of ``profile`` (a :class:`Profile` or a shipped profile's name)
    over ``evidence`` and decide the verdict.

    ``evidence`` is the evidence document, an :class:`EvaluationContext` already bound to it
    (reused across profiles), or an :class:`mltrust.evidence.EvidenceBundle` (whose collector
    errors are then taken into account unless ``collector_errors`` is given).

    ``fail`` when an enforced control fails without a valid waiver; otherwise ``error`` when a
    control could not be evaluated or a collector failed; otherwise ``pass``. An expired waiver
    does not apply and is reported.
    """
    started = time.perf_counter()
    day = today or _dt.datetime.now(_dt.UTC).date()
    # Binding the document into CEL costs about as much as all controls together: callers
    # that evaluate several profiles over one document pass an EvaluationContext.
    if isinstance(profile, str):
        profile = load_profile(profile)
    if isinstance(evidence, EvaluationContext):
        ctx = evidence
    elif isinstance(evidence, Mapping):
        ctx = EvaluationContext(evidence)
    elif isinstance(getattr(evidence, "document", None), Mapping):
        ctx = EvaluationContext(evidence.document)
        if collector_errors is None:
            collector_errors = tuple(getattr(evidence, "errors", ()))
    else:
        raise ConfigError(
            f"cannot evaluate {type(evidence).__name__}: pass an evidence document (a mapping)"
        )
    errors = tuple(collector_errors or ())
    waived_findings: dict[str, Waiver] = {}
    used_finding: set[Waiver] = set()
    expired_finding: set[Waiver] = set()
    if any(w.is_finding for w in waivers):
        document, waived_findings, used_finding, expired_finding = apply_finding_waivers(
            ctx.document, waivers, day
        )
        ctx = EvaluationContext(document)
    subject = ctx.document.get("subject", {})
    subject_name = str(subject.get("name", "")) if isinstance(subject, Mapping) else ""
    results: list[ControlResult] = []
    used: set[Waiver] = set(used_finding)
    expired: set[Waiver] = set(expired_finding)
    for control in profile.controls:
        t0 = time.perf_counter()
        status, message = evaluate_control(control, ctx)
        micros = (time.perf_counter() - t0) * 1e6
        details: tuple[str, ...] = ()
        if status in (ControlStatus.FAIL, ControlStatus.WARN, ControlStatus.ERROR):
            details = _details(control, ctx)
        waiver = expired_waiver = None
        if status in (ControlStatus.FAIL, ControlStatus.WARN):
            for w in waivers:
                if not w.matches(control.id, subject_name):
                    continue
                if w.expired(day):
                    expired.add(w)
                    expired_waiver = w
                    continue
                waiver = w
                break
            if waiver is not None:
                used.add(waiver)
                status = ControlStatus.WAIVED
                message = f"waived until {waiver.expires.isoformat()}: {waiver.justification}"
            elif expired_waiver is not None:
                message += f"; waiver expired on {expired_waiver.expires.isoformat()}"
        results.append(
            ControlResult(control, status, message, details, waiver, expired_waiver, micros)
        )
    for w in waivers:  # expired waivers for controls that passed are reported too
        if w not in used and w.expired(day) and (w.is_finding or profile.control(w.control)):
            expired.add(w)
    unused = tuple(w for w in waivers if w not in used and w not in expired)
    if any(r.status is ControlStatus.FAIL for r in results):
        verdict = VerdictStatus.FAIL
    elif errors or any(r.status is ControlStatus.ERROR for r in results):
        verdict = VerdictStatus.ERROR
    else:
        verdict = VerdictStatus.PASS
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
    return Verdict(
        status=verdict,
        profile=profile,
        subject=dict(subject) if isinstance(subject, Mapping) else {},
        results=tuple(results),
        collector_errors=errors,
        expired_waivers=tuple(sorted(expired, key=lambda w: (w.control, w.expires))),
        unused_waivers=unused,
        evaluated_at=now,
        seconds=time.perf_counter() - started,
        waived_findings=waived_findings,
    )
