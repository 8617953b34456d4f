"""The pickle allowlist is exact: every entry is the object defined at that path, reviewed.

For each entry whose library is installed: the module imports, the qualified name resolves, and
the object's own ``__module__``/``__qualname__`` name that same place (a class another library
re-exports under an allowlisted module can never be listed). Aliases resolve to the very object
of their canonical entry. Classes allowed as types are rebuilt through ``__setstate__``/
``__new__``; those must be among the implementations reviewed below, so a library update that
adds code to that path fails here until someone reads it.
"""

from __future__ import annotations

import importlib
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import pytest

from mltrust.config import ScanConfig
from mltrust.errors import UnsafeModelError
from mltrust.findings import Severity
from mltrust.safeload import RestrictedUnpickler
from mltrust.scan import scan_file
from mltrust.scan._pickle import judge_global
from mltrust.scan._pickle._allowlist import ALLOWLIST, Use

#: Libraries whose entries may be absent from this environment (then they are skipped). The
#: test extras install the ML stack (numpy, scipy, scikit-learn, pandas, joblib, torch), so in
#: CI those entries are always checked.
_OPTIONAL_ROOTS = {"pytz", "dateutil", "pyarrow", "networkx"}

#: ``__setstate__`` implementations reviewed: each only restores attributes from data.
_REVIEWED_SETSTATE = {
    "sklearn.base:BaseEstimator.__setstate__",  # version check + __dict__.update
    "sklearn.isotonic:IsotonicRegression.__setstate__",  # rebuilds its interpolator from arrays
    "torch.nn.modules.module:Module.__setstate__",  # __dict__.update + hook dict defaults
    "torch.nn.modules.conv:_ConvNd.__setstate__",  # default padding_mode
    "torch.nn.modules.rnn:RNNBase.__setstate__",  # re-derives flat weight names
    "torch.nn.modules.upsampling:Upsample.__setstate__",
    "torch.nn.modules.activation:MultiheadAttention.__setstate__",
    "torch.nn.modules.transformer:TransformerEncoderLayer.__setstate__",
    "torch.nn.modules.transformer:TransformerDecoderLayer.__setstate__",
    "torch.nn.modules.activation:Softmax.__setstate__",
    "torch.nn.modules.activation:LogSoftmax.__setstate__",
    "torch.nn.modules.activation:Softmin.__setstate__",
    "torch.nn.modules.pooling:AvgPool3d.__setstate__",
    "torch.optim.optimizer:Optimizer.__setstate__",  # __dict__.update + defaults
    "torch.optim.lr_scheduler:ReduceLROnPlateau.__setstate__",
    "torch.optim.lr_scheduler:LRScheduler.__setstate__",
    "torch.nn.parameter:Parameter.__setstate__",
    "torch._tensor:Tensor.__setstate__",
    "torch.storage:TypedStorage.__setstate__",
    "pandas.core.generic:NDFrame.__setstate__",  # rebuilds the block manager from data
    "pandas.core.indexes.base:Index.__setstate__",
    "pandas.core.arrays.categorical:Categorical.__setstate__",
    "pandas.core.arrays.sparse.array:SparseArray.__setstate__",
    "pandas.core.arrays.interval:IntervalArray.__setstate__",
    "pandas.core.dtypes.dtypes:CategoricalDtype.__setstate__",
    "pandas.core.dtypes.dtypes:DatetimeTZDtype.__setstate__",
    "pandas.core.dtypes.dtypes:PeriodDtype.__setstate__",
    "pandas.core.dtypes.dtypes:IntervalDtype.__setstate__",
    "pandas.core.dtypes.dtypes:SparseDtype.__setstate__",
    "pandas.core.indexes.multi:MultiIndex.__setstate__",
    "sklearn.gaussian_process.kernels:Hyperparameter.__setstate__",
    "sklearn._loss.link:Interval.__setstate__",
    "uuid:UUID.__setstate__",
    "scipy.sparse._base:_spbase.__setstate__",
    "numpy.ma.core:MaskedArray.__setstate__",  # shape, dtype, data and mask from bytes
    "numpy.random._generator:Generator.__setstate__",  # bit generator state dict
    "numpy.random.bit_generator:BitGenerator.__setstate__",  # state dict of integers
    "numpy.random.mtrand:RandomState.__setstate__",  # MT19937 key array
    "pandas._libs.arrays:NDArrayBacked.__setstate__",  # (ndarray, dtype) pair
    "pandas.core.arrays.arrow.array:ArrowExtensionArray.__setstate__",  # chunked_array(data)
    "pandas._libs.tslibs.offsets:RelativeDeltaOffset.__setstate__",  # offset keywords
    "pandas._libs.tslibs.timedeltas:Timedelta.__setstate__",  # integer value and unit
    "pandas._libs.tslibs.timestamps:_Timestamp.__setstate__",  # integer value, tz, unit
    "scipy.sparse._coo:coo_matrix.__setstate__",  # renames legacy row/col attributes
    "sklearn.ensemble._hist_gradient_boosting.predictor:TreePredictor.__setstate__",
    "sklearn.metrics._dist_metrics:DistanceMetric32.__setstate__",  # parameter arrays
    "sklearn.metrics._dist_metrics:DistanceMetric64.__setstate__",
    "sklearn.metrics._dist_metrics:MahalanobisDistance32.__setstate__",
    "sklearn.metrics._dist_metrics:MahalanobisDistance64.__setstate__",
    "sklearn.neighbors._ball_tree:BinaryTree64.__setstate__",  # tree arrays + metric
    "sklearn.neighbors._kd_tree:BinaryTree64.__setstate__",
    "sklearn.utils._bunch:Bunch.__setstate__",  # ignores its state
    # optimizers: Optimizer.__setstate__ then parameter-group defaults
    "torch.optim._adafactor:Adafactor.__setstate__",
    "torch.optim.adadelta:Adadelta.__setstate__",
    "torch.optim.adagrad:Adagrad.__setstate__",
    "torch.optim.adam:Adam.__setstate__",
    "torch.optim.adamax:Adamax.__setstate__",
    "torch.optim.adamw:AdamW.__setstate__",
    "torch.optim.asgd:ASGD.__setstate__",
    "torch.optim.nadam:NAdam.__setstate__",
    "torch.optim.radam:RAdam.__setstate__",
    "torch.optim.rmsprop:RMSprop.__setstate__",
    "torch.optim.rprop:Rprop.__setstate__",
    "torch.optim.sgd:SGD.__setstate__",
}


def _resolve(target: str) -> Any:
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _installed(target: str) -> bool:
    root = target.partition(":")[0].split(".")[0]
    try:
        importlib.import_module(root)
    except ImportError:
        if root in _OPTIONAL_ROOTS:
            return False
        raise
    return True


def _defined_at(obj: Any) -> str | None:
    owner = getattr(obj, "__self__", None)
    if isinstance(owner, type) and getattr(obj, "__module__", None) is None:
        # a class's built-in (class)method, e.g. dict.fromkeys: named after its class
        at = _defined_at(owner)
        return None if at is None else f"{at}.{obj.__name__}"
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return f"{module}:{qualname}"
    return None


def _is_constant(obj: Any) -> bool:
    """Instances that carry no definition site of their own (dtypes, singletons, ufuncs)."""
    import numpy as np

    names = {"dtype", "layout", "memory_format", "qscheme"}
    return (
        isinstance(obj, np.ufunc)
        or type(obj).__name__ in names
        or obj is Ellipsis
        or obj is NotImplemented
        or type(obj).__name__ in {"NAType", "UTC"}
    )


_CANONICAL = sorted(t for t, e in ALLOWLIST.items() if e.alias_of is None)
_ALIASES = sorted(t for t, e in ALLOWLIST.items() if e.alias_of is not None)


def _problem_of_entry(target: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = _resolve(target)
    if _is_constant(obj):
        return None
    at = _defined_at(obj)
    if at != target:
        return f"{target} resolves to an object defined at {at}: a re-export"
    return None


def _problem_of_alias(alias: str) -> str | None:
    canonical = ALLOWLIST[alias].alias_of
    if canonical is None or ALLOWLIST[canonical].alias_of is not None:
        return f"{alias} must name a canonical entry"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            obj = _resolve(alias)
        except (ImportError, AttributeError):
            return None  # a path of an older version only
        if obj is not _resolve(canonical):
            return f"{alias} is not {canonical}"
    return None


def _setstate_site(cls: type) -> str | None:
    fn = getattr(cls, "__setstate__", None)
    if fn is None:
        return None
    at = _defined_at(fn)
    if at is None or at.startswith("builtins:"):
        return None  # C-level (Cython) __setstate__ of an extension type
    return at


def _problem_of_type(target: str) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = _resolve(target)
    if not isinstance(cls, type):
        return f"{target} is allowlisted as a type but is {cls!r}"
    site = _setstate_site(cls)
    reviewed = site is None or "__pyx" in site or site in _REVIEWED_SETSTATE
    if not reviewed:
        return f"{target} is rebuilt by unreviewed {site}"
    return None


def test_every_entry_is_the_object_defined_there() -> None:
    problems = [p for t in _CANONICAL if _installed(t) and (p := _problem_of_entry(t))]
    assert problems == []


def test_every_alias_is_the_same_object() -> None:
    problems = [p for t in _ALIASES if _installed(t) and (p := _problem_of_alias(t))]
    assert problems == []


def test_type_entries_rebuild_through_reviewed_code() -> None:
    types = [t for t in _CANONICAL if ALLOWLIST[t].use is Use.TYPE and _installed(t)]
    problems = [p for t in types if (p := _problem_of_type(t))]
    assert problems == []


def test_a_reexport_fails_the_definition_check() -> None:
    # The check itself can fail: pandas re-exports pathlib.Path in pandas.io.common.
    assert _problem_of_entry("pandas.io.common:Path") is not None
    assert _problem_of_type("sklearn.base:clone") is not None  # a function, not a type


def test_every_entry_states_a_reason() -> None:
    assert all(len(e.reason) > 15 for e in ALLOWLIST.values())


@pytest.mark.parametrize(
    "target",
    [
        # Re-exports that the old family rule ("any CamelCase class in scipy.*") admitted.
        "scipy.special._precompute.expn_asy:Poly",  # sympy.Poly: sympify evals strings
        "sklearn.callback._transport:Listener",  # multiprocessing.connection.Listener
        "sklearn.utils.validation:Parameter",
        "sklearn.base:clone",
        "pandas.io.common:Path",
        "scipy.stats._continuous_distns:norm_gen",  # __setstate__ runs exec
    ],
)
def test_reexports_and_unlisted_classes_are_not_allowed(target: str) -> None:
    module, _, name = target.partition(":")
    verdict = judge_global(module, name, ScanConfig())
    assert not verdict.allowed, verdict.reason


def test_the_loader_uses_the_same_table() -> None:
    # One decision: what judge_global refuses, the restricted unpickler refuses.
    for module, name in (("scipy.special._precompute.expn_asy", "Poly"), ("sklearn.base", "clone")):
        data = b"c" + module.encode() + b"\n" + name.encode() + b"\n."
        assert not judge_global(module, name).allowed
        with pytest.raises(UnsafeModelError, match=name):
            RestrictedUnpickler(io.BytesIO(data)).load()
    listed = pickle.dumps(__import__("collections").OrderedDict(a=1), 4)
    assert RestrictedUnpickler(io.BytesIO(listed)).load() == {"a": 1}


def test_numpy_string_dtype_array_saved_by_np_save_is_quiet(tmp_path: Path) -> None:
    """NumPy 2's StringDType arrays: np.save writes them as a pickle that rebuilds the dtype
    through numpy._core._internal._convert_to_stringdtype_kwargs (was: medium, unknown import,
    on a file numpy itself wrote)."""
    np = pytest.importorskip("numpy")
    string_dtype = getattr(getattr(np, "dtypes", None), "StringDType", None)
    if string_dtype is None:
        pytest.skip("NumPy < 2.0 has no StringDType")
    path = tmp_path / "strings.npy"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "custom dtypes are saved as python objects"
        np.save(path, np.array(["a", "bb"], dtype=string_dtype(na_object=np.nan)))
    # mltrust: ignore[MLT-CODE-004] the real loader as oracle, on a file this test just wrote
    assert list(np.load(path, allow_pickle=True)) == ["a", "bb"]  # the oracle
    findings = scan_file(path).findings
    assert not [f for f in findings if f.severity >= Severity.MEDIUM], findings


def test_payload_in_place_of_a_string_dtype_array_in_joblib_is_critical(tmp_path: Path) -> None:
    """The array after a StringDType wrapper is read by pickle.load (hasobject), so it is
    scanned as a pickle: a payload put there runs under joblib.load and must be critical."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    string_dtype = getattr(getattr(np, "dtypes", None), "StringDType", None)
    if string_dtype is None:
        pytest.skip("NumPy < 2.0 has no StringDType")
    benign = tmp_path / "benign.joblib"
    joblib.dump(np.array(["a", "bb"], dtype=string_dtype()), benign)
    data = benign.read_bytes()
    start = data.index(b"ub\x80\x05") + 2  # the wrapper's BUILD, then the array's own pickle
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()
    payload = (
        b"\x80\x02cposix\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."
    )
    evil = tmp_path / "evil.joblib"
    evil.write_bytes(data[:start] + payload + b".")
    oracle = "import joblib, sys; joblib.load(sys.argv[1])"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", oracle, str(evil)], capture_output=True, timeout=60)
    assert marker.exists()  # joblib.load ran it
    worst = max((f.severity for f in scan_file(evil).findings), default=None)
    assert worst is Severity.CRITICAL, scan_file(evil).findings
