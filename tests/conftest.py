"""Test-wide guards: no network (only loopback and Unix sockets), canary helpers."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_real_getaddrinfo = socket.getaddrinfo


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", "", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkBlocked(RuntimeError):
    pass


def _guard(real: Any) -> Any:
    def wrapper(self: socket.socket, address: Any, *args: Any) -> Any:
        target = args[-1] if real is _real_sendto and args else address
        if not _is_local(target):
            raise NetworkBlocked(f"test tried to reach {target!r}: tests never touch the network")
        return real(self, address, *args)

    return wrapper


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host not in (None, "localhost", "127.0.0.1", "::1", b"localhost") and not _is_local(
        (host, 0)
    ):
        raise NetworkBlocked(f"test tried to resolve {host!r}: tests never touch the network")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guard(_real_connect)  # type: ignore[method-assign]
socket.socket.connect_ex = _guard(_real_connect_ex)  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _default_report_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text reports follow COLUMNS; tests assert the default 120-column layout. A library in
    the test process sets COLUMNS=80 in the C environment (not in ``os.environ``), which
    processes the tests start inherit, so it is removed from both for every test."""
    monkeypatch.delenv("COLUMNS", raising=False)
    os.unsetenv("COLUMNS")


@pytest.fixture
def canary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A path that malicious test payloads try to create; asserted absent afterwards."""
    path = tmp_path_factory.mktemp("canary") / "pwned.txt"
    yield path
    assert not path.exists(), f"a payload executed: {path} was created"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` run only with MLTRUST_SLOW=1 (CI keeps the suite short)."""
    import os

    if os.environ.get("MLTRUST_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set MLTRUST_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
