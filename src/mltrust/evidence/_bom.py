"""Collector: a CycloneDX 1.6 ML-BOM of the model, its files, data sets and packages."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltrust.bom import (
    BOM_PREDICATE_TYPE,
    DatasetRef,
    Metric,
    ModelInfo,
    Package,
    build_bom,
    describe_estimator,
)
from mltrust.errors import ConfigError, InputError
from mltrust.evidence import _rules
from mltrust.evidence._licenses import read_front_matter
from mltrust.evidence._model_scan import is_model_file
from mltrust.evidence.interface import CollectContext, Collected, Collector
from mltrust.findings import Finding, Location

__all__ = ["BomCollector"]

_DATA_SUFFIXES = frozenset(
    {".csv", ".tsv", ".parquet", ".feather", ".arrow", ".jsonl", ".tfrecord", ".avro", ".orc"}
)
_DATA_FOLDERS = ("data/", "datasets/", "dataset/")


def _card(ctx: CollectContext) -> dict[str, Any]:
    readme = ctx.root / "README.md"
    try:
        return read_front_matter(readme.read_text(encoding="utf-8", errors="replace")[: 1 << 20])
    except OSError:
        return {}


def _text(value: Any) -> str:
    """A scalar as text; containers (possibly alias bombs from YAML) as ``""``."""
    if isinstance(value, str):
        return value[:200]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _items(value: Any, limit: int = 100) -> list[Any]:
    return value[:limit] if isinstance(value, list) else []


def _metrics(card: Mapping[str, Any]) -> list[Metric]:
    """Metrics from a Hugging Face ``model-index`` (bounded: cards may be hostile)."""
    out: list[Metric] = []
    for entry in _items(card.get("model-index"), 20):
        results = entry.get("results") if isinstance(entry, Mapping) else None
        for result in _items(results):
            if not isinstance(result, Mapping):
                continue
            dataset = result.get("dataset")
            slice_name = _text(dataset.get("name")) if isinstance(dataset, Mapping) else ""
            for metric in _items(result.get("metrics")):
                if not isinstance(metric, Mapping):
                    continue
                kind, value = _text(metric.get("type")), _text(metric.get("value"))
                if kind and value:
                    out.append(Metric(kind, value, slice_name or None))
    return out[:500]


class BomCollector(Collector):
    name = "bom"
    predicate_type = BOM_PREDICATE_TYPE

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "valid": False,
            "components": 0,
            "model_files": 0,
            "packages": 0,
            "datasets": 0,
            "has_model_card": False,
            "errors": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        from mltrust import __version__

        started = time.perf_counter()
        card = _card(ctx)
        imports: list[str] = []
        files: list[tuple[str, str, int]] = []
        formats: set[str] = set()
        report = ctx.shared.get("scan_report")
        model_files = [(rel, p) for rel, p in ctx.files() if ctx.is_file or is_model_file(p)]
        for rel, path in model_files:
            files.append((rel, ctx.sha256(rel, path), path.stat().st_size))
        if report is not None:
            for result in report.files:
                formats.update(result.formats)
                facts = dict(result.facts)
                for key in ("pickle_imports", "imports", "globals"):
                    value = facts.get(key)
                    if isinstance(value, (list, tuple)):
                        imports.extend(str(v) for v in value)
        described = describe_estimator(imports)
        datasets = [
            DatasetRef(Path(rel).name, ctx.sha256(rel, p), rel)
            for rel, p in ctx.files()
            if Path(rel).suffix.lower() in _DATA_SUFFIXES and rel.startswith(_DATA_FOLDERS)
        ]
        for name in _items(card.get("datasets")):
            if isinstance(name, str):
                datasets.append(DatasetRef(name[:200]))
        metrics = _metrics(card)
        robustness = ctx.shared.get("robustness")
        if isinstance(robustness, Mapping) and robustness.get("present"):
            if robustness.get("min_clean_accuracy", -1.0) >= 0:
                metrics.append(Metric("accuracy", str(robustness["min_clean_accuracy"]), "clean"))
            if robustness.get("min_robust_accuracy", -1.0) >= 0:
                metrics.append(
                    Metric(
                        "robust-accuracy",
                        str(robustness["min_robust_accuracy"]),
                        "adversarial (minimum over budgets)",
                    )
                )
        considerations: dict[str, list[str]] = {}
        for key, field_name in (
            ("intended_use", "useCases"),
            ("limitations", "technicalLimitations"),
        ):
            value = card.get(key)
            if isinstance(value, str):
                considerations[field_name] = [value]
        task = card.get("pipeline_tag") if isinstance(card.get("pipeline_tag"), str) else None
        license_section = ctx.shared.get("licenses")
        licenses = (
            tuple(license_section.get("spdx", ())) if isinstance(license_section, Mapping) else ()
        )
        deps = ctx.shared.get("dependencies") or []
        packages = [Package(d.name, d.version, d.source) for d in deps]
        pinned_names = {d.name for d in deps}
        packages += [
            Package(d.name, None, d.source, f"{d.name}{d.specifier}")
            for d in ctx.shared.get("unpinned_dependencies") or []
            if d.name not in pinned_names
        ]
        model = ModelInfo(
            name=ctx.path.resolve().name if not ctx.is_file else ctx.path.stem,
            version=_text(card.get("version")) or None,
            files=tuple(files),
            approach=described.get("approach"),
            task=task or described.get("task"),
            architecture_family=described.get("architectureFamily"),
            model_architecture=described.get("modelArchitecture"),
            datasets=tuple(datasets),
            metrics=tuple(metrics),
            considerations=considerations,
            licenses=licenses,
            formats=tuple(sorted(formats)),
        )
        bom = build_bom(model, packages, tool_version=__version__)
        errors: list[str] = []
        findings: list[Finding] = []
        try:
            from mltrust.bom import validate_bom

            validate_bom(bom)
        except (InputError, ConfigError) as exc:
            errors.append(str(exc))
            findings.append(
                Finding.of(
                    _rules.BOM_MISSING, f"generated BOM is invalid: {exc}", Location(str(ctx.path))
                )
            )
        ctx.shared["bom"] = bom
        section = {
            "present": not errors,
            "valid": not errors,
            "components": len(bom["components"]) + 1,
            "model_files": len(files),
            "packages": len(packages),
            "datasets": len(datasets),
            "has_model_card": True,
            "errors": errors,
        }
        return Collected(
            self.name,
            self.predicate_type,
            bom,
            section,
            tuple(findings),
            time.perf_counter() - started,
        )
