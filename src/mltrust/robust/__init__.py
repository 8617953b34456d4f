"""Adversarial robustness, privacy and poisoning checks for classifiers (NumPy/SciPy).

Public API: data loading (:func:`load_dataset`), model adapters (:func:`adapt`), attacks
(:func:`fgsm`, :func:`pgd`, :func:`exact_linear`, :func:`tree_attack`, :func:`hop_skip_jump`),
:func:`evaluate_robustness`, :func:`membership_inference`, :func:`audit_labels`,
:func:`find_trigger`, :func:`activation_clusters`, :func:`adversarial_training`, and the
evidence writers (:func:`predicate`, :func:`statement`, :func:`html_report`,
:func:`write_pngs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrust._lazy import lazy_exports
from mltrust.robust import _rules as _rules  # registers MLT-ROB-* rules

if TYPE_CHECKING:
    from mltrust.robust._attacks import (
        AttackOutcome,
        apgd,
        exact_linear,
        fgsm,
        minimal_linf_linear,
        pgd,
    )
    from mltrust.robust._data import Dataset, load_dataset, sklearn_split
    from mltrust.robust._evaluate import (
        ATTACKS,
        EpsResult,
        RobustnessReport,
        evaluate_robustness,
        threat_model,
    )
    from mltrust.robust._harden import HardenResult, adversarial_training
    from mltrust.robust._hsj import HSJOutcome, hop_skip_jump
    from mltrust.robust._models import (
        BlackBoxModel,
        Classifier,
        LinearModel,
        MLPModel,
        SVCModel,
        TorchModel,
        adapt,
    )
    from mltrust.robust._poison import (
        ClusterCheck,
        LabelAudit,
        TriggerReport,
        activation_clusters,
        audit_labels,
        find_trigger,
    )
    from mltrust.robust._privacy import MembershipReport, membership_inference, roc_auc_advantage
    from mltrust.robust._report import PREDICATE_TYPE, html_report, predicate, statement, write_pngs
    from mltrust.robust._trees import TreeAttackOutcome, tree_attack, tree_min_perturbation

#: module -> the public names it defines; imported on first use (module ``__getattr__``), so
#: that listing the rules (``mltrust rules``, ``--help``) needs neither NumPy nor its import time.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "mltrust.robust._attacks": (
        "AttackOutcome",
        "apgd",
        "exact_linear",
        "fgsm",
        "minimal_linf_linear",
        "pgd",
    ),
    "mltrust.robust._data": ("Dataset", "load_dataset", "sklearn_split"),
    "mltrust.robust._evaluate": (
        "ATTACKS",
        "EpsResult",
        "RobustnessReport",
        "evaluate_robustness",
        "threat_model",
    ),
    "mltrust.robust._harden": ("HardenResult", "adversarial_training"),
    "mltrust.robust._hsj": ("HSJOutcome", "hop_skip_jump"),
    "mltrust.robust._models": (
        "BlackBoxModel",
        "Classifier",
        "LinearModel",
        "MLPModel",
        "SVCModel",
        "TorchModel",
        "adapt",
    ),
    "mltrust.robust._poison": (
        "ClusterCheck",
        "LabelAudit",
        "TriggerReport",
        "activation_clusters",
        "audit_labels",
        "find_trigger",
    ),
    "mltrust.robust._privacy": ("MembershipReport", "membership_inference", "roc_auc_advantage"),
    "mltrust.robust._report": (
        "PREDICATE_TYPE",
        "html_report",
        "predicate",
        "statement",
        "write_pngs",
    ),
    "mltrust.robust._trees": ("TreeAttackOutcome", "tree_attack", "tree_min_perturbation"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "ATTACKS",
    "PREDICATE_TYPE",
    "AttackOutcome",
    "BlackBoxModel",
    "Classifier",
    "ClusterCheck",
    "Dataset",
    "EpsResult",
    "HSJOutcome",
    "HardenResult",
    "LabelAudit",
    "LinearModel",
    "MLPModel",
    "MembershipReport",
    "RobustnessReport",
    "SVCModel",
    "TorchModel",
    "TreeAttackOutcome",
    "TriggerReport",
    "activation_clusters",
    "adapt",
    "adversarial_training",
    "apgd",
    "audit_labels",
    "evaluate_robustness",
    "exact_linear",
    "fgsm",
    "find_trigger",
    "hop_skip_jump",
    "html_report",
    "load_dataset",
    "membership_inference",
    "minimal_linf_linear",
    "pgd",
    "predicate",
    "roc_auc_advantage",
    "sklearn_split",
    "statement",
    "threat_model",
    "tree_attack",
    "tree_min_perturbation",
    "write_pngs",
]
