"""The in-process state back end (the default) and per-replica metrics; no server needed."""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from mltrust.errors import ConfigError
from mltrust.serve._metrics import Metrics
from mltrust.state import Limit, LocalState, RedisState, open_state
from test_serve_support import (
    ROW,
    add_python_model,
    infer_body,
    make_server,
    new_key,
    plugin_dir,
)


def test_an_identity_named_like_a_key_kind_does_not_drain_the_model_bucket(tmp_path):
    """Keys start with what they count: ("model", M) is never an identity's bucket."""
    repo = tmp_path / "repo"
    policy = {
        "rate_limit": {
            "identity_rps": 0.001,
            "identity_burst": 2,
            "model_rps": 0.001,
            "model_burst": 5,
        }
    }
    add_python_model(repo, "calc", "total", policy=policy)
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    mallory = new_key(repo, "model", [("calc", "infer")])
    alice = new_key(repo, "alice", [("calc", "infer")])
    app.keys.refresh(max_age=0)
    try:
        post = lambda key: client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)  # noqa: E731
        codes = [post(mallory).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        assert post(alice).status_code == 200  # the model bucket still had room
    finally:
        client.close()


def test_check_changes_nothing_and_charge_stops_at_the_first_refusal():
    state = LocalState()
    a = Limit.bucket(("identity", "a", "m"), 1e-9, 2)
    b = Limit.quota(("quota", "a", "m"), 1, 3600)

    async def go():
        first = [await state.check([a, b]) for _ in range(5)]
        charged = [await state.charge([a, b]) for _ in range(3)]
        return first, charged

    first, charged = asyncio.run(go())
    assert first == [(-1, 0.0)] * 5
    assert [i for i, _ in charged] == [-1, 1, 0]  # quota closes, then the bucket is spent


def test_limits_refuse_nonsense():
    with pytest.raises(ValueError):
        Limit.bucket(("x",), math.nan, 1)
    with pytest.raises(ValueError):
        Limit.quota(("x",), 1, 0)
    with pytest.raises(ValueError):
        Limit("forever", ("x",))


def test_state_urls():
    assert isinstance(open_state(None), LocalState)
    assert isinstance(open_state("memory"), LocalState)
    assert isinstance(open_state("redis://127.0.0.1:1/0"), RedisState)  # not contacted
    for bad in (
        "postgresql://x/y",
        "http://127.0.0.1:6379",
        "redis://h/0?timeout=0",
        "redis://h/0?connections=0",
        "redis://h/0?timeout=x",
    ):
        with pytest.raises(ConfigError):
            open_state(bad)
    desc = RedisState("redis://:s3cret@127.0.0.1:6379/2").describe()
    assert "s3cret" not in desc and "127.0.0.1:6379/2" in desc


def test_replica_label_on_every_series():
    m = Metrics(replica="pod-a")
    m.observe("calc", 200, 0.01, None)
    m.alert("calc", "extraction")
    lines = [ln for ln in m.render({"calc": True}).splitlines() if not ln.startswith("#")]
    # the replica label first on every series, including those with no other label
    assert lines and all(re.search(r'\{replica="pod-a"[,}]', ln) for ln in lines)
    plain = Metrics()
    plain.observe("calc", 200, 0.01, None)
    assert 'mltrust_requests_total{model="calc",code="200"} 1' in plain.render({})
    with pytest.raises(ConfigError):
        from mltrust.serve import ServerConfig

        ServerConfig(repo=__import__("pathlib").Path("."), replica='a"} 1\nevil')


def test_admit_is_all_or_nothing():
    """A request refused by a later limit (here the model-wide bucket) charges nothing earlier:
    a saturated model does not drain innocent identities' buckets."""
    state = LocalState()
    mine = Limit.bucket(("identity", "a", "m"), 1e-9, 2)
    model = Limit.bucket(("model", "m"), 1e-9, 1)

    async def go():
        first = await state.admit([mine, model])
        refused = [await state.admit([mine, model]) for _ in range(5)]
        return first, refused, await state.admit([mine])

    first, refused, alone = asyncio.run(go())
    assert first == (-1, 0.0)
    assert [i for i, _ in refused] == [1] * 5
    assert alone == (-1, 0.0)  # one token left: the refused admissions took none


def test_debit_never_refuses_and_leaves_debt():
    state = LocalState()
    mine = ("identity", "a", "m")

    async def go():
        admitted = await state.admit([Limit.bucket(mine, 1e-9, 5)])
        debited = await state.charge([Limit.debit(mine, 1e-9, 5, 100)])
        return admitted, debited, await state.check([Limit.bucket(mine, 1e-9, 5)])

    admitted, debited, after = asyncio.run(go())
    assert admitted == debited == (-1, 0.0)
    assert after[0] == 0 and after[1] > 1e9  # 96 rows of debt at ~0 tokens/s
