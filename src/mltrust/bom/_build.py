"""Building a CycloneDX 1.6 ML-BOM as plain JSON-ready dicts.

cyclonedx-python-lib has no model for ``modelCard``, so the whole document is built here and
checked against the official schema by :func:`mltrust.bom.validate_bom`.

The BOM is tied to the model it describes: the model component always carries a SHA-256
hash when anything about its bytes is known. That is the model's mltrust root digest (the
digest signatures and attestations name, :attr:`ModelInfo.root_digest`) when the caller has
it; otherwise the root digest computed from the files listed (names, sizes and SHA-256, same
encoding), with a ``mltrust:hashCovers`` property saying which of the two it is. Each file is
also a ``file`` component with its own SHA-256. Requirements that are not pinned to one
version are components too (no ``version``, the requirement in ``mltrust:requirement``,
``mltrust:pinned`` false), so a BOM never hides what could not be pinned.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BOM_PREDICATE_TYPE",
    "DatasetRef",
    "Metric",
    "ModelInfo",
    "Package",
    "build_bom",
    "describe_estimator",
]

BOM_PREDICATE_TYPE = "https://cyclonedx.org/bom/v1.6"
_APPROACHES = frozenset(
    {"supervised", "unsupervised", "reinforcement-learning", "semi-supervised", "self-supervised"}
)
_REF_SAFE = re.compile(r"[^A-Za-z0-9._:/@+-]")


@dataclass(frozen=True, slots=True)
class DatasetRef:
    name: str
    sha256: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True)
class Metric:
    type: str
    value: str
    slice: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    #: The one version in use; None when the requirement is not pinned.
    version: str | None
    source: str = ""
    #: The requirement as written (e.g. ``torch>=2``) for an unpinned package.
    requirement: str = ""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What is known about the model (every field optional except the name)."""

    name: str
    version: str | None = None
    #: ``(relative path, sha256, size)`` of each model file.
    files: tuple[tuple[str, str, int], ...] = ()
    root_digest: str | None = None
    approach: str | None = None
    task: str | None = None
    architecture_family: str | None = None
    model_architecture: str | None = None
    datasets: tuple[DatasetRef, ...] = ()
    metrics: tuple[Metric, ...] = ()
    considerations: Mapping[str, Sequence[str]] = field(default_factory=dict)
    licenses: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()


_FAMILIES = (
    ("RandomForest", "random forest"),
    ("ExtraTrees", "random forest"),
    ("GradientBoosting", "gradient boosting"),
    ("HistGradientBoosting", "gradient boosting"),
    ("XGB", "gradient boosting"),
    ("LGBM", "gradient boosting"),
    ("CatBoost", "gradient boosting"),
    ("AdaBoost", "boosting"),
    ("DecisionTree", "decision tree"),
    ("LogisticRegression", "linear model"),
    ("LinearRegression", "linear model"),
    ("Ridge", "linear model"),
    ("Lasso", "linear model"),
    ("SGD", "linear model"),
    ("SVC", "support vector machine"),
    ("SVR", "support vector machine"),
    ("MLP", "neural network"),
    ("KNeighbors", "nearest neighbors"),
    ("GaussianNB", "naive Bayes"),
    ("MultinomialNB", "naive Bayes"),
    ("KMeans", "clustering"),
    ("DBSCAN", "clustering"),
    ("PCA", "dimensionality reduction"),
)
_PLUMBING = (
    "numpy",
    "builtins",
    "copyreg",
    "collections",
    "joblib",
    "_codecs",
    "scipy",
    "torch._utils",
    "torch.storage",
    "__builtin__",
    "pandas",
    "_pickle",
    "pickle",
)


def describe_estimator(imports: Iterable[str]) -> dict[str, str]:
    """approach / task / architectureFamily / modelArchitecture from pickle import targets.

    ``imports`` are ``module:qualname`` (or dotted) names the pickle references; the first
    estimator-looking class (not numpy/builtins plumbing) is described. Empty when unknown.
    """
    candidates: list[tuple[str, str]] = []
    for target in imports:
        module, sep, qual = str(target).partition(":")
        if not sep:
            module, _, qual = str(target).rpartition(".")
        if not qual or module.startswith(_PLUMBING) or not qual[:1].isupper():
            continue
        candidates.append((module, qual))
    estimator = next(
        (
            c
            for c in candidates
            if c[0].startswith(("sklearn", "xgboost", "lightgbm", "catboost"))
            and not c[1].endswith(
                (
                    "Encoder",
                    "Scaler",
                    "Imputer",
                    "Pipeline",
                    "Tree",
                    "Loss",
                    "Splitter",
                    "Criterion",
                    "BinMapper",
                    "Predictor",
                )
            )
        ),
        candidates[0] if candidates else None,
    )
    if estimator is None:
        if any(str(t).startswith("torch") for t in imports):
            return {"architectureFamily": "neural network"}
        return {}
    module, qual = estimator
    out = {"modelArchitecture": f"{module}.{qual}"}
    family = next((fam for key, fam in _FAMILIES if qual.startswith(key)), None)
    if family is None and module.startswith("torch"):
        family = "neural network"
    if family:
        out["architectureFamily"] = family
    if qual.endswith("Classifier") or qual in (
        "LogisticRegression",
        "SVC",
        "GaussianNB",
        "MultinomialNB",
    ):
        out["task"], out["approach"] = "classification", "supervised"
    elif qual.endswith(("Regressor", "Regression", "SVR")) or qual in ("Ridge", "Lasso"):
        out["task"], out["approach"] = "regression", "supervised"
    elif family == "clustering":
        out["task"], out["approach"] = "clustering", "unsupervised"
    elif family == "dimensionality reduction":
        out["task"], out["approach"] = "dimensionality-reduction", "unsupervised"
    return out


def _ref(kind: str, name: str) -> str:
    return f"{kind}:{_REF_SAFE.sub('-', name)}"


def _license_entries(ids: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for spdx in ids:
        if spdx.startswith("LicenseRef-") or " " in spdx:
            out.append({"license": {"name": spdx}})
        else:
            out.append({"license": {"id": spdx}})
    return out


def _purl(pkg: Package) -> str:
    from mltrust.advisories import normalize_name

    name = normalize_name(pkg.name)
    return f"pkg:pypi/{name}@{pkg.version}" if pkg.version else f"pkg:pypi/{name}"


def _model_digest(model: ModelInfo) -> tuple[str | None, str]:
    """(SHA-256 for the model component, what it covers); see the module docstring."""
    if model.root_digest:
        return model.root_digest, "mltrust root digest of the model (as signed)"
    if not model.files:
        return None, ""
    from pathlib import PurePosixPath

    from mltrust.attest import FileEntry, Manifest

    entries = sorted(  # the manifest order: by path components, as signatures use
        (FileEntry(rel, size, "sha256", (sha,)) for rel, sha, size in model.files),
        key=lambda f: PurePosixPath(f.name).parts,
    )
    listed = Manifest(name=model.name, hash_algorithm="sha256", files=tuple(entries))
    return listed.root_digest, "mltrust root digest of the model files listed in this BOM"


def build_bom(
    model: ModelInfo,
    packages: Sequence[Package] = (),
    *,
    tool_version: str = "",
    serial: str | None = None,
    timestamp: _dt.datetime | None = None,
) -> dict[str, Any]:
    """A CycloneDX 1.6 JSON document describing ``model`` and the packages it runs with."""
    model_ref = _ref("model", model.name)
    components: list[dict[str, Any]] = []
    depends: list[str] = []
    seen_refs = {model_ref}

    def unique(ref: str) -> str:
        base, n = ref, 1
        while ref in seen_refs:
            n += 1
            ref = f"{base}#{n}"
        seen_refs.add(ref)
        return ref

    for rel, sha256, size in model.files:
        ref = unique(_ref("file", rel))
        components.append(
            {
                "type": "file",
                "bom-ref": ref,
                "name": rel,
                "hashes": [{"alg": "SHA-256", "content": sha256}],
                "properties": [{"name": "mltrust:size", "value": str(size)}],
            }
        )
        depends.append(ref)
    dataset_refs: list[dict[str, str]] = []
    for ds in model.datasets:
        ref = unique(_ref("dataset", ds.name))
        comp: dict[str, Any] = {
            "type": "data",
            "bom-ref": ref,
            "name": ds.name,
            "data": [{"type": "dataset", "name": ds.name}],
        }
        if ds.sha256:
            comp["hashes"] = [{"alg": "SHA-256", "content": ds.sha256}]
        if ds.path:
            comp["properties"] = [{"name": "mltrust:path", "value": ds.path}]
        components.append(comp)
        dataset_refs.append({"ref": ref})
        depends.append(ref)
    lib_refs = []
    for pkg in sorted(packages, key=lambda p: (p.name, p.version or "")):
        purl = _purl(pkg)
        ref = unique(purl)
        entry: dict[str, Any] = {"type": "library", "bom-ref": ref, "name": pkg.name, "purl": purl}
        props: list[dict[str, str]] = []
        if pkg.version:
            entry["version"] = pkg.version
        else:
            props.append({"name": "mltrust:pinned", "value": "false"})
            if pkg.requirement:
                props.append({"name": "mltrust:requirement", "value": pkg.requirement})
        if pkg.source:
            props.append({"name": "mltrust:source", "value": pkg.source})
        if props:
            entry["properties"] = props
        components.append(entry)
        lib_refs.append(ref)

    params: dict[str, Any] = {}
    if model.approach in _APPROACHES:
        params["approach"] = {"type": model.approach}
    if model.task:
        params["task"] = model.task
    if model.architecture_family:
        params["architectureFamily"] = model.architecture_family
    if model.model_architecture:
        params["modelArchitecture"] = model.model_architecture
    if dataset_refs:
        params["datasets"] = dataset_refs
    card: dict[str, Any] = {"bom-ref": _ref("model-card", model.name)}
    if params:
        card["modelParameters"] = params
    if model.metrics:
        metrics = []
        for m in model.metrics:
            item = {"type": m.type, "value": m.value}
            if m.slice:
                item["slice"] = m.slice
            metrics.append(item)
        card["quantitativeAnalysis"] = {"performanceMetrics": metrics}
    considerations = {
        key: [str(v) for v in values]
        for key, values in model.considerations.items()
        if key in ("users", "useCases", "technicalLimitations", "performanceTradeoffs") and values
    }
    if considerations:
        card["considerations"] = considerations

    model_component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": model_ref,
        "name": model.name,
    }
    if model.version:
        model_component["version"] = model.version
    model_props: list[dict[str, str]] = []
    digest, covers = _model_digest(model)
    if digest:
        model_component["hashes"] = [{"alg": "SHA-256", "content": digest}]
        model_props.append({"name": "mltrust:hashCovers", "value": covers})
    if model.licenses:
        model_component["licenses"] = _license_entries(model.licenses)
    model_props += [{"name": "mltrust:format", "value": f} for f in model.formats]
    if model_props:
        model_component["properties"] = model_props
    model_component["modelCard"] = card
    when = (timestamp or _dt.datetime.now(_dt.UTC)).replace(microsecond=0)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial or f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": when.isoformat().replace("+00:00", "Z"),
            "tools": {
                "components": [
                    {"type": "application", "name": "mltrust", "version": tool_version or "0"}
                ]
            },
            "component": model_component,
        },
        "components": components,
        "dependencies": [
            {"ref": model_ref, "dependsOn": depends + lib_refs},
            *({"ref": r} for r in depends + lib_refs),
        ],
    }
