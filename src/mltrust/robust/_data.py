"""Loading labelled data sets: CSV, Parquet (with pyarrow), NPZ, and ``sklearn:<name>``.

``sklearn:NAME`` loads a data set bundled with scikit-learn (no download). ``digits`` is scaled
to [0, 1] (pixels ÷ 16) and declares that box as its feature domain; the others are raw with an
unbounded domain. ``sklearn:NAME:train`` / ``sklearn:NAME:test`` select the stratified 70/30
split with ``random_state=0`` that the reference results use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mltrust._npz import read_npz_arrays
from mltrust.errors import ConfigError, InputError

__all__ = ["Dataset", "load_dataset", "sklearn_split"]

_LABEL_GUESSES = ("label", "target", "y", "class")
_X_KEYS = ("X", "x", "data", "features")
_Y_KEYS = ("y", "label", "labels", "target")


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    """Features ``X`` (float64, n×d), labels ``y`` (or ``None``) and the feature domain."""

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    source: str = ""

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    def labels(self) -> np.ndarray:
        """The labels; raises :class:`InputError` when the data set has none."""
        if self.y is None:
            raise InputError(f"{self.source}: no label column")
        return self.y

    def with_domain(self, lower: np.ndarray | None, upper: np.ndarray | None) -> Dataset:
        return Dataset(self.X, self.y, self.feature_names, lower, upper, self.source)


def _sklearn_loaders() -> dict[str, Callable[..., Any]]:
    from sklearn import datasets

    return {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
    }


def sklearn_split(
    X: np.ndarray, y: np.ndarray, test_size: float = 0.3, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stratified split used throughout (``train_test_split(..., stratify=y)``)."""
    from sklearn.model_selection import train_test_split

    parts = train_test_split(X, y, test_size=test_size, stratify=y, random_state=random_state)
    return parts[0], parts[1], parts[2], parts[3]


def _load_sklearn(spec: str) -> Dataset:
    parts = spec.split(":")
    name = parts[1] if len(parts) > 1 else ""
    subset = parts[2] if len(parts) > 2 else "all"
    loaders = _sklearn_loaders()
    if name not in loaders or subset not in ("all", "train", "test") or len(parts) > 3:
        raise ConfigError(
            f"unknown data set {spec!r}",
            hint=f"use sklearn:NAME[:train|:test] with NAME in {', '.join(sorted(loaders))}",
        )
    bunch = loaders[name]()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    lower = upper = None
    if name == "digits":
        X = X / 16.0
        lower, upper = np.zeros(X.shape[1]), np.ones(X.shape[1])
    if subset != "all":
        Xtr, Xte, ytr, yte = sklearn_split(X, y)
        X, y = (Xtr, ytr) if subset == "train" else (Xte, yte)
    names = tuple(str(n) for n in getattr(bunch, "feature_names", [])) or tuple(
        f"f{i}" for i in range(X.shape[1])
    )
    return Dataset(X, y, names, lower, upper, spec)


def _frame_to_dataset(frame: Any, label: str | None, labeled: bool, source: str) -> Dataset:
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    label_col: str | None = None
    if label is not None:
        if label not in columns:
            raise InputError(f"{source}: no column {label!r}", hint=f"columns: {columns[:20]}")
        label_col = label
    elif labeled:
        label_col = next((c for c in _LABEL_GUESSES if c in columns), None)
        if label_col is None:
            if len(columns) < 2:
                raise InputError(f"{source}: need at least one feature and a label column")
            label_col = columns[-1]
    features = [c for c in columns if c != label_col]
    if not features:
        raise InputError(f"{source}: no feature columns")
    try:
        X = frame[features].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{source}: feature columns must be numeric",
            hint="encode categorical features first, or name the label with --label",
        ) from None
    if not np.all(np.isfinite(X)):
        raise InputError(f"{source}: features contain NaN or infinite values")
    y = None if label_col is None else frame[label_col].to_numpy()
    return Dataset(X, y, tuple(features), None, None, source)


def _load_npz(path: Path, label: str | None, labeled: bool) -> Dataset:
    arrays = read_npz_arrays(path)
    xkey = next((k for k in _X_KEYS if k in arrays), None)
    if xkey is None:
        raise InputError(f"{path}: NPZ needs a feature array named one of {_X_KEYS}")
    ykeys = (label,) if label else _Y_KEYS
    ykey = next((k for k in ykeys if k in arrays), None)
    if labeled and ykey is None:
        raise InputError(f"{path}: NPZ needs a label array named one of {ykeys}")
    try:
        X = np.asarray(arrays[xkey], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: features must be numeric") from None
    if X.ndim != 2:
        X = X.reshape(X.shape[0], -1) if X.ndim > 2 else X.reshape(-1, 1)
    if not np.all(np.isfinite(X)):
        raise InputError(f"{path}: features contain NaN or infinite values")
    y = None if ykey is None else np.asarray(arrays[ykey]).reshape(-1)
    if y is not None and y.shape[0] != X.shape[0]:
        raise InputError(f"{path}: {X.shape[0]} rows of features but {y.shape[0]} labels")
    lower = np.asarray(arrays["lower"], dtype=np.float64) if "lower" in arrays else None
    upper = np.asarray(arrays["upper"], dtype=np.float64) if "upper" in arrays else None
    names = tuple(f"f{i}" for i in range(X.shape[1]))
    return Dataset(X, y, names, lower, upper, str(path))


def read_frame(path: Path) -> Any:
    """Read a CSV or Parquet file into a pandas DataFrame (Parquet needs pyarrow)."""
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            try:
                import pyarrow  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: F401
            except ImportError:
                raise ConfigError(
                    f"{path}: reading Parquet needs pyarrow", hint="pip install pyarrow"
                ) from None
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read table ({exc})") from None


def load_dataset(spec: str | Path, *, label: str | None = None, labeled: bool = True) -> Dataset:
    """Load ``spec``: ``sklearn:NAME[:train|:test]``, a CSV, Parquet or NPZ file.

    ``label`` names the label column (default: ``label``/``target``/``y``/``class`` or the last
    column). With ``labeled=False`` a table without labels is accepted (``y`` is ``None``).
    """
    text = str(spec)
    if text.startswith("sklearn:"):
        return _load_sklearn(text)
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"data file {text!r} not found")
    if path.suffix.lower() == ".npz":
        return _load_npz(path, label, labeled)
    frame = read_frame(path)
    if len(frame) == 0:
        raise InputError(f"{path}: no rows")
    return _frame_to_dataset(frame, label, labeled, text)
