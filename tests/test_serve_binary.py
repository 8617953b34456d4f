"""Binary tensor data extension, with tritonclient as the real client against a live server."""

from __future__ import annotations

import json
import struct

import httpx
import numpy as np
import pytest

from test_serve_stalls import Live
from test_serve_support import ROW


@pytest.fixture
def live(tmp_path):
    server = Live(tmp_path)
    yield server
    server.stop()


def _raw(live, doc, binary, headers=None):
    header = json.dumps(doc).encode()
    with httpx.Client(base_url=live.base, timeout=10) as c:
        return c.post(
            "/v2/models/calc/infer",
            content=header + binary,
            headers={
                **live.key,
                "inference-header-content-length": str(len(header)),
                "content-type": "application/octet-stream",
                **(headers or {}),
            },
        )


def _split(r):
    n = int(r.headers["inference-header-content-length"])
    return json.loads(r.content[:n]), r.content[n:]


def test_tritonclient_binary_infer(live):
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(url=f"127.0.0.1:{live.port}")
    try:
        assert client.is_server_live()
        meta = client.get_model_metadata("calc", headers=live.key)
        assert meta["name"] == "calc"
        x = np.array([ROW, [6.0, 3.0, 4.0, 1.0]], dtype=np.float64)
        for dtype, datatype in ((np.float64, "FP64"), (np.float32, "FP32"), (np.float16, "FP16")):
            inp = http.InferInput("x", list(x.shape), datatype)
            inp.set_data_from_numpy(x.astype(dtype), binary_data=True)
            outputs = [
                http.InferRequestedOutput("total", binary_data=True),
                http.InferRequestedOutput("twice", binary_data=False),
            ]
            result = client.infer("calc", [inp], outputs=outputs, headers=live.key)
            want = x.astype(dtype).astype(np.float64)
            np.testing.assert_allclose(result.as_numpy("total"), want.sum(axis=1))
            np.testing.assert_allclose(result.as_numpy("twice"), want * 2)
    finally:
        client.close()


def test_tritonclient_without_credentials_is_refused(live):
    http = pytest.importorskip("tritonclient.http")
    from tritonclient.utils import InferenceServerException

    client = http.InferenceServerClient(url=f"127.0.0.1:{live.port}")
    try:
        inp = http.InferInput("x", [1, 4], "FP64")
        inp.set_data_from_numpy(np.array([ROW]), binary_data=True)
        with pytest.raises(InferenceServerException):
            client.infer("calc", [inp])
    finally:
        client.close()


def test_bf16_binary_input(live):
    x = np.array([ROW], dtype=np.float32)
    bf16 = (x.view(np.uint32) >> 16).astype("<u2").tobytes()  # truncation, as BF16 stores
    doc = {
        "inputs": [
            {
                "name": "x",
                "datatype": "BF16",
                "shape": [1, 4],
                "parameters": {"binary_data_size": 8},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    r = _raw(live, doc, bf16)
    assert r.status_code == 200, r.text
    head, tail = _split(r)
    outputs = {o["name"]: o for o in head["outputs"]}
    size = outputs["total"]["parameters"]["binary_data_size"]
    total = np.frombuffer(tail[:size], "<f8")
    expected = (np.frombuffer(bf16, "<u2").astype(np.uint32) << 16).view(np.float32).sum()
    assert total[0] == pytest.approx(float(expected))


@pytest.mark.parametrize(
    ("size", "binary", "header"),
    [
        (32, b"\x00" * 16, None),  # shorter than declared
        (16, b"\x00" * 16, None),  # does not fill the shape
        (32, b"\x00" * 40, None),  # trailing bytes nobody claims
        (32, b"\x00" * 32, "9999999"),  # header longer than the body
        (32, b"\x00" * 32, "-1"),
        (32, b"\x00" * 32, "abc"),
    ],
)
def test_malformed_binary_requests_are_400(live, size, binary, header):
    doc = {
        "inputs": [
            {
                "name": "x",
                "datatype": "FP64",
                "shape": [1, 4],
                "parameters": {"binary_data_size": size},
            }
        ]
    }
    extra = {"inference-header-content-length": header} if header else None
    assert _raw(live, doc, binary, extra).status_code == 400


def test_binary_data_size_without_the_header_is_400(live):
    doc = {
        "inputs": [
            {
                "name": "x",
                "datatype": "FP64",
                "shape": [1, 4],
                "parameters": {"binary_data_size": 32},
            }
        ]
    }
    with httpx.Client(base_url=live.base, timeout=10) as c:
        r = c.post("/v2/models/calc/infer", json=doc, headers=live.key)
    assert r.status_code == 400


def test_binary_nan_still_refused_by_the_schema(live):
    doc = {
        "inputs": [
            {
                "name": "x",
                "datatype": "FP64",
                "shape": [1, 4],
                "parameters": {"binary_data_size": 32},
            }
        ]
    }
    data = struct.pack("<4d", 5.0, float("nan"), 1.0, 0.2)
    assert _raw(live, doc, data).status_code == 422


# -- repository index and statistics --------------------------------------------------------------
def test_repository_index_is_role_gated(tmp_path):
    from test_serve_support import add_python_model, make_server, new_key, plugin_dir

    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    add_python_model(repo, "secret-model", "total")
    (repo / "broken").mkdir()
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        alice = new_key(repo, "alice", [("calc", "infer")])
        admin = new_key(repo, "root", [("*", "admin")])
        app.keys.refresh(max_age=0)
        seen = client.post("/v2/repository/index", headers=alice).json()
        assert [m["name"] for m in seen] == ["calc"]
        everything = {
            m["name"]: m for m in client.post("/v2/repository/index", headers=admin).json()
        }
        assert set(everything) == {"calc", "secret-model", "broken"}
        assert everything["broken"]["state"] == "UNAVAILABLE"
        assert "no settings file" in everything["broken"]["reason"]
        ready = client.post("/v2/repository/index", json={"ready": True}, headers=admin).json()
        assert {m["name"] for m in ready} == {"calc", "secret-model"}
        assert client.post("/v2/repository/index").status_code == 401
    finally:
        client.close()


def test_tritonclient_statistics_and_index(live):
    http = pytest.importorskip("tritonclient.http")
    client = http.InferenceServerClient(url=f"127.0.0.1:{live.port}")
    try:
        inp = http.InferInput("x", [3, 4], "FP64")
        inp.set_data_from_numpy(np.array([ROW] * 3), binary_data=True)
        client.infer("calc", [inp], headers=live.key)
        stats = client.get_inference_statistics("calc", headers=live.key)
        (entry,) = stats["model_stats"]
        assert entry["inference_count"] == 3 and entry["inference_stats"]["success"]["count"] == 1
        index = client.get_model_repository_index(headers=live.key)
        assert [m["name"] for m in index] == ["calc"]
    finally:
        client.close()


# -- MLServer codecs ----------------------------------------------------------------------------
@pytest.fixture
def codec_server(tmp_path):
    from test_serve_support import add_python_model, make_server, new_key, plugin_dir

    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    add_python_model(
        repo,
        "echo",
        "echo",
        inputs=[{"name": "t", "datatype": "BYTES", "shape": [-1]}],
        outputs=[{"name": "out", "datatype": "BYTES", "shape": [-1]}],
    )
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    key = new_key(repo, "alice", [("*", "infer")])
    app.keys.refresh(max_age=0)
    yield client, key
    client.close()


def test_pd_codec_one_input_per_column(codec_server):
    client, key = codec_server
    columns = {"a": [5.1, 6.0], "b": [3.5, 3.0], "c": [1.4, 4.0], "d": [0.2, 1.0]}
    body = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {"name": n, "datatype": "FP64", "shape": [2], "data": v} for n, v in columns.items()
        ],
    }
    r = client.post("/v2/models/calc/infer", json=body, headers=key)
    assert r.status_code == 200, r.text
    total = {o["name"]: o for o in r.json()["outputs"]}["total"]["data"]
    assert total == pytest.approx([10.2, 14.0])
    body["inputs"][1]["shape"], body["inputs"][1]["data"] = [3], [3.5, 3.0, 3.1]
    assert client.post("/v2/models/calc/infer", json=body, headers=key).status_code == 400


def test_base64_and_str_codecs(codec_server):
    client, key = codec_server

    def call(content_type, data):
        body = {
            "inputs": [
                {
                    "name": "t",
                    "datatype": "BYTES",
                    "shape": [len(data)],
                    "data": data,
                    "parameters": {"content_type": content_type},
                }
            ]
        }
        return client.post("/v2/models/echo/infer", json=body, headers=key)

    r = call("base64", ["aGVsbG8=", "d29ybGQ="])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == ["hello", "world"]
    assert call("base64", ["not base64!"]).status_code == 400
    assert call("str", ["héllo"]).json()["outputs"][0]["data"] == ["héllo"]
    assert call("pickle", ["x"]).status_code == 400  # unknown codecs are refused
