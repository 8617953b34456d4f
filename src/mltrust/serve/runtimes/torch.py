"""PyTorch runtime (optional extra): a TorchScript archive, or a state dict plus an architecture.

* ``options: {format: torchscript}`` (default): ``torch.jit.load`` of the artifact bytes.
  TorchScript is a restricted language executed by the TorchScript interpreter; it cannot
  import arbitrary Python.
* ``options: {format: state_dict, architecture: "pkg.module:factory"}``: the factory (from a
  trusted plugin path, see the python runtime) builds the module; weights are read with
  ``torch.load(weights_only=True)``, which refuses arbitrary pickle globals.
"""

from __future__ import annotations

import importlib
import io
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.serve._codec import DTYPES
from mltrust.serve._settings import ModelSettings, TensorSpec

__all__ = ["TorchRuntime", "load"]


class TorchRuntime:
    platform = "pytorch"

    def __init__(self, settings: ModelSettings, module: Any, torch: Any) -> None:
        self._torch = torch
        self._module = module
        self._inputs = settings.inputs or (TensorSpec("input-0", "FP32", (-1, -1)),)
        out = settings.outputs or (TensorSpec("output-0", "FP32", (-1, -1)),)
        self._outputs = out
        self._default = tuple(o.name for o in out)

    def input_specs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    def output_specs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def default_outputs(self) -> tuple[str, ...]:
        return self._default

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        torch = self._torch
        # the declared datatype, whatever numeric type the client sent (FP64/INT64 into an FP32
        # module would otherwise raise inside torch: a 500 for a request the schema accepted)
        tensors = [
            torch.from_numpy(np.ascontiguousarray(inputs[s.name], dtype=DTYPES.get(s.datatype)))
            for s in self._inputs
        ]
        with torch.inference_mode():
            result = self._module(*tensors)
        values = result if isinstance(result, (tuple, list)) else (result,)
        named = {
            spec.name: np.asarray(v.detach().cpu().numpy())
            for spec, v in zip(self._outputs, values, strict=False)
        }
        return {name: named[name] for name in outputs}


def load(settings: ModelSettings, artifact: bytes, **context: Any) -> TorchRuntime:
    try:
        torch = importlib.import_module("torch")
    except ModuleNotFoundError:
        raise ConfigError("torch runtime needs the 'torch' extra") from None
    fmt = settings.option("format", "torchscript")
    if fmt == "torchscript":
        try:
            module = torch.jit.load(io.BytesIO(artifact), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises many types
            raise ConfigError(f"{settings.name}: not a TorchScript archive: {exc}") from None
    elif fmt == "state_dict":
        from mltrust.serve.runtimes.python_callable import resolve_callable

        factory = resolve_callable(settings, settings.option("architecture"), **context)
        module = factory()
        try:
            state = torch.load(io.BytesIO(artifact), map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"{settings.name}: cannot load the state dict: {exc}") from None
    else:
        raise ConfigError(f"{settings.name}: torch format must be torchscript or state_dict")
    module.eval()
    return TorchRuntime(settings, module, torch)
