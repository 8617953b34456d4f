"""Runtimes and batching: concurrent requests share inference calls yet get their own answers;
TorchScript, scikit-learn and ONNX models serve through the same protocol."""

from __future__ import annotations

import numpy as np
import pytest

from mltrust.cli._main import main
from test_serve_support import (
    add_onnx_model,
    infer_body,
    iris_data,
    make_server,
    new_key,
    write_yaml,
)


def test_concurrent_requests_batched_but_answered_individually(tmp_path):
    repo = tmp_path / "repo"
    add_onnx_model(repo, policy={"rate_limit": {"identity_rps": 1e6, "identity_burst": 1e6}})
    client, app = make_server(repo)
    key = new_key(repo, "a", [("*", "infer")])
    app.keys.refresh(max_age=0)
    X, _y = iris_data()
    idx = list(range(0, 150, 3))
    calls = [
        (
            "POST",
            "/v2/models/iris-onnx/infer",
            {
                "json": infer_body(
                    [X[i].tolist(), X[(i + 1) % 150].tolist()][: 1 + i % 2],
                    name="X",
                    datatype="FP32",
                    id=f"r{i}",
                ),
                "headers": key,
            },
        )
        for i in idx
    ]
    batches = []
    runtime = app.models["iris-onnx"].runtime
    original = runtime.predict

    def counting(inputs, outputs):
        batches.append(next(iter(inputs.values())).shape[0])
        return original(inputs, outputs)

    runtime.predict = counting
    try:
        responses = client.gather(calls)
    finally:
        client.close()
    assert app.models["iris-onnx"].batcher.batchable
    assert len(batches) < len(calls), "concurrent requests were not batched"
    for i, r in zip(idx, responses, strict=True):
        assert r.status_code == 200 and r.json()["id"] == f"r{i}"
        rows = 1 + i % 2
        label = {o["name"]: o for o in r.json()["outputs"]}["label"]
        assert label["shape"] == [rows]
        expected = original({"X": X[[i, (i + 1) % 150][:rows]].astype(np.float32)}, ("label",))
        assert label["data"] == expected["label"].tolist()


ARCH = """
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.softmax(self.lin(x), dim=1)

def build():
    return Net()
"""


def test_torch_state_dict_runtime(tmp_path):
    torch = pytest.importorskip("torch")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "arch.py").write_text(ARCH)
    repo = tmp_path / "repo"
    folder = repo / "net"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    weights = {"lin.weight": torch.randn(3, 4), "lin.bias": torch.zeros(3)}
    torch.save(weights, folder / "weights.pt")
    write_yaml(
        folder,
        {
            "name": "net",
            "runtime": "torch",
            "uri": "weights.pt",
            "options": {"format": "state_dict", "architecture": "arch:build"},
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 3]}],
        },
    )
    client, app = make_server(repo, plugin_path=plugins)
    key = new_key(repo, "a", [("*", "infer")])
    app.keys.refresh(max_age=0)
    try:
        assert app.models["net"].ready, app.models["net"].reason
        r = client.post(
            "/v2/models/net/infer", json=infer_body([[1, 2, 3, 4]], datatype="FP32"), headers=key
        )
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
        assert out["shape"] == [1, 3] and sum(out["data"]) == pytest.approx(1.0, abs=1e-5)
        logits = weights["lin.weight"] @ torch.tensor([1.0, 2, 3, 4])
        assert out["data"] == pytest.approx(torch.softmax(logits, 0).tolist(), abs=1e-5)
    finally:
        client.close()


def test_schema_command_learns_ranges(tmp_path):
    import yaml

    folder = tmp_path / "m"
    write_yaml(
        folder,
        {
            "name": "m",
            "runtime": "sklearn",
            "uri": "model.joblib",
            "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        },
    )
    X, _ = iris_data()
    csv = tmp_path / "train.csv"
    np.savetxt(csv, X, delimiter=",", header="a,b,c,d", comments="")
    assert main(["serve", "schema", str(folder), "--from-csv", str(csv)]) == 0
    doc = yaml.safe_load((folder / "mltrust-model.yaml").read_text())
    assert doc["inputs"][0]["min"] == pytest.approx(X.min(0).tolist())
    assert doc["inputs"][0]["max"] == pytest.approx(X.max(0).tolist())


def test_metrics_exposition(tmp_path):
    repo = tmp_path / "repo"
    add_onnx_model(repo)
    client, app = make_server(repo, metrics_public=True)
    key = new_key(repo, "a", [("*", "infer")])
    app.keys.refresh(max_age=0)
    try:
        client.post(
            "/v2/models/iris-onnx/infer",
            json=infer_body([[5.1, 3.5, 1.4, 0.2]], name="X", datatype="FP32"),
            headers=key,
        )
        client.post("/v2/models/iris-onnx/infer", json={"inputs": []}, headers=key)
        text = client.get("/metrics").text
    finally:
        client.close()
    assert 'mltrust_requests_total{model="iris-onnx",code="200"} 1' in text
    assert 'mltrust_rejections_total{model="iris-onnx",reason="protocol"} 1' in text
    assert 'mltrust_request_seconds_bucket{model="iris-onnx",le="+Inf"} 2' in text
    assert 'mltrust_model_ready{model="iris-onnx"} 1' in text
