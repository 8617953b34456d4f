"""Abuse controls: rate limits, quotas, body size, hostile JSON, schema validation, timeouts,
extraction detection, detectors and output hardening."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mltrust.serve._extraction import ExtractionMonitor
from mltrust.serve._ratelimit import Quota, TokenBuckets
from mltrust.serve._settings import ExtractionSettings
from test_serve_support import (
    IRIS_MAX,
    IRIS_MIN,
    ROW,
    add_onnx_model,
    add_python_model,
    audit_entries,
    infer_body,
    iris_data,
    make_server,
    new_key,
    plugin_dir,
    served_namespace,
)


@pytest.fixture
def served(tmp_path):
    yield from served_namespace(tmp_path)


def _server(tmp_path, policy=None, func="total", **config):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", func, policy=policy)
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path), **config)
    key = new_key(repo, "alice", [("calc", "infer")])
    app.keys.refresh(max_age=0)
    return client, app, key, repo


# -- rate limits and quotas --------------------------------------------------------------------
def test_identity_rate_limit_429_with_retry_after(tmp_path):
    client, _, key, repo = _server(
        tmp_path, policy={"rate_limit": {"identity_rps": 0.5, "identity_burst": 3}}
    )
    try:
        codes = [
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
            for _ in range(5)
        ]
        assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
        assert int(codes[3].headers["retry-after"]) >= 1
        assert codes[3].json() == {"error": "too many requests"}
        assert audit_entries(repo)[-1]["reason"] == "rate limit: identity"
    finally:
        client.close()


def test_rate_limit_is_per_identity(tmp_path):
    client, app, key, repo = _server(
        tmp_path, policy={"rate_limit": {"identity_rps": 0.01, "identity_burst": 1}}
    )
    try:
        other = new_key(repo, "bob", [("calc", "infer")])
        app.keys.refresh(max_age=0)
        assert (
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).status_code
            == 200
        )
        assert (
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).status_code
            == 429
        )
        assert (
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=other).status_code
            == 200
        )
    finally:
        client.close()


def test_model_rate_limit_shared_by_all(tmp_path):
    client, app, key, repo = _server(
        tmp_path, policy={"rate_limit": {"model_rps": 0.01, "model_burst": 2}}
    )
    try:
        other = new_key(repo, "bob", [("calc", "infer")])
        app.keys.refresh(max_age=0)
        codes = [
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=h).status_code
            for h in (key, other, key, other)
        ]
        assert codes == [200, 200, 429, 429]
        assert audit_entries(repo)[-1]["reason"] == "rate limit: model"
    finally:
        client.close()


def test_quota_exhausted(tmp_path):
    client, _, key, repo = _server(tmp_path, policy={"quota": {"requests": 2, "window_s": 3600}})
    try:
        codes = [
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        assert audit_entries(repo)[-1]["reason"] == "quota exhausted"
    finally:
        client.close()


def test_token_bucket_refills_and_bounded_memory():
    b = TokenBuckets(max_keys=2)
    assert b.take("a", 1.0, 1.0, now=0.0) == 0.0
    assert b.take("a", 1.0, 1.0, now=0.1) == pytest.approx(0.9)
    assert b.take("a", 1.0, 1.0, now=1.2) == 0.0
    b.take("b", 1.0, 1.0, now=1.3)
    b.take("c", 1.0, 1.0, now=3.0)  # "a" is full again: dropped without loss
    assert len(b._state) == 2
    # a bucket in debt is never dropped (that would forgive the debt) ...
    d = TokenBuckets(max_keys=2)
    for k in ("x", "y", "z"):
        d.take(k, 1.0, 1.0, now=0.0, cost=100.0)
    assert len(d) == 3 and d.peek("x", 1.0, 1.0, now=1.0) > 90
    # ... unless the instance holds unauthenticated state (evict_debt)
    e = TokenBuckets(max_keys=2, evict_debt=True)
    for k in ("x", "y", "z"):
        e.take(k, 1.0, 1.0, now=0.0, cost=100.0)
    assert len(e) == 2
    q = Quota()
    assert q.take("k", 1, 10.0, now=5.0) == 0.0
    assert q.take("k", 1, 10.0, now=6.0) == pytest.approx(4.0)
    assert q.take("k", 1, 10.0, now=10.5) == 0.0


# -- body size and hostile JSON ----------------------------------------------------------------
def test_oversize_declared_body_413(tmp_path):
    client, _, key, _ = _server(tmp_path, max_body_bytes=4096)
    try:
        big = json.dumps(infer_body([ROW] * 400)).encode()
        r = client.post(
            "/v2/models/calc/infer",
            content=big,
            headers={**key, "content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json() == {"error": "request body too large"}
    finally:
        client.close()


def test_oversize_streamed_body_413_before_reading_all(tmp_path):
    client, _, key, repo = _server(tmp_path, max_body_bytes=4096)
    sent = []

    async def chunks():
        for _ in range(1000):
            sent.append(1)
            yield b"[" * 1024

    try:
        r = client.post("/v2/models/calc/infer", content=chunks(), headers=key)
        assert r.status_code == 413
        assert len(sent) < 1000  # the server stopped reading early
        assert audit_entries(repo)[-1]["reason"] == "body too large (streamed)"
    finally:
        client.close()


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"\xff\xfe", b'{"inputs": [}', b"", b"[1,2,3]", b'"x"', b"null"],
)
def test_malformed_json_400(served, body):
    r = served.client.post("/v2/models/calc/infer", content=body, headers=served.infer)
    assert r.status_code == 400 and "error" in r.json()


@pytest.mark.parametrize("depth", [100, 5_000, 100_000])
def test_deeply_nested_json_400_not_crash(served, depth):
    body = (
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":'
        + b"[" * depth
        + b"1"
        + b"]" * depth
        + b"}]}"
    )
    r = served.client.post("/v2/models/calc/infer", content=body, headers=served.infer)
    assert r.status_code == 400
    # the server still answers afterwards
    assert (
        served.client.post(
            "/v2/models/calc/infer", json=infer_body([ROW]), headers=served.infer
        ).status_code
        == 200
    )


def test_huge_integer_literal_400(served):
    body = (
        b'{"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[' + b"9" * 10000 + b"]}]}"
    )
    r = served.client.post("/v2/models/calc/infer", content=body, headers=served.infer)
    assert r.status_code == 400


# -- schema validation (422) -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (infer_body([ROW], name="wrong"), "inputs do not match"),
        (infer_body([[*ROW, 1.0]]), "shape"),
        (infer_body([[1.0, 2.0]]), "shape"),
        (
            infer_body([ROW], datatype="BYTES")
            | {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "BYTES",
                        "data": ["a", "b", "c", "d"],
                    }
                ]
            },
            "datatype",
        ),
        (infer_body([[5.0, 3.0, 1.0, 100.0]]), "out of range"),
        (infer_body([[5.0, 3.0, -50.0, 0.2]]), "out of range"),
    ],
)
def test_schema_violations_422(served, body, fragment):
    r = served.client.post("/v2/models/calc/infer", json=body, headers=served.infer)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_inf_422(served, literal):
    body = (
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[5.0,3.0,1.0,'
        + literal
        + b"]}]}"
    )
    r = served.client.post("/v2/models/calc/infer", content=body, headers=served.infer)
    assert r.status_code == 422 and "NaN" in r.json()["error"]


def test_value_within_margin_accepted(served):
    # 5% above the training maximum is inside the default 10% margin
    row = [IRIS_MAX[0] * 1.0 + 0.05 * (IRIS_MAX[0] - IRIS_MIN[0]), 3.0, 4.0, 1.0]
    r = served.client.post("/v2/models/calc/infer", json=infer_body([row]), headers=served.infer)
    assert r.status_code == 200


def test_batch_row_limit(tmp_path):
    client, _, key, _ = _server(tmp_path, policy={"max_batch_rows": 3})
    try:
        r = client.post("/v2/models/calc/infer", json=infer_body([ROW] * 4), headers=key)
        assert r.status_code == 422 and "rows" in r.json()["error"]
    finally:
        client.close()


# -- timeout ---------------------------------------------------------------------------------
def test_inference_timeout_504(tmp_path):
    client, _, key, repo = _server(tmp_path, policy={"timeout_s": 0.2}, func="slow")
    try:
        r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
        assert r.status_code == 504 and r.json() == {"error": "inference timed out"}
        assert audit_entries(repo)[-1]["reason"] == "inference timeout"
    finally:
        client.close()


# -- output hardening --------------------------------------------------------------------------
def test_output_top_k_labels_only(tmp_path):
    repo = tmp_path / "repo"
    add_onnx_model(repo, policy={"output": {"top_k": 1}})
    client, app = make_server(repo)
    key = new_key(repo, "a", [("*", "infer")])
    app.keys.refresh(max_age=0)
    try:
        r = client.post(
            "/v2/models/iris-onnx/infer",
            json=infer_body([ROW, [6.7, 3.0, 5.2, 2.3]], name="X", datatype="FP32"),
            headers=key,
        )
        outs = {o["name"]: o for o in r.json()["outputs"]}
        assert "probabilities" not in outs
        assert outs["probabilities_top1"]["data"] == [0, 2]
    finally:
        client.close()


def test_output_rounded_probabilities(tmp_path):
    repo = tmp_path / "repo"
    add_onnx_model(repo, policy={"output": {"round": 1}})
    client, app = make_server(repo)
    key = new_key(repo, "a", [("*", "infer")])
    app.keys.refresh(max_age=0)
    try:
        r = client.post(
            "/v2/models/iris-onnx/infer",
            json=infer_body([ROW], name="X", datatype="FP32"),
            headers=key,
        )
        probs = {o["name"]: o for o in r.json()["outputs"]}["probabilities"]["data"]
        assert all(round(p, 1) == p for p in probs)
    finally:
        client.close()


# -- detectors ---------------------------------------------------------------------------------
def _reference(folder):
    X, _ = iris_data()
    np.save(folder / "reference.npy", X)


def test_mahalanobis_detector_blocks_outlier(tmp_path):
    repo = tmp_path / "repo"
    folder = add_python_model(
        repo,
        "calc",
        "total",
        inputs=[{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        policy={
            "detectors": [
                {
                    "type": "mahalanobis",
                    "reference": "reference.npy",
                    "false_alarm_rate": 0.01,
                    "mode": "block",
                },
                {"type": "ranges", "reference": "reference.npy"},
            ]
        },
    )
    _reference(folder)
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    key = new_key(repo, "a", [("*", "infer")])
    app.keys.refresh(max_age=0)
    try:
        ok = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
        assert ok.status_code == 200
        # each feature inside its range, but the combination is far from the training data
        odd = [7.9, 2.0, 1.0, 2.5]
        r = client.post("/v2/models/calc/infer", json=infer_body([odd]), headers=key)
        assert r.status_code == 422 and r.json() == {"error": "input rejected by a detector"}
        entries = audit_entries(repo)
        assert entries[-1]["reason"] == "detector: mahalanobis"
        assert (
            entries[-1]["detector_scores"]["mahalanobis"]
            > entries[-2]["detector_scores"]["mahalanobis"]
        )
        metrics = client.get("/metrics", headers=new_key(repo, "r", [("*", "admin")]))
    finally:
        client.close()
    assert metrics.status_code in (200, 401)


def test_mahalanobis_false_alarm_rate_calibrated():
    from mltrust.serve.detectors.mahalanobis import MahalanobisDetector

    rng = np.random.default_rng(1)
    ref = rng.normal(size=(4000, 3))
    det = MahalanobisDetector(ref, false_alarm_rate=0.05, mode="annotate")
    fresh = rng.normal(size=(4000, 3))
    rate = float(np.mean(det.score(fresh) > det.threshold))
    assert 0.02 < rate < 0.09


# -- model extraction (PRADA) -------------------------------------------------------------------
def test_extraction_monitor_flags_synthetic_queries_not_natural_ones():
    settings = ExtractionSettings(min_samples=40, history=256)
    X, _ = iris_data()
    rng = np.random.default_rng(0)
    benign = ExtractionMonitor(settings, every=1)
    for row in rng.permutation(X)[:120]:
        w, alert = benign.observe("benign", row.reshape(1, -1) + rng.normal(0, 0.05, 4))
    assert not alert
    attack = ExtractionMonitor(settings, every=1)
    seed = X[0]
    for i in range(120):
        # the classic attack: tiny steps along one feature from a seed (JbDA-like walk)
        row = (
            seed + np.array([0.0, 0.0, 0.0, 0.001 * (i % 3)]) + (i // 3) * np.array([0.01, 0, 0, 0])
        )
        w, alert = attack.observe("attacker", row.reshape(1, -1))
    assert alert and w is not None and w < 0.8
    cloud = ExtractionMonitor(settings, every=1)
    for i in range(120):
        # perturbation clouds around a few seeds (Papernot-style synthetic queries)
        row = X[(i // 12) * 13] + rng.normal(0, 0.01, 4)
        w, alert = cloud.observe("cloud", row.reshape(1, -1))
    assert alert


def test_extraction_memory_bounded():
    m = ExtractionMonitor(ExtractionSettings(history=16, max_identities=3))
    for i in range(10):
        m.observe(f"id{i}", np.ones((40, 4)) * i)
    assert len(m._states) == 3
    assert all(s.rows.shape == (16, 4) for s in m._states.values())


def test_extraction_block_mode_returns_429(tmp_path):
    client, _, key, repo = _server(
        tmp_path,
        policy={
            "extraction": {"mode": "block", "min_samples": 20},
            "rate_limit": {"identity_rps": 1000, "identity_burst": 1000},
        },
    )
    try:
        codes = []
        for i in range(60):
            row = [5.0 + 0.01 * i, 3.0, 1.5, 0.2]
            codes.append(
                client.post(
                    "/v2/models/calc/infer", json=infer_body([row]), headers=key
                ).status_code
            )
        assert 429 in codes
        assert codes[0] == 200
        assert any(e.get("reason", "").startswith("extraction") for e in audit_entries(repo))
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["knn", "lid"])
def test_monitor_scorers_plug_in_as_detectors(tmp_path, kind):
    pytest.importorskip("mltrust.monitor")
    from mltrust.serve._settings import DetectorSettings
    from mltrust.serve.detectors import Detector, build_detector

    folder = tmp_path / "m"
    folder.mkdir()
    _reference(folder)
    det = build_detector(folder, DetectorSettings(kind, "block", "reference.npy", 0.05))
    assert isinstance(det, Detector) and det.mode == "block" and det.name == kind
    X, _ = iris_data()
    normal = float(np.mean(det.score(X) > det.threshold))
    far_away = det.score(np.array([[20.0, 20.0, 20.0, 20.0]]))
    assert normal < 0.2 and far_away[0] > det.threshold
