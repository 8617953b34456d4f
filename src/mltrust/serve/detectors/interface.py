"""The detector interface: per-model input scorers that annotate or block a request."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Detector"]


@runtime_checkable
class Detector(Protocol):
    """Scores rows of a 2-D float batch; a score above ``threshold`` is an alert.

    ``mode`` is ``"annotate"`` (the score is logged and counted) or ``"block"`` (the request is
    refused with 422 when any row alerts).
    """

    name: str
    threshold: float
    mode: str

    def score(self, X: np.ndarray) -> np.ndarray:
        """One score per row; higher is more anomalous."""
        ...
