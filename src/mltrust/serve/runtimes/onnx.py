"""ONNX runtime (onnxruntime, imported lazily). ONNX graphs are data: loading runs no Python."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.serve._settings import ModelSettings, TensorSpec

__all__ = ["OnnxRuntime", "load"]

_ORT_TYPES = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(int64)": "INT64",
    "tensor(int32)": "INT32",
    "tensor(int16)": "INT16",
    "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}
_NP = {
    "FP32": np.float32,
    "FP64": np.float64,
    "FP16": np.float16,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT16": np.int16,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
}


def _spec(node: Any) -> TensorSpec | None:
    datatype = _ORT_TYPES.get(str(node.type))
    if datatype is None:  # sequences/maps (e.g. zipmap) are not tensors
        return None
    shape = tuple(d if isinstance(d, int) else -1 for d in (node.shape or []))
    return TensorSpec(node.name, datatype, shape)


class OnnxRuntime:
    platform = "onnxruntime"

    def __init__(self, settings: ModelSettings, artifact: bytes) -> None:
        try:
            ort = importlib.import_module("onnxruntime")
        except ModuleNotFoundError:
            raise ConfigError("onnx runtime needs the 'onnx' extra (onnxruntime)") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                artifact, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise ConfigError(
                f"{settings.name}: onnxruntime cannot load the model: {exc}"
            ) from None
        discovered_in = tuple(s for s in map(_spec, self._session.get_inputs()) if s is not None)
        discovered_out = tuple(s for s in map(_spec, self._session.get_outputs()) if s is not None)
        declared_in = {t.name: t for t in settings.inputs}
        self._inputs = tuple(declared_in.get(s.name, s) for s in discovered_in)
        self._outputs = discovered_out
        self._default = tuple(o.name for o in discovered_out)
        #: batch concurrent requests only when every tensor has a dynamic leading axis
        self.batchable = all(
            s.shape and s.shape[0] == -1 for s in (*discovered_in, *discovered_out)
        ) and bool(discovered_out)

    def input_specs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    def output_specs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def default_outputs(self) -> tuple[str, ...]:
        return self._default

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        feed = {}
        for spec in self._inputs:
            arr = inputs[spec.name]
            np_type = _NP.get(spec.datatype)
            feed[spec.name] = arr.astype(np_type) if np_type is not None else arr
        values = self._session.run(list(outputs), feed)
        return {name: np.asarray(v) for name, v in zip(outputs, values, strict=True)}


def load(settings: ModelSettings, artifact: bytes, **_: Any) -> OnnxRuntime:
    return OnnxRuntime(settings, artifact)
