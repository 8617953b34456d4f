"""Custom Python code: ``options: {callable: "module:function"}``.

Importing code runs it, so this runtime is off unless the server was started with an explicit
``--plugin-path DIR``: the module is imported only from that folder (never from the model folder,
never from ``sys.path`` at large). The function receives a dict of numpy arrays and returns a
dict of numpy arrays (or one array, named ``output-0``).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mltrust.errors import ConfigError
from mltrust.serve._settings import ModelSettings, TensorSpec

__all__ = ["PythonRuntime", "load", "resolve_callable"]


def resolve_callable(
    settings: ModelSettings, spec: Any, *, plugin_path: Path | None = None, **_: Any
) -> Callable[..., Any]:
    if plugin_path is None:
        raise ConfigError(
            f"{settings.name}: python callables are disabled; start the server with "
            "--plugin-path DIR to trust code from DIR"
        )
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ConfigError(f"{settings.name}: callable must be 'module:function'")
    module_name, func_name = spec.split(":")
    parts = module_name.split(".")
    if not all(p.isidentifier() for p in parts) or not func_name.isidentifier():
        raise ConfigError(f"{settings.name}: bad callable {spec!r}")
    root = plugin_path.resolve()
    candidate = root.joinpath(*parts).with_suffix(".py")
    if not candidate.is_file() or root not in candidate.resolve().parents:
        raise ConfigError(f"{settings.name}: {module_name} is not a module under {root}")
    qualified = f"mltrust_plugin_{'_'.join(parts)}"
    module = sys.modules.get(qualified)
    if module is None:
        # mltrust: ignore[MLT-CODE-013] runs only a module under the operator's --plugin-path
        loader_spec = importlib.util.spec_from_file_location(qualified, candidate)
        if loader_spec is None or loader_spec.loader is None:
            raise ConfigError(f"{settings.name}: cannot import {candidate}")
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        sys.modules[qualified] = module
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ConfigError(f"{settings.name}: {spec} is not callable")
    resolved: Callable[..., Any] = func
    return resolved


class PythonRuntime:
    platform = "python"

    def __init__(self, settings: ModelSettings, func: Callable[..., Any]) -> None:
        self._func = func
        self._inputs = settings.inputs or (TensorSpec("input-0", "FP64", (-1, -1)),)
        self._outputs = settings.outputs or (TensorSpec("output-0", "FP64", (-1,)),)
        self._default = tuple(o.name for o in self._outputs)

    def input_specs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    def output_specs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def default_outputs(self) -> tuple[str, ...]:
        return self._default

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        result = self._func(inputs)
        if isinstance(result, np.ndarray):
            result = {self._outputs[0].name: result}
        if not isinstance(result, dict):
            raise TypeError("a python model must return a dict of arrays")
        return {name: np.asarray(result[name]) for name in outputs}


def load(settings: ModelSettings, artifact: bytes, **context: Any) -> PythonRuntime:
    return PythonRuntime(
        settings, resolve_callable(settings, settings.option("callable"), **context)
    )
