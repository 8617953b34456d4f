"""The state interface: limits checked and charged in one call, blocks shared between replicas."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mltrust.errors import Error

__all__ = ["Limit", "StateStore", "StateUnavailable"]


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
    """

    kind: str
    key: tuple[str, ...]
    rate: float = 0.0
    size: float = 0.0
    cost: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("bucket", "quota", "block"):
            raise ValueError(f"unknown limit kind {self.kind!r}")
        if self.kind == "quota" and not self.size > 0:
            raise ValueError("a quota window must be positive")
        if any(math.isnan(v) for v in (self.rate, self.size, self.cost)):
            raise ValueError("limits are numbers, not NaN")

    @classmethod
    def bucket(cls, key: tuple[str, ...], rate: float, burst: float, cost: float = 1.0) -> Limit:
        return cls("bucket", key, float(rate), float(burst), float(cost))

    @classmethod
    def quota(cls, key: tuple[str, ...], limit: float, window_s: float, cost: float = 1.0) -> Limit:
        return cls("quota", key, float(limit), float(window_s), float(cost))

    @classmethod
    def blocked(cls, key: tuple[str, ...]) -> Limit:
        return cls("block", key)


class StateStore(Protocol):
    """Where rate limits, quotas and blocks live: this process or a shared server.

    Both calls walk ``limits`` in order and stop at the first that refuses, returning its
    index and the seconds until it would admit; ``(-1, 0.0)`` when every limit admits.
    :meth:`check` changes nothing (used before a request body is read); :meth:`charge` takes
    each admitting limit's ``cost`` (limits before a refusing one stay charged, as with
    separate calls). Each call is atomic: concurrent requests cannot all pass one check.
    Raises :class:`StateUnavailable` when the state cannot be reached; never admits then.
    """

    async def check(self, limits: Sequence[Limit]) -> tuple[int, float]: ...

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
