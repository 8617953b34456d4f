"""One AdmissionReview in, one AdmissionReview out: the webhook's decision, without HTTP."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrust.admission._kinds import EXTRACTORS, model_refs
from mltrust.admission._locate import locate
from mltrust.config import Limits
from mltrust.errors import ConfigError, Error, InputError, VerificationError

__all__ = ["API_VERSION", "AdmissionPolicy", "Decision", "decide", "review"]

log = logging.getLogger("mltrust.admission")

API_VERSION = "admission.k8s.io/v1"
#: Kinds that always carry a model: one that names none (a model baked into an image) is denied.
_MUST_NAME_MODEL = frozenset(
    {("serving.kserve.io", "InferenceService"), ("machinelearning.seldon.io", "SeldonDeployment")}
)
#: Operations that admit something new; DELETE and CONNECT admit no model.
_CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """What ``mltrust admission serve`` enforces.

    ``profile`` (a shipped profile name or a YAML path) is loaded, and its CEL compiled, when
    the policy is made, so a broken profile stops the server at start instead of denying
    everything later. ``require_annotation`` denies pods and workloads that name no model.
    """

    trusted_keys: tuple[Path, ...]
    storage_root: Path
    profile: str | None = None
    dry_run: bool = False
    require_annotation: bool = False
    limits: Limits = field(default_factory=Limits)
    _profile: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.trusted_keys:
            raise ConfigError("admission needs at least one trusted key (--trusted-key)")
        from mltrust.attest import load_public_key

        for key in self.trusted_keys:
            load_public_key(key)  # a missing or malformed key stops the server now
        if not self.storage_root.is_dir():
            raise ConfigError(f"storage root {self.storage_root} is not a folder")
        if self.profile is not None:
            from mltrust.policy import load_profile

            object.__setattr__(self, "_profile", load_profile(self.profile))


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    message: str = ""
    warnings: tuple[str, ...] = ()
    #: ``model location -> root digest`` of what was verified (audit annotation).
    verified: tuple[tuple[str, str], ...] = ()


def _shown(value: object, limit: int = 200) -> str:
    """``value`` for a message or a log line: control characters escaped, length bounded (an
    annotation is attacker-chosen text; a newline in it must not forge a log line)."""
    text = value if isinstance(value, str) else repr(value)
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."


def _get(value: object, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def _describe(request: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` for messages (every part optional, never raises)."""
    meta = _get(request.get("object"), "metadata")
    name = request.get("name") or _get(meta, "name") or _get(meta, "generateName") or "?"
    ns = request.get("namespace") or _get(meta, "namespace") or ""
    kind = _get(request.get("kind"), "kind") or "?"
    return _shown(f"{kind} {ns}/{name}" if ns else f"{kind} {name}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    differences = getattr(exc, "differences", None)
    if isinstance(exc, VerificationError) and differences:
        more = f" (+{len(differences) - 1} more)" if len(differences) > 1 else ""
        line += f": {differences[0]}{more}"
    return _shown(line, 500)


def _check_profile(policy: AdmissionPolicy, path: Path) -> None:
    from mltrust.evidence import CollectContext, collect_evidence
    from mltrust.policy import VerdictStatus, evaluate

    bundle = collect_evidence(CollectContext(path=path, keys=policy.trusted_keys))
    verdict = evaluate(bundle.document, policy._profile, collector_errors=bundle.errors)
    if verdict.status is not VerdictStatus.PASS:
        failed = [r.control.id for r in verdict.results if r.status.value in ("fail", "error")]
        failed += [e.get("collector", "?") + " collector" for e in verdict.collector_errors]
        raise _Denied(f"profile {policy.profile}: {verdict.status.value} ({', '.join(failed[:5])})")


class _Denied(Exception):
    pass


def decide(request: Mapping[str, Any], policy: AdmissionPolicy) -> Decision:
    """The decision for one ``AdmissionReview.request`` (already parsed). Never raises for bad
    input: every failure is a denial with its reason (fail closed)."""
    from mltrust.attest import PinnedKeys, verify

    what = _describe(request)
    operation = request.get("operation")
    if operation not in _CHECKED_OPERATIONS:
        return Decision(True)
    if request.get("subResource"):
        # Sub-resources (status, scale, ephemeralcontainers...) cannot change the model named.
        return Decision(True)
    kind = request.get("kind")
    obj = request.get("object")
    if not isinstance(kind, Mapping) or not isinstance(obj, Mapping):
        return Decision(False, f"mltrust: {what}: the review has no kind or object; denied")
    group, kind_name = str(kind.get("group") or ""), str(kind.get("kind") or "")
    try:
        refs = model_refs(group, kind_name, obj)
    except (InputError, RecursionError) as exc:
        return Decision(False, f"mltrust: {what}: {_first_line(exc)}")
    if not refs:
        if (group, kind_name) in _MUST_NAME_MODEL:
            return Decision(
                False,
                f"mltrust: {what}: names no model location mltrust can check "
                "(storageUri/modelUri); denied",
            )
        if policy.require_annotation:
            return Decision(False, f"mltrust: {what}: no mltrust.dev/model-path annotation; denied")
        return Decision(True, warnings=(f"mltrust: {what} names no model; not checked",))
    cap = policy.limits.max_admission_models
    if len(refs) > cap:
        return Decision(False, f"mltrust: {what}: names {len(refs)} model locations (max {cap})")
    verified: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for ref in refs:
        try:
            path = locate(ref, policy.storage_root)
            if path in seen:
                continue
            seen.add(path)
            # The signature must be for the model this location names (its folder or file
            # name, as `mltrust serve` binds admission): another model signed by the same key,
            # copied to this path, is refused.
            model = verify(path, trust=PinnedKeys(*policy.trusted_keys), name=path.name)
            if policy._profile is not None:
                _check_profile(policy, path)
        except (_Denied, Error) as exc:
            where = f"model {_shown(ref.value)} ({_shown(ref.where)})"
            return Decision(False, f"mltrust: {what}: {where}: {_first_line(exc)}")
        verified.append((ref.value, model.root_digest))
    return Decision(True, verified=tuple(verified))


def _status(decision: Decision) -> dict[str, Any]:
    return {"code": 403, "reason": "Forbidden", "message": decision.message}


def _response(uid: str, decision: Decision, dry_run: bool) -> dict[str, Any]:
    allowed = decision.allowed
    warnings = list(decision.warnings)
    if dry_run and not allowed:
        warnings.append(f"dry-run, would deny: {decision.message}")
        allowed = True
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = _status(decision)
    if warnings:
        response["warnings"] = [w[:1000] for w in warnings]
    if decision.verified:
        response["auditAnnotations"] = {
            "verified-models": ", ".join(f"{loc}@sha256:{d}" for loc, d in decision.verified)
        }
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def parse_review(body: bytes, limits: Limits) -> dict[str, Any]:
    """The ``request`` of an AdmissionReview v1; :class:`InputError` when it is not one."""
    if len(body) > limits.max_admission_bytes:
        raise InputError(f"review of {len(body)} bytes exceeds max_admission_bytes")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "AdmissionReview":
        raise InputError("not an AdmissionReview")
    if doc.get("apiVersion") != API_VERSION:
        raise InputError(f"AdmissionReview {doc.get('apiVersion')!r}; only {API_VERSION}")
    request = doc.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise InputError("AdmissionReview without a request uid")
    return request


def review(body: bytes, policy: AdmissionPolicy) -> dict[str, Any]:
    """Answer one AdmissionReview (raw bytes). Raises :class:`InputError` only when the body
    is not an AdmissionReview at all (no uid to answer); any failure after that denies."""
    request = parse_review(body, policy.limits)
    uid = request["uid"]
    try:
        decision = decide(request, policy)
    except Exception:
        log.exception("admission of %s failed", _describe(request))
        decision = Decision(False, f"mltrust: {_describe(request)}: internal error; denied")
    log.info(
        "%s %s: %s%s",
        "allow" if decision.allowed else "deny",
        _describe(request),
        decision.message or "ok",
        " (dry-run)" if policy.dry_run else "",
    )
    return _response(uid, decision, policy.dry_run)


__all__ += ["EXTRACTORS", "parse_review"]
