"""CycloneDX 1.6 ML-BOM: the model with its model card, files, data sets and packages.

>>> from mltrust.bom import ModelInfo, build_bom, validate_bom
>>> bom = build_bom(ModelInfo(name="iris", task="classification"))
>>> validate_bom(bom)
"""

from __future__ import annotations

from mltrust.bom._build import (
    BOM_PREDICATE_TYPE,
    DatasetRef,
    Metric,
    ModelInfo,
    Package,
    build_bom,
    describe_estimator,
)
from mltrust.bom._schema import schema_folder, validate_bom

__all__ = [
    "BOM_PREDICATE_TYPE",
    "DatasetRef",
    "Metric",
    "ModelInfo",
    "Package",
    "build_bom",
    "describe_estimator",
    "schema_folder",
    "validate_bom",
]
