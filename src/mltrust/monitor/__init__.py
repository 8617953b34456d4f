"""Monitoring: data drift (per feature, MMD, classifier-based), streaming windows, and
per-request anomaly scorers for the serving gateway (compatible with its ``Detector``
protocol once calibrated: ``name``, ``threshold`` and ``score(X)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mltrust._lazy import lazy_exports
from mltrust.monitor import _rules as _rules  # registers MLT-MON-* rules

if TYPE_CHECKING:
    from mltrust.monitor._drift import (
        ClassifierDrift,
        DriftReport,
        FeatureDrift,
        MMDResult,
        adjust_pvalues,
        classifier_drift,
        cvm_columns,
        detect_drift,
        feature_drift,
        ks_columns,
        mmd_test,
        psi,
    )
    from mltrust.monitor._report import render_drift
    from mltrust.monitor._scorers import (
        AdversarialScorer,
        KNNScorer,
        LIDScorer,
        MahalanobisScorer,
        Scorer,
        load_scorer,
        make_scorer,
        save_scorer,
    )
    from mltrust.monitor._stream import (
        WindowDrift,
        iter_audit_windows,
        iter_table_windows,
        stream_drift,
    )

#: module -> the public names it defines; imported on first use (module ``__getattr__``), so
#: that listing the rules (``mltrust rules``, ``--help``) needs neither NumPy nor its import time.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "mltrust.monitor._drift": (
        "ClassifierDrift",
        "DriftReport",
        "FeatureDrift",
        "MMDResult",
        "adjust_pvalues",
        "classifier_drift",
        "cvm_columns",
        "detect_drift",
        "feature_drift",
        "ks_columns",
        "mmd_test",
        "psi",
    ),
    "mltrust.monitor._report": ("render_drift",),
    "mltrust.monitor._scorers": (
        "AdversarialScorer",
        "KNNScorer",
        "LIDScorer",
        "MahalanobisScorer",
        "Scorer",
        "load_scorer",
        "make_scorer",
        "save_scorer",
    ),
    "mltrust.monitor._stream": (
        "WindowDrift",
        "iter_audit_windows",
        "iter_table_windows",
        "stream_drift",
    ),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "AdversarialScorer",
    "ClassifierDrift",
    "DriftReport",
    "FeatureDrift",
    "KNNScorer",
    "LIDScorer",
    "MMDResult",
    "MahalanobisScorer",
    "Scorer",
    "WindowDrift",
    "adjust_pvalues",
    "classifier_drift",
    "cvm_columns",
    "detect_drift",
    "feature_drift",
    "iter_audit_windows",
    "iter_table_windows",
    "ks_columns",
    "load_scorer",
    "make_scorer",
    "mmd_test",
    "psi",
    "render_drift",
    "save_scorer",
    "stream_drift",
]
