"""Benign real models must produce no finding at medium or above.

Built in the tests from the installed scikit-learn, NumPy, SciPy, pandas, joblib and torch:
every allowlisted name is exercised by a real pickle here.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pickle
import uuid
import warnings
import zipfile
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mltrust.config import ScanConfig
from mltrust.findings import Finding, Location, Severity
from mltrust.scan import all_scanners, scan_bytes
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import scan_pickle_stream


def _serious(findings: tuple[Finding, ...] | list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule_id, f.message) for f in findings if f.severity >= Severity.MEDIUM]


def _sklearn_models() -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.feature_selection import SelectKBest
    from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X = rng.random((60, 4))
    y = (X[:, 0] > 0.5).astype(int)
    frame = pd.DataFrame({"num": rng.random(60), "cat": rng.choice(["a", "b", "c"], 60)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "logreg": LogisticRegression().fit(X, y),
            "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
            "gboost": GradientBoostingClassifier(n_estimators=3).fit(X, y),
            "histgb": HistGradientBoostingClassifier(max_iter=3).fit(X, y),
            "histgb_reg": HistGradientBoostingRegressor(max_iter=3).fit(X, y),
            "svc": SVC(probability=False).fit(X, y),
            "kmeans": KMeans(n_clusters=2, n_init=1, random_state=0).fit(X),
            "pipeline": Pipeline(
                [
                    (
                        "prep",
                        ColumnTransformer(
                            [("num", StandardScaler(), ["num"]), ("cat", OneHotEncoder(), ["cat"])]
                        ),
                    ),
                    ("clf", LogisticRegression()),
                ]
            ).fit(frame, y),
            "mlp": MLPClassifier(max_iter=5, random_state=0).fit(X, y),
            "tree": DecisionTreeClassifier().fit(X, y),
            "iforest": IsolationForest(n_estimators=3, random_state=0).fit(X),
            "pca": PCA(2).fit(X),
            "tfidf": TfidfVectorizer().fit(["hello world", "safe models only"]),
            "knn": KNeighborsClassifier().fit(X, y),
            "nb": GaussianNB().fit(X, y),
            "sgd": SGDClassifier().fit(X, y),
            "log1p_transformer": FunctionTransformer(np.log1p).fit(X),
            "grid_search": GridSearchCV(
                LogisticRegression(), {"C": [0.1, 1.0]}, cv=2, scoring=make_scorer(f1_score)
            ).fit(X, y),
            "select_kbest": SelectKBest(k=2).fit(X, y),
            "target_transform": TransformedTargetRegressor(
                regressor=LinearRegression(), func=np.log1p, inverse_func=np.expm1
            ).fit(X, X[:, 1] + 1),
            "ball_tree": NearestNeighbors(algorithm="ball_tree").fit(X),
        }


SKLEARN = _sklearn_models()

DATA_OBJECTS: dict[str, Any] = {
    "ndarray": np.arange(12.0).reshape(3, 4),
    "fortran": np.asfortranarray(np.ones((3, 2))),
    "structured": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
    "unicode_array": np.array(["a", "bc"]),
    "datetime64": np.array(["2020-01-01"], dtype="datetime64[ns]"),
    "masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
    "scalar": np.float32(3.5),
    "generator": np.random.default_rng(42),
    "randomstate": np.random.RandomState(1),
    "pcg64": np.random.PCG64(7),
    "dataframe": pd.DataFrame(
        {
            "i": [1, 2],
            "f": [1.0, 2.5],
            "s": ["a", "b"],
            "c": pd.Categorical(["u", "v"]),
            "d": pd.to_datetime(["2020-01-01", "2021-06-01"]),
            "tz": pd.to_datetime(["2020-01-01", "2021-06-01"]).tz_localize("UTC"),
            "td": pd.to_timedelta([1, 2], "s"),
        }
    ),
    "series": pd.Series([1, 2, 3], name="x"),
    "dt_series": pd.Series(pd.date_range("2020-01-01", periods=3)),
    "multiindex": pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]),
    "csr": sp.csr_matrix(np.eye(3)),
    "csc": sp.csc_matrix(np.eye(3)),
    "coo": sp.coo_matrix(np.eye(3)),
    "csr_array": sp.csr_array(np.eye(3)),
    "stdlib": [
        collections.OrderedDict(a=1),
        collections.defaultdict(list),
        collections.deque([1, 2]),
        collections.Counter("abc"),
        datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        datetime.date(2024, 1, 2),
        datetime.timedelta(days=3),
        decimal.Decimal("1.5"),
        fractions.Fraction(1, 3),
        uuid.UUID(int=5),
        {1, 2},
        frozenset([3]),
        slice(1, 9, 2),
        range(4),
        complex(1, 2),
        bytearray(b"xy"),
        b"raw bytes",
    ],
}

ALL_OBJECTS = {**SKLEARN, **DATA_OBJECTS}


@pytest.mark.parametrize("name", sorted(ALL_OBJECTS))
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_benign_pickles_are_clean(name: str, protocol: int) -> None:
    data = pickle.dumps(ALL_OBJECTS[name], protocol=protocol)
    result = scan_bytes(data, f"{name}.pkl")
    assert "pickle" in result.formats
    assert _serious(result.findings) == []


@pytest.mark.parametrize("name", sorted(ALL_OBJECTS))
def test_benign_joblib_dumps_are_clean(name: str) -> None:
    buf = io.BytesIO()
    joblib.dump(ALL_OBJECTS[name], buf)
    ctx = ScanContext(config=ScanConfig())
    summary = scan_pickle_stream(memoryview(buf.getvalue()), ctx, Location(f"{name}.joblib"))
    assert summary.complete
    assert summary.end == len(buf.getvalue())
    assert _serious(ctx.findings) == []


@pytest.mark.parametrize("compress", [("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_benign_compressed_joblib_end_to_end(compress: tuple[str, int]) -> None:
    if "compressed" not in [s.name for s in all_scanners()]:
        pytest.skip("generic decompression scanner not registered")
    buf = io.BytesIO()
    joblib.dump({"model": SKLEARN["forest"], "arr": np.arange(1000.0)}, buf, compress=compress)
    result = scan_bytes(buf.getvalue(), "model.joblib")
    assert any(f.endswith("pickle") for f in result.formats), result.formats
    assert _serious(result.findings) == []


def test_benign_joblib_end_to_end_large_arrays() -> None:
    buf = io.BytesIO()
    joblib.dump({"a": np.ones((512, 512)), "b": np.arange(100_000, dtype=np.int32)}, buf)
    result = scan_bytes(buf.getvalue(), "big.joblib")
    assert _serious(result.findings) == []
    facts = dict(result.facts)
    assert "joblib.numpy_pickle:NumpyArrayWrapper" in facts["pickle_imports"]  # type: ignore[operator]


torch = pytest.importorskip("torch")


def _torch_objects() -> dict[str, Any]:
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.ReLU(), torch.nn.Linear(3, 2)
    )
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 4)).sum().backward()
    opt.step()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sgd.step()
    return {
        "state_dict": model.state_dict(),
        "checkpoint": {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "sgd": sgd.state_dict(),
            "epoch": 3,
            "dtype": torch.float16,
            "bf16": torch.arange(4, dtype=torch.bfloat16),
            "int": torch.arange(4, dtype=torch.int64),
        },
    }


def _data_pkl(blob: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
        return zf.read(name)


@pytest.mark.parametrize("name", ["state_dict", "checkpoint"])
def test_torch_data_pkl_is_clean(name: str) -> None:
    buf = io.BytesIO()
    torch.save(_torch_objects()[name], buf)
    data = _data_pkl(buf.getvalue())
    ctx = ScanContext(config=ScanConfig())
    summary = scan_pickle_stream(memoryview(data), ctx, Location("data.pkl"), context="pytorch")
    assert summary.complete and "torch._utils:_rebuild_tensor_v2" in summary.imports
    assert _serious(ctx.findings) == []


@pytest.mark.parametrize("name", ["state_dict", "checkpoint"])
def test_torch_legacy_streams_are_clean(name: str) -> None:
    buf = io.BytesIO()
    torch.save(_torch_objects()[name], buf, _use_new_zipfile_serialization=False)
    data = memoryview(buf.getvalue())
    ctx = ScanContext(config=ScanConfig())
    pos = 0
    for _ in range(3):  # magic number, protocol version, system info
        summary = scan_pickle_stream(data, ctx, Location("legacy.pt"), start=pos, single=True)
        assert summary.complete
        pos = summary.end
    summary = scan_pickle_stream(
        data, ctx, Location("legacy.pt"), start=pos, single=True, context="pytorch"
    )
    assert summary.complete
    assert _serious(ctx.findings) == []


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("name", ["state_dict", "checkpoint"])
def test_torch_checkpoints_end_to_end(name: str, legacy: bool) -> None:
    needed = "pytorch-legacy" if legacy else "zip"
    if needed not in [s.name for s in all_scanners()]:
        pytest.skip(f"{needed} scanner not registered")
    buf = io.BytesIO()
    torch.save(_torch_objects()[name], buf, _use_new_zipfile_serialization=not legacy)
    result = scan_bytes(buf.getvalue(), "model.pt")
    assert _serious(result.findings) == []


def test_plain_pickle_of_tensor_scans_nested_storage_bytes() -> None:
    data = pickle.dumps(torch.arange(6, dtype=torch.float32))
    result = scan_bytes(data, "tensor.pkl")
    assert "MLT-PKL-011" in {f.rule_id for f in result.findings}
    assert _serious(result.findings) == []
