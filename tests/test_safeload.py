"""The safe loader: scan first, then deserialise the same bytes with an allowlist."""

from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest

import mltrust
from mltrust.config import ScanConfig
from mltrust.errors import ConfigError, UnsafeModelError
from mltrust.findings import Severity
from mltrust.safeload import RestrictedUnpickler, load, load_joblib, load_torch


class _Payload:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def _model() -> tuple[object, np.ndarray]:
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = (X[:, 0] > 0.5).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), X


def test_load_plain_pickle_returns_working_estimator(tmp_path: Path) -> None:
    model, X = _model()
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model, protocol=5))
    loaded = mltrust.load(path)
    assert (loaded.predict(X) == model.predict(X)).all()  # type: ignore[attr-defined]


@pytest.mark.parametrize("compress", [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3)])
def test_load_joblib_with_arrays_and_compression(compress: object) -> None:
    model, X = _model()
    obj = np.empty(2, dtype=object)
    obj[:] = ["a", 1]
    buf = io.BytesIO()
    joblib.dump({"model": model, "arr": np.arange(10.0), "obj": obj}, buf, compress=compress)
    loaded = load(buf.getvalue())
    assert (loaded["model"].predict(X) == model.predict(X)).all()
    assert loaded["arr"].tolist() == list(np.arange(10.0))
    assert loaded["obj"].tolist() == ["a", 1]
    again = load_joblib(buf.getvalue())
    assert again["arr"].sum() == 45.0


def test_load_refuses_malicious_pickle(canary: Path) -> None:
    data = pickle.dumps(_Payload(f"touch {canary}"), protocol=2)
    with pytest.raises(UnsafeModelError) as info:
        load(data)
    assert info.value.findings
    assert not canary.exists()


def test_load_refuses_malicious_joblib(canary: Path) -> None:
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(100.0), "p": _Payload(f"touch {canary}")}, buf)
    with pytest.raises(UnsafeModelError):
        load(buf.getvalue())
    with pytest.raises(UnsafeModelError):
        load_joblib(buf.getvalue())
    assert not canary.exists()


def test_fail_on_threshold_controls_unknown_imports() -> None:
    data = pickle.dumps(collections_like(), protocol=2)
    with pytest.raises(UnsafeModelError):
        load(data)
    config = ScanConfig(allow_globals=frozenset({f"{Plain.__module__}:Plain"}))
    value = load(data, config=config)
    assert isinstance(value, Plain) and value.x == 3


class Plain:
    def __init__(self) -> None:
        self.x = 3


def collections_like() -> Plain:
    return Plain()


def test_restricted_unpickler_refuses_even_if_scan_is_bypassed(canary: Path) -> None:
    data = pickle.dumps(_Payload(f"touch {canary}"), protocol=2)
    with pytest.raises(UnsafeModelError, match="refused to import"):
        RestrictedUnpickler(io.BytesIO(data)).load()
    unknown = pickle.dumps(Plain(), protocol=4)
    with pytest.raises(UnsafeModelError):
        RestrictedUnpickler(io.BytesIO(unknown)).load()
    assert not canary.exists()


def test_restricted_unpickler_loads_allowlisted_data() -> None:
    value = {"a": np.arange(3), "b": [1.5, "x"]}
    out = RestrictedUnpickler(io.BytesIO(pickle.dumps(value, protocol=5))).load()
    assert out["a"].tolist() == [0, 1, 2] and out["b"] == [1.5, "x"]


def test_load_rejects_unknown_format() -> None:
    with pytest.raises(UnsafeModelError):
        load(b"this is plainly not a model\n", fail_on=Severity.CRITICAL)


def test_load_rejects_bad_source_type() -> None:
    with pytest.raises(ConfigError):
        load(12345)  # type: ignore[arg-type]


torch = pytest.importorskip("torch")


def test_load_torch_state_dict(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    state = load_torch(path)
    assert torch.equal(state["weight"], model.weight.detach())
    assert torch.equal(mltrust.load(path)["bias"], model.bias.detach())


def test_load_torch_refuses_malicious_checkpoint(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(2), "p": _Payload(f"touch {canary}")}, path)
    with pytest.raises(UnsafeModelError):
        load_torch(path)
    assert not canary.exists()


def test_load_numpy_npy_and_npz() -> None:
    buf = io.BytesIO()
    np.save(buf, np.arange(6).reshape(2, 3))
    assert load(buf.getvalue()).tolist() == [[0, 1, 2], [3, 4, 5]]
    buf = io.BytesIO()
    np.savez(buf, a=np.ones(2), b=np.zeros(3))
    out = load(buf.getvalue())
    assert out["a"].tolist() == [1.0, 1.0] and out["b"].shape == (3,)
