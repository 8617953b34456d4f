"""Monitoring: data drift (per feature, MMD, classifier-based), streaming windows, and
per-request anomaly scorers for the serving gateway (compatible with its ``Detector``
protocol once calibrated: ``name``, ``threshold`` and ``score(X)``).
"""

from __future__ import annotations

from mltrust.monitor import _rules as _rules  # registers MLT-MON-* rules
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
