"""Evidence collectors: facts about a model or project, as in-toto statements.

>>> from pathlib import Path
>>> from mltrust.evidence import CollectContext, collect_evidence
>>> bundle = collect_evidence(CollectContext(Path("project")))   # doctest: +SKIP
>>> bundle.document["deps"]["vulnerabilities"]                   # doctest: +SKIP
"""

from __future__ import annotations

from mltrust.evidence import _rules as _rules  # registers the collectors' rules
from mltrust.evidence._collect import EvidenceBundle, collect_evidence, subject_of
from mltrust.evidence._registry import all_collectors
from mltrust.evidence.interface import (
    STATEMENT_TYPE,
    CollectContext,
    Collected,
    Collector,
    finding_fingerprint,
    fingerprint,
    severity_counts,
)

__all__ = [
    "STATEMENT_TYPE",
    "CollectContext",
    "Collected",
    "Collector",
    "EvidenceBundle",
    "all_collectors",
    "collect_evidence",
    "finding_fingerprint",
    "fingerprint",
    "severity_counts",
    "subject_of",
]
