"""Evidence for the pickle allowlist: real objects saved with the libraries' own APIs.

Run ``python scripts/allowlist_evidence.py [out.json]``. For every object below that the
installed libraries can build, the script saves it the way users do (``pickle.dumps`` at
protocols 2 and 5, ``joblib.dump`` plain and compressed, ``torch.save`` zip and legacy), scans
the bytes with mltrust, and records

* which globals the file needs and how each is used (``type``: reconstructed by
  NEWOBJ/``copyreg._reconstructor`` then BUILD; ``call``: called with pickle-supplied
  arguments; ``value``: stored as data; ``arg``: passed to another call),
* every finding at medium or above (must be none),
* whether ``mltrust.load`` returns what the library's own loader returns.

``tests/test_allowlist_evidence.py`` runs the same cases. Libraries that are not installed are
listed under ``"not_covered"`` in the output; nothing is downloaded.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Case", "cases", "installed_test_data", "main", "same", "scan_case"]


@dataclass(frozen=True)
class Case:
    """One saved file: how it was written, its bytes, and how the library loads it back."""

    name: str
    how: str
    data: bytes
    real_load: Callable[[bytes], Any]


def _pickle_load(data: bytes) -> Any:
    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on objects this script just saved
    return pickle.loads(data)


def _joblib_load(data: bytes) -> Any:
    import joblib

    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on objects this script just saved
    return joblib.load(io.BytesIO(data))


def _torch_load(data: bytes) -> Any:
    import torch

    # mltrust: ignore[MLT-CODE-002] the real loader as oracle, on objects this script just saved
    return torch.load(io.BytesIO(data), weights_only=False, map_location="cpu")


# ------------------------------------------------------------------------------ objects


def _sklearn() -> Iterator[tuple[str, Any]]:
    import numpy as np
    from sklearn import (
        calibration,
        cluster,
        compose,
        covariance,
        cross_decomposition,
        decomposition,
        discriminant_analysis,
        ensemble,
        feature_extraction,
        feature_selection,
        gaussian_process,
        impute,
        isotonic,
        kernel_approximation,
        kernel_ridge,
        linear_model,
        manifold,
        metrics,
        mixture,
        model_selection,
        multiclass,
        naive_bayes,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        semi_supervised,
        svm,
        tree,
    )

    rng = np.random.RandomState(0)
    X = rng.rand(40, 4)
    y = (X[:, 0] > 0.5).astype(int)
    yr = X[:, 1] * 3.0
    Xpos = np.abs(X)
    Xcat = np.column_stack([rng.randint(0, 3, 40), X[:, 1:]])
    text = ["alpha beta gamma", "beta gamma delta", "gamma delta eps", "alpha eps"] * 10
    fitted: list[tuple[str, Any, Any, Any]] = [
        ("LogisticRegression", linear_model.LogisticRegression(), X, y),
        ("LinearRegression", linear_model.LinearRegression(), X, yr),
        ("Ridge", linear_model.Ridge(), X, yr),
        ("Lasso", linear_model.Lasso(), X, yr),
        ("ElasticNet", linear_model.ElasticNet(), X, yr),
        ("SGDClassifier", linear_model.SGDClassifier(), X, y),
        ("SGDRegressor", linear_model.SGDRegressor(), X, yr),
        ("Perceptron", linear_model.Perceptron(), X, y),
        ("HuberRegressor", linear_model.HuberRegressor(), X, yr),
        ("PoissonRegressor", linear_model.PoissonRegressor(), X, Xpos[:, 0]),
        ("BayesianRidge", linear_model.BayesianRidge(), X, yr),
        ("SVC", svm.SVC(probability=True), X, y),
        ("SVR", svm.SVR(), X, yr),
        ("LinearSVC", svm.LinearSVC(), X, y),
        ("OneClassSVM", svm.OneClassSVM(), X, None),
        ("KNN-kd", neighbors.KNeighborsClassifier(algorithm="kd_tree"), X, y),
        ("KNN-ball", neighbors.KNeighborsRegressor(algorithm="ball_tree"), X, yr),
        ("NearestNeighbors", neighbors.NearestNeighbors(), X, None),
        ("KernelDensity", neighbors.KernelDensity(), X, None),
        ("LocalOutlierFactor", neighbors.LocalOutlierFactor(novelty=True), X, None),
        ("NearestCentroid", neighbors.NearestCentroid(), X, y),
        ("DecisionTreeClassifier", tree.DecisionTreeClassifier(), X, y),
        ("DecisionTreeRegressor", tree.DecisionTreeRegressor(), X, yr),
        ("RandomForestClassifier", ensemble.RandomForestClassifier(n_estimators=3), X, y),
        ("ExtraTreesRegressor", ensemble.ExtraTreesRegressor(n_estimators=3), X, yr),
        ("GradientBoostingClassifier", ensemble.GradientBoostingClassifier(n_estimators=3), X, y),
        ("GradientBoostingRegressor", ensemble.GradientBoostingRegressor(n_estimators=3), X, yr),
        (
            "HistGradientBoostingClassifier-categorical",
            ensemble.HistGradientBoostingClassifier(max_iter=3, categorical_features=[0]),
            Xcat,
            y,
        ),
        (
            "HistGradientBoostingRegressor",
            ensemble.HistGradientBoostingRegressor(max_iter=3, loss="poisson"),
            X,
            Xpos[:, 0],
        ),
        ("AdaBoostClassifier", ensemble.AdaBoostClassifier(n_estimators=3), X, y),
        ("BaggingClassifier", ensemble.BaggingClassifier(n_estimators=3), X, y),
        ("IsolationForest", ensemble.IsolationForest(n_estimators=3), X, None),
        (
            "VotingClassifier",
            ensemble.VotingClassifier(
                [("lr", linear_model.LogisticRegression()), ("nb", naive_bayes.GaussianNB())]
            ),
            X,
            y,
        ),
        (
            "StackingRegressor",
            ensemble.StackingRegressor([("r", linear_model.Ridge())], cv=2),
            X,
            yr,
        ),
        ("GaussianNB", naive_bayes.GaussianNB(), X, y),
        ("MultinomialNB", naive_bayes.MultinomialNB(), Xpos, y),
        ("KMeans", cluster.KMeans(n_clusters=2, n_init=1), X, None),
        ("MiniBatchKMeans", cluster.MiniBatchKMeans(n_clusters=2, n_init=1), X, None),
        ("DBSCAN", cluster.DBSCAN(), X, None),
        ("Birch", cluster.Birch(n_clusters=2), X, None),
        ("AgglomerativeClustering", cluster.AgglomerativeClustering(), X, None),
        ("PCA", decomposition.PCA(2), X, None),
        ("TruncatedSVD", decomposition.TruncatedSVD(2), X, None),
        ("NMF", decomposition.NMF(2, max_iter=50), Xpos, None),
        ("FastICA", decomposition.FastICA(2), X, None),
        ("LatentDirichletAllocation", decomposition.LatentDirichletAllocation(2), Xpos, None),
        ("LDA", discriminant_analysis.LinearDiscriminantAnalysis(), X, y),
        ("QDA", discriminant_analysis.QuadraticDiscriminantAnalysis(), X, y),
        ("GaussianMixture", mixture.GaussianMixture(2), X, None),
        ("MLPClassifier", neural_network.MLPClassifier(max_iter=20), X, y),
        ("GaussianProcessRegressor", gaussian_process.GaussianProcessRegressor(), X, yr),
        ("KernelRidge", kernel_ridge.KernelRidge(), X, yr),
        ("IsotonicRegression", isotonic.IsotonicRegression(), X[:, 0], yr),
        ("PLSRegression", cross_decomposition.PLSRegression(2), X, yr),
        ("EmpiricalCovariance", covariance.EmpiricalCovariance(), X, None),
        ("Isomap", manifold.Isomap(n_neighbors=5), X, None),
        ("RBFSampler", kernel_approximation.RBFSampler(), X, None),
        ("LabelSpreading", semi_supervised.LabelSpreading(), X, y),
        ("OneVsRestClassifier", multiclass.OneVsRestClassifier(svm.LinearSVC()), X, y),
        ("StandardScaler", preprocessing.StandardScaler(), X, None),
        ("MinMaxScaler", preprocessing.MinMaxScaler(), X, None),
        ("RobustScaler", preprocessing.RobustScaler(), X, None),
        ("QuantileTransformer", preprocessing.QuantileTransformer(n_quantiles=10), X, None),
        ("PowerTransformer", preprocessing.PowerTransformer(), Xpos, None),
        ("PolynomialFeatures", preprocessing.PolynomialFeatures(), X, None),
        ("KBinsDiscretizer", preprocessing.KBinsDiscretizer(n_bins=3), X, None),
        ("OneHotEncoder", preprocessing.OneHotEncoder(), Xcat[:, :1], None),
        ("OrdinalEncoder", preprocessing.OrdinalEncoder(), Xcat[:, :1], None),
        ("LabelEncoder", preprocessing.LabelEncoder(), y, None),
        ("LabelBinarizer", preprocessing.LabelBinarizer(), y, None),
        ("FunctionTransformer", preprocessing.FunctionTransformer(np.log1p), Xpos, None),
        ("SimpleImputer", impute.SimpleImputer(), X, None),
        ("KNNImputer", impute.KNNImputer(), X, None),
        ("SelectKBest", feature_selection.SelectKBest(k=2), X, y),
        ("VarianceThreshold", feature_selection.VarianceThreshold(), X, None),
        (
            "RFE",
            feature_selection.RFE(linear_model.LogisticRegression(), n_features_to_select=2),
            X,
            y,
        ),
        ("TfidfVectorizer", feature_extraction.text.TfidfVectorizer(), text, None),
        ("CountVectorizer", feature_extraction.text.CountVectorizer(), text, None),
        ("HashingVectorizer", feature_extraction.text.HashingVectorizer(), text, None),
        ("DictVectorizer", feature_extraction.DictVectorizer(), [{"a": 1.0}, {"b": 2.0}], None),
        (
            "CalibratedClassifierCV",
            calibration.CalibratedClassifierCV(naive_bayes.GaussianNB(), cv=2),
            X,
            y,
        ),
        (
            "Pipeline",
            pipeline.make_pipeline(preprocessing.StandardScaler(), svm.SVC()),
            X,
            y,
        ),
        (
            "ColumnTransformer",
            compose.ColumnTransformer(
                [("s", preprocessing.StandardScaler(), [0, 1]), ("p", "passthrough", [2])]
            ),
            X,
            None,
        ),
        (
            "TransformedTargetRegressor",
            compose.TransformedTargetRegressor(
                linear_model.Ridge(), func=np.log1p, inverse_func=np.expm1
            ),
            X,
            Xpos[:, 0],
        ),
        (
            "GridSearchCV",
            model_selection.GridSearchCV(
                linear_model.LogisticRegression(),
                {"C": [0.1, 1.0]},
                cv=2,
                scoring=metrics.make_scorer(metrics.f1_score),
            ),
            X,
            y,
        ),
    ]
    for name, est, data, target in fitted:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if target is None:
                est.fit(data)
            else:
                est.fit(data, target)
        yield f"sklearn.{name}", est
    yield (
        "sklearn.unfitted-estimators",
        [
            linear_model.LogisticRegression(),
            ensemble.RandomForestClassifier(),
            preprocessing.StandardScaler(),
        ],
    )


def _numpy() -> Iterator[tuple[str, Any]]:
    import numpy as np

    yield (
        "numpy.arrays",
        {
            "f8": np.arange(6.0).reshape(2, 3),
            "f4-fortran": np.asfortranarray(np.ones((3, 2), dtype="f4")),
            "i1": np.arange(5, dtype="i1"),
            "u8": np.arange(5, dtype="u8"),
            "bool": np.array([True, False]),
            "c16": np.array([1 + 2j]),
            "f2": np.ones(3, dtype="f2"),
            "U": np.array(["ab", "c"]),
            "S": np.array([b"ab", b"c"]),
            "datetime64": np.array(["2024-01-01"], dtype="datetime64[D]"),
            "timedelta64": np.array([3], dtype="timedelta64[s]"),
            "object": np.array([1, "a", None], dtype=object),
            "structured": np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")]),
            "subarray": np.zeros(2, dtype=("f4", (3,))),
            "empty": np.empty((0, 3)),
            "scalar-f8": np.float64(1.5),
            "scalar-i4": np.int32(7),
            "scalar-bool": np.bool_(True),
            "dtype": np.dtype("f8"),
            "types": [np.float32, np.number],
        },
    )
    yield "numpy.matrix", np.matrix([[1, 2], [3, 4]])
    yield "numpy.recarray", np.rec.fromrecords([(1, "a"), (2, "b")], names="x,y")
    yield "numpy.record", np.rec.fromrecords([(1, 2.0)], names="x,y")[0]
    yield "numpy.masked", np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])
    string_dtype = getattr(getattr(np, "dtypes", None), "StringDType", None)  # NumPy >= 2.0
    if string_dtype is not None:
        yield (
            "numpy.StringDType",
            {
                "plain": np.array(["a", "bb"], dtype=string_dtype()),
                "na-nan": np.array(["a"], dtype=string_dtype(na_object=np.nan)),
                "no-coerce": np.array(["a"], dtype=string_dtype(coerce=False)),
            },
        )
    yield (
        "numpy.random",
        {
            "RandomState": np.random.RandomState(1),
            "Generator": np.random.default_rng(1),
            "PCG64DXSM": np.random.Generator(np.random.PCG64DXSM(1)),
            "Philox": np.random.Philox(1),
            "SFC64": np.random.SFC64(1),
            "MT19937": np.random.MT19937(1),
            "SeedSequence": np.random.SeedSequence(1),
        },
    )


def _scipy() -> Iterator[tuple[str, Any]]:
    import numpy as np
    import scipy.sparse as sp
    from scipy import stats

    dense = np.eye(3)
    yield (
        "scipy.sparse",
        {
            kind: getattr(sp, f"{kind}_{shape}")(dense)
            for kind in ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
            for shape in ("matrix", "array")
        },
    )
    yield "scipy.stats.frozen", [stats.norm(0, 1), stats.poisson(3), stats.gamma(2.0)]


def _pandas() -> Iterator[tuple[str, Any]]:
    import pandas as pd

    # String data in NumPy-backed (python) storage; pyarrow-backed data is a separate case.
    with pd.option_context("mode.string_storage", "python"):
        yield from _pandas_objects()
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    yield "pandas.pyarrow-strings", pd.Series(["a", None, "c"], dtype="string[pyarrow]")


def _pandas_objects() -> Iterator[tuple[str, Any]]:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "int": [1, 2, 3],
            "float": [1.0, np.nan, 3.0],
            "bool": [True, False, True],
            "object": ["a", None, 3],
            "string": pd.array(["a", None, "c"], dtype="string"),
            "category": pd.Categorical(["x", "y", "x"]),
            "ordered": pd.Categorical(["lo", "hi", "lo"], ordered=True),
            "datetime": pd.date_range("2024-01-01", periods=3),
            "datetime-tz": pd.date_range("2024-01-01", periods=3, tz="Europe/Berlin"),
            "datetime-utc": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "timedelta": pd.to_timedelta([1, 2, 3], unit="s"),
            "period": pd.period_range("2024-01", periods=3, freq="M"),
            "interval": pd.interval_range(0, 3),
            "Int64": pd.array([1, None, 3], dtype="Int64"),
            "Float64": pd.array([1.0, None, 3.0], dtype="Float64"),
            "boolean": pd.array([True, None, False], dtype="boolean"),
            "sparse": pd.arrays.SparseArray([0, 0, 1]),
        }
    )
    yield "pandas.DataFrame-all-dtypes", frame
    yield "pandas.Series", pd.Series([1.5, 2.5], index=["a", "b"], name="s")
    yield (
        "pandas.MultiIndex",
        pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])),
    )
    yield (
        "pandas.indexes",
        [
            pd.RangeIndex(5),
            pd.CategoricalIndex(["a", "b"]),
            pd.IntervalIndex.from_breaks([0, 1, 2]),
            pd.PeriodIndex(["2024-01"], freq="M"),
            pd.TimedeltaIndex(["1 day"]),
            pd.Timestamp("2024-01-01", tz="UTC"),
            pd.Timedelta("1 day"),
            pd.Period("2024-01", freq="M"),
            pd.NaT,
            pd.offsets.MonthEnd(2),
        ],
    )


def _torch_objects() -> Iterator[tuple[str, Any]]:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3),
        torch.nn.BatchNorm2d(2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(2, 2),
        torch.nn.Dropout(0.1),
    )
    yield "torch.state_dict", net.state_dict()
    yield "torch.module", net
    opt = torch.optim.Adam(net.parameters())
    net(torch.ones(2, 1, 3, 3)).sum().backward()
    opt.step()
    sched = torch.optim.lr_scheduler.StepLR(opt, 1)
    yield "torch.optimizer", {"opt": opt.state_dict(), "sched": sched.state_dict()}
    yield (
        "torch.tensors",
        {
            "f32": torch.arange(4.0),
            "bf16": torch.ones(2, dtype=torch.bfloat16),
            "i64": torch.arange(3),
            "bool": torch.tensor([True]),
            "param": torch.nn.Parameter(torch.ones(2)),
            "quint8": torch.quantize_per_tensor(torch.ones(4), 0.1, 0, torch.quint8),
            "qint8-channel": torch.quantize_per_channel(
                torch.ones(2, 2), torch.tensor([0.1, 0.2]), torch.tensor([0, 0]), 0, torch.qint8
            ),
            "sparse": torch.eye(2).to_sparse(),
            "size": torch.Size([2, 3]),
            "dtype": torch.float16,
            "device": torch.device("cpu"),
        },
    )


# ------------------------------------------------------------------------------ files


def _saved(name: str, obj: Any) -> Iterator[Case]:
    for protocol in (2, 5):
        yield Case(name, f"pickle-{protocol}", pickle.dumps(obj, protocol=protocol), _pickle_load)
    try:
        import joblib
    except ImportError:
        return
    for compress in (0, 3):
        buf = io.BytesIO()
        joblib.dump(obj, buf, compress=compress)
        yield Case(name, f"joblib-{compress}", buf.getvalue(), _joblib_load)


def _torch_saved(name: str, obj: Any) -> Iterator[Case]:
    import torch

    for legacy in (False, True):
        buf = io.BytesIO()
        torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
        how = "torch-legacy" if legacy else "torch-zip"
        yield Case(name, how, buf.getvalue(), _torch_load)


#: (label, module that must import, object factory, saver)
_SOURCES: list[tuple[str, str, Callable[[], Iterator[tuple[str, Any]]], bool]] = [
    ("scikit-learn", "sklearn", _sklearn, False),
    ("numpy", "numpy", _numpy, False),
    ("scipy", "scipy", _scipy, False),
    ("pandas", "pandas", _pandas, False),
    ("torch", "torch", _torch_objects, True),
]
#: Libraries named in the issue that this script does not build objects for when absent.
_OPTIONAL = ("xgboost", "lightgbm", "catboost", "statsmodels", "gensim", "transformers", "keras")


def cases() -> tuple[list[Case], list[str]]:
    """Every case the installed libraries can build, and the libraries that are missing."""
    import importlib

    out: list[Case] = []
    missing: list[str] = []
    for label, module, factory, is_torch in _SOURCES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(label)
            continue
        with warnings.catch_warnings():
            # deprecation notices of the libraries (quantized tensors, sklearn defaults)
            warnings.simplefilter("ignore")
            for name, obj in factory():
                out.extend(_saved(name, obj))
                if is_torch:
                    out.extend(_torch_saved(name, obj))
    for module in _OPTIONAL:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return out, missing


def same(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two loaded objects hold the same data (type and values, recursively)."""
    if type(a) is not type(b):
        return False
    if depth > 50:
        return True
    mod = type(a).__module__.split(".")[0]
    if mod == "torch" and hasattr(a, "dtype") and hasattr(a, "shape"):
        import torch

        if a.is_quantized:
            return bool(torch.equal(a.dequantize(), b.dequantize()))
        if a.layout != torch.strided:
            a, b = a.to_dense(), b.to_dense()
        return a.dtype == b.dtype and bool(torch.equal(a, b))
    if mod == "numpy" and hasattr(a, "shape"):
        import numpy as np

        if isinstance(a, np.ndarray):
            if a.dtype != b.dtype or a.shape != b.shape:
                return False
            if a.dtype.hasobject:
                pairs = zip(a.ravel().tolist(), b.ravel().tolist(), strict=True)
                return all(same(x, y, depth + 1) for x, y in pairs)
            if a.dtype.names:  # compare fields: padding bytes are undefined
                return all(a[f].tobytes() == b[f].tobytes() for f in a.dtype.names)
            return a.tobytes() == b.tobytes()
    if isinstance(a, functools.partial):
        return a.func is b.func and same((a.args, a.keywords), (b.args, b.keywords), depth + 1)
    if mod == "scipy" and hasattr(a, "tocoo"):
        return a.shape == b.shape and a.dtype == b.dtype and (a != b).nnz == 0
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dict__") and not isinstance(a, type) and mod in ("sklearn", "torch"):
        return same(vars(a), vars(b), depth + 1)
    if mod == "sklearn" and hasattr(a, "__getstate__"):  # Cython objects (trees)
        return same(a.__getstate__(), b.__getstate__(), depth + 1)
    try:
        return pickle.dumps(a, protocol=4) == pickle.dumps(b, protocol=4)
    except Exception:  # noqa: BLE001 - unpicklable results are compared by repr
        return repr(a) == repr(b)


def scan_case(case: Case) -> dict[str, Any]:
    """Scan one case with mltrust and load it with both loaders."""
    import mltrust
    from mltrust.findings import Severity
    from mltrust.scan import scan_bytes

    result = scan_bytes(case.data, f"{case.name}.{case.how}")
    facts = dict(result.facts)
    loud = [
        f"{f.severity.value} {f.rule_id} {f.message}"
        for f in result.findings
        if f.severity >= Severity.MEDIUM
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = case.real_load(case.data)
        try:
            ours = mltrust.load(case.data)
            load = "same" if same(real, ours) else f"differs: {type(ours).__name__}"
        except Exception as exc:  # noqa: BLE001 - recorded, asserted by the test
            load = f"error: {type(exc).__name__}: {exc}"
    return {
        "case": case.name,
        "how": case.how,
        "bytes": len(case.data),
        "imports": facts.get("pickle_imports", []),
        "uses": facts.get("pickle_uses", {}),
        "findings": loud,
        "load": load,
    }


#: File names of serialized test data that libraries ship inside their packages.
_DATA_SUFFIXES = (".pkl", ".pickle", ".npy", ".npz", ".joblib", ".pt", ".pth")


def installed_test_data() -> list[dict[str, Any]]:
    """Scan the pickles/arrays that installed packages ship (their own test data).

    Every file in site-packages whose name says pickle, NumPy, joblib or PyTorch data (also
    compressed joblib test files such as ``x.pkl.gz``); returns one row per file with its
    medium-or-above findings.
    """
    import os
    import sysconfig

    from mltrust.findings import Severity
    from mltrust.scan import scan_bytes

    root = sysconfig.get_paths()["purelib"]
    rows: list[dict[str, Any]] = []
    for folder, _dirs, files in os.walk(root):
        if os.sep + "mltrust" in folder:
            continue
        for fname in sorted(files):
            low = fname.lower()
            if not (low.endswith(_DATA_SUFFIXES) or ".pkl" in low or ".pickle" in low):
                continue
            path = os.path.join(folder, fname)
            with open(path, "rb") as fh:
                data = fh.read()
            result = scan_bytes(data, path)
            loud = [
                f"{f.severity.value} {f.rule_id} {f.message}"
                for f in result.findings
                if f.severity >= Severity.MEDIUM
            ]
            rows.append({"path": os.path.relpath(path, root), "findings": loud})
    return rows


def main(argv: list[str]) -> int:
    all_cases, missing = cases()
    rows = [scan_case(c) for c in all_cases]
    shipped = installed_test_data()
    uses: dict[str, set[str]] = {}
    for row in rows:
        for target, kinds in row["uses"].items():
            uses.setdefault(target, set()).update(kinds)
    report = {
        "cases": rows,
        "globals": {t: sorted(k) for t, k in sorted(uses.items())},
        "not_covered": missing,
        "installed_test_data": shipped,
        "loud": sum(1 for r in rows if r["findings"]),
        "load_mismatch": sum(1 for r in rows if r["load"] != "same"),
    }
    text = json.dumps(report, indent=1, sort_keys=True)
    if len(argv) > 1:
        with open(argv[1], "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text + "\n")
    flagged = sum(1 for r in shipped if r["findings"])
    print(
        f"{len(rows)} files, {report['loud']} with medium+ findings, "
        f"{report['load_mismatch']} where mltrust.load differs; not covered: {missing}; "
        f"test data shipped in installed packages: {flagged} of {len(shipped)} flagged "
        f"({100.0 * flagged / max(1, len(shipped)):.1f}%)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
