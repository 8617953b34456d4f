"""Per-model input detectors: the interface and one module per detector, in :data:`DETECTORS`."""

from __future__ import annotations

import importlib
from pathlib import Path

from mltrust.errors import ConfigError
from mltrust.serve._settings import DetectorSettings
from mltrust.serve.detectors.interface import Detector

__all__ = ["DETECTORS", "Detector", "build_detector"]

#: detector type -> "module" (holding ``build``) or "module:function", each
#: ``(folder, settings) -> Detector``.
DETECTORS: dict[str, str] = {
    "ranges": "mltrust.serve.detectors.ranges",
    "mahalanobis": "mltrust.serve.detectors.mahalanobis",
    "knn": "mltrust.serve.detectors.monitor:build_knn",
    "lid": "mltrust.serve.detectors.monitor:build_lid",
}


def build_detector(folder: Path, settings: DetectorSettings) -> Detector:
    module_name = DETECTORS.get(settings.type)
    if module_name is None:
        raise ConfigError(f"unknown detector {settings.type!r} ({', '.join(sorted(DETECTORS))})")
    module, _, func = module_name.partition(":")
    build = getattr(importlib.import_module(module), func or "build")
    detector: Detector = build(folder, settings)
    return detector
