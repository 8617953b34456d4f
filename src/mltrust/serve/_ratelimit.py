"""Token buckets (per identity and model, per model) and fixed-window quotas.

State lives in this process: with ``--workers N`` each worker enforces its own buckets, so the
effective limit is up to N times the configured one (documented; shared limits need an external
store). Memory is bounded: at most ``max_keys`` buckets, least recently used dropped first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

__all__ = ["Quota", "TokenBuckets"]


class TokenBuckets:
    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._state: OrderedDict[object, tuple[float, float]] = OrderedDict()
        self._max = max_keys

    def take(self, key: object, rate: float, burst: float, now: float | None = None) -> float:
        """Take one token; 0.0 when allowed, else the seconds until a token is available."""
        now = time.monotonic() if now is None else now
        state = self._state.get(key)
        if state is None:
            tokens = burst
            if len(self._state) >= self._max:
                self._state.popitem(last=False)
        else:
            tokens, last = state
            tokens = min(burst, tokens + (now - last) * rate)
            self._state.move_to_end(key)
        if tokens >= 1.0:
            self._state[key] = (tokens - 1.0, now)
            return 0.0
        self._state[key] = (tokens, now)
        if rate <= 0:
            return math.inf
        return (1.0 - tokens) / rate


class Quota:
    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._state: OrderedDict[object, tuple[int, int]] = OrderedDict()
        self._max = max_keys

    def take(self, key: object, limit: int, window_s: float, now: float | None = None) -> float:
        """Count one request; 0.0 when within quota, else seconds until the window resets."""
        now = time.time() if now is None else now
        window = int(now // window_s)
        count_window = self._state.get(key)
        if count_window is None or count_window[1] != window:
            count = 0
            if count_window is None and len(self._state) >= self._max:
                self._state.popitem(last=False)
        else:
            count = count_window[0]
            self._state.move_to_end(key)
        if count >= limit:
            self._state[key] = (count, window)
            return (window + 1) * window_s - now
        self._state[key] = (count + 1, window)
        return 0.0
