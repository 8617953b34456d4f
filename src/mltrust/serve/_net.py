"""Connection-level guards in front of the ASGI app: no unauthenticated stalls.

uvicorn's HTTP protocol (httptools) bounds nothing before the application runs: a header may
grow without end (httptools concatenates it, quadratically), a connection that never sends a
byte or trickles its headers (slowloris) or never finishes its body stays open forever, and
every idle socket holds a file descriptor until none are left. :class:`GuardedProtocol`
subclasses that protocol and adds, per connection:

* **header size** (request line + headers, ``max_header_bytes``) and **count**
  (``max_headers``): ``431`` and close, having read at most the limit;
* **header read time** (``header_timeout_s``, from the connection's or request's first byte --
  a connection that sends nothing is closed the same way): ``408`` and close;
* **body read time** (``body_timeout_s``, from the end of the headers to the end of the body):
  ``408`` and close (the application sees a disconnect and audits it);
* **keep-alive idle time** (``keep_alive_s``, uvicorn's own timer after each response);
* **connections in total** (``max_connections``, capped below the file-descriptor limit) and
  **per client address** (``max_connections_per_client``): ``503`` and close at once, so the
  descriptor is freed.

These answers come from the network layer, before authentication: they are not audited (there is
no identity yet), they are counted in ``mltrust_rejections_total{model="-",reason="net: ..."}``.
The limits live in :class:`~mltrust.serve.ServerConfig` and are read from the application the
protocol serves, so worker processes (``--workers N``) apply the same ones.

Not covered here: a client that reads its *response* slowly (the kernel's send buffer and
uvicorn's flow control bound the memory; the socket stays until the response is read or the
peer goes away), and attacks from many addresses (a reverse proxy or firewall limits those).
"""

from __future__ import annotations

import asyncio
import functools
import resource
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mltrust.serve._config import ServerConfig

__all__ = ["GuardedProtocol", "fd_headroom", "uvicorn_options"]

_PHRASES = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}
_BODIES = {
    408: b'{"error":"request timeout"}',
    431: b'{"error":"request header fields too large"}',
    503: b'{"error":"too many connections"}',
}
_RESERVED_FDS = 64  # database, model files, logs, the audit anchor


@functools.cache
def fd_headroom() -> int:
    """Connections this process can hold: the descriptor limit (raised to the hard limit when
    allowed) minus a reserve for files. Computed once per process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    return max(16, soft - _RESERVED_FDS)


def _find_server(app: Any) -> Any:
    for _ in range(4):
        if isinstance(getattr(app, "config", None), ServerConfig):
            return app
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded headers, read times and connection counts."""

    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._app = _find_server(self.app)
        limits = self._app.config if self._app is not None else ServerConfig(repo=Path("."))
        self._max_header_bytes = limits.max_header_bytes
        self._max_headers = limits.max_headers
        self._header_timeout = limits.header_timeout_s
        self._body_timeout = limits.body_timeout_s
        self._max_connections = min(limits.max_connections, fd_headroom())
        self._max_per_client = limits.max_connections_per_client
        self._peers: dict[str, int] = server_state.__dict__.setdefault("mltrust_peers", {})
        self._peer: str | None = None
        self._in_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._refusing: int | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = self.client[0] if self.client else "-"
        if len(self.connections) > self._max_connections:
            self._refuse(503, "net: too many connections")
            return
        if self._peers.get(peer, 0) >= self._max_per_client:
            self._refuse(503, "net: too many connections from one client")
            return
        self._peer = peer
        self._peers[peer] = self._peers.get(peer, 0) + 1
        self._arm(self._header_timeout, self._header_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._peer is not None:
            left = self._peers.get(self._peer, 1) - 1
            if left > 0:
                self._peers[self._peer] = left
            else:
                self._peers.pop(self._peer, None)
            self._peer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusing is not None or self.transport.is_closing():
            return
        if self._in_headers:
            room = self._max_header_bytes - self._header_bytes
            if len(data) > room:
                # feed only what the limit allows; the headers must end inside it
                head, data = data[: max(room, 0)], data[max(room, 0) :]
                self._header_bytes += len(head)
                if head:
                    super().data_received(head)
                if self._in_headers:
                    if self._refusing is None and not self.transport.is_closing():
                        self._refuse(431, "net: header too large")
                    return
                if not data or self.transport.is_closing():
                    return
            else:
                self._header_bytes += len(data)
        super().data_received(data)

    # -- parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_count = 0
        if self._timer is None:
            self._arm(self._header_timeout, self._header_timed_out)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._max_headers:
            self._refusing = 431
            raise ValueError("too many headers")  # httptools stops parsing; see send_400
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._arm(self._body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusing == 431:
            self._refusing = None
            self._refuse(431, "net: too many headers")
            return
        super().send_400_response(msg)

    # -- timers --------------------------------------------------------------------------------
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _header_timed_out(self) -> None:
        self._timer = None
        if self._in_headers and not self.transport.is_closing():
            self._refuse(408, "net: header timeout")

    def _body_timed_out(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self._refuse(408, "net: body timeout")

    # -- answers -------------------------------------------------------------------------------
    def _refuse(self, status: int, reason: str) -> None:
        self._refusing = status
        self._disarm()
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # the application is answering: just hang up
        else:
            body = _BODIES[status]
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, _PHRASES[status], len(body), body)
            )
            self.transport.close()
        if self._app is not None:
            self._app.metrics.observe("-", status, 0.0, reason)


def uvicorn_options(config: ServerConfig) -> dict[str, Any]:
    """The uvicorn settings every ``mltrust serve`` runs with (protocol, timeouts, caps)."""
    return {
        "http": GuardedProtocol,
        "timeout_keep_alive": config.keep_alive_s,
        # our own per-connection answers replace uvicorn's concurrency cap (which answers only
        # once a request arrived); the backlog stays modest so a flood waits in the kernel
        "backlog": 1024,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        # X-Forwarded-For is not trusted: the client address feeds the limiters
        "proxy_headers": False,
        "timeout_graceful_shutdown": 30,
    }
