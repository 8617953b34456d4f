"""Collector: robustness measurements attested next to the model (predicate
``https://mltrust.dev/robustness/v1``), summarised for the policy."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from mltrust.errors import Error
from mltrust.evidence._attestations import read_statements
from mltrust.evidence.interface import CollectContext, Collected, Collector

__all__ = ["ROBUSTNESS_PREDICATE", "RobustnessCollector"]

ROBUSTNESS_PREDICATE = "https://mltrust.dev/robustness/v1"
PREDICATE_TYPE = "https://mltrust.dev/robustness-summary/v1"


def _numbers(node: Any, key: str, depth: int = 0) -> Iterator[float]:
    """Every numeric value stored under ``key`` anywhere in ``node``."""
    if depth > 20:
        return
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k == key and isinstance(v, (int, float)) and not isinstance(v, bool):
                yield float(v)
            else:
                yield from _numbers(v, key, depth + 1)
    elif isinstance(node, list):
        for v in node:
            yield from _numbers(v, key, depth + 1)


def _figures(predicate: Any, source: str) -> Iterator[dict[str, Any]]:
    """One entry per robust-accuracy figure: ε, the figure, and the recorded threat model
    (norm, domain — ``"unbounded"`` or ``"bounded"`` —, attack); ``"unrecorded"`` where an
    older predicate did not record it."""
    if not isinstance(predicate, Mapping):
        return
    tm = predicate.get("threat_model")
    tm = tm if isinstance(tm, Mapping) else {}
    domain = tm.get("domain", "unrecorded")
    kind = domain if isinstance(domain, str) else "bounded"
    results = predicate.get("results")
    for r in results if isinstance(results, list) else []:
        if not isinstance(r, Mapping):
            continue
        eps, acc = r.get("eps"), r.get("robust_accuracy")
        if not (isinstance(eps, (int, float)) and isinstance(acc, (int, float))):
            continue
        if isinstance(eps, bool) or isinstance(acc, bool):
            continue
        yield {
            "eps": float(eps),
            "robust_accuracy": float(acc),
            "bound": str(r.get("bound", "")),
            "norm": str(tm.get("norm", predicate.get("norm", "unrecorded"))),
            "domain": kind,
            "attack": str(tm.get("attack", predicate.get("attack", "unrecorded"))),
            "source": source,
        }


def _verified(ctx: CollectContext, name: str, statement: Mapping[str, Any]) -> bool:
    """Whether the bundle ``name`` is signed by a trusted key (``--key``) and is about this
    subject or one of its files."""
    if not ctx.keys:
        return False
    try:
        from mltrust.attest import load_public_key, verify_attestation
    except ImportError:
        return False
    here = {ctx.sha256(rel, p) for rel, p in ctx.files()}
    raw = statement.get("subject")
    subjects = raw if isinstance(raw, list) else []
    claimed = [
        s.get("digest", {}).get("sha256")
        for s in subjects
        if isinstance(s, Mapping) and isinstance(s.get("digest"), Mapping)
    ]
    about = next((d for d in claimed if d in here), None)
    if about is None:
        return False
    try:
        keys = [load_public_key(k) for k in ctx.keys]
        verify_attestation(ctx.root / ".mltrust" / name, keys, root_digest=about)
    except Error:
        return False
    return True


class RobustnessCollector(Collector):
    name = "robustness"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        return any(
            s.get("predicateType") == ROBUSTNESS_PREDICATE for _, s, _ in read_statements(ctx.root)
        )

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "attestations": 0,
            "signed": False,
            "min_robust_accuracy": -1.0,
            "min_clean_accuracy": -1.0,
            "sources": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        robust: list[float] = []
        clean: list[float] = []
        sources: list[str] = []
        figures: list[dict[str, Any]] = []
        signed = verified = True
        for name, statement, enveloped in read_statements(ctx.root):
            if statement.get("predicateType") != ROBUSTNESS_PREDICATE:
                continue
            sources.append(name)
            signed = signed and enveloped
            verified = verified and enveloped and _verified(ctx, name, statement)
            predicate = statement.get("predicate", {})
            robust.extend(_numbers(predicate, "robust_accuracy"))
            clean.extend(_numbers(predicate, "clean_accuracy"))
            figures.extend(_figures(predicate, name))
        section = {
            "present": bool(sources),
            "attestations": len(sources),
            "signed": bool(sources) and signed,
            "verified": bool(sources) and verified,
            "min_robust_accuracy": min(robust) if robust else -1.0,
            "min_clean_accuracy": min(clean) if clean else -1.0,
            "sources": sources,
            # each figure with the threat model it holds under, so that a profile can compare
            # only figures measured under the norm, ε and domain it names
            "figures": figures,
        }
        ctx.shared["robustness"] = section
        return Collected(
            self.name, self.predicate_type, section, section, (), time.perf_counter() - started
        )
