"""Load models safely: scan the bytes, then deserialise those same bytes with an allowlist.

>>> import mltrust
>>> model = mltrust.load("model.joblib")   # doctest: +SKIP

Defence in depth: the static scan refuses files with findings at or above ``fail_on``; the
unpickler then refuses any import target outside the allowlist even if the scan missed it.
"""

from __future__ import annotations

from mltrust.safeload._loader import RestrictedUnpickler, load, load_joblib, load_torch

__all__ = ["RestrictedUnpickler", "load", "load_joblib", "load_torch"]
