"""Model settings: one file per model folder, parsed into frozen, validated objects.

Two shapes are accepted:

* ``mltrust-model.yaml`` / ``mltrust-model.json`` (native)::

    name: iris
    version: "1"
    runtime: sklearn            # sklearn | onnx | torch | python
    uri: model.joblib           # relative; must stay inside the model folder
    inputs:
      - {name: input-0, datatype: FP32, shape: [-1, 4],
         min: [4.3, 2.0, 1.0, 0.1], max: [7.9, 4.4, 6.9, 2.5]}
    outputs:
      - {name: predict, datatype: INT64, shape: [-1]}
    policy:
      roles: {"key:alice": [infer]}    # extra grants: key:NAME or jwt:ISSUER:SUB
      rate_limit: {identity_rps: 50, identity_burst: 100, model_rps: 1000, model_burst: 2000}
      quota: {requests: 100000, window_s: 86400}
      output: {top_k: 1, round: 2}
      timeout_s: 5
      log_inputs: false
      range_margin: 0.1
      extraction: {enabled: true, mode: annotate, threshold: 0.8, min_samples: 50}
      detectors:
        - {type: mahalanobis, reference: reference.npy, false_alarm_rate: 0.01, mode: annotate}

* MLServer's ``model-settings.json`` (``name``, ``implementation: mlserver_sklearn.SKLearnModel``,
  ``parameters.uri``, ``parameters.version``), accepted as is with default policy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError, InputError, LimitExceeded
from mltrust.files import read_bounded

__all__ = [
    "NATIVE_SETTINGS_FILES",
    "DetectorSettings",
    "ExtractionSettings",
    "ModelPolicy",
    "ModelSettings",
    "OutputPolicy",
    "RateLimitSettings",
    "TensorSpec",
    "find_settings_file",
    "load_model_settings",
    "read_model_settings",
]

NATIVE_SETTINGS_FILES = ("mltrust-model.yaml", "mltrust-model.yml", "mltrust-model.json")
MLSERVER_SETTINGS_FILE = "model-settings.json"

DATATYPES = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
        "BYTES",
    }
)
RUNTIMES = frozenset({"sklearn", "onnx", "torch", "python"})
_MLSERVER_IMPLEMENTATIONS = {
    "mlserver_sklearn.SKLearnModel": "sklearn",
    "mlserver_sklearn.sklearn.SKLearnModel": "sklearn",
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A declared input or output tensor. ``-1`` in ``shape`` means any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    min: tuple[float, ...] | None = None
    max: tuple[float, ...] | None = None

    def to_metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Token buckets counted in rows (predictions): a request of n rows costs n tokens."""

    identity_rps: float = 100.0
    identity_burst: float = 200.0
    model_rps: float = 10_000.0
    model_burst: float = 20_000.0
    #: Request-body bytes per second per identity and model (0: no bytes limit).
    identity_bytes_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    #: Rows (predictions) one identity may request from this model per window; 0: no quota.
    #: (The key keeps its historical name; a request of n rows counts n.)
    requests: int = 0
    window_s: float = 86_400.0


@dataclass(frozen=True, slots=True)
class OutputPolicy:
    #: Return only the k most likely labels instead of the probability vector (0: off).
    top_k: int = 0
    #: Round probabilities to this many decimals (-1: off).
    round: int = -1


@dataclass(frozen=True, slots=True)
class ExtractionSettings:
    enabled: bool = True
    mode: str = "annotate"  # annotate | block
    threshold: float = 0.80
    min_samples: int = 50
    history: int = 512
    max_identities: int = 10_000
    #: In block mode, seconds an identity stays blocked after an alert (the Retry-After sent).
    block_s: float = 60.0
    #: Uniform-sampling test: alert when every feature is within uniform_c/sqrt(n) (KS) of
    #: uniform on its declared range; 0 disables it. Needs min/max on the input.
    uniform_c: float = 1.63
    uniform_min_rows: int = 100


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    type: str
    mode: str = "annotate"
    reference: str | None = None
    false_alarm_rate: float = 0.01
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    output: OutputPolicy = field(default_factory=OutputPolicy)
    timeout_s: float = 5.0
    log_inputs: bool = False
    range_margin: float = 0.1
    max_batch_rows: int = 4096
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    detectors: tuple[DetectorSettings, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSettings:
    name: str
    version: str
    runtime: str
    uri: Path  # resolved, inside ``folder``
    folder: Path
    settings_file: Path
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    policy: ModelPolicy = field(default_factory=ModelPolicy)
    #: Runtime-specific options (``callable``, ``architecture``, ``predict_proba`` ...).
    options: tuple[tuple[str, Any], ...] = ()
    mlserver_style: bool = False

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


def find_settings_file(folder: Path) -> Path | None:
    for name in (*NATIVE_SETTINGS_FILES, MLSERVER_SETTINGS_FILE):
        candidate = folder / name
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    return None


def _read_document(path: Path, data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: settings are not UTF-8: {exc}") from None
    try:
        if path.suffix == ".json":
            doc = json.loads(text)
        else:
            doc = yaml.safe_load(text)
    except (ValueError, yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{path}: cannot parse settings: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: settings must be a mapping")
    return doc


def _inside(folder: Path, uri: str, where: Path) -> Path:
    if not isinstance(uri, str) or not uri:
        raise ConfigError(f"{where}: artifact uri must be a non-empty relative path")
    if "://" in uri or Path(uri).is_absolute():
        raise ConfigError(f"{where}: artifact uri {uri!r} must be relative to the model folder")
    root = folder.resolve()
    target = (root / uri).resolve()
    if target != root and root not in target.parents:
        raise ConfigError(f"{where}: artifact uri {uri!r} escapes the model folder")
    return target


def _name(value: Any, what: str, where: Path) -> str:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise ConfigError(f"{where}: {what} must be a non-empty string (at most 128 chars)")
    if not all(c.isalnum() or c in "-_." for c in value) or value.startswith("."):
        raise ConfigError(f"{where}: {what} {value!r} may hold only letters, digits, - _ .")
    return value


def _float_tuple(value: Any, where: Path) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (float(value),)
    if not isinstance(value, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    ):
        raise ConfigError(f"{where}: min/max must be a number or a list of finite numbers")
    return tuple(float(v) for v in value)


def _tensor(doc: Any, where: Path) -> TensorSpec:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: each input/output must be a mapping")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: tensor without a name")
    datatype = str(doc.get("datatype", "FP64")).upper()
    if datatype not in DATATYPES:
        raise ConfigError(f"{where}: tensor {name!r} has unknown datatype {datatype!r}")
    shape = doc.get("shape", [-1])
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape
    ):
        raise ConfigError(f"{where}: tensor {name!r} shape must be a list of integers >= -1")
    lo, hi = _float_tuple(doc.get("min"), where), _float_tuple(doc.get("max"), where)
    if (lo is None) != (hi is None) or (lo is not None and hi is not None and len(lo) != len(hi)):
        raise ConfigError(f"{where}: tensor {name!r} needs min and max of the same length")
    if lo is not None and hi is not None and any(a > b for a, b in zip(lo, hi, strict=True)):
        raise ConfigError(f"{where}: tensor {name!r} has min above max")
    return TensorSpec(name, datatype, tuple(shape), lo, hi)


def _number(doc: dict[str, Any], key: str, default: float, where: Path, *, lo: float = 0) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= lo:
        raise ConfigError(f"{where}: {key} must be a number >= {lo}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be finite")
    return float(value)


def _mapping(doc: dict[str, Any], key: str, where: Path) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {key} must be a mapping")
    return value


def _mode(value: Any, where: Path) -> str:
    if value not in ("annotate", "block"):
        raise ConfigError(f"{where}: mode must be 'annotate' or 'block'")
    return str(value)


def _policy(doc: dict[str, Any], where: Path) -> ModelPolicy:
    roles_doc = _mapping(doc, "roles", where)
    roles: list[tuple[str, tuple[str, ...]]] = []
    for who, granted in roles_doc.items():
        if not isinstance(granted, list) or not all(
            r in ("infer", "metadata", "admin") for r in granted
        ):
            raise ConfigError(f"{where}: roles of {who!r} must be a list of infer/metadata/admin")
        kind, _, rest = str(who).partition(":")
        if kind not in ("key", "jwt") or not rest or (kind == "jwt" and ":" not in rest):
            raise ConfigError(
                f"{where}: policy.roles names a principal as 'key:NAME' or 'jwt:ISSUER:SUB', "
                f"not {who!r} (a bare name would match API keys and JWT subjects alike)"
            )
        roles.append((str(who), tuple(granted)))
    rl = _mapping(doc, "rate_limit", where)
    rate = RateLimitSettings(
        identity_rps=_number(rl, "identity_rps", 100.0, where),
        identity_burst=_number(rl, "identity_burst", 200.0, where, lo=1),
        model_rps=_number(rl, "model_rps", 10_000.0, where),
        model_burst=_number(rl, "model_burst", 20_000.0, where, lo=1),
        identity_bytes_per_s=_number(rl, "identity_bytes_per_s", 0.0, where),
    )
    q = _mapping(doc, "quota", where)
    quota = QuotaSettings(
        requests=int(_number(q, "requests", 0, where)),
        window_s=_number(q, "window_s", 86_400.0, where, lo=1),
    )
    o = _mapping(doc, "output", where)
    output = OutputPolicy(
        top_k=int(_number(o, "top_k", 0, where)), round=int(_number(o, "round", -1, where, lo=-1))
    )
    e = _mapping(doc, "extraction", where)
    extraction = ExtractionSettings(
        enabled=bool(e.get("enabled", True)),
        mode=_mode(e.get("mode", "annotate"), where),
        threshold=_number(e, "threshold", 0.80, where),
        min_samples=max(3, int(_number(e, "min_samples", 50, where))),
        history=max(8, int(_number(e, "history", 512, where))),
        max_identities=max(1, int(_number(e, "max_identities", 10_000, where))),
        block_s=_number(e, "block_s", 60.0, where, lo=1),
        uniform_c=_number(e, "uniform_c", 1.63, where),
        uniform_min_rows=max(10, int(_number(e, "uniform_min_rows", 100, where))),
    )
    detectors: list[DetectorSettings] = []
    raw_detectors = doc.get("detectors") or []
    if not isinstance(raw_detectors, list):
        raise ConfigError(f"{where}: detectors must be a list")
    for d in raw_detectors:
        if not isinstance(d, dict) or not isinstance(d.get("type"), str):
            raise ConfigError(f"{where}: each detector needs a type")
        far = _number(d, "false_alarm_rate", 0.01, where)
        if not 0 < far < 1:
            raise ConfigError(f"{where}: false_alarm_rate must be in (0, 1)")
        ref = d.get("reference")
        if ref is not None and not isinstance(ref, str):
            raise ConfigError(f"{where}: detector reference must be a relative path")
        extra = tuple(
            sorted(
                (k, v)
                for k, v in d.items()
                if k not in ("type", "mode", "reference", "false_alarm_rate")
            )
        )
        detectors.append(
            DetectorSettings(d["type"], _mode(d.get("mode", "annotate"), where), ref, far, extra)
        )
    return ModelPolicy(
        roles=tuple(roles),
        rate_limit=rate,
        quota=quota,
        output=output,
        timeout_s=_number(doc, "timeout_s", 5.0, where, lo=0.001),
        log_inputs=bool(doc.get("log_inputs", False)),
        range_margin=_number(doc, "range_margin", 0.1, where),
        max_batch_rows=max(1, int(_number(doc, "max_batch_rows", 4096, where, lo=1))),
        extraction=extraction,
        detectors=tuple(detectors),
    )


def _native(folder: Path, path: Path, doc: dict[str, Any]) -> ModelSettings:
    name = _name(doc.get("name", folder.name), "name", path)
    version = _name(str(doc.get("version", "1")), "version", path)
    runtime = doc.get("runtime")
    if runtime not in RUNTIMES:
        raise ConfigError(f"{path}: runtime must be one of {', '.join(sorted(RUNTIMES))}")
    inputs = doc.get("inputs") or []
    outputs = doc.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ConfigError(f"{path}: inputs and outputs must be lists")
    options = tuple(
        sorted((k, v) for k, v in (doc.get("options") or {}).items() if isinstance(k, str))
    )
    return ModelSettings(
        name=name,
        version=version,
        runtime=str(runtime),
        uri=_inside(folder, doc.get("uri", ""), path),
        folder=folder.resolve(),
        settings_file=path,
        inputs=tuple(_tensor(t, path) for t in inputs),
        outputs=tuple(_tensor(t, path) for t in outputs),
        policy=_policy(_mapping(doc, "policy", path), path),
        options=options,
    )


def _mlserver(folder: Path, path: Path, doc: dict[str, Any]) -> ModelSettings:
    impl = doc.get("implementation")
    runtime = _MLSERVER_IMPLEMENTATIONS.get(str(impl))
    if runtime is None:
        raise ConfigError(
            f"{path}: MLServer implementation {impl!r} is not supported "
            "(only mlserver_sklearn.SKLearnModel maps cleanly)"
        )
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: parameters must be a mapping")
    name = _name(doc.get("name", folder.name), "name", path)
    version = _name(str(params.get("version", "1")), "version", path)
    inputs = doc.get("inputs") or []
    outputs = doc.get("outputs") or []
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ConfigError(f"{path}: inputs and outputs must be lists")
    return ModelSettings(
        name=name,
        version=version,
        runtime=runtime,
        uri=_inside(folder, params.get("uri", ""), path),
        folder=folder.resolve(),
        settings_file=path,
        inputs=tuple(_tensor(t, path) for t in inputs),
        outputs=tuple(_tensor(t, path) for t in outputs),
        mlserver_style=True,
    )


def read_model_settings(folder: Path) -> tuple[ModelSettings, Path, bytes]:
    """Read the settings file of one model folder **once** and validate it.

    Returns the settings, the file's path and the exact bytes they were parsed from, so that
    admission can compare those bytes with the signed digest (the settings in force are the
    bytes that were checked, never a second read). Raises ConfigError when invalid.
    """
    path = find_settings_file(folder)
    if path is None:
        raise ConfigError(f"{folder}: no mltrust-model.yaml/.json or model-settings.json")
    try:
        data = read_bounded(path, DEFAULT_LIMITS.max_serve_settings_bytes, what="settings file")
    except LimitExceeded:
        raise ConfigError(
            f"{path}: settings file is larger than {DEFAULT_LIMITS.max_serve_settings_bytes} bytes"
        ) from None
    except InputError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    doc = _read_document(path, data)
    if path.name == MLSERVER_SETTINGS_FILE:
        return _mlserver(folder, path, doc), path, data
    return _native(folder, path, doc), path, data


def load_model_settings(folder: Path) -> ModelSettings:
    """Read and validate the settings of one model folder; raise ConfigError when invalid."""
    return read_model_settings(folder)[0]
