"""Feature-range detector: how far each row lies outside the per-feature training range.

Score: the largest excess over any feature, in units of that feature's training span
(0 inside the range). The threshold is calibrated on held-out reference rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mltrust.serve.detectors._reference import load_reference

__all__ = ["RangeDetector", "build"]


class RangeDetector:
    name = "ranges"

    def __init__(self, reference: np.ndarray, *, false_alarm_rate: float, mode: str) -> None:
        rng = np.random.default_rng(0)
        idx = rng.permutation(reference.shape[0])
        half = max(1, reference.shape[0] // 2)
        fit, calib = reference[idx[:half]], reference[idx[half:]]
        self._lo = fit.min(axis=0)
        self._hi = fit.max(axis=0)
        span = self._hi - self._lo
        self._span = np.where(span > 0, span, 1.0)
        scores = self.score(calib) if calib.size else np.zeros(1)
        self.threshold = float(max(np.quantile(scores, 1 - false_alarm_rate), 0.0) + 1e-9)
        self.mode = mode

    def score(self, X: np.ndarray) -> np.ndarray:
        below = (self._lo - X) / self._span
        above = (X - self._hi) / self._span
        excess = np.maximum(np.maximum(below, above), 0.0)
        return np.asarray(excess.max(axis=1), dtype=np.float64)


def build(folder: Path, settings: Any) -> RangeDetector:
    ref = load_reference(folder, settings.reference)
    return RangeDetector(ref, false_alarm_rate=settings.false_alarm_rate, mode=settings.mode)
