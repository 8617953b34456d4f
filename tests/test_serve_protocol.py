"""Open Inference Protocol conformance: endpoints, JSON shapes, datatypes, error bodies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mltrust.serve._codec import ProtocolError, decode_infer_request, encode_tensor, input_digest
from test_serve_support import ROW, infer_body, served_namespace


@pytest.fixture
def served(tmp_path):
    yield from served_namespace(tmp_path)


def test_health_endpoints_need_no_credentials(served):
    c = served.client
    assert c.get("/v2/health/live").json() == {"live": True}
    r = c.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}


def test_server_metadata_shape(served):
    r = served.client.get("/v2", headers=served.infer)
    assert r.status_code == 200
    doc = r.json()
    assert doc["name"] == "mltrust" and isinstance(doc["version"], str)
    assert isinstance(doc["extensions"], list)


def test_model_metadata_shape(served):
    r = served.client.get("/v2/models/iris-onnx", headers=served.infer)
    assert r.status_code == 200
    doc = r.json()
    assert doc["name"] == "iris-onnx" and doc["versions"] == ["1"]
    assert doc["platform"] == "onnxruntime"
    (inp,) = doc["inputs"]
    assert inp["datatype"] == "FP32" and inp["shape"] == [-1, 4]
    assert {o["name"] for o in doc["outputs"]} == {"label", "probabilities"}
    r2 = served.client.get("/v2/models/iris-onnx/versions/1", headers=served.infer)
    assert r2.json() == doc


def test_model_ready_and_versions(served):
    c = served.client
    r = c.get("/v2/models/calc/ready", headers=served.infer)
    assert r.status_code == 200 and r.json() == {"name": "calc", "ready": True}
    assert c.get("/v2/models/calc/versions/2/ready", headers=served.infer).status_code == 200
    r = c.get("/v2/models/calc/versions/9/ready", headers=served.infer)
    assert r.status_code == 404 and "error" in r.json()


def test_infer_flat_data_echoes_id_and_shapes(served):
    body = infer_body([ROW, [6.0, 3.0, 4.0, 1.0]], id="req-1")
    r = served.client.post("/v2/models/calc/infer", json=body, headers=served.infer)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["id"] == "req-1" and doc["model_name"] == "calc" and doc["model_version"] == "2"
    (out,) = [o for o in doc["outputs"] if o["name"] == "total"]
    assert out["shape"] == [2] and out["datatype"] == "FP64"
    assert out["data"] == pytest.approx([sum(ROW), 14.0])


def test_infer_nested_data_row_major(served):
    body = {
        "inputs": [
            {"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [ROW, [6.0, 3.0, 4.0, 1.0]]}
        ],
        "outputs": [{"name": "twice"}],
    }
    r = served.client.post("/v2/models/calc/versions/2/infer", json=body, headers=served.infer)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["name"] == "twice" and out["shape"] == [2, 4]
    assert out["data"][:4] == pytest.approx([2 * v for v in ROW])


def test_infer_onnx_batch_labels(served):
    rows = [ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    body = infer_body(rows, name="X", datatype="FP32")
    r = served.client.post("/v2/models/iris-onnx/infer", json=body, headers=served.infer)
    assert r.status_code == 200, r.text
    outs = {o["name"]: o for o in r.json()["outputs"]}
    assert outs["label"]["data"] == [0, 2, 1] and outs["label"]["datatype"] == "INT64"
    assert outs["probabilities"]["shape"] == [3, 3]


def test_unknown_output_is_400(served):
    body = infer_body([ROW], outputs=[{"name": "nope"}])
    r = served.client.post("/v2/models/calc/infer", json=body, headers=served.infer)
    assert r.status_code == 400 and "error" in r.json()


def test_errors_are_json_bodies(served):
    c = served.client
    r = c.get("/v2/models/calc/infer", headers=served.infer)
    assert r.status_code == 405 and r.json() == {"error": "method not allowed"}
    r = c.get("/v2/nothing/here", headers=served.infer)
    assert r.status_code == 404 and r.json() == {"error": "not found"}
    r = c.get("/v2/models/ghost", headers=served.admin)
    assert r.status_code == 404


def test_unknown_model_is_403_without_a_grant(served):
    # no existence oracle: without a grant on that name, the answer is the same as for a real one
    r = served.client.get("/v2/models/ghost", headers=served.infer)
    assert r.status_code == 403 and r.json() == {"error": "forbidden"}


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("BOOL", [True, False], np.bool_),
        ("UINT8", [0, 255], np.uint8),
        ("UINT16", [1, 2], np.uint16),
        ("UINT32", [1, 2], np.uint32),
        ("UINT64", [1, 2], np.uint64),
        ("INT8", [-128, 127], np.int8),
        ("INT16", [-1, 2], np.int16),
        ("INT32", [-1, 2], np.int32),
        ("INT64", [-1, 2], np.int64),
        ("FP16", [0.5, 1.5], np.float16),
        ("FP32", [0.5, 1.5], np.float32),
        ("FP64", [0.5, 1.5], np.float64),
    ],
)
def test_decode_every_numeric_datatype(datatype, data, expected):
    req = decode_infer_request(
        {"inputs": [{"name": "t", "shape": [2], "datatype": datatype, "data": data}]}
    )
    arr = req.inputs["t"]
    assert arr.dtype == expected and arr.shape == (2,)
    enc = encode_tensor("t", arr)
    assert enc["datatype"] == datatype and enc["shape"] == [2]


def test_decode_bytes_nested():
    req = decode_infer_request(
        {"inputs": [{"name": "s", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["bé"]]}]}
    )
    assert req.inputs["s"].shape == (2, 1)
    assert encode_tensor("s", req.inputs["s"])["data"] == ["a", "bé"]


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"inputs": []},
        {"inputs": [{"name": "t", "shape": [3], "datatype": "FP32", "data": [1, 2]}]},
        {"inputs": [{"name": "t", "shape": [2], "datatype": "FP99", "data": [1, 2]}]},
        {"inputs": [{"name": "t", "shape": [-2], "datatype": "FP32", "data": [1, 2]}]},
        {"inputs": [{"name": "t", "shape": [2], "datatype": "INT8", "data": [1, 300]}]},
        {"inputs": [{"name": "t", "shape": [2], "datatype": "INT32", "data": [1.5, 2]}]},
        {"inputs": [{"name": "t", "shape": [2], "datatype": "BOOL", "data": [1, 0]}]},
        {"inputs": [{"name": "t", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3]]}]},
        {"inputs": [{"name": "t", "shape": [2], "datatype": "FP32", "data": ["a", "b"]}]},
        {"inputs": [{"name": "t", "shape": [1], "datatype": "BYTES", "data": [1]}]},
        {"inputs": [{"name": "t", "shape": [2], "datatype": "FP32", "data": [1, 2]}] * 2},
        {"inputs": [{"name": "t", "shape": [10**9], "datatype": "FP32", "data": [1]}]},
        {"id": 5, "inputs": [{"name": "t", "shape": [1], "datatype": "FP32", "data": [1]}]},
    ],
)
def test_decode_rejects_malformed(doc):
    with pytest.raises(ProtocolError):
        decode_infer_request(doc)


def test_input_digest_is_canonical():
    a = decode_infer_request(
        {"inputs": [{"name": "t", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    )
    b = decode_infer_request(
        {"inputs": [{"name": "t", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}
    )
    c = decode_infer_request(
        {"inputs": [{"name": "t", "shape": [4, 1], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    )
    da, db, dc = (input_digest(r.inputs, r.datatypes) for r in (a, b, c))
    assert da == db and da != dc and len(da) == 64 and not math.isnan(len(da))


def test_openapi_document_served(served):
    r = served.client.get("/v2/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.") and "/v2/models/{model_name}/infer" in doc["paths"]
