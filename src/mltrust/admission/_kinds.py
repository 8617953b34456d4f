"""Where each kind of Kubernetes object names its model: one extractor per kind, one table.

A :class:`ModelRef` is what the object *says* (a path or a URI) and where it says it (a JSON
path for the message); :mod:`._locate` turns it into a folder under the storage root.

* Pods name their model with the annotation ``mltrust.dev/model-path`` (a path under the
  storage root). Workloads that create pods (Deployment, StatefulSet, DaemonSet, ReplicaSet,
  Job, CronJob) are checked through their pod template, so a bad model is refused when the
  Deployment is applied, not only when its pods are created.
* KServe ``InferenceService``: ``spec.predictor.model.storageUri``, and every other
  ``storageUri``/``storageUris`` anywhere under ``spec`` (the older per-framework predictor
  fields, transformers, explainers), and every container ``env`` entry ``STORAGE_URI`` (custom
  containers ask KServe's storage initializer for a model that way): a model location the
  webhook does not look at would be a way around it.
* Seldon ``SeldonDeployment``: every ``modelUri`` of every predictor's graph, children included.

A kind not in :data:`EXTRACTORS` is refused: the webhook configuration only sends kinds that
can carry a model, so an unknown one is a configuration mismatch, and fail-closed means deny.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import InputError

__all__ = ["ANNOTATION", "EXTRACTORS", "ModelRef", "model_refs"]

#: The annotation a pod (or a pod template) names its model with.
ANNOTATION = "mltrust.dev/model-path"


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A model location named by an object: ``value`` found at ``where``."""

    #: ``path`` (relative to the storage root) or ``uri`` (``file://``, ``pvc://``, ...).
    form: str
    value: str
    where: str


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{where} is not an object")
    return value


def _annotation(meta: object, where: str) -> Iterator[ModelRef]:
    annotations = _mapping(_mapping(meta, where).get("annotations"), f"{where}.annotations")
    if ANNOTATION in annotations:
        value = annotations[ANNOTATION]
        if not isinstance(value, str):
            raise InputError(f"{where}.annotations[{ANNOTATION}] is not a string")
        yield ModelRef("path", value, f"{where}.annotations[{ANNOTATION}]")


def _pod(obj: Mapping[str, Any]) -> Iterator[ModelRef]:
    yield from _annotation(obj.get("metadata"), "metadata")


def _template(obj: Mapping[str, Any]) -> Iterator[ModelRef]:
    spec = _mapping(obj.get("spec"), "spec")
    template = _mapping(spec.get("template"), "spec.template")
    yield from _annotation(template.get("metadata"), "spec.template.metadata")
    # The workload's own annotation counts too (some tools annotate the Deployment).
    yield from _annotation(obj.get("metadata"), "metadata")


def _cronjob(obj: Mapping[str, Any]) -> Iterator[ModelRef]:
    spec = _mapping(obj.get("spec"), "spec")
    job = _mapping(spec.get("jobTemplate"), "spec.jobTemplate")
    job_spec = _mapping(job.get("spec"), "spec.jobTemplate.spec")
    template = _mapping(job_spec.get("template"), "spec.jobTemplate.spec.template")
    yield from _annotation(template.get("metadata"), "spec.jobTemplate.spec.template.metadata")
    yield from _annotation(obj.get("metadata"), "metadata")


def _search(value: object, keys: frozenset[str], where: str, depth: int = 0) -> Iterator[ModelRef]:
    """Every string under one of ``keys`` anywhere below ``value`` (lists of strings too)."""
    if depth > DEFAULT_LIMITS.max_admission_spec_depth:
        raise InputError(f"{where} is nested too deeply")
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = f"{where}.{key}"
            if key in keys:
                if isinstance(item, str):
                    yield ModelRef("uri", item, here)
                    continue
                if isinstance(item, list) and all(isinstance(i, str) for i in item):
                    for n, uri in enumerate(item):
                        yield ModelRef("uri", uri, f"{here}[{n}]")
                    continue
                raise InputError(f"{here} is not a string")
            yield from _search(item, keys, here, depth + 1)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _search(item, keys, f"{where}[{n}]", depth + 1)


def _storage_env(value: object, where: str, depth: int = 0) -> Iterator[ModelRef]:
    """``{"name": "STORAGE_URI", "value": ...}`` entries anywhere below ``value``."""
    if depth > DEFAULT_LIMITS.max_admission_spec_depth:
        raise InputError(f"{where} is nested too deeply")
    if isinstance(value, Mapping):
        if value.get("name") == "STORAGE_URI" and "value" in value:
            uri = value["value"]
            if not isinstance(uri, str):
                raise InputError(f"{where}.value is not a string")
            yield ModelRef("uri", uri, f"{where}.value")
        for key, item in value.items():
            yield from _storage_env(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _storage_env(item, f"{where}[{n}]", depth + 1)


def _inference_service(obj: Mapping[str, Any]) -> Iterator[ModelRef]:
    yield from _search(obj.get("spec"), frozenset({"storageUri", "storageUris"}), "spec")
    yield from _storage_env(obj.get("spec"), "spec")
    yield from _annotation(obj.get("metadata"), "metadata")


def _seldon(obj: Mapping[str, Any]) -> Iterator[ModelRef]:
    yield from _search(obj.get("spec"), frozenset({"modelUri"}), "spec")
    yield from _annotation(obj.get("metadata"), "metadata")


Extractor = Callable[[Mapping[str, Any]], Iterator[ModelRef]]

#: (API group, kind) -> extractor. The core group is "".
EXTRACTORS: dict[tuple[str, str], Extractor] = {
    ("", "Pod"): _pod,
    ("apps", "Deployment"): _template,
    ("apps", "StatefulSet"): _template,
    ("apps", "DaemonSet"): _template,
    ("apps", "ReplicaSet"): _template,
    ("batch", "Job"): _template,
    ("batch", "CronJob"): _cronjob,
    ("serving.kserve.io", "InferenceService"): _inference_service,
    ("machinelearning.seldon.io", "SeldonDeployment"): _seldon,
}


def model_refs(group: str, kind: str, obj: Mapping[str, Any]) -> list[ModelRef]:
    """The model locations ``obj`` names; :class:`InputError` for an unknown kind or shape."""
    extractor = EXTRACTORS.get((group, kind))
    if extractor is None:
        shown = f"{group}/{kind}" if group else kind
        raise InputError(f"kind {shown} is not one mltrust knows how to check; denied")
    return list(dict.fromkeys(extractor(obj)))  # in order, each once
