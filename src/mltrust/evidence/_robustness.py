"""Collector: robustness measurements attested next to the model (predicate
``https://mltrust.dev/robustness/v1``), summarised for the policy.

Only statements signed by a key passed with ``--key`` and about this subject count (see
:mod:`mltrust.evidence._attestations`); every other file is listed under ``ignored`` with its
reason and does not move any number the policy reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from mltrust.evidence._attestations import trusted_statements
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


#: Widest a feature's box may be and still count as ``"bounded"``: far wider than any
#: normalised or pixel feature scale; a box wider than this (``±1e30`` written to look bounded)
#: leaves an ε-ball practically free, and is classed ``"unbounded"``.
#: (A threshold of the classification, not a bound on work: not in
#: :class:`~mltrust.config.Limits`.)
WIDEST_BOUNDED_BOX = 1e6


def _bound_values(value: Any) -> list[float] | None:
    """A bound as a list of finite floats (one scalar, or a per-feature list); None when it
    is absent (``null``) or not a finite number/list of them (an infinite bound is no bound);
    raises ValueError for something that is not a bound at all."""
    import math

    items = value if isinstance(value, list) else [value]
    if value is None:
        return None
    if not items:
        raise ValueError("empty bound")
    out: list[float] = []
    for v in items:
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            raise ValueError("not a number")
        if math.isinf(v):
            return None
        out.append(float(v))
    return out


def domain_kind(domain: Any) -> str:
    """The kind of a recorded ``threat_model.domain``: ``"bounded"`` only for a box whose
    lower and upper bounds (a number shared by all features, or a per-feature list) are all
    finite, with ``lower < upper`` and a width of at most :data:`WIDEST_BOUNDED_BOX` for every
    feature; ``"unbounded"`` for the string ``"unbounded"``, a side left open (``null``, an
    infinite value) or a box wider than that; ``"invalid"`` for anything else (a malformed
    box, an empty or inverted one, an unknown string -- even ``"bounded"``, which names no
    box). A profile comparing ``domain == 'bounded'`` therefore only accepts a real box."""
    if isinstance(domain, str):
        return domain if domain in ("unbounded", "unrecorded") else "invalid"
    if not isinstance(domain, Mapping) or not {"lower", "upper"} <= set(domain):
        return "invalid"
    try:
        lower, upper = _bound_values(domain["lower"]), _bound_values(domain["upper"])
    except ValueError:
        return "invalid"
    if lower is None or upper is None:
        return "unbounded"
    if len(lower) != len(upper) and 1 not in (len(lower), len(upper)):
        return "invalid"
    n = max(len(lower), len(upper))
    widths = [
        (upper[i] if len(upper) > 1 else upper[0]) - (lower[i] if len(lower) > 1 else lower[0])
        for i in range(n)
    ]
    if any(w <= 0 for w in widths):
        return "invalid"
    if any(w > WIDEST_BOUNDED_BOX for w in widths):
        return "unbounded"
    return "bounded"


def _figures(predicate: Any, source: str) -> Iterator[dict[str, Any]]:
    """One entry per robust-accuracy figure: ε, the figure, and the recorded threat model
    (norm, domain kind -- see :func:`domain_kind` --, attack); ``"unrecorded"`` where an
    older predicate did not record it."""
    if not isinstance(predicate, Mapping):
        return
    tm = predicate.get("threat_model")
    tm = tm if isinstance(tm, Mapping) else {}
    kind = domain_kind(tm.get("domain", "unrecorded"))
    lower = _shared_bound(tm.get("domain"), "lower") if kind == "bounded" else None
    upper = _shared_bound(tm.get("domain"), "upper") if kind == "bounded" else None
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
            # the box itself when every feature shares it (a control names its domain exactly)
            "domain_lower": lower,
            "domain_upper": upper,
            "attack": str(tm.get("attack", predicate.get("attack", "unrecorded"))),
            "steps": _whole(tm.get("steps")),
            "restarts": _whole(tm.get("restarts")),
            "source": source,
        }


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _shared_bound(domain: Any, side: str) -> float | None:
    """The bound on ``side`` shared by every feature of a valid box, else None."""
    if not isinstance(domain, Mapping):
        return None
    try:
        values = _bound_values(domain.get(side))
    except ValueError:
        return None
    if not values or any(v != values[0] for v in values):
        return None
    return values[0]


def _by_threat_model(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (norm, domain, ε) measured: the robust accuracy a profile may compare
    against a threshold under that threat model.

    Every attack figure is an upper bound on the true robust accuracy (an attack can miss
    adversarial examples), and robust accuracy can only fall as ε grows, so a figure measured at
    a smaller ε under the same norm and domain also bounds the accuracy at this ε. The entry
    holds the minimum over all of them: the tightest bound the evidence gives. Figures whose
    threat model was not recorded keep ``"unrecorded"`` and never match a named one.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in figures:
        groups.setdefault((f["norm"], f["domain"]), []).append(f)
    out: list[dict[str, Any]] = []
    for (norm, domain), group in sorted(groups.items()):
        for eps in sorted({f["eps"] for f in group}):
            upto = [f for f in group if f["eps"] <= eps]
            out.append(
                {
                    "norm": norm,
                    "domain": domain,
                    "eps": eps,
                    "robust_accuracy": min(f["robust_accuracy"] for f in upto),
                    "attacks": sorted({f["attack"] for f in upto}),
                    "sources": sorted({f["source"] for f in upto}),
                }
            )
    return out


class RobustnessCollector(Collector):
    name = "robustness"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        from mltrust.evidence._attestations import has_candidates

        return has_candidates(ctx)

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "attestations": 0,
            "signed": False,
            "verified": False,
            "min_robust_accuracy": -1.0,
            "min_clean_accuracy": -1.0,
            "sources": [],
            "ignored": [],
            "figures": [],
            "by_threat_model": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        evidence = trusted_statements(ctx, ROBUSTNESS_PREDICATE)
        robust: list[float] = []
        clean: list[float] = []
        sources: list[str] = []
        figures: list[dict[str, Any]] = []
        for source, statement, _fp in evidence.verified:
            sources.append(source)
            predicate = statement.get("predicate", {})
            robust.extend(_numbers(predicate, "robust_accuracy"))
            clean.extend(_numbers(predicate, "clean_accuracy"))
            figures.extend(_figures(predicate, source))
        present = bool(sources) and bool(robust or clean)
        section = {
            "present": present,
            "attestations": len(sources),
            "signed": present,
            "verified": present,
            "min_robust_accuracy": min(robust) if robust else -1.0,
            "min_clean_accuracy": min(clean) if clean else -1.0,
            "sources": sources,
            "ignored": [dict(i) for i in evidence.ignored],
            # each figure with the threat model it holds under, so that a profile can compare
            # only figures measured under the norm, ε and domain it names
            "figures": figures,
            # what a profile compares: the bound at each (norm, domain, ε) measured
            "by_threat_model": _by_threat_model(figures),
        }
        findings = evidence.ignored_findings()
        ctx.shared["robustness"] = section
        return Collected(
            self.name,
            self.predicate_type,
            section,
            section,
            findings,
            time.perf_counter() - started,
        )
