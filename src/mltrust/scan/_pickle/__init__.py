"""Static analysis of pickle and joblib streams (never unpickles).

:func:`scan_pickle_stream` runs the symbolic machine over one or more pickle streams in a
buffer and reports findings; :func:`judge_global` decides whether one import target is safe
(used by the safe loader and by other scanners that meet Python import paths).
"""

from __future__ import annotations

from mltrust.scan._pickle import _rules as _rules
from mltrust.scan._pickle._machine import (
    PickleSummary,
    looks_like_pickle,
    pickle_value,
    scan_pickle_stream,
)
from mltrust.scan._pickle._policy import GlobalVerdict, canonical, judge_global

__all__ = [
    "GlobalVerdict",
    "PickleSummary",
    "canonical",
    "judge_global",
    "looks_like_pickle",
    "pickle_value",
    "scan_pickle_stream",
]
