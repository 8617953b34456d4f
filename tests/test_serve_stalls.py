"""Unauthenticated stalls against a live uvicorn server on 127.0.0.1 (item: no stalls).

Each attack uses raw sockets in bounded loops; every test ends on its own. The server runs with
small limits so the tests are quick; the legitimate client connects from another loopback
address (127.0.0.2) where an attack holds 127.0.0.1's per-client quota.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from _net_helpers import free_port
from mltrust.serve import ServerConfig, create_app
from mltrust.serve._net import uvicorn_options
from test_serve_support import ROW, add_python_model, infer_body, new_key, plugin_dir

LIMITS: dict[str, Any] = {
    "max_header_bytes": 8 * 1024,
    "max_headers": 40,
    "header_timeout_s": 1.0,
    "body_timeout_s": 1.0,
    "keep_alive_s": 1.0,
    "max_connections": 60,
    "max_connections_per_client": 10,
}


class Live:
    def __init__(self, tmp_path, policy: dict[str, Any] | None = None, **limits: Any) -> None:
        import uvicorn

        repo = tmp_path / "repo"
        add_python_model(repo, "calc", "total", policy=policy)
        config = ServerConfig(
            repo=repo,
            allow_unsigned=True,
            plugin_path=plugin_dir(tmp_path),
            audit_key=tmp_path / "audit-keys" / "audit.key",
            **{"identity_rps": 10_000, "identity_burst": 10_000, **LIMITS, **limits},
        )
        self.app = create_app(config)
        self.repo = repo
        self.key = new_key(repo, "alice", [("calc", "infer")])
        self.app.keys.refresh(max_age=0)  # type: ignore[union-attr]
        self.port = free_port()
        options = {**uvicorn_options(config), "host": "127.0.0.1", "port": self.port}
        self.server = uvicorn.Server(uvicorn.Config(self.app, **options))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise AssertionError("server did not start")
            time.sleep(0.02)
        self.base = f"http://127.0.0.1:{self.port}"

    def legit(self, source: str = "127.0.0.2") -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.base, transport=transport, timeout=5)

    def infer_ok(self, client: httpx.Client) -> float:
        t = time.perf_counter()
        r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=self.key)
        assert r.status_code == 200, r.text
        return time.perf_counter() - t

    def raw(self, source: str = "127.0.0.1") -> socket.socket:
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", self.port))
        return s

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.app.close()


@pytest.fixture
def live(tmp_path) -> Iterator[Live]:
    server = Live(tmp_path)
    yield server
    server.stop()


def _answer(s: socket.socket, limit: float = 5.0) -> bytes:
    """Everything the server sends until it closes (bounded by ``limit`` seconds)."""
    s.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _status(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:80]
    return int(data.split(b" ", 2)[1])


def test_endless_header_stream_431_after_the_limit(live):
    s = live.raw()
    started = time.monotonic()
    s.sendall(b"POST /v2/models/calc/infer HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    try:
        for _ in range(4096):  # up to 64 MiB, stops when the server hangs up
            s.sendall(b"a" * 16384)
            sent += 16384
    except OSError:
        pass
    data = _answer(s)
    s.close()
    assert _status(data) == 431
    assert sent < 16 * 1024 * 1024  # it stopped reading near the limit, not after 64 MiB
    assert time.monotonic() - started < 5
    with live.legit() as c:
        live.infer_ok(c)


def test_too_many_header_fields_431(live):
    s = live.raw()
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(100))
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n" + fields + b"\r\n")
    data = _answer(s)
    s.close()
    assert _status(data) == 431


def test_header_within_limits_accepted(live):
    with live.legit() as c:
        r = c.get("/v2/health/live", headers={f"x-h{i}": "v" * 100 for i in range(30)})
        assert r.status_code == 200


def test_slowloris_header_trickle_408(live):
    s = live.raw()
    started = time.monotonic()
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
    closed = False
    for _ in range(50):  # one byte every 0.1 s for at most 5 s
        try:
            s.sendall(b"x")
        except OSError:
            closed = True
            break
        time.sleep(0.1)
    data = _answer(s, 2)
    s.close()
    assert closed or data
    assert _status(data) == 408
    assert time.monotonic() - started < 3.5


def test_silent_connection_closed_408(live):
    s = live.raw()
    started = time.monotonic()
    data = _answer(s, 4)
    s.close()
    assert _status(data) == 408 and time.monotonic() - started < 3


def test_unsent_body_408(live):
    s = live.raw()
    started = time.monotonic()
    auth = live.key["Authorization"].encode()
    s.sendall(
        b"POST /v2/models/calc/infer HTTP/1.1\r\nhost: x\r\nauthorization: "
        + auth
        + b'\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"inp'
    )
    data = _answer(s, 4)
    s.close()
    assert _status(data) == 408 and time.monotonic() - started < 3


def test_idle_keep_alive_closed(live):
    s = live.raw()
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nhost: x\r\n\r\n")
    started = time.monotonic()
    data = _answer(s, 4)
    s.close()
    assert _status(data) == 200 and b'{"live":true}' in data
    assert time.monotonic() - started < 3  # closed after keep_alive_s, not left open


def test_connection_flood_from_one_address_503_others_served(live):
    held = []
    refused = 0
    for _ in range(25):
        s = live.raw()
        held.append(s)
    time.sleep(0.2)
    for s in held:
        s.settimeout(0.3)
        try:
            if s.recv(1024).startswith(b"HTTP/1.1 503"):
                refused += 1
        except (TimeoutError, OSError):
            pass
    try:
        assert refused == 15  # 10 per address kept, the rest answered and closed at once
        with live.legit() as c:  # another address is still served, quickly
            assert max(live.infer_ok(c) for _ in range(10)) < 1.0
    finally:
        for s in held:
            s.close()


def test_total_connection_cap_503(tmp_path):
    live = Live(tmp_path, max_connections=20, max_connections_per_client=100)
    held = []
    try:
        for i in range(30):
            held.append(live.raw(f"127.0.0.{10 + i % 5}"))
        time.sleep(0.2)
        answers = []
        for s in held:
            s.settimeout(0.3)
            try:
                answers.append(s.recv(1024)[:12])
            except (TimeoutError, OSError):
                answers.append(b"")
        assert answers.count(b"HTTP/1.1 503") == 10
    finally:
        for s in held:
            s.close()
        live.stop()


def test_legitimate_latency_bounded_under_slowloris_and_idle_flood(live):
    socks = []
    for i in range(40):  # 8 attacker addresses, 5 sockets each, trickling headers
        s = live.raw(f"127.0.0.{20 + i % 8}")
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        socks.append(s)
    latencies = []
    try:
        with live.legit() as c:
            for _ in range(30):
                for s in socks:
                    try:
                        s.sendall(b"x")
                    except OSError:
                        pass
                latencies.append(live.infer_ok(c))
    finally:
        for s in socks:
            s.close()
    latencies.sort()
    assert latencies[-1] < 1.0, latencies[-5:]
