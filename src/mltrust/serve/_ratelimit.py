"""Token buckets (per identity and model, per model) and fixed-window quotas that count work.

A request costs what it asks for: one token per **row** (prediction) in its batch, and, where a
bytes limit is set, one token per body byte. A single request may cost more than the bucket
holds: it is admitted when the bucket holds at least one token and leaves the bucket in debt,
so the identity waits until the debt is repaid (``cost / rate`` seconds). The long-run rate is
therefore the configured rows per second however the rows are batched; 4,096 rows in one
request at 2 requests/s is no longer 8,192 rows/s.

Steps per request: :meth:`TokenBuckets.peek` and :meth:`TokenBuckets.take` of **one** token at
admission, before the body is read (an identity in debt is refused without reading its body,
and every admitted request costs at least one token, whether or not it turns out valid), then
:meth:`TokenBuckets.debit` of the remaining rows once they are known. These run on the event
loop thread without awaiting, so concurrent requests cannot all pass one check.

Quotas (:class:`Quota`) refuse a request whose rows would take the window past its limit
(``count + cost > limit``): a window never serves more than its limit, and a batch larger than
the whole limit is never served. Only the admission unit of a refused batch is counted.

State lives in this process: with ``--workers N`` each worker enforces its own buckets, so the
effective limit is up to N times the configured one (documented; shared limits need an external
store). Memory: at most ``max_keys`` buckets, least recently used dropped first -- but a bucket
still in debt (or a quota window still open) is never dropped unless ``evict_debt`` is set:
dropping it would forgive the debt. Identity state therefore grows past ``max_keys`` only with
authenticated identities in debt; unauthenticated state (auth failures per address) lives in
its own instance with ``evict_debt=True`` so that floods of addresses cannot push identity
buckets out.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import time
from collections import OrderedDict
from typing import Any

__all__ = ["Quota", "TokenBuckets", "client_group"]


def client_group(host: str) -> str:
    """The key per-address accounting uses for a client: IPv4 as is, IPv6 by its /64.

    One IPv6 host usually owns a whole /64 (SLAAC, privacy addresses), so counting full
    addresses would give it 2**64 "clients". IPv4-mapped IPv6 addresses count as their IPv4.
    Anything that is not an address (a Unix socket, "-") is its own group. Used by the network
    guard (connections per client) and the auth-failure limiter.
    """
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


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
