"""Serving runtimes: one module per framework, registered in :data:`RUNTIMES`."""

from __future__ import annotations

import importlib
from typing import Any

from mltrust.errors import ConfigError
from mltrust.serve._settings import ModelSettings
from mltrust.serve.runtimes.interface import Runtime, RuntimeFactory

__all__ = ["RUNTIMES", "Runtime", "RuntimeFactory", "load_runtime"]

#: runtime name -> module holding ``load(settings, artifact, **context)``; imported lazily.
RUNTIMES: dict[str, str] = {
    "sklearn": "mltrust.serve.runtimes.sklearn",
    "onnx": "mltrust.serve.runtimes.onnx",
    "torch": "mltrust.serve.runtimes.torch",
    "python": "mltrust.serve.runtimes.python_callable",
}


def load_runtime(settings: ModelSettings, artifact: bytes, **context: Any) -> Runtime:
    module_name = RUNTIMES.get(settings.runtime)
    if module_name is None:
        raise ConfigError(f"unknown runtime {settings.runtime!r}")
    factory: RuntimeFactory = importlib.import_module(module_name).load
    # mltrust: ignore[MLT-CODE-001] the module name comes from the fixed RUNTIMES table above
    return factory(settings, artifact, **context)
