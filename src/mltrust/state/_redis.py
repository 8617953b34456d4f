"""Shared state in Redis: every replica charges the same buckets, quotas and blocks.

One request, one round trip: the limits a request is held to are checked (or charged) by one
Lua script that runs atomically on the server -- ``EVALSHA``, with the script loaded again
when the server has forgotten it (restart, ``SCRIPT FLUSH``; redis-py's ``Script`` does the
fallback). The arithmetic is :mod:`mltrust.state._local`'s, on the Redis server's clock
(``TIME``), so replicas with skewed clocks still agree.

Key names: ``<prefix>:<kind>:<sha256 of the JSON array [kind, *key]>``. Parts of a key come
from clients (identity names, client addresses); JSON encoding is injective and the digest
hides the bytes, so no identity can name another's key (``"a:b"`` + ``"c"`` and ``"a"`` +
``"b:c"`` are different keys) or put separators, globs or huge strings into Redis key names.

Every key expires: a bucket when it would be full again (absent == full, so nothing changes),
a quota at the end of its window, a block when it lifts; a bucket that never refills
(rate 0) expires after :data:`LONGEST_TTL_MS` of inactivity.

Fail closed: a connection error, a timeout (``timeout`` seconds, default 1) or an unexpected
answer raises :class:`StateUnavailable`; the server answers 503, never "unlimited". A server
that cannot reach Redis at start-up refuses to start.

Not handled: Redis Cluster (keys of one request may hash to different slots), Sentinel
failover, ACL setup -- use one primary; ``rediss://`` (TLS) and a password in the URL work.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mltrust.errors import ConfigError
from mltrust.state._base import Limit, StateUnavailable

__all__ = ["LONGEST_TTL_MS", "RedisState"]

#: Longest life of a key (a bucket with no refill, or one in deep debt): one day.
#: (A property of the stored state, not a bound on input: not in :class:`~mltrust.config.Limits`.)
LONGEST_TTL_MS = 86_400_000
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_KIND = {"bucket": "b", "quota": "q", "block": "x"}

# KEYS[i]: one per limit. ARGV: mode ("0" check, "1" charge, "2" admit: check all, then charge
# all), max ttl (ms), then per limit kind (b bucket, d unconditional bucket debit, q quota,
# x block), a, b, cost. Returns {i, wait}: i = 1-based index of the first refusing limit (0: all
# admit).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local mode = ARGV[1]
local cap = tonumber(ARGV[2])
local function step(i, take)
  local key = KEYS[i]
  local j = 3 + (i - 1) * 4
  local kind = ARGV[j]
  local a = tonumber(ARGV[j + 1])
  local b = tonumber(ARGV[j + 2])
  local cost = math.max(tonumber(ARGV[j + 3]), 0)
  if kind == 'b' or kind == 'd' then
    if kind == 'd' and not take then return nil end
    local s = redis.call('HMGET', key, 't', 'l')
    local tokens = b
    if s[1] and s[2] then
      local elapsed = math.max(now - tonumber(s[2]), 0)
      tokens = math.min(b, tonumber(s[1]) + elapsed * a)
    end
    if kind == 'b' and tokens < 1 then
      if a <= 0 then return 'inf' end
      return tostring((1 - tokens) / a)
    end
    if take and cost > 0 then
      local left = tokens - cost
      redis.call('HSET', key, 't', tostring(left), 'l', tostring(now))
      local ttl = cap
      if a > 0 then ttl = math.min(cap, math.ceil((b - left) / a * 1000) + 1000) end
      redis.call('PEXPIRE', key, ttl)
    end
  elseif kind == 'q' then
    local window = math.floor(now / b)
    local s = redis.call('HMGET', key, 'c', 'w')
    local count = 0
    if s[1] and s[2] and tonumber(s[2]) == window then count = tonumber(s[1]) end
    local reset = (window + 1) * b - now
    -- a window never serves more than its limit: refuse what would overrun it
    if count + cost > a then return tostring(reset) end
    if take and cost > 0 then
      redis.call('HSET', key, 'c', tostring(count + cost), 'w', tostring(window))
      redis.call('PEXPIRE', key, math.min(cap, math.ceil(reset * 1000) + 1000))
    end
  else
    local ttl = redis.call('PTTL', key)
    if ttl > 0 then return tostring(ttl / 1000) end
  end
  return nil
end
if mode == '2' then
  for i = 1, #KEYS do
    local wait = step(i, false)
    if wait then return {i, wait} end
  end
end
for i = 1, #KEYS do
  local wait = step(i, mode ~= '0')
  if wait then return {i, wait} end
end
return {0, '0'}
"""
_BLOCK = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


def _num(value: float) -> str:
    """A number Lua's ``tonumber`` reads: no ``inf`` (it has none), 17 significant digits."""
    if math.isinf(value):
        value = math.copysign(1e300, value)
    return repr(float(value))


def key_name(prefix: str, kind: str, key: tuple[str, ...]) -> str:
    """The Redis key of a limit: no client-chosen byte appears in it (see the module doc)."""
    encoded = json.dumps([kind, *key], ensure_ascii=True, separators=(",", ":"))
    return f"{prefix}:{_KIND[kind]}:{hashlib.sha256(encoded.encode()).hexdigest()}"


class RedisState:
    """Limits shared through one Redis server.

    ``redis://[:PASSWORD@]HOST:PORT/DB[?prefix=P&timeout=S&connections=N]``: key prefix
    (default ``mltrust``), seconds to wait for a connection or an answer (default 1), and the
    connections per process (default 32; a request waits for a free one up to the timeout).
    """

    def __init__(self, url: str) -> None:
        try:
            import redis  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--state redis:// needs the redis package", hint="pip install 'mltrust[redis]'"
            ) from None
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"unsupported state URL scheme {parts.scheme!r}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.prefix = query.pop("prefix", "mltrust")
        if not _PREFIX.match(self.prefix):
            raise ConfigError("state key prefix: 1-64 letters, digits, '_', '.', '-'")
        try:
            self.timeout = float(query.pop("timeout", "1.0"))
        except ValueError:
            raise ConfigError("state timeout must be a number of seconds") from None
        if not 0 < self.timeout <= 60:
            raise ConfigError("state timeout must be in (0, 60] seconds")
        try:
            self.connections = int(query.pop("connections", "32"))
        except ValueError:
            raise ConfigError("state connections must be an integer") from None
        if not 1 <= self.connections <= 1024:
            raise ConfigError("state connections must be in [1, 1024]")
        self._url = urlunsplit(parts._replace(query=urlencode(query)))
        host = parts.hostname or parts.path
        self._where = f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"
        self._client: Any = None
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._script: Any = None
        self._block: Any = None

    def describe(self) -> str:
        return f"redis {self._where} (prefix {self.prefix})"

    def ping(self) -> None:
        """Check once, synchronously, that the server answers (start-up: refuse to start)."""
        import redis

        client = redis.Redis.from_url(
            self._url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        try:
            client.ping()
        except (redis.RedisError, OSError) as exc:
            raise ConfigError(
                f"state server {self._where} unreachable: {type(exc).__name__}",
                hint="start Redis or drop --state to keep limits in-process",
            ) from None
        finally:
            client.close()

    async def aclose(self) -> None:
        client, pool = self._client, self._pool
        self._client = self._pool = self._loop = None
        try:
            if client is not None:
                await client.aclose()
            if pool is not None:
                await pool.disconnect()
        except Exception:  # noqa: BLE001 - closing a broken connection: nothing to save
            return

    def _connection(self) -> tuple[Any, Any]:
        # an asyncio client belongs to one event loop; a new loop (tests) gets a new client
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None:
            import redis.asyncio

            # a bounded pool that makes a burst of requests wait for a connection (up to the
            # timeout) rather than fail at once or open one connection per request
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self._url,
                max_connections=self.connections,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
            )
            self._client = redis.asyncio.Redis(connection_pool=pool)
            self._pool = pool
            self._script = self._client.register_script(_SCRIPT)
            self._block = self._client.register_script(_BLOCK)
            self._loop = loop
        return self._script, self._block

    async def _call(self, script: Any, keys: list[str], args: list[str]) -> Any:
        import redis

        try:
            # bounded by the socket and pool timeouts (no wait_for: a task per call costs)
            return await script(keys=keys, args=args)
        except (redis.RedisError, OSError, TimeoutError) as exc:
            raise StateUnavailable(f"state server: {type(exc).__name__}") from None

    async def _run(self, limits: Sequence[Limit], mode: str) -> tuple[int, float]:
        if not limits:
            return -1, 0.0
        script, _ = self._connection()
        keys = [key_name(self.prefix, lim.kind, lim.key) for lim in limits]
        args = [mode, str(LONGEST_TTL_MS)]
        for lim in limits:
            kind = "d" if lim.kind == "bucket" and lim.unconditional else _KIND[lim.kind]
            args += [kind, _num(lim.rate), _num(lim.size), _num(lim.cost)]
        answer = await self._call(script, keys, args)
        try:
            index, wait = int(answer[0]), float(answer[1])
        except (TypeError, ValueError, IndexError):
            raise StateUnavailable("state server: unexpected answer") from None
        if not 0 <= index <= len(limits) or math.isnan(wait) or (index and wait <= 0):
            raise StateUnavailable("state server: unexpected answer")
        return (index - 1, wait) if index else (-1, 0.0)

    async def check(self, limits: Sequence[Limit]) -> tuple[int, float]:
        return await self._run(limits, "0")

    async def admit(self, limits: Sequence[Limit]) -> tuple[int, float]:
        return await self._run(limits, "2")

    async def charge(self, limits: Sequence[Limit]) -> tuple[int, float]:
        return await self._run(limits, "1")

    async def block(self, key: tuple[str, ...], seconds: float) -> None:
        _, block = self._connection()
        ms = max(1, min(LONGEST_TTL_MS, math.ceil(seconds * 1000)))
        await self._call(block, [key_name(self.prefix, "block", key)], [str(ms)])
