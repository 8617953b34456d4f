"""Collector: explanation attestations next to the model (predicate
``https://mltrust.dev/explain/v1``, written by ``mltrust explain --statement`` and signed by
``mltrust attest explain``), summarised for the policy.

Only statements signed by a key passed with ``--key`` and about this subject count (see
:mod:`mltrust.evidence._attestations`). A check counts as passed only when its recorded status
is exactly ``pass``; a missing or unknown status counts as failed (fail closed).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mltrust.evidence._attestations import has_candidates, trusted_statements
from mltrust.evidence.interface import CollectContext, Collected, Collector

__all__ = ["EXPLAIN_PREDICATE", "ExplainCollector"]

EXPLAIN_PREDICATE = "https://mltrust.dev/explain/v1"
PREDICATE_TYPE = "https://mltrust.dev/explain-summary/v1"
#: The checks ``mltrust explain`` runs; each is reported (``missing`` when a statement lacks it).
CHECKS = ("randomisation", "stability", "faithfulness", "agreement")


class ExplainCollector(Collector):
    name = "explain"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        return has_candidates(ctx)

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "attestations": 0,
            "verified": False,
            "checks": dict.fromkeys(CHECKS, "missing"),
            "failed_checks": [],
            "top_features": [],
            "sources": [],
            "ignored": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        evidence = trusted_statements(ctx, EXPLAIN_PREDICATE).claimed_only()
        sources: list[str] = []
        # the worst status of each check over every verified statement
        status: dict[str, str] = {}
        top: list[str] = []
        for source, statement, _fp in evidence.verified:
            predicate = statement.get("predicate")
            if not isinstance(predicate, Mapping):
                continue
            sources.append(source)
            recorded: dict[str, str] = {}
            checks = predicate.get("checks")
            for c in checks if isinstance(checks, list) else []:
                if isinstance(c, Mapping) and isinstance(c.get("name"), str):
                    value = c.get("status")
                    recorded[c["name"]] = value if value in ("pass", "fail", "skip") else "fail"
            for name in CHECKS:
                value = recorded.get(name, "missing")
                if status.get(name) in (None, "pass"):
                    status[name] = value
            features = predicate.get("features")
            if not top and isinstance(features, list):
                top = [
                    str(f.get("name"))
                    for f in features[:5]
                    if isinstance(f, Mapping) and isinstance(f.get("name"), str)
                ]
        present = bool(sources)
        checks_out = {c: status.get(c, "missing") for c in CHECKS}
        section = {
            "present": present,
            "attestations": len(sources),
            "verified": present,
            "checks": checks_out,
            "failed_checks": sorted(c for c, v in checks_out.items() if v != "pass")
            if present
            else [],
            "top_features": top,
            "sources": sources,
            "ignored": [dict(i) for i in evidence.ignored],
        }
        findings = evidence.ignored_findings()
        ctx.shared["explain"] = section
        return Collected(
            self.name,
            self.predicate_type,
            section,
            section,
            findings,
            time.perf_counter() - started,
        )
