"""Hostile or malformed inputs: loaders return data or raise an mltrust error, never crash."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.errors import ConfigError, Error, InputError
from mltrust.monitor import iter_audit_windows, load_scorer
from mltrust.robust import evaluate_robustness, load_dataset


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='0123456789.,-e\nainfxyl"', max_size=200).map(str.encode),
    ),
    suffix=st.sampled_from([".csv", ".npz", ".txt"]),
)
def test_load_dataset_any_bytes(data, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"d{suffix}"
        path.write_bytes(data)
        try:
            ds = load_dataset(path)
        except Error:
            return
        assert ds.X.ndim == 2 and np.all(np.isfinite(ds.X))


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=300))
def test_load_scorer_any_bytes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.npz"
        path.write_bytes(data)
        with pytest.raises(InputError):
            load_scorer(path)


def test_parquet_without_pyarrow_is_a_clear_error(tmp_path):
    try:
        import pyarrow  # noqa: F401

        pytest.skip("pyarrow installed")
    except ImportError:
        pass
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    with pytest.raises(ConfigError, match="pyarrow"):
        load_dataset(tmp_path / "d.parquet")


def test_audit_log_with_hostile_entries(tmp_path):
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("CREATE TABLE audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL)")
    entries = [
        "[]",
        json.dumps({"inputs": {"x": "not numbers"}}),
        json.dumps({"inputs": {"x": [[1e400, 0]]}}),  # inf after parsing
        json.dumps({"inputs": {"x": [[[1, 2]]]}}),  # 3-D
        json.dumps({"inputs": {"a": [[1]], "b": [[2]]}}),  # two tensors
        json.dumps({"inputs": {"x": [[1.0, 2.0], [3.0, 4.0]]}}),
        json.dumps({"inputs": {"x": [[1.0, 2.0, 3.0]]}}),  # other width: skipped
        json.dumps({"inputs": {"x": [[5.0, 6.0]]}}),
    ]
    for i, e in enumerate(entries, 1):
        db.execute("INSERT INTO audit VALUES (?, ?)", (i, e))
    db.commit()
    db.close()
    wins = list(iter_audit_windows(tmp_path / "a.db", 2))
    assert [w.tolist() for w in wins] == [[[1.0, 2.0], [3.0, 4.0]]]
    with pytest.raises(ConfigError):
        list(iter_audit_windows(tmp_path / "a.db", 2, table="audit; DROP TABLE audit"))
    (tmp_path / "junk.db").write_bytes(b"junk" * 100)
    with pytest.raises(InputError):
        list(iter_audit_windows(tmp_path / "junk.db", 2))


def test_evaluate_rejects_bad_arguments():
    X = np.zeros((4, 2))
    y = np.zeros(4)

    class M:
        classes_ = np.array([0, 1])

        def predict(self, Z):
            return np.zeros(len(Z))

    with pytest.raises(ConfigError):
        evaluate_robustness(M(), X, y, [0.1], attack="nope")
    with pytest.raises(ConfigError):
        evaluate_robustness(M(), X, y, [float("nan")], attack="hsj")
    with pytest.raises(ConfigError):
        evaluate_robustness(M(), X, y[:3], [0.1], attack="hsj")
    with pytest.raises(ConfigError):
        evaluate_robustness(M(), X, y, [0.1], attack="pgd")  # no gradients
