"""Reading reference (training) data for detectors: ``.npy`` (no pickle) or numeric ``.csv``.

The file is read **once** (no link followed, bounded) and parsed from those bytes. During
admission of a signed model, :func:`bound_to` holds the check the verification proved
(``VerifiedModel.matches``): the bytes read must be the signed bytes of that file, or the
detector is refused. Detector modules keep their ``(folder, settings)`` interface.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import numpy as np

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError, InputError, LimitExceeded
from mltrust.files import read_bounded

__all__ = ["bound_to", "load_reference"]


#: While a signed model is admitted: ``(relative path, bytes) -> bool``, true only for the
#: verified bytes of that file. None: no signature to bind to (``--allow-unsigned``).
_SIGNED: ContextVar[Callable[[str, bytes], bool] | None] = ContextVar(
    "mltrust_serve_signed_files", default=None
)


@contextmanager
def bound_to(matches: Callable[[str, bytes], bool] | None) -> Iterator[None]:
    """Within this block, reference data must be the signed bytes (``matches``)."""
    token = _SIGNED.set(matches)
    try:
        yield
    finally:
        _SIGNED.reset(token)


def load_reference(folder: Path, relative: str | None) -> np.ndarray:
    if not relative:
        raise ConfigError("detector needs reference data (reference: file.npy or file.csv)")
    root = folder.resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ConfigError(f"detector reference {relative!r} escapes the model folder")
    try:
        raw = read_bounded(
            root / relative, DEFAULT_LIMITS.max_detector_reference_bytes, what="detector reference"
        )
    except (InputError, LimitExceeded):
        raise ConfigError(f"detector reference {relative!r} is missing or too large") from None
    matches = _SIGNED.get()
    rel = path.relative_to(root).as_posix()
    if matches is not None and not matches(rel, raw):
        raise ConfigError(f"detector reference {relative!r} is not the signed file")
    try:
        if path.suffix == ".npy":
            data = np.load(io.BytesIO(raw), allow_pickle=False)
        else:
            text = raw.decode("utf-8", errors="replace")
            data = np.loadtxt(
                io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, skiprows=_header(text)
            )
    except (ValueError, OSError) as exc:
        raise ConfigError(f"detector reference {relative!r}: {exc}") from None
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 10 or not np.isfinite(data).all():
        raise ConfigError(f"detector reference {relative!r}: need a finite 2-D array, >= 10 rows")
    return data


def _header(text: str) -> int:
    first = text.split("\n", 1)[0]
    try:
        [float(x) for x in first.strip().split(",")]
    except ValueError:
        return 1
    return 0
