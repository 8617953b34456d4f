"""Shared helpers for the serve tests (no tests here): model repositories and a sync client."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from mltrust.serve import KeyStore, MltrustServer, ServerConfig, create_app

IRIS_MIN = [4.3, 2.0, 1.0, 0.1]
IRIS_MAX = [7.9, 4.4, 6.9, 2.5]
ROW = [5.1, 3.5, 1.4, 0.2]

PLUGIN = """
import time
import numpy as np

def total(inputs):
    x = inputs["x"]
    return {"total": x.astype(np.float64).sum(axis=1), "twice": x * 2}

def slow(inputs):
    time.sleep(2.0)
    return {"total": np.zeros(next(iter(inputs.values())).shape[0])}

def echo(inputs):
    return {"out": next(iter(inputs.values()))}
"""


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris()
    return np.asarray(data.data), np.asarray(data.target)


def iris_classifier() -> Any:
    from sklearn.linear_model import LogisticRegression

    X, y = iris_data()
    return LogisticRegression(max_iter=500).fit(X, y)


def write_yaml(folder: Path, doc: dict[str, Any]) -> None:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mltrust-model.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")


@functools.cache
def iris_onnx() -> tuple[bytes, str]:
    from skl2onnx import to_onnx

    clf = iris_classifier()
    X, _ = iris_data()
    onx = to_onnx(clf, X[:1].astype(np.float32), options={id(clf): {"zipmap": False}})
    return onx.SerializeToString(), onx.graph.input[0].name


def add_onnx_model(
    repo: Path, name: str = "iris-onnx", policy: dict[str, Any] | None = None
) -> Path:
    folder = repo / name
    folder.mkdir(parents=True, exist_ok=True)
    data, input_name = iris_onnx()
    (folder / "model.onnx").write_bytes(data)
    write_yaml(
        folder,
        {
            "name": name,
            "version": "1",
            "runtime": "onnx",
            "uri": "model.onnx",
            "inputs": [
                {
                    "name": input_name,
                    "datatype": "FP32",
                    "shape": [-1, 4],
                    "min": IRIS_MIN,
                    "max": IRIS_MAX,
                }
            ],
            "policy": policy or {},
        },
    )
    return folder


def add_python_model(
    repo: Path,
    name: str,
    func: str,
    *,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    policy: dict[str, Any] | None = None,
) -> Path:
    folder = repo / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.txt").write_text("no weights\n")
    write_yaml(
        folder,
        {
            "name": name,
            "version": "2",
            "runtime": "python",
            "uri": "weights.txt",
            "options": {"callable": f"plugin:{func}"},
            "inputs": inputs
            or [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [-1, 4],
                    "min": IRIS_MIN,
                    "max": IRIS_MAX,
                }
            ],
            "outputs": outputs
            or [
                {"name": "total", "datatype": "FP64", "shape": [-1]},
                {"name": "twice", "datatype": "FP64", "shape": [-1, 4]},
            ],
            "policy": policy or {},
        },
    )
    return folder


def plugin_dir(tmp_path: Path) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "plugin.py").write_text(PLUGIN)
    return plugins


class Client:
    """A synchronous facade over httpx's ASGI transport, one event loop for the whole test."""

    def __init__(self, app: MltrustServer) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def gather(self, calls: list[tuple[str, str, dict[str, Any]]]) -> list[httpx.Response]:
        async def run() -> list[httpx.Response]:
            return list(
                await asyncio.gather(*(self.client.request(m, u, **k) for m, u, k in calls))
            )

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.aclose_state())
        self.loop.close()
        self.app.close()


def make_server(repo: Path, **config: Any) -> tuple[Client, MltrustServer]:
    config.setdefault("allow_unsigned", True)
    # the audit key lives outside the repository, as in production
    config.setdefault("audit_key", repo.parent / "audit-keys" / "audit.key")
    app = create_app(ServerConfig(repo=repo, **config))
    return Client(app), app


def new_key(repo: Path, name: str, grants: list[tuple[str, str]]) -> dict[str, str]:
    key, _ = KeyStore(repo).create(name, grants)
    return {"Authorization": f"Bearer {key}"}


def infer_body(
    rows: list[list[float]], name: str = "x", datatype: str = "FP64", **extra: Any
) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": name,
                "shape": [len(rows), len(rows[0])],
                "datatype": datatype,
                "data": [v for r in rows for v in r],
            }
        ],
        **extra,
    }


def audit_entries(repo: Path) -> list[dict[str, Any]]:
    import sqlite3

    db = sqlite3.connect(repo / ".mltrust" / "audit.db")
    try:
        return [json.loads(t) for (t,) in db.execute("SELECT entry FROM audit ORDER BY seq")]
    finally:
        db.close()


def served_namespace(tmp_path: Path) -> Any:
    """A repository with an ONNX iris model and python models, plus keys; yields a namespace.

    Test modules wrap it in their own ``served`` fixture."""
    repo = tmp_path / "repo"
    repo.mkdir()
    plugins = plugin_dir(tmp_path)
    add_onnx_model(repo)
    add_python_model(repo, "calc", "total")
    client, app = make_server(repo, plugin_path=plugins)

    class NS:
        pass

    ns = NS()
    ns.repo, ns.client, ns.app = repo, client, app  # type: ignore[attr-defined]
    ns.infer = new_key(repo, "alice", [("calc", "infer"), ("iris-onnx", "infer")])  # type: ignore[attr-defined]
    ns.meta = new_key(repo, "meta-bob", [("calc", "metadata")])  # type: ignore[attr-defined]
    ns.admin = new_key(repo, "root", [("*", "admin")])  # type: ignore[attr-defined]
    app.keys.refresh(max_age=0)  # type: ignore[union-attr]
    yield ns
    client.close()
