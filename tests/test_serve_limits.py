"""Limits that count work, metrics that cannot be inflated, blocks that lift as announced."""

from __future__ import annotations

import re
import secrets
import time

import httpx
import numpy as np

from mltrust.serve._extraction import ExtractionMonitor
from mltrust.serve._settings import ExtractionSettings
from test_serve_stalls import Live
from test_serve_support import (
    ROW,
    add_python_model,
    audit_entries,
    infer_body,
    iris_data,
    make_server,
    new_key,
    plugin_dir,
)


# -- metrics cardinality (against a live server) --------------------------------------------------
def test_random_model_names_do_not_become_metric_labels(tmp_path):
    live = Live(tmp_path, audit_sync="normal", auth_failure_rps=100_000)
    try:
        admin = new_key(live.repo, "root", [("*", "admin")])
        live.app.keys.refresh(max_age=0)  # type: ignore[union-attr]
        names = [secrets.token_hex(8) for _ in range(400)]
        with httpx.Client(base_url=live.base, timeout=10) as c:
            for i, name in enumerate(names):
                headers = live.key if i % 2 else {}
                assert c.get(f"/v2/models/{name}", headers=headers).status_code in (401, 403)
            assert c.get("/v2/models/calc", headers=admin).status_code == 200
            text = c.get("/metrics", headers=admin).text
    finally:
        live.stop()
    labels = set(re.findall(r'model="([^"]*)"', text))
    assert labels <= {"calc", "unknown", "-"} and "unknown" in labels
    assert not any(n in text for n in names)
    assert len(text) < 20_000


# -- rate limits and quotas count rows -----------------------------------------------------------
def _server(tmp_path, policy):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total", policy=policy)
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    key = new_key(repo, "alice", [("calc", "infer")])
    app.keys.refresh(max_age=0)
    return client, key, repo


def _post(client, key, rows):
    return client.post("/v2/models/calc/infer", json=infer_body([ROW] * rows), headers=key)


def test_big_batches_spend_the_identity_bucket_per_row(tmp_path):
    client, key, repo = _server(
        tmp_path, {"rate_limit": {"identity_rps": 10, "identity_burst": 20}}
    )
    try:
        assert _post(client, key, 100).status_code == 200  # admitted, leaves 80 rows of debt
        r = _post(client, key, 1)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 8
        assert audit_entries(repo)[-1]["reason"] == "rate limit: identity"
    finally:
        client.close()


def test_row_rate_holds_however_rows_are_batched(tmp_path):
    client, key, _ = _server(tmp_path, {"rate_limit": {"identity_rps": 50, "identity_burst": 50}})
    try:
        served = 0
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            if _post(client, key, 200).status_code == 200:
                served += 200
        elapsed = time.monotonic() - started
        # burst 50 + 50 rows/s, plus at most one admitted batch of 200
        assert served <= 50 + 50 * elapsed + 200
    finally:
        client.close()


def test_quota_counts_rows_not_requests(tmp_path):
    client, key, repo = _server(tmp_path, {"quota": {"requests": 50, "window_s": 3600}})
    try:
        assert _post(client, key, 40).status_code == 200
        # a batch that would overrun the window is refused (only its admission row counts)
        assert _post(client, key, 11).status_code == 429
        assert audit_entries(repo)[-1]["reason"] == "quota exhausted"
        assert _post(client, key, 9).status_code == 200  # 40 + 1 + 9 = 50: exactly the quota
        assert _post(client, key, 1).status_code == 429
        assert audit_entries(repo)[-1]["reason"] == "quota exhausted"
    finally:
        client.close()


def test_bytes_limit(tmp_path):
    # a row bucket too large to refuse first: 200 rows against the default burst of 200 leave
    # it empty, and whether it refills a token before the next request was a race
    limits = {"identity_bytes_per_s": 1000, "identity_burst": 10_000}
    client, key, repo = _server(tmp_path, {"rate_limit": limits})
    try:
        assert _post(client, key, 200).status_code == 200  # ~5 kB: admitted, then in debt
        assert _post(client, key, 1).status_code == 429
        assert audit_entries(repo)[-1]["reason"] == "rate limit: bytes"
    finally:
        client.close()


# -- the extraction monitor sees every row --------------------------------------------------------
def _walk(n):
    seed = np.array([5.0, 3.0, 1.5, 0.2])
    return np.array([seed + np.array([0.01 * (i // 3), 0, 0, 0.001 * (i % 3)]) for i in range(n)])


def test_attack_rows_before_a_benign_tail_are_seen():
    X, _ = iris_data()
    rng = np.random.default_rng(1)
    benign_tail = rng.permutation(X)[:140] + rng.normal(0, 0.05, (140, 4))
    settings = ExtractionSettings(min_samples=40, history=128)
    monitor = ExtractionMonitor(settings, every=16)
    batch = np.vstack([_walk(600), benign_tail])  # the walk hides in front of the tail
    _, alert = monitor.observe("mallory", batch)
    assert alert


def test_extraction_block_lifts_when_retry_after_says(tmp_path):
    client, key, _ = _server(
        tmp_path,
        {
            "extraction": {"mode": "block", "min_samples": 20, "block_s": 1},
            "rate_limit": {"identity_rps": 10_000, "identity_burst": 10_000},
        },
    )
    try:
        blocked = None
        for row in _walk(200):
            r = client.post("/v2/models/calc/infer", json=infer_body([list(row)]), headers=key)
            if r.status_code == 429:
                blocked = r
                break
        assert blocked is not None and blocked.headers["retry-after"] == "1"
        again = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
        assert again.status_code == 429
        time.sleep(int(blocked.headers["retry-after"]) + 0.1)
        after = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
        assert after.status_code == 200
    finally:
        client.close()


# -- extraction: named false alarms and misses ----------------------------------------------------
IRIS_LO = np.array([4.3, 2.0, 1.0, 0.1])
IRIS_HI = np.array([7.9, 4.4, 6.9, 2.5])


def _monitor(**kw):
    return ExtractionMonitor(ExtractionSettings(**kw), ranges=(IRIS_LO, IRIS_HI))


def test_health_probe_repeating_one_row_is_no_alarm():
    monitor = _monitor()
    row = np.array([[5.1, 3.5, 1.4, 0.2]])
    assert not any(monitor.observe("probe", row)[1] for _ in range(300))


def test_replaying_real_training_rows_is_no_alarm():
    X, _ = iris_data()
    rng = np.random.default_rng(0)
    rows = X[rng.choice(len(X), 40, replace=False)]
    monitor = _monitor()
    alerts = [monitor.observe("user", rows[[rng.integers(40)]])[1] for _ in range(300)]
    assert not any(alerts) and not monitor.campaign_alert


def test_natural_queries_are_no_alarm():
    X, _ = iris_data()
    rng = np.random.default_rng(3)
    monitor = _monitor()
    for _ in range(300):
        row = np.clip(X[rng.integers(len(X))] + rng.normal(0, 0.05, 4), IRIS_LO, IRIS_HI)
        assert not monitor.observe("user", row.reshape(1, -1))[1]


def test_uniform_random_sampling_is_caught():
    rng = np.random.default_rng(0)
    monitor = _monitor()
    alerts = [monitor.observe("m", rng.uniform(IRIS_LO, IRIS_HI, (1, 4)))[1] for _ in range(300)]
    assert any(alerts)


def test_campaign_split_across_identities_is_reported_not_blocked(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(
        repo,
        "calc",
        "total",
        policy={
            "extraction": {"mode": "block"},
            "rate_limit": {"identity_rps": 10_000, "identity_burst": 10_000},
        },
    )
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        keys = [new_key(repo, f"sybil{i}", [("calc", "infer")]) for i in range(10)]
        app.keys.refresh(max_age=0)
        rng = np.random.default_rng(0)
        codes = []
        for i in range(200):  # 20 uniform queries per identity: each below min_samples
            row = [float(v) for v in rng.uniform(IRIS_LO, IRIS_HI)]
            r = client.post("/v2/models/calc/infer", json=infer_body([row]), headers=keys[i % 10])
            codes.append(r.status_code)
        assert set(codes) == {200}  # nobody is blocked on a model-wide suspicion
        assert any(e.get("extraction_campaign") for e in audit_entries(repo))
    finally:
        client.close()


# -- the same attacks against a live server -------------------------------------------------------
def test_live_batch_rows_spend_the_bucket(tmp_path):
    live = Live(
        tmp_path,
        policy={"rate_limit": {"identity_rps": 10, "identity_burst": 20}},
        identity_rps=None,
        identity_burst=None,
    )
    try:
        with httpx.Client(base_url=live.base, timeout=10) as c:
            url = "/v2/models/calc/infer"
            assert c.post(url, json=infer_body([ROW] * 400), headers=live.key).status_code == 200
            r = c.post(url, json=infer_body([ROW]), headers=live.key)
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 38
    finally:
        live.stop()


def test_live_jwt_sub_named_like_a_key_gets_no_grant(tmp_path):
    import json as _json

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = _json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(_json.dumps({"keys": [jwk]}))
    iss, aud = "https://issuer.test", "mltrust"
    live = Live(
        tmp_path,
        policy={"roles": {"key:partner-svc": ["infer"]}},
        jwks=jwks,
        jwt_issuer=iss,
        jwt_audience=aud,
    )
    try:
        now = int(time.time())
        claims = {"iss": iss, "aud": aud, "sub": "partner-svc", "exp": now + 300, "nbf": now - 1}
        token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
        partner = new_key(live.repo, "partner-svc", [("unrelated", "metadata")])
        live.app.keys.refresh(max_age=0)  # type: ignore[union-attr]
        with httpx.Client(base_url=live.base, timeout=10) as c:
            url = "/v2/models/calc/infer"
            bearer = {"Authorization": f"Bearer {token}"}
            assert c.post(url, json=infer_body([ROW]), headers=bearer).status_code == 403
            assert c.post(url, json=infer_body([ROW]), headers=partner).status_code == 200
    finally:
        live.stop()
