"""Token buckets (per identity and model, per model) and fixed-window quotas that count work.

A request costs what it asks for: one token per **row** (prediction) in its batch, and, where a
bytes limit is set, one token per body byte. A single request may cost more than the bucket
holds: it is admitted when the bucket holds at least one token and leaves the bucket in debt,
so the identity waits until the debt is repaid (``cost / rate`` seconds). The long-run rate is
therefore the configured rows per second however the rows are batched; 4,096 rows in one
request at 2 requests/s is no longer 8,192 rows/s.

Two steps per request: :meth:`TokenBuckets.peek` before the body is read (an identity in debt
is refused without reading its body), then :meth:`TokenBuckets.take` with the real cost once
the rows are known. ``take`` runs on the event loop thread without awaiting, so concurrent
requests cannot all pass one check.

State lives in this process: with ``--workers N`` each worker enforces its own buckets, so the
effective limit is up to N times the configured one; :class:`mltrust.state.RedisState` shares
them (same arithmetic, in a Lua script). Memory is bounded: at most ``max_keys`` buckets,
least recently used dropped first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence

from mltrust.state._base import Limit

__all__ = ["LocalState", "Quota", "TokenBuckets"]


class TokenBuckets:
    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._state: OrderedDict[object, tuple[float, float]] = OrderedDict()
        self._max = max_keys

    def _tokens(self, key: object, rate: float, burst: float, now: float) -> float:
        state = self._state.get(key)
        if state is None:
            return burst
        tokens, last = state
        return min(burst, tokens + (now - last) * rate)

    def peek(self, key: object, rate: float, burst: float, now: float | None = None) -> float:
        """0.0 when the bucket holds a token (nothing taken), else seconds until it does."""
        now = time.monotonic() if now is None else now
        tokens = self._tokens(key, rate, burst, now)
        if tokens >= 1.0:
            return 0.0
        return math.inf if rate <= 0 else (1.0 - tokens) / rate

    def take(
        self,
        key: object,
        rate: float,
        burst: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        """Take ``cost`` tokens (debt allowed); 0.0 when allowed, else seconds to wait."""
        now = time.monotonic() if now is None else now
        if key not in self._state and len(self._state) >= self._max:
            self._state.popitem(last=False)
        tokens = self._tokens(key, rate, burst, now)
        self._state[key] = (tokens, now)
        self._state.move_to_end(key)
        if tokens >= 1.0:
            self._state[key] = (tokens - max(cost, 0.0), now)
            return 0.0
        if rate <= 0:
            return math.inf
        return (1.0 - tokens) / rate


class Quota:
    def __init__(self, *, max_keys: int = 100_000) -> None:
        self._state: OrderedDict[object, tuple[float, int]] = OrderedDict()
        self._max = max_keys

    def _count(self, key: object, window: int) -> float:
        state = self._state.get(key)
        return state[0] if state is not None and state[1] == window else 0.0

    def peek(self, key: object, limit: int, window_s: float, now: float | None = None) -> float:
        """0.0 while the window has room (nothing counted), else seconds until it resets."""
        now = time.time() if now is None else now
        window = int(now // window_s)
        if self._count(key, window) >= limit:
            return (window + 1) * window_s - now
        return 0.0

    def take(
        self,
        key: object,
        limit: int,
        window_s: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        """Count ``cost`` (rows); 0.0 when the window had room, else seconds until it resets.

        A request admitted with room left may overrun the limit; the window is then closed.
        """
        now = time.time() if now is None else now
        window = int(now // window_s)
        if key not in self._state and len(self._state) >= self._max:
            self._state.popitem(last=False)
        count = self._count(key, window)
        self._state[key] = (count, window)
        self._state.move_to_end(key)
        if count >= limit:
            return (window + 1) * window_s - now
        self._state[key] = (count + max(cost, 0.0), window)
        return 0.0


class LocalState:
    """The embedded default: every limit in this process (one worker's view).

    Calls run on the event loop thread without awaiting, so each is atomic within a worker.
    With ``--workers N`` or several replicas every process keeps its own counts: a limit of R
    admits up to N*R. Use :class:`mltrust.state.RedisState` to share them.
    """

    def __init__(self, *, max_keys: int = 100_000) -> None:
        self.buckets = TokenBuckets(max_keys=max_keys)
        self.quotas = Quota(max_keys=max_keys)
        self._blocks: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self._max = max_keys

    def _run(self, limits: Sequence[Limit], take: bool) -> tuple[int, float]:
        for i, lim in enumerate(limits):
            if lim.kind == "bucket":
                if take:
                    wait = self.buckets.take(lim.key, lim.rate, lim.size, cost=lim.cost)
                else:
                    wait = self.buckets.peek(lim.key, lim.rate, lim.size)
            elif lim.kind == "quota":
                limit = int(lim.rate) if math.isfinite(lim.rate) else 2**62
                if take:
                    wait = self.quotas.take(lim.key, limit, lim.size, cost=lim.cost)
                else:
                    wait = self.quotas.peek(lim.key, limit, lim.size)
            else:
                wait = max(0.0, self._blocks.get(lim.key, 0.0) - time.monotonic())
            if wait:
                return i, wait
        return -1, 0.0

    async def check(self, limits: Sequence[Limit]) -> tuple[int, float]:
        return self._run(limits, False)

    async def charge(self, limits: Sequence[Limit]) -> tuple[int, float]:
        return self._run(limits, True)

    async def block(self, key: tuple[str, ...], seconds: float) -> None:
        until = time.monotonic() + max(seconds, 0.0)
        if key not in self._blocks and len(self._blocks) >= self._max:
            self._blocks.popitem(last=False)
        self._blocks[key] = max(until, self._blocks.get(key, 0.0))
        self._blocks.move_to_end(key)

    async def aclose(self) -> None:
        return None

    def describe(self) -> str:
        return "in-process"
