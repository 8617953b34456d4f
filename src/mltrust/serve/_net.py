"""Connection-level guards in front of the ASGI app: no unauthenticated stalls.

uvicorn's HTTP protocol (httptools) bounds nothing before the application runs: a header may
grow without end (httptools concatenates it, quadratically), a connection that never sends a
byte or trickles its headers (slowloris) or never finishes its body stays open forever, and
every idle socket holds a file descriptor until none are left. :class:`GuardedProtocol`
subclasses that protocol and adds, per connection:

* **header size** (request line + headers, ``max_header_bytes``) and **count**
  (``max_headers``): ``431`` and close, having read at most the limit. Counted twice: bytes as
  they are read (so httptools never concatenates more than the limit plus one read), and per
  message from the parser's callbacks (URL, names, values), so a request pipelined in the same
  read as the previous body is measured too. Bytes between messages (stray CRLFs) count
  against the next message's headers. **Trailers** of a chunked body count against the same
  limits: every read that brings no body byte while a body is in progress is counted as header
  bytes, and every trailer field as a header (size and count);
* **header read time** (``header_timeout_s``, from the connection's or request's first byte --
  a connection that sends nothing is closed the same way, and so is a kept-alive connection
  that trickles bytes such as bare CRLFs, which llhttp skips without starting a message):
  ``408`` and close;
* **body read time** (``body_timeout_s``, from the end of the headers to the end of the body):
  ``408`` and close (the application sees a disconnect and audits it);
* **keep-alive idle time** (``keep_alive_s``, uvicorn's own timer after each response);
* **connections in total** (``max_connections``, capped below the file-descriptor limit) and
  **per client address** (``max_connections_per_client``; IPv6 clients are grouped by their
  /64, see :func:`client_group`): ``503`` and close at once, so the descriptor is freed.

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
from mltrust.state import client_group

__all__ = ["GuardedProtocol", "client_group", "fd_headroom", "uvicorn_options"]


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
        self._in_headers = True  # before a message's headers end (or between messages)
        self._in_message = False  # between on_message_begin and on_message_complete
        self._header_bytes = 0  # bytes read while in headers (or trailers), per message
        self._parsed_bytes = 0  # URL + header fields seen by the parser, per message
        self._header_count = 0
        self._messages = 0
        self._completed = 0
        self._body_seen = False
        self._read_body = 0  # body bytes the parser delivered from the current read
        self._after_chunk_header = False  # a chunk header with no data after it yet
        self._refusing: int | None = None
        self._refuse_reason = ""
        self._timer: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peer = client_group(str(self.client[0])) if self.client else "-"
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
        if self._in_headers and not self._in_message and self._timer is None and self._idle():
            # bytes on a kept-alive connection (uvicorn just cancelled its keep-alive timer):
            # llhttp skips bare CRLFs without starting a message, so time them here
            self._arm(self._header_timeout, self._header_timed_out)
        if not self._in_headers:
            self._feed_body(data)
            return
        room = self._max_header_bytes - self._header_bytes
        if len(data) > room:
            # feed only what the limit allows; the headers must end inside it
            head, data = data[: max(room, 0)], data[max(room, 0) :]
            self._header_bytes += len(head)
            completed = self._completed
            if head:
                super().data_received(head)
            if self._refusing is not None or self.transport.is_closing():
                return
            if self._in_headers and completed == self._completed:
                self._refuse(431, "net: header too large")
                return
            if data:
                self.data_received(data)  # the body (or the next message), counted as such
            return
        self._header_bytes += len(data)
        super().data_received(data)

    def _feed_body(self, data: bytes) -> None:
        """Feed a read while a body (or its trailers) is in progress: a read that brings no
        body byte, or ends after a chunk header (the last chunk's trailers follow), counts as
        header bytes, so trailers cannot grow without bound."""
        messages = self._messages
        self._body_seen = False
        self._read_body = 0
        super().data_received(data)
        if (
            (not self._body_seen or self._after_chunk_header)
            and messages == self._messages
            and self._in_message
            and not self._in_headers
            and self._refusing is None
            and not self.transport.is_closing()
        ):
            # a read ending after a chunk header with no data (the last chunk: trailers
            # follow) counts everything in it but body bytes; so does a read with no body
            self._header_bytes += len(data) - self._read_body
            if self._header_bytes > self._max_header_bytes:
                self._refuse(431, "net: trailers too large")

    # -- parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._in_message = True
        self._messages += 1
        self._header_count = 0
        self._parsed_bytes = 0
        if self._timer is None:
            self._arm(self._header_timeout, self._header_timed_out)

    def on_url(self, url: bytes) -> None:
        self._parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self._max_headers:
            self._stop_parsing("net: too many headers")
        if not self._in_headers:  # a trailer field: counted like the headers (size and count)
            self._header_bytes += len(name) + len(value) + 4
            if self._header_bytes > self._max_header_bytes:
                self._stop_parsing("net: trailers too large")
        self._parsed(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._header_bytes = 0
        self._arm(self._body_timeout, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        self._after_chunk_header = False
        self._read_body += len(body)
        super().on_body(body)

    def on_chunk_header(self) -> None:
        self._after_chunk_header = True

    def on_chunk_complete(self) -> None:
        # a chunk ended (for the last one: its trailers too): framing counted so far is fine
        self._after_chunk_header = False
        self._header_bytes = 0

    def on_message_complete(self) -> None:
        self._disarm()
        self._completed += 1
        self._in_message = False
        self._in_headers = True  # whatever comes next belongs to the next message's headers
        self._header_bytes = 0
        super().on_message_complete()

    def _parsed(self, size: int) -> None:
        """Per-message header size as the parser sees it (a pipelined request read together
        with the previous body is not counted by ``data_received``)."""
        self._parsed_bytes += size
        if self._parsed_bytes > self._max_header_bytes:
            self._stop_parsing("net: header too large")

    def _stop_parsing(self, reason: str) -> None:
        self._refusing = 431
        self._refuse_reason = reason
        raise ValueError(reason)  # httptools stops parsing; see send_400_response

    def send_400_response(self, msg: str) -> None:
        if self._refusing == 431:
            self._refusing = None
            self._refuse(431, self._refuse_reason or "net: too many headers")
            return
        super().send_400_response(msg)

    def _idle(self) -> bool:
        """No request of this connection is being answered."""
        return self.cycle is None or bool(self.cycle.response_complete)

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
        if (
            self._in_headers
            and (self._in_message or self._idle())
            and not self.transport.is_closing()
        ):
            self._refuse(408, "net: header timeout")

    def _body_timed_out(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self._refuse(408, "net: body timeout")

    # -- answers -------------------------------------------------------------------------------
    def _refuse(self, status: int, reason: str) -> None:
        self._refusing = status
        self._disarm()
        if (
            self.cycle is not None
            and self.cycle.response_started
            and not self.cycle.response_complete
        ):
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
