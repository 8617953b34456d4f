"""Small holes: 4xx (not 500) for hostile shapes, names and datatypes; a range refusal that does
not name the bound; the auth-failure 429 documented; a folder without settings reported."""

from __future__ import annotations

import io

import pytest

from mltrust.serve._openapi import openapi_document
from test_serve_support import (
    ROW,
    add_python_model,
    audit_entries,
    infer_body,
    iris_onnx,
    make_server,
    new_key,
    plugin_dir,
    served_namespace,
    write_yaml,
)


@pytest.fixture
def served(tmp_path):
    yield from served_namespace(tmp_path)


@pytest.mark.parametrize("shape", [[0, 2**63], [2**63, 0], [0, 2**40, 4]])
def test_zero_times_huge_shape_is_400(served, shape):
    body = {"inputs": [{"name": "x", "shape": shape, "datatype": "FP64", "data": []}]}
    r = served.client.post("/v2/models/calc/infer", json=body, headers=served.infer)
    assert r.status_code == 400, r.text


def test_onnx_without_declared_inputs_accepts_another_input_name(tmp_path):
    repo = tmp_path / "repo"
    folder = repo / "bare-onnx"
    folder.mkdir(parents=True)
    data, _ = iris_onnx()
    (folder / "model.onnx").write_bytes(data)
    write_yaml(
        folder, {"name": "bare-onnx", "version": "1", "runtime": "onnx", "uri": "model.onnx"}
    )
    client, app = make_server(repo)
    try:
        key = new_key(repo, "alice", [("bare-onnx", "infer")])
        app.keys.refresh(max_age=0)
        body = infer_body([ROW], name="not-the-graph-input", datatype="FP32")
        r = client.post("/v2/models/bare-onnx/infer", json=body, headers=key)
        assert r.status_code == 200, r.text
        body["inputs"].append(dict(body["inputs"][0], name="second"))
        r = client.post("/v2/models/bare-onnx/infer", json=body, headers=key)
        assert r.status_code == 422
    finally:
        client.close()


@pytest.mark.parametrize("datatype", ["FP64", "INT64", "FP32", "INT32"])
def test_torchscript_given_other_numeric_types(tmp_path, datatype):
    torch = pytest.importorskip("torch")
    repo = tmp_path / "repo"
    folder = repo / "ts"
    folder.mkdir(parents=True)
    module = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)))
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    (folder / "model.pt").write_bytes(buf.getvalue())
    write_yaml(
        folder,
        {
            "name": "ts",
            "version": "1",
            "runtime": "torch",
            "uri": "model.pt",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 3]}],
        },
    )
    client, app = make_server(repo)
    try:
        key = new_key(repo, "alice", [("ts", "infer")])
        app.keys.refresh(max_age=0)
        rows = [[5, 3, 1, 0]] if datatype.startswith("INT") else [ROW]
        r = client.post(
            "/v2/models/ts/infer", json=infer_body(rows, datatype=datatype), headers=key
        )
        assert r.status_code == 200, r.text
    finally:
        client.close()


def test_out_of_range_422_does_not_name_the_feature(served):
    body = infer_body([[5.0, 3.0, 1.0, 100.0]])
    r = served.client.post("/v2/models/calc/infer", json=body, headers=served.infer)
    assert r.status_code == 422
    assert r.json() == {"error": "input 'x': value out of range"}
    assert "feature 3" in audit_entries(served.repo)[-1]["reason"]  # the audit log has it
    r = served.client.post("/v2/models/calc/infer", json=body, headers=served.admin)
    assert r.status_code == 422 and "feature 3" in r.json()["error"]


def test_openapi_documents_the_auth_failure_429():
    doc = openapi_document()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "401" in op["responses"]:
                assert "429" in op["responses"], (path, method)
                assert "Retry-After" in op["responses"]["429"]["headers"]


def test_model_folder_without_settings_reported_as_refused(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    (repo / "forgotten").mkdir()
    (repo / "forgotten" / "model.joblib").write_bytes(b"weights")
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        admin = new_key(repo, "root", [("*", "admin")])
        app.keys.refresh(max_age=0)
        models = {
            m["name"]: m for m in client.get("/v2/admin/models", headers=admin).json()["models"]
        }
        assert models["calc"]["ready"]
        assert not models["forgotten"]["ready"]
        assert "no settings file" in models["forgotten"]["reason"]
        r = client.get("/v2/models/forgotten/ready", headers=admin)
        assert r.status_code == 503
    finally:
        client.close()
