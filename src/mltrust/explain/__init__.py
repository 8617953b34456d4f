"""Explanations as evidence: feature attributions for tabular classifiers, checked.

Public API: :func:`explain` (attributions and sanity checks), :class:`ExplainConfig`,
:class:`Explanation`, the evidence writers :func:`statement` and :func:`html_report`, and the
predicate type :data:`PREDICATE_TYPE`.
"""

from __future__ import annotations

from mltrust.explain._attribution import (
    coalitions,
    integrated_gradients,
    kernel_shap,
    permutation_importance,
    shapley_exact,
)
from mltrust.explain._explain import (
    Check,
    CheckStatus,
    ExplainConfig,
    Explanation,
    explain,
    randomise,
    rank_similarity,
)
from mltrust.explain._report import PREDICATE_TYPE, html_report, predicate, statement

__all__ = [
    "PREDICATE_TYPE",
    "Check",
    "CheckStatus",
    "ExplainConfig",
    "Explanation",
    "coalitions",
    "explain",
    "html_report",
    "integrated_gradients",
    "kernel_shap",
    "permutation_importance",
    "predicate",
    "randomise",
    "rank_similarity",
    "shapley_exact",
    "statement",
]
