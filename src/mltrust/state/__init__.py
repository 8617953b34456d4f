"""Shared state for serving replicas: rate limits, quotas and blocks.

Two back ends behind one small interface (:class:`StateStore`):

* :class:`LocalState` -- in this process (the embedded default; per worker).
* :class:`RedisState` -- in one Redis server, shared by every worker and replica
  (``mltrust serve REPO --state redis://HOST:PORT/DB``); atomic Lua scripts, one round trip
  per check, keys hashed and expiring, fail closed (:class:`StateUnavailable` -> 503).

>>> state = open_state(None)              # in-process
>>> state = open_state("redis://127.0.0.1:6379/0")   # doctest: +SKIP

See ``docs/shared-state.md``.
"""

from __future__ import annotations

from mltrust.errors import ConfigError
from mltrust.state._base import Limit, StateStore, StateUnavailable, client_group
from mltrust.state._local import LocalState
from mltrust.state._redis import RedisState

__all__ = [
    "Limit",
    "LocalState",
    "RedisState",
    "StateStore",
    "StateUnavailable",
    "client_group",
    "open_state",
]


def open_state(url: str | None, *, check: bool = False) -> StateStore:
    """The back end a ``--state`` value names: None or ``memory`` keeps state in-process.

    ``check``: contact the server now and raise :class:`ConfigError` if it does not answer.
    """
    if url is None or url in ("", "memory", "in-process"):
        return LocalState()
    if url.startswith(("redis://", "rediss://", "unix://")):
        state = RedisState(url)
        if check:
            state.ping()
        return state
    raise ConfigError(f"unknown state back end {url.split(':', 1)[0]!r}: use redis://HOST:PORT/DB")
