"""Detectors backed by :mod:`mltrust.monitor` scorers: ``knn`` (distance to the k-th nearest
training row) and ``lid`` (local intrinsic dimensionality, an adversarial-input signal).

Each scorer is fitted on half of the reference rows and calibrated on the other half to the
configured false-alarm rate. Extra settings: ``k`` (neighbours).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.serve.detectors._reference import load_reference

__all__ = ["MonitorDetector", "build_knn", "build_lid"]


class MonitorDetector:
    """Adapts a fitted, calibrated monitor scorer to the serving Detector protocol."""

    def __init__(self, name: str, scorer: Any, threshold: float, mode: str) -> None:
        self.name = name
        self._scorer = scorer
        self.threshold = threshold
        self.mode = mode

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self._scorer.score(X), dtype=np.float64)


def _build(kind: str, folder: Path, settings: Any) -> MonitorDetector:
    try:
        monitor = importlib.import_module("mltrust.monitor")
    except ModuleNotFoundError as exc:
        if exc.name != "mltrust.monitor":
            raise
        raise ConfigError(f"detector {kind!r} needs mltrust.monitor") from None
    ref = load_reference(folder, settings.reference)
    params = dict(settings.params)
    k = params.get("k")
    kwargs = {"k": int(k)} if isinstance(k, int) and not isinstance(k, bool) and k > 0 else {}
    rng = np.random.default_rng(0)
    idx = rng.permutation(ref.shape[0])
    half = ref.shape[0] // 2
    scorer = monitor.make_scorer(kind, **kwargs)
    scorer.fit(ref[idx[:half]])
    threshold = float(scorer.calibrate(ref[idx[half:]], settings.false_alarm_rate))
    return MonitorDetector(kind, scorer, threshold, settings.mode)


def build_knn(folder: Path, settings: Any) -> MonitorDetector:
    return _build("knn", folder, settings)


def build_lid(folder: Path, settings: Any) -> MonitorDetector:
    return _build("lid", folder, settings)
