"""Token buckets (per identity and model, per model) and fixed-window quotas that count work.

A request costs what it asks for: one token per **row** (prediction) in its batch, and, where a
bytes limit is set, one token per body byte (the whole body, binary tensor part included). A
single request may cost more than the bucket holds: it is admitted when the bucket holds at
least one token and leaves the bucket in debt, so the identity waits until the debt is repaid
(``cost / rate`` seconds). The long-run rate is therefore the configured rows per second however
the rows are batched.

Steps per request (see :class:`mltrust.state.StateStore`): :meth:`LocalState.admit` of **one**
unit on every limit at admission, before the body is read -- all or nothing, so an identity in
debt is refused without reading its body and every admitted request costs at least one unit,
whether or not it turns out valid; :meth:`LocalState.charge` of the whole body on the bytes
bucket once it is read; then :meth:`LocalState.charge` of the remaining rows once they are
known (the quota first, the buckets as unconditional debits, :meth:`Limit.debit`). Each call
runs on the event loop thread without awaiting, so concurrent requests cannot all pass one
check.

Quotas (:class:`Quota`) refuse a request whose cost would take the window past its limit
(``count + cost > limit``): a window never serves more than its limit, and a batch larger than
the whole limit is never served. Only the admission unit of a refused batch is counted.

State lives in this process: with ``--workers N`` each worker enforces its own buckets, so the
effective limit is up to N times the configured one; :class:`mltrust.state.RedisState` shares
them (same arithmetic, in a Lua script). Memory: at most ``max_keys`` buckets, least recently
used dropped first -- but a bucket not yet full again (in debt, or drained) or a quota window
still open is never dropped unless ``evict_debt`` is set: dropping it would forgive the debt.
Identity state can therefore grow past ``max_keys`` only with authenticated identities that
recently spent. Unauthenticated state (auth failures per address group, limits made with
``evictable=True``) lives in its own instance with ``evict_debt=True``, so floods of addresses
cannot push identity buckets out.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from mltrust.state._base import Limit

__all__ = ["LocalState", "Quota", "TokenBuckets"]


_EVICT_SCAN = 64  # oldest entries looked at for one that can be dropped without loss


def _make_room(state: OrderedDict[object, Any], limit: int, now: float, evict_debt: bool) -> None:
    """Drop least recently used entries whose state is worthless (``[-1] <= now``)."""
    if len(state) < limit:
        return
    for key, value in itertools.islice(state.items(), _EVICT_SCAN):
        if value[-1] <= now:
            del state[key]
            return
    if evict_debt:
        state.popitem(last=False)


class TokenBuckets:
    def __init__(self, *, max_keys: int = 100_000, evict_debt: bool = False) -> None:
        # key -> (tokens, last update, time the bucket is full again)
        self._state: OrderedDict[object, tuple[float, float, float]] = OrderedDict()
        self._max = max_keys
        self._evict_debt = evict_debt

    def __len__(self) -> int:
        return len(self._state)

    def _tokens(self, key: object, rate: float, burst: float, now: float) -> float:
        state = self._state.get(key)
        if state is None:
            return burst
        tokens, last, _ = state
        return min(burst, tokens + (now - last) * rate)

    def _store(self, key: object, tokens: float, now: float, rate: float, burst: float) -> None:
        if key not in self._state:
            _make_room(self._state, self._max, now, self._evict_debt)
        full = (
            now if tokens >= burst else (math.inf if rate <= 0 else now + (burst - tokens) / rate)
        )
        self._state[key] = (tokens, now, full)
        self._state.move_to_end(key)

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
        tokens = self._tokens(key, rate, burst, now)
        if tokens >= 1.0:
            self._store(key, tokens - max(cost, 0.0), now, rate, burst)
            return 0.0
        self._store(key, tokens, now, rate, burst)
        if rate <= 0:
            return math.inf
        return (1.0 - tokens) / rate

    def debit(
        self, key: object, rate: float, burst: float, cost: float, now: float | None = None
    ) -> None:
        """Charge ``cost`` tokens unconditionally (the rest of an admitted request's cost)."""
        if cost <= 0:
            return
        now = time.monotonic() if now is None else now
        self._store(key, self._tokens(key, rate, burst, now) - cost, now, rate, burst)


class Quota:
    def __init__(self, *, max_keys: int = 100_000) -> None:
        # key -> (count, window number, wall-clock end of that window)
        self._state: OrderedDict[object, tuple[float, int, float]] = OrderedDict()
        self._max = max_keys

    def _count(self, key: object, window: int) -> float:
        state = self._state.get(key)
        return state[0] if state is not None and state[1] == window else 0.0

    def peek(
        self,
        key: object,
        limit: int,
        window_s: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        """0.0 while the window has room for ``cost`` (nothing counted), else seconds until it
        resets."""
        now = time.time() if now is None else now
        window = int(now // window_s)
        if self._count(key, window) + max(cost, 0.0) > limit:
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
        """Count ``cost`` (rows); 0.0 when the window has room for all of it, else seconds until
        it resets (nothing counted then): a window never serves more than ``limit``.
        """
        now = time.time() if now is None else now
        window = int(now // window_s)
        end = (window + 1) * window_s
        if key not in self._state:
            _make_room(self._state, self._max, now, False)
        count = self._count(key, window)
        self._state[key] = (count, window, end)
        self._state.move_to_end(key)
        if count + max(cost, 0.0) > limit:
            return end - now
        self._state[key] = (count + max(cost, 0.0), window, end)
        return 0.0


class LocalState:
    """The embedded default: every limit in this process (one worker's view).

    Calls run on the event loop thread without awaiting, so each is atomic within a worker.
    With ``--workers N`` or several replicas every process keeps its own counts: a limit of R
    admits up to N*R. Use :class:`mltrust.state.RedisState` to share them.
    """

    def __init__(self, *, max_keys: int = 100_000) -> None:
        # identity state: a bucket in debt is never dropped (that would forgive the debt)
        self.buckets = TokenBuckets(max_keys=max_keys)
        # unauthenticated state (Limit.evictable): bounded and LRU, apart from identity state
        self.unauthenticated = TokenBuckets(max_keys=max_keys, evict_debt=True)
        self.quotas = Quota(max_keys=max_keys)
        self._blocks: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self._max = max_keys

    def _buckets(self, lim: Limit) -> TokenBuckets:
        return self.unauthenticated if lim.evictable else self.buckets

    @staticmethod
    def _quota_limit(lim: Limit) -> int:
        return int(lim.rate) if math.isfinite(lim.rate) else 2**62

    def _peek(self, lim: Limit) -> float:
        if lim.kind == "bucket":
            if lim.unconditional:
                return 0.0
            return self._buckets(lim).peek(lim.key, lim.rate, lim.size)
        if lim.kind == "quota":
            return self.quotas.peek(lim.key, self._quota_limit(lim), lim.size, cost=lim.cost)
        return max(0.0, self._blocks.get(lim.key, 0.0) - time.monotonic())

    def _take(self, lim: Limit) -> float:
        if lim.kind == "bucket":
            buckets = self._buckets(lim)
            if lim.unconditional:
                buckets.debit(lim.key, lim.rate, lim.size, lim.cost)
                return 0.0
            return buckets.take(lim.key, lim.rate, lim.size, cost=lim.cost)
        if lim.kind == "quota":
            return self.quotas.take(lim.key, self._quota_limit(lim), lim.size, cost=lim.cost)
        return max(0.0, self._blocks.get(lim.key, 0.0) - time.monotonic())

    async def check(self, limits: Sequence[Limit]) -> tuple[int, float]:
        for i, lim in enumerate(limits):
            wait = self._peek(lim)
            if wait:
                return i, wait
        return -1, 0.0

    async def admit(self, limits: Sequence[Limit]) -> tuple[int, float]:
        index, wait = await self.check(limits)
        if wait:
            return index, wait
        for lim in limits:  # every limit admitted in this same step: these succeed
            self._take(lim)
        return -1, 0.0

    async def charge(self, limits: Sequence[Limit]) -> tuple[int, float]:
        for i, lim in enumerate(limits):
            wait = self._take(lim)
            if wait:
                return i, wait
        return -1, 0.0

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
