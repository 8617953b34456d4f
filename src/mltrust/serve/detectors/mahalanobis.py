"""Mahalanobis-distance outlier detector against the training data.

Mean and (ridge-regularised) covariance are fitted on half of the reference rows; the alert
threshold is the (1 - false_alarm_rate) quantile of distances on the other half, so on data
like the training data about ``false_alarm_rate`` of rows alert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mltrust.serve.detectors._reference import load_reference

__all__ = ["MahalanobisDetector", "build"]


class MahalanobisDetector:
    name = "mahalanobis"

    def __init__(self, reference: np.ndarray, *, false_alarm_rate: float, mode: str) -> None:
        rng = np.random.default_rng(0)
        idx = rng.permutation(reference.shape[0])
        half = max(2, reference.shape[0] // 2)
        fit, calib = reference[idx[:half]], reference[idx[half:]]
        self._mean = fit.mean(axis=0)
        cov = np.atleast_2d(np.cov(fit, rowvar=False))
        ridge = 1e-6 * max(float(np.trace(cov)) / cov.shape[0], 1e-12)
        self._precision = np.linalg.pinv(cov + ridge * np.eye(cov.shape[0]))
        scores = self.score(calib if calib.shape[0] else fit)
        self.threshold = float(np.quantile(scores, 1 - false_alarm_rate))
        self.mode = mode

    def score(self, X: np.ndarray) -> np.ndarray:
        d = X - self._mean
        squared = np.einsum("ij,jk,ik->i", d, self._precision, d)
        return np.asarray(np.sqrt(np.maximum(squared, 0.0)), dtype=np.float64)


def build(folder: Path, settings: Any) -> MahalanobisDetector:
    ref = load_reference(folder, settings.reference)
    return MahalanobisDetector(ref, false_alarm_rate=settings.false_alarm_rate, mode=settings.mode)
