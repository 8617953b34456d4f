"""The runtime interface: something that turns named input arrays into named output arrays."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from mltrust.serve._settings import ModelSettings, TensorSpec

__all__ = ["Runtime", "RuntimeFactory"]


@runtime_checkable
class Runtime(Protocol):
    """A loaded model. ``predict`` runs in a worker thread; it must not keep request state."""

    #: Platform string for model metadata (e.g. ``sklearn``, ``onnxruntime``).
    platform: str

    def input_specs(self) -> tuple[TensorSpec, ...]:
        """Declared (or discovered) inputs."""
        ...

    def output_specs(self) -> tuple[TensorSpec, ...]:
        """Outputs this runtime can produce; the first ones are returned by default."""
        ...

    def default_outputs(self) -> tuple[str, ...]: ...

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """Run a batch (rows along axis 0) and return the requested outputs."""
        ...


class RuntimeFactory(Protocol):
    def __call__(self, settings: ModelSettings, artifact: bytes, **context: Any) -> Runtime: ...
