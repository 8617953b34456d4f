"""Reading reference (training) data for detectors: ``.npy`` (no pickle) or numeric ``.csv``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mltrust.errors import ConfigError

__all__ = ["load_reference"]

_MAX_BYTES = 256 * 1024 * 1024


def load_reference(folder: Path, relative: str | None) -> np.ndarray:
    if not relative:
        raise ConfigError("detector needs reference data (reference: file.npy or file.csv)")
    root = folder.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ConfigError(f"detector reference {relative!r} escapes the model folder")
    if not path.is_file() or path.stat().st_size > _MAX_BYTES:
        raise ConfigError(f"detector reference {relative!r} is missing or too large")
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = np.loadtxt(
                path, delimiter=",", dtype=np.float64, ndmin=2, skiprows=_header(path)
            )
    except (ValueError, OSError) as exc:
        raise ConfigError(f"detector reference {relative!r}: {exc}") from None
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 10 or not np.isfinite(data).all():
        raise ConfigError(f"detector reference {relative!r}: need a finite 2-D array, >= 10 rows")
    return data


def _header(path: Path) -> int:
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    try:
        [float(x) for x in first.strip().split(",")]
    except ValueError:
        return 1
    return 0
