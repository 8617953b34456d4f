"""Shared serving state in a real Redis server: limits that hold across replicas, keys that no
identity can collide or inject, and refusal (503) -- never "unlimited" -- while Redis is down.

Marked ``services``: they talk to Redis on 127.0.0.1:6379 (started by scripts/services.sh) and
to private ``redis-server`` processes they start themselves. With ``CI=true`` an unreachable
server fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time

import httpx
import pytest

from _net_helpers import free_port, start_serve
from mltrust.errors import ConfigError
from mltrust.state import Limit, LocalState, RedisState, StateUnavailable, open_state
from mltrust.state._redis import key_name
from test_serve_kill import _cli_key
from test_serve_support import (
    ROW,
    add_onnx_model,
    add_python_model,
    audit_entries,
    infer_body,
    make_server,
    new_key,
    plugin_dir,
)

redis = pytest.importorskip("redis")  # the `redis` extra; in the test extra for CI

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

SHARED = "redis://127.0.0.1:6379/9"


def _unavailable(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: services must run; see scripts/services.sh)")
    pytest.skip(what)


@pytest.fixture
def url():
    """The shared server, DB 9, with a prefix of this test's own (keys removed afterwards)."""
    client = redis.Redis.from_url(SHARED, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        _unavailable(f"Redis on 127.0.0.1:6379 unreachable: {exc}")
    prefix = "t-" + secrets.token_hex(6)
    yield f"{SHARED}?prefix={prefix}"
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


class PrivateRedis:
    """A redis-server of this test's own, so it can be stopped and flushed."""

    def __init__(self) -> None:
        if shutil.which("redis-server") is None:
            _unavailable("redis-server is not installed")
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        _unavailable("private redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def private():
    server = PrivateRedis()
    yield server
    server.stop()


def run(coro, *states):
    """Run ``coro``, then close the states' connections on the same loop."""

    async def main():
        try:
            return await coro
        finally:
            for state in states:
                await state.aclose()

    return asyncio.run(main())


# -- keys: client-chosen identity strings ---------------------------------------------------------
def test_identity_strings_crafted_to_share_a_key_get_separate_buckets(url):
    state = RedisState(url)

    async def go():
        # naive "identity:model" joining would make these one key
        a = Limit.bucket(("identity", "key:1:a:b", "c"), 1e-9, 3)
        b = Limit.bucket(("identity", "key:1:a", "b:c"), 1e-9, 3)
        spent = [await state.charge([a]) for _ in range(4)]
        return spent, await state.check([b])

    spent, other = run(go(), state)
    assert [w > 0 for _, w in spent] == [False, False, False, True]
    assert other == (-1, 0.0)


def test_identity_strings_never_reach_key_names(url):
    state = RedisState(url)
    hostile = ["*", "a\r\nFLUSHALL\r\n", "{slot}", "x" * 20_000, "é\x00", "t-:b:"]

    async def go():
        for name in hostile:
            await state.charge([Limit.bucket(("identity", name, "m"), 1, 5)])
            await state.charge([Limit.quota(("quota", name, "m"), 5, 60)])
            await state.block(("extraction", name, "m"), 5)

    run(go(), state)
    prefix = state.prefix
    client = redis.Redis.from_url(SHARED)
    keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
    client.close()
    assert len(keys) == 3 * len(hostile)
    assert all(re.fullmatch(rf"{prefix}:[bqx]:[0-9a-f]{{64}}", k) for k in keys), keys
    assert key_name(prefix, "bucket", ("a:b", "c")) != key_name(prefix, "bucket", ("a", "b:c"))
    assert key_name(prefix, "bucket", ("a",)) != key_name(prefix, "quota", ("a",))


def test_a_hostile_prefix_is_refused():
    for prefix in ("a b", "x*", "a:b", "", "z" * 65):
        with pytest.raises(ConfigError):
            RedisState(f"redis://127.0.0.1:6379/0?prefix={prefix}")


# -- the arithmetic: the same decisions as the in-process back end ---------------------------------
def test_redis_admits_exactly_what_the_in_process_state_admits(url):
    """Oracle: the in-process buckets and quotas; rates near 0 so the clocks do not matter."""
    shared, local = RedisState(url), LocalState()
    costs = [1, 5, 1, 1, 30, 1, 2, 1, 1, 1, 7, 1, 1, 1, 1, 1, 3, 1, 1, 1]

    async def go(state):
        out = []
        for i, c in enumerate(costs):
            limits = [
                Limit.bucket(("identity", "alice", "m"), 1e-6, 10, c),
                Limit.bucket(("model", "m"), 1e-6, 40, c),
                Limit.quota(("quota", "alice", "m"), 45, 3600, c),
            ]
            if i % 3 == 0:
                out.append((await state.check(limits))[0])
            out.append((await state.charge(limits))[0])
        return out

    got, want = run(go(shared), shared), run(go(local))
    assert got == want
    assert set(got) >= {-1, 0}  # both admitted and refused


def test_concurrent_charges_cannot_overspend_a_bucket(url):
    # 200 calls share 32 connections: a loaded host needs more than the 1 s default wait for
    # one; what this test checks is atomicity, not latency
    state = RedisState(url + "&timeout=10")
    limit = [Limit.bucket(("identity", "bob", "m"), 1e-6, 50)]

    async def go():
        results = await asyncio.gather(*(state.charge(limit) for _ in range(200)))
        return sum(1 for _, w in results if w == 0)

    assert run(go(), state) == 50


def test_quota_window_and_retry_after(url):
    state = RedisState(url)
    quota = [Limit.quota(("quota", "carol", "m"), 10, 3600, 4)]

    async def go():
        return [await state.charge(quota) for _ in range(4)]

    results = run(go(), state)
    # 4, 8, then 8+4 > 10: refused (a window never serves more than its limit), nothing counted
    assert [i for i, _ in results] == [-1, -1, 0, 0]
    assert 0 < results[-1][1] <= 3600


def test_every_key_expires(url):
    state = RedisState(url)

    async def go():
        await state.charge([Limit.bucket(("identity", "dave", "m"), 10, 20, 20)])
        await state.charge([Limit.bucket(("model", "never-refills"), 0, 5)])
        await state.charge([Limit.quota(("quota", "dave", "m"), 100, 30)])
        await state.block(("extraction", "dave", "m"), 7)

    run(go(), state)
    client = redis.Redis.from_url(SHARED)
    ttls = {
        k.decode().split(":")[1]: client.pttl(k)
        for k in client.scan_iter(match=f"{state.prefix}:*")
    }
    never = client.pttl(key_name(state.prefix, "bucket", ("model", "never-refills")))
    bucket = client.pttl(key_name(state.prefix, "bucket", ("identity", "dave", "m")))
    client.close()
    assert 0 < ttls["q"] <= 31_000 and 0 < ttls["x"] <= 7_000
    assert 0 < bucket <= 3_000  # 20 tokens at 10/s: full again after 2 s
    assert 3_000 < never <= 86_400_000  # no refill: the one-day cap


def test_a_block_is_seen_by_every_replica(url):
    one, two = RedisState(url), RedisState(url)
    key = ("extraction", "eve", "m")

    async def go():
        before = await two.check([Limit.blocked(key)])
        await one.block(key, 30)
        return before, await two.check([Limit.blocked(key)])

    before, after = run(go(), one, two)
    assert before == (-1, 0.0)
    assert after[0] == 0 and 25 < after[1] <= 30


# -- fail closed ----------------------------------------------------------------------------------
def test_script_forgotten_by_the_server_is_loaded_again(private):
    state = RedisState(private.url)
    limit = [Limit.bucket(("identity", "f", "m"), 1e-6, 3)]

    async def go():
        first = await state.charge(limit)
        client = redis.asyncio.Redis.from_url(private.url)
        await client.script_flush()
        await client.aclose()
        return (
            first,
            await state.charge(limit),
            await state.charge(limit),
            await state.charge(limit),
        )

    results = run(go(), state)
    assert [i for i, _ in results] == [-1, -1, -1, 0]


def test_unreachable_redis_refuses_instead_of_admitting(private):
    state = RedisState(private.url + "?timeout=0.5")
    private.stop()

    async def go():
        return await state.charge([Limit.bucket(("identity", "g", "m"), 1e9, 1e9)])

    with pytest.raises(StateUnavailable):
        run(go(), state)


def test_server_refuses_to_start_without_its_state_server(tmp_path):
    port = free_port()  # nothing listens there
    with pytest.raises(ConfigError, match="unreachable"):
        open_state(f"redis://127.0.0.1:{port}/0?timeout=0.5", check=True)
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    with pytest.raises(ConfigError):
        make_server(repo, plugin_path=plugin_dir(tmp_path), state_url=f"redis://127.0.0.1:{port}/0")


def test_redis_down_answers_503_and_recovers_when_it_returns(tmp_path, private):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(
        repo, plugin_path=plugin_dir(tmp_path), state_url=private.url + "?timeout=0.5"
    )
    key = new_key(repo, "alice", [("calc", "infer")])
    app.keys.refresh(max_age=0)
    try:
        post = lambda: client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)  # noqa: E731
        assert post().status_code == 200
        private.stop()
        r = post()
        assert r.status_code == 503
        assert audit_entries(repo)[-1]["reason"] == "state unavailable"
        # failed authentications are limited through the same state: refused too, not 401 loops
        assert client.get("/v2/models/calc", headers={"x-api-key": "mlt_bad"}).status_code == 503
        private.start()
        assert post().status_code == 200
    finally:
        client.close()


# -- two real server processes, one Redis ---------------------------------------------------------
@pytest.fixture
def onnx_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTRUST_AUDIT_KEY", str(tmp_path / "audit-keys" / "audit.key"))
    repo = tmp_path / "repo"
    add_onnx_model(repo)
    return repo


def test_two_servers_sharing_redis_hold_one_global_limit(onnx_repo, url, capsys):
    rps, burst, seconds = 20.0, 20.0, 4.0
    key = _cli_key(onnx_repo, capsys)
    ports = [free_port(), free_port()]
    limits = ["--identity-rps", str(rps), "--identity-burst", str(burst), "--state", url]
    procs = [
        start_serve(onnx_repo, p, *limits, "--audit-sync", "normal", "--metrics-public",
               "--replica", f"r{i}")
        for i, p in enumerate(ports)
    ]  # fmt: skip
    counts: dict[int, list[int]] = {p: [0, 0] for p in ports}
    body = infer_body([ROW], name="X", datatype="FP32")
    headers = {"Authorization": f"Bearer {key}"}
    stop = [0.0]

    def hammer(port: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for _ in range(5000):  # bounded
                if time.monotonic() >= stop[0]:
                    return
                r = c.post("/v2/models/iris-onnx/infer", json=body, headers=headers)
                assert r.status_code in (200, 429), r.text
                counts[port][r.status_code == 429] += 1

    try:
        started = time.monotonic()
        stop[0] = started + seconds
        threads = [threading.Thread(target=hammer, args=(p,)) for p in ports for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        # each replica counts its own requests, labelled with its name
        for i, p in enumerate(ports):
            text = httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=10).text
            line = f'mltrust_requests_total{{replica="r{i}",model="iris-onnx",code="200"}}'
            assert int(text.split(line)[1].split()[0]) == counts[p][0]
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
    admitted = sum(c[0] for c in counts.values())
    refused = sum(c[1] for c in counts.values())
    expected = burst + rps * seconds  # no request starts after the deadline
    print(f"admitted {admitted} (expected {expected:.1f}), refused {refused}, per port {counts}")
    assert refused > admitted  # the offered load was well above the limit
    assert all(c[0] > 0 for c in counts.values())  # both replicas served
    # one shared bucket: within a few percent of R*T + burst, not 2x (one bucket per replica)
    assert 0.9 * expected <= admitted <= 1.05 * expected


def test_an_extraction_block_on_one_replica_holds_on_the_other(tmp_path, url):
    import numpy as np

    repo = tmp_path / "repo"
    policy = {
        "extraction": {"mode": "block", "min_samples": 20, "block_s": 30},
        "rate_limit": {"identity_rps": 10_000, "identity_burst": 10_000},
    }
    add_python_model(repo, "calc", "total", policy=policy)
    one, app_one = make_server(repo, plugin_path=plugin_dir(tmp_path), state_url=url)
    two, app_two = make_server(repo, plugin_path=plugin_dir(tmp_path), state_url=url)
    key = new_key(repo, "mallory", [("calc", "infer")])
    app_one.keys.refresh(max_age=0)
    app_two.keys.refresh(max_age=0)
    seed = np.array([5.0, 3.0, 1.5, 0.2])
    walk = [list(seed + np.array([0.01 * (i // 3), 0, 0, 0.001 * (i % 3)])) for i in range(200)]
    try:
        assert (
            two.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).status_code
            == 200
        )
        blocked = None
        for row in walk:  # a grid walk: replica one's monitor alerts
            r = one.post("/v2/models/calc/infer", json=infer_body([row]), headers=key)
            if r.status_code == 429:
                blocked = r
                break
        assert blocked is not None
        # replica two never saw the walk, yet refuses the identity for the block's duration
        r = two.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
        assert r.status_code == 429 and 25 <= int(r.headers["retry-after"]) <= 30
        assert audit_entries(repo)[-1]["reason"] == "extraction: blocked"
    finally:
        one.close()
        two.close()


def test_redis_admit_and_debit_match_the_in_process_state(url):
    """Admission is all or nothing, debits never refuse, quotas refuse overruns: same decisions
    and same leftovers in both back ends (oracle: LocalState)."""
    shared, local = RedisState(url), LocalState()

    async def go(state):
        who = ("identity", "erin", "m")
        out = []
        for rows in (1, 30, 12, 1, 1):
            admission = [
                Limit.bucket(who, 1e-6, 10),
                Limit.bucket(("model", "m2"), 1e-6, 100),
                Limit.quota(("quota", "erin", "m"), 25, 3600),
            ]
            index, _ = await state.admit(admission)
            out.append(("admit", index))
            if index == -1 and rows > 1:
                rest = [
                    Limit.quota(("quota", "erin", "m"), 25, 3600, rows - 1),
                    Limit.debit(who, 1e-6, 10, rows - 1),
                ]
                out.append(("charge", (await state.charge(rest))[0]))
        return out

    got, want = run(go(shared), shared), run(go(local))
    assert got == want
    # 30 rows overrun the quota (refused, no debit); 12 rows leave the bucket in debt
    assert got == [
        ("admit", -1),
        ("admit", -1),
        ("charge", 0),
        ("admit", -1),
        ("charge", -1),
        ("admit", 0),
        ("admit", 0),
    ]
