"""The allow/deny decision for import targets (judge_global)."""

from __future__ import annotations

import pytest

from mltrust.config import ScanConfig
from mltrust.findings import Severity
from mltrust.scan._pickle import canonical, judge_global


@pytest.mark.parametrize(
    "target",
    [
        "numpy.core.multiarray:_reconstruct",
        "numpy._core.multiarray:_reconstruct",
        "numpy:ndarray",
        "numpy:dtype",
        "numpy.random._pickle:__bit_generator_ctor",
        "numpy.random._pickle:__generator_ctor",
        "numpy.random._pickle:__randomstate_ctor",
        "numpy.ma.core:_mareconstruct",
        "sklearn.tree._tree:Tree",
        "sklearn.ensemble._forest:RandomForestClassifier",
        "sklearn.pipeline:Pipeline",
        "sklearn.ensemble._hist_gradient_boosting.binning:_BinMapper",
        "sklearn.neighbors._kd_tree:newObj",
        "scipy.sparse._csr:csr_matrix",
        "pandas.core.frame:DataFrame",
        "pandas:DataFrame",
        "pandas._libs.internals:_unpickle_block",
        "pandas.core.indexes.base:_new_Index",
        "joblib.numpy_pickle:NumpyArrayWrapper",
        "torch._utils:_rebuild_tensor_v2",
        "torch._utils:_rebuild_parameter",
        "torch:FloatStorage",
        "torch:bfloat16",
        "torch:Size",
        "torch.nn.modules.linear:Linear",
        "collections:OrderedDict",
        "copy_reg:_reconstructor",
        "__builtin__:set",
        "datetime:datetime",
        "uuid:UUID",
    ],
)
def test_allowlisted_targets(target: str) -> None:
    module, name = target.split(":")
    verdict = judge_global(module, name, ScanConfig())
    assert verdict.allowed, verdict.reason
    assert verdict.rule is None and verdict.severity is None


@pytest.mark.parametrize(
    ("target", "severity"),
    [
        ("os:system", Severity.CRITICAL),
        ("posix:system", Severity.CRITICAL),
        ("__builtin__:eval", Severity.CRITICAL),
        ("exceptions:eval", Severity.CRITICAL),
        ("commands:getoutput", Severity.CRITICAL),
        ("builtins:getattr", Severity.CRITICAL),
        ("torch:os.system", Severity.CRITICAL),
        ("builtins:object.__subclasses__", Severity.CRITICAL),
        ("pathlib:Path.touch", Severity.HIGH),
        ("builtins:dict.get", Severity.HIGH),
        ("sklearn.utils._testing:assert_run_python_script", Severity.CRITICAL),
        ("sklearn.datasets:fetch_openml", Severity.HIGH),
        ("sklearn.base:Popen", Severity.MEDIUM),
        ("sklearn.base:clone", Severity.MEDIUM),
        ("pandas.io.pickle:read_pickle", Severity.HIGH),
        ("mymodule:Thing", Severity.MEDIUM),
    ],
)
def test_denied_targets(target: str, severity: Severity) -> None:
    module, name = target.split(":")
    verdict = judge_global(module, name, ScanConfig())
    assert not verdict.allowed
    assert verdict.severity == severity, verdict.reason
    assert verdict.rule is not None


def test_config_allows_unknown_but_not_critical() -> None:
    config = ScanConfig(allow_globals=frozenset({"mymodule:*", "os:system"}))
    assert judge_global("mymodule", "Thing", config).allowed
    assert not judge_global("os", "system", config).allowed


def test_canonical_maps_python2_names() -> None:
    assert canonical("__builtin__", "eval") == ("builtins", "eval")
    assert canonical("copy_reg", "_reconstructor") == ("copyreg", "_reconstructor")
    assert canonical("commands", "getoutput")[0] == "subprocess"
