"""The state interface: limits checked and charged in one call, blocks shared between replicas."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mltrust.errors import Error

__all__ = ["Limit", "StateStore", "StateUnavailable", "client_group"]


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


class StateUnavailable(Error):
    """The shared state cannot be reached or answered wrongly: callers refuse (fail closed)."""


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit a request is held to.

    ``kind`` is ``"bucket"`` (a token bucket: ``rate`` tokens per second, ``size`` the burst),
    ``"quota"`` (a fixed window: ``rate`` units per window of ``size`` seconds) or ``"block"``
    (refused while a block set by :meth:`StateStore.block` lasts). ``key`` names the subject;
    its parts may be chosen by clients (identity names, model names, addresses) and are never
    joined into a string unescaped. ``cost`` is what :meth:`StateStore.charge` takes.

    ``unconditional`` (buckets, :meth:`debit`): always admits and takes ``cost`` (debt
    allowed) -- the rest of an already admitted request's cost. ``evictable`` (buckets):
    unauthenticated state (auth failures per address) that the in-process store keeps apart
    and may drop under memory pressure; identity buckets in debt are never dropped. Redis
    keys expire instead, so it makes no difference there.
    """

    kind: str
    key: tuple[str, ...]
    rate: float = 0.0
    size: float = 0.0
    cost: float = 1.0
    unconditional: bool = False
    evictable: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("bucket", "quota", "block"):
            raise ValueError(f"unknown limit kind {self.kind!r}")
        if self.kind == "quota" and not self.size > 0:
            raise ValueError("a quota window must be positive")
        if any(math.isnan(v) for v in (self.rate, self.size, self.cost)):
            raise ValueError("limits are numbers, not NaN")

    @classmethod
    def bucket(
        cls,
        key: tuple[str, ...],
        rate: float,
        burst: float,
        cost: float = 1.0,
        *,
        evictable: bool = False,
    ) -> Limit:
        return cls("bucket", key, float(rate), float(burst), float(cost), evictable=evictable)

    @classmethod
    def debit(cls, key: tuple[str, ...], rate: float, burst: float, cost: float) -> Limit:
        """Take ``cost`` from a bucket without checking it (the rest of an admitted request)."""
        return cls("bucket", key, float(rate), float(burst), float(cost), unconditional=True)

    @classmethod
    def quota(cls, key: tuple[str, ...], limit: float, window_s: float, cost: float = 1.0) -> Limit:
        return cls("quota", key, float(limit), float(window_s), float(cost))

    @classmethod
    def blocked(cls, key: tuple[str, ...]) -> Limit:
        return cls("block", key)


class StateStore(Protocol):
    """Where rate limits, quotas and blocks live: this process or a shared server.

    Every call walks ``limits`` in order and stops at the first that refuses, returning its
    index and the seconds until it would admit; ``(-1, 0.0)`` when every limit admits.
    :meth:`check` changes nothing; :meth:`admit` (at admission, before a request body is read)
    takes every limit's ``cost`` only when all of them admit -- all or nothing, so a refused
    request charges nothing, while an admitted one pays its admission unit whether or not it
    turns out valid; :meth:`charge` takes each admitting limit's ``cost`` (limits before a
    refusing one stay charged, as with separate calls).

    Arithmetic: a bucket admits while it holds at least one token and may go into debt by the
    rest of ``cost``; a quota admits only when ``count + cost <= limit`` (a window never serves
    more than its limit). Each call is atomic: concurrent requests cannot all pass one check.
    Raises :class:`StateUnavailable` when the state cannot be reached; never admits then.
    """

    async def check(self, limits: Sequence[Limit]) -> tuple[int, float]: ...

    async def admit(self, limits: Sequence[Limit]) -> tuple[int, float]: ...

    async def charge(self, limits: Sequence[Limit]) -> tuple[int, float]: ...

    async def block(self, key: tuple[str, ...], seconds: float) -> None:
        """Refuse ``Limit.blocked(key)`` for ``seconds`` (a later block may extend it)."""
        ...

    async def aclose(self) -> None:
        """Close connections (on the event loop that used them)."""
        ...

    def describe(self) -> str:
        """Where the state lives, without credentials (for logs)."""
        ...
