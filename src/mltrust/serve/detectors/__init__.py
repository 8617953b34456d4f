"""Per-model input detectors: the interface and one module per detector, in :data:`DETECTORS`."""

from __future__ import annotations

import importlib
from pathlib import Path

from mltrust.errors import ConfigError
from mltrust.serve._settings import DetectorSettings
from mltrust.serve.detectors.interface import Detector

__all__ = ["DETECTORS", "Detector", "build_detector"]

#: detector type -> module holding ``build(folder, settings) -> Detector``.
DETECTORS: dict[str, str] = {
    "ranges": "mltrust.serve.detectors.ranges",
    "mahalanobis": "mltrust.serve.detectors.mahalanobis",
}


def build_detector(folder: Path, settings: DetectorSettings) -> Detector:
    module_name = DETECTORS.get(settings.type)
    if module_name is None:
        raise ConfigError(f"unknown detector {settings.type!r} ({', '.join(sorted(DETECTORS))})")
    detector: Detector = importlib.import_module(module_name).build(folder, settings)
    return detector
