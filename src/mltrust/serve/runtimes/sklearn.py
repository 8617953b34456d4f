"""scikit-learn / joblib runtime. Models are loaded only through :mod:`mltrust.safeload`."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from mltrust.errors import ConfigError, UnsafeModelError
from mltrust.serve._settings import ModelSettings, TensorSpec

__all__ = ["SklearnRuntime", "load"]


def sklearn_config(**kwargs: Any) -> Any:
    import sklearn

    return sklearn.config_context(**kwargs)


def _safe_load(artifact: bytes) -> Any:
    try:
        safeload = importlib.import_module("mltrust.safeload")
    except ModuleNotFoundError as exc:
        if exc.name not in ("mltrust.safeload",):
            raise
        raise UnsafeModelError(
            "the safe loader (mltrust.safeload) is not installed: joblib models are refused"
        ) from None
    return safeload.load_joblib(artifact)


class SklearnRuntime:
    platform = "sklearn"
    #: predict/predict_proba keep rows on axis 0, so concurrent requests may share a call
    batchable = True

    def __init__(self, settings: ModelSettings, model: Any) -> None:
        if not hasattr(model, "predict"):
            raise ConfigError(f"{settings.name}: the loaded object has no predict()")
        self._model = model
        self._predict = model.predict
        self._proba = getattr(model, "predict_proba", None)
        n_features = getattr(model, "n_features_in_", None)
        if settings.inputs:
            self._inputs = settings.inputs
        else:
            cols = int(n_features) if isinstance(n_features, (int, np.integer)) else -1
            self._inputs = (TensorSpec("input-0", "FP64", (-1, cols)),)
        outs = [TensorSpec("predict", "INT64" if self._classifier() else "FP64", (-1,))]
        if self._proba is not None:
            n_classes = len(getattr(model, "classes_", [])) or -1
            outs.append(TensorSpec("predict_proba", "FP64", (-1, n_classes)))
        declared = {o.name: o for o in settings.outputs}
        self._outputs = tuple(declared.get(o.name, o) for o in outs)
        default = settings.option("default_outputs")
        if isinstance(default, list) and all(d in {o.name for o in outs} for d in default):
            self._default = tuple(default)
        else:
            self._default = ("predict",)

    def _classifier(self) -> bool:
        classes = getattr(self._model, "classes_", None)
        return classes is not None and np.asarray(classes).dtype.kind in "iub"

    def input_specs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    def output_specs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def default_outputs(self) -> tuple[str, ...]:
        return self._default

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        (x,) = inputs.values()
        if x.ndim == 1:
            x = x.reshape(1, -1)
        result: dict[str, np.ndarray] = {}
        # inputs were validated (finite, in range) before they got here: skip sklearn's repeat
        with sklearn_config(assume_finite=True, skip_parameter_validation=True):
            self._run(x, outputs, result)
        return result

    def _run(self, x: np.ndarray, outputs: tuple[str, ...], result: dict[str, np.ndarray]) -> None:
        for name in outputs:
            if name == "predict":
                result[name] = np.asarray(self._predict(x))
            elif name == "predict_proba" and self._proba is not None:
                result[name] = np.asarray(self._proba(x), dtype=np.float64)
            else:
                raise KeyError(name)


def load(settings: ModelSettings, artifact: bytes, **_: Any) -> SklearnRuntime:
    return SklearnRuntime(settings, _safe_load(artifact))
