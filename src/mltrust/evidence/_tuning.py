"""Collector: tuning provenance next to the model (predicate ``https://mltrust.dev/tuning/v1``,
signed by ``mltrust attest tuning``), summarised for the policy.

Only statements signed by a key passed with ``--key`` and about this subject count (see
:mod:`mltrust.evidence._attestations`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mltrust.evidence._attestations import has_candidates, trusted_statements
from mltrust.evidence.interface import CollectContext, Collected, Collector

__all__ = ["TUNING_PREDICATE", "TuningCollector"]

TUNING_PREDICATE = "https://mltrust.dev/tuning/v1"
PREDICATE_TYPE = "https://mltrust.dev/tuning-summary/v1"


class TuningCollector(Collector):
    name = "tuning"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        return has_candidates(ctx)

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "attestations": 0,
            "verified": False,
            "study": "",
            "trials": 0,
            "complete_trials": 0,
            "selected_trial": -1,
            "selected_state": "",
            "selected_how": "",
            "datasets": 0,
            "code_commit": "",
            "sources": [],
            "ignored": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        evidence = trusted_statements(ctx, TUNING_PREDICATE).claimed_only()
        section = self.absent()
        sources: list[str] = []
        for source, statement, _fp in evidence.verified:
            predicate = statement.get("predicate")
            study = predicate.get("study") if isinstance(predicate, Mapping) else None
            if not isinstance(study, Mapping):
                continue
            sources.append(source)
            if len(sources) > 1:
                continue  # the first verified statement is summarised; all are listed
            trials = study.get("trials")
            trials = trials if isinstance(trials, list) else []
            selected = study.get("selected")
            selected = selected if isinstance(selected, Mapping) else {}
            number = selected.get("number")
            code = predicate.get("code") if isinstance(predicate, Mapping) else None
            commit = (
                code.get("digest", {}).get("gitCommit", "")
                if isinstance(code, Mapping) and isinstance(code.get("digest"), Mapping)
                else ""
            )
            datasets = predicate.get("datasets") if isinstance(predicate, Mapping) else None
            section.update(
                {
                    "study": str(study.get("name", "")),
                    "trials": len(trials),
                    "complete_trials": sum(
                        1 for t in trials if isinstance(t, Mapping) and t.get("state") == "COMPLETE"
                    ),
                    "selected_trial": number
                    if isinstance(number, int) and not isinstance(number, bool)
                    else -1,
                    "selected_state": str(selected.get("state", "")),
                    "selected_how": str(selected.get("how", "")),
                    "datasets": len(datasets) if isinstance(datasets, list) else 0,
                    "code_commit": str(commit),
                }
            )
        present = bool(sources)
        section.update(
            {
                "present": present,
                "attestations": len(sources),
                "verified": present,
                "sources": sources,
                "ignored": [dict(i) for i in evidence.ignored],
            }
        )
        findings = evidence.ignored_findings()
        ctx.shared["tuning"] = section
        return Collected(
            self.name,
            self.predicate_type,
            section,
            section,
            findings,
            time.perf_counter() - started,
        )
