"""The one table of evidence collectors, in the order they run.

Later collectors may read what earlier ones left in ``CollectContext.shared`` (the BOM reads
the scan's facts, the dependencies and the licenses), so the order matters.
"""

from __future__ import annotations

import importlib

from mltrust.evidence.interface import Collector

__all__ = ["all_collectors"]

_COLLECTORS: tuple[str, ...] = (
    "mltrust.evidence._model_scan:ModelScanCollector",
    "mltrust.evidence._signature:SignatureCollector",
    "mltrust.evidence._licenses:LicenseCollector",
    "mltrust.evidence._deps:DependencyCollector",
    "mltrust.evidence._code:CodeCollector",
    "mltrust.evidence._image:ImageReportCollector",
    "mltrust.evidence._robustness:RobustnessCollector",
    "mltrust.evidence._explain:ExplainCollector",
    "mltrust.evidence._tuning:TuningCollector",
    "mltrust.evidence._bom:BomCollector",
)


def all_collectors() -> tuple[Collector, ...]:
    out = []
    for spec in _COLLECTORS:
        module_name, _, cls_name = spec.partition(":")
        out.append(getattr(importlib.import_module(module_name), cls_name)())
    return tuple(out)
