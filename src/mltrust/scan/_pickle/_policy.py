"""Which pickle import targets are safe: allowlist, denylist and gadget table.

A target is ``module:qualname`` as written in a GLOBAL/STACK_GLOBAL/INST opcode. It is judged in
this order (first match wins):

1. Python 2 names are mapped to Python 3 ones the way ``_compat_pickle`` does
   (``__builtin__.eval`` -> ``builtins.eval``, ``commands.getoutput`` -> ``subprocess``).
2. A qualified name with a dunder segment (``x.__class__``, ``f.__globals__``) is critical:
   it walks interpreter internals.
3. An exact allowlist entry (module and qualified name) is safe.
4. The denylist, by module (and module prefix) and name pattern, with a precise reason.
5. A dotted qualified name is judged by what it reaches: ``torch:os.system`` reaches
   ``os.system`` through a module re-export, ``pathlib:Path.touch`` reaches a method of
   ``pathlib.Path``; only exact allowlist entries may be dotted.
6. Family rules for large ML libraries whose picklable classes are too many to list: a
   top-level *class* name (CamelCase, no dots) in a scikit-learn, SciPy or pandas submodule is
   safe, except in submodules that do I/O or run code (``sklearn.datasets``,
   ``sklearn.utils._testing``, ``sklearn.externals``, ``pandas.io`` ...) and except names
   that are known re-exports of dangerous classes (``Popen``, ``Thread``...). Instantiating a
   class runs only its constructor / ``__setstate__``, which in these libraries build data.
   Functions are never admitted by family: only by exact entry.
7. ``ScanConfig.allow_globals`` (``module:qualname`` or ``module:*``).
8. Anything else is an unknown import (medium).
"""

from __future__ import annotations

import _compat_pickle
import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrust.findings import Rule, Severity
from mltrust.scan._pickle import _rules as R

if TYPE_CHECKING:
    from mltrust.config import ScanConfig

__all__ = ["GlobalVerdict", "canonical", "judge_global"]


@dataclass(frozen=True, slots=True)
class GlobalVerdict:
    """The decision about one import target."""

    allowed: bool
    severity: Severity | None
    rule: Rule | None
    reason: str


_C = Severity.CRITICAL
_H = Severity.HIGH

# --------------------------------------------------------------------------------------------
# Allowlist: exact module -> qualified names.
# --------------------------------------------------------------------------------------------
_NUMPY_CORE = (
    "_reconstruct",
    "scalar",
    "_frombuffer",
)
_ALLOW: dict[str, frozenset[str]] = {
    # TorchScript archives (torch.jit.save) call these in data.pkl, constants.pkl and the
    # *.debug_pkl members; each returns its argument unchanged (torch/jit/_pickle.py).
    "torch.jit._pickle": frozenset(
        {
            "build_intlist",
            "build_tensorlist",
            "build_doublelist",
            "build_boollist",
            "build_tensor_from_id",
            "restore_type_tag",
        }
    ),
    "builtins": frozenset(
        {
            "set",
            "frozenset",
            "slice",
            "range",
            "complex",
            "bytearray",
            "bytes",
            "int",
            "float",
            "str",
            "bool",
            "dict",
            "list",
            "tuple",
            "object",
            "Ellipsis",
            "NotImplemented",
        }
    ),
    "copyreg": frozenset({"_reconstructor", "__newobj__", "__newobj_ex__"}),
    "_codecs": frozenset({"encode"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "deque", "Counter", "ChainMap"}),
    "datetime": frozenset({"datetime", "date", "time", "timedelta", "timezone"}),
    "decimal": frozenset({"Decimal"}),
    "fractions": frozenset({"Fraction"}),
    "uuid": frozenset({"UUID", "SafeUUID"}),
    "zoneinfo": frozenset({"ZoneInfo"}),
    # An attribute bag (``Namespace(**kwargs)``) found in many training checkpoints.
    "argparse": frozenset({"Namespace"}),
    "pytz": frozenset({"_p", "_UTC", "utc", "UTC"}),
    "dateutil.tz.tz": frozenset({"tzutc", "tzoffset"}),
    "zoneinfo._zoneinfo": frozenset({"ZoneInfo"}),
    "pathlib": frozenset({"PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"}),
    "re": frozenset({"_compile"}),
    "enum": frozenset({"Enum"}),
    "numpy": frozenset(
        {
            "ndarray",
            "dtype",
            "matrix",
            "bool_",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float16",
            "float32",
            "float64",
            "longdouble",
            "complex64",
            "complex128",
            "str_",
            "bytes_",
            "void",
            "object_",
            "datetime64",
            "timedelta64",
            "intc",
            "uintc",
            "longlong",
            "ulonglong",
            "half",
            "single",
            "double",
            # abstract scalar types, pickled as values (``dtype_include=np.number``)
            "generic",
            "number",
            "integer",
            "signedinteger",
            "unsignedinteger",
            "inexact",
            "floating",
            "complexfloating",
            "character",
            "flexible",
        }
    ),
    # sklearn's column selector is a plain data holder despite its function-like name.
    "sklearn.compose._column_transformer": frozenset({"make_column_selector"}),
    "numpy.core.multiarray": frozenset(_NUMPY_CORE),
    "numpy._core.multiarray": frozenset(_NUMPY_CORE),
    "numpy.core.numeric": frozenset({"_frombuffer"}),
    "numpy._core.numeric": frozenset({"_frombuffer"}),
    "numpy.ma.core": frozenset({"_mareconstruct", "MaskedArray", "MaskedConstant"}),
    "numpy.ma": frozenset({"MaskedArray", "MaskedConstant"}),
    "numpy.random._pickle": frozenset(
        {
            "__bit_generator_ctor",
            "__randomstate_ctor",
            "__generator_ctor",
        }
    ),
    "numpy.random.mtrand": frozenset({"RandomState"}),
    "numpy.random._generator": frozenset({"Generator"}),
    "numpy.random._mt19937": frozenset({"MT19937"}),
    "numpy.random._pcg64": frozenset({"PCG64", "PCG64DXSM"}),
    "numpy.random._philox": frozenset({"Philox"}),
    "numpy.random._sfc64": frozenset({"SFC64"}),
    "numpy.random.bit_generator": frozenset({"SeedSequence"}),
    "numpy.dtypes": frozenset(
        {
            "Float64DType",
            "Float32DType",
            "Float16DType",
            "Int64DType",
            "Int32DType",
            "Int16DType",
            "Int8DType",
            "UInt64DType",
            "UInt32DType",
            "UInt16DType",
            "UInt8DType",
            "BoolDType",
            "ObjectDType",
            "StrDType",
            "BytesDType",
            "VoidDType",
            "DateTime64DType",
            "TimeDelta64DType",
            "Complex64DType",
            "Complex128DType",
            "StringDType",
        }
    ),
    "joblib.numpy_pickle": frozenset({"NumpyArrayWrapper", "NDArrayWrapper", "ZNDArrayWrapper"}),
    "joblib.numpy_pickle_compat": frozenset({"NDArrayWrapper", "ZNDArrayWrapper"}),
    "scipy.sparse._csr": frozenset({"csr_matrix", "csr_array"}),
    "scipy.sparse._csc": frozenset({"csc_matrix", "csc_array"}),
    "scipy.sparse._coo": frozenset({"coo_matrix", "coo_array"}),
    "scipy.sparse._lil": frozenset({"lil_matrix", "lil_array"}),
    "scipy.sparse._dok": frozenset({"dok_matrix", "dok_array"}),
    "scipy.sparse._dia": frozenset({"dia_matrix", "dia_array"}),
    "scipy.sparse._bsr": frozenset({"bsr_matrix", "bsr_array"}),
    "scipy.sparse.csr": frozenset({"csr_matrix"}),
    "scipy.sparse.csc": frozenset({"csc_matrix"}),
    "scipy.sparse.coo": frozenset({"coo_matrix"}),
    "scipy.stats._distn_infrastructure": frozenset({"rv_continuous_frozen", "rv_discrete_frozen"}),
    "sklearn.tree._tree": frozenset({"Tree"}),
    "sklearn.neighbors._ball_tree": frozenset({"BallTree"}),
    "sklearn.neighbors._kd_tree": frozenset({"KDTree"}),
    "sklearn._loss._loss": frozenset(
        {
            "CyHalfSquaredError",
            "CyAbsoluteError",
            "CyPinballLoss",
            "CyHuberLoss",
            "CyHalfPoissonLoss",
            "CyHalfGammaLoss",
            "CyHalfTweedieLoss",
            "CyHalfTweedieLossIdentity",
            "CyHalfBinomialLoss",
            "CyExponentialLoss",
            "CyHalfMultinomialLoss",
        }
    ),
    "sklearn.metrics._dist_metrics": frozenset(
        {
            "EuclideanDistance64",
            "EuclideanDistance32",
            "ManhattanDistance64",
            "MinkowskiDistance64",
            "newObj",
        }
    ),
    "sklearn.metrics._scorer": frozenset({"_passthrough_scorer"}),
    "pandas._libs.internals": frozenset({"_unpickle_block", "BlockPlacement"}),
    "pandas._libs.tslibs.timestamps": frozenset({"_unpickle_timestamp", "Timestamp"}),
    "pandas._libs.tslibs.timedeltas": frozenset({"_timedelta_unpickle", "Timedelta"}),
    "pandas._libs.tslibs.nattype": frozenset({"__nat_unpickle", "NaTType"}),
    "pandas._libs.tslibs.offsets": frozenset({"_unpickle_offset"}),
    "pandas._libs.tslibs.period": frozenset({"_unpickle_period"}),
    "pandas._libs.arrays": frozenset({"NDArrayBacked"}),
    "pandas._libs.sparse": frozenset({"IntIndex", "BlockIndex"}),
    "pandas.core.indexes.base": frozenset({"_new_Index", "Index"}),
    "pandas.core.indexes.datetimes": frozenset({"_new_DatetimeIndex", "DatetimeIndex"}),
    "pandas.core.indexes.period": frozenset({"_new_PeriodIndex", "PeriodIndex"}),
    "pandas.core.arrays.categorical": frozenset({"Categorical", "_unpickle_categorical"}),
    "pandas.core.internals.blocks": frozenset({"new_block", "maybe_coerce_values"}),
    "pandas.core.internals.managers": frozenset({"BlockManager", "SingleBlockManager"}),
    "pandas.core.arrays.datetimes": frozenset({"DatetimeArray"}),
    "pandas.core.arrays.timedeltas": frozenset({"TimedeltaArray"}),
    "torch": frozenset(
        {
            "Size",
            "device",
            "dtype",
            "float32",
            "float64",
            "float16",
            "bfloat16",
            "int64",
            "int32",
            "int16",
            "int8",
            "uint8",
            "bool",
            "complex64",
            "complex128",
            "float",
            "double",
            "half",
            "long",
            "int",
            "short",
            "layout",
            "strided",
            "sparse_coo",
            "memory_format",
            "contiguous_format",
            "channels_last",
            "preserve_format",
            "FloatStorage",
            "DoubleStorage",
            "HalfStorage",
            "BFloat16Storage",
            "LongStorage",
            "IntStorage",
            "ShortStorage",
            "CharStorage",
            "ByteStorage",
            "BoolStorage",
            "ComplexFloatStorage",
            "ComplexDoubleStorage",
            "QInt8Storage",
            "QUInt8Storage",
            "QInt32Storage",
            "UntypedStorage",
            "TypedStorage",
            "Tensor",
            "finfo",
            "iinfo",
        }
    ),
    "torch._utils": frozenset(
        {
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_tensor_v3",
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
            "_rebuild_sparse_tensor",
            "_rebuild_nested_tensor",
            "_rebuild_device_tensor_from_numpy",
            "_rebuild_meta_tensor_no_storage",
            "_rebuild_wrapper_subclass",
            "_rebuild_qtensor",
            "_rebuild_xla_tensor",
            "_rebuild_mtia_tensor",
            "_rebuild_device_tensor_from_cpu_tensor",
        }
    ),
    "torch.storage": frozenset({"_load_from_bytes", "UntypedStorage", "TypedStorage"}),
    "torch.nn.parameter": frozenset({"Parameter", "Buffer"}),
    "torch._tensor": frozenset({"_rebuild_from_type_v2", "Tensor"}),
    "torch.serialization": frozenset({"_get_layout"}),
    "torch.nn.modules.container": frozenset(
        {"Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
    ),
    "torch.optim.lr_scheduler": frozenset({"StepLR", "LambdaLR", "CosineAnnealingLR"}),
}

#: Callables that are safe only with constant arguments (checked at the call).
CONSTANT_ARGS_ONLY = frozenset({"_codecs:encode", "torch.storage:_load_from_bytes"})

#: Allowed but reported: legacy joblib wrappers that read arrays from sibling files.
EXTERNAL_ARRAY_WRAPPERS = frozenset(
    {
        "joblib.numpy_pickle:NDArrayWrapper",
        "joblib.numpy_pickle:ZNDArrayWrapper",
        "joblib.numpy_pickle_compat:NDArrayWrapper",
        "joblib.numpy_pickle_compat:ZNDArrayWrapper",
    }
)

# --------------------------------------------------------------------------------------------
# Family rules (see module docstring, point 6).
# --------------------------------------------------------------------------------------------
_FAMILY_ROOTS = ("sklearn.", "scipy.", "pandas.", "torch.nn.", "torch.optim.")
_FAMILY_MODULES = frozenset({"pandas", "scipy.sparse", "sklearn"})
#: Cython-generated unpickle helpers (``__pyx_unpickle_<Class>``) and sklearn's ``newObj``
#: only create an instance of their own extension class.
_FAMILY_HELPER = re.compile(r"__pyx_unpickle_\w+\Z|newObj\Z")
_FAMILY_DENIED_PREFIXES = (
    "sklearn.datasets",
    "sklearn.externals",
    "sklearn.utils._testing",
    "sklearn.utils._joblib",
    "sklearn.utils.parallel",
    "sklearn.utils._show_versions",
    "sklearn.utils._openmp_helpers",
    "sklearn.conftest",
    "sklearn.tests",
    "scipy._lib",
    "scipy.io",
    "scipy.datasets",
    "scipy.misc",
    "scipy.weave",
    "scipy.conftest",
    "pandas.io",
    "pandas.util",
    "pandas._testing",
    "pandas.testing",
    "pandas.conftest",
    "pandas.tests",
    "pandas.core.computation",
    "pandas.plotting",
    "pandas.compat",
    "pandas.core.config_init",
    "pandas._config",
    "torch.nn.parallel",
    "torch.optim._multi_tensor",
)
#: CamelCase names that, re-exported by a family module, would reach something dangerous.
_FAMILY_DENIED_NAMES = frozenset(
    {
        "Popen",
        "CompletedProcess",
        "Thread",
        "Timer",
        "Process",
        "Pool",
        "ThreadPool",
        "ThreadPoolExecutor",
        "ProcessPoolExecutor",
        "Parallel",
        "Memory",
        "MemorizedFunc",
        "Path",
        "TemporaryDirectory",
        "NamedTemporaryFile",
        "SpooledTemporaryFile",
        "TemporaryFile",
        "FileIO",
        "BufferedWriter",
        "TextIOWrapper",
        "ZipFile",
        "TarFile",
        "Request",
        "Session",
        "HTTPConnection",
        "HTTPSConnection",
        "SocketType",
        "CDLL",
        "PyDLL",
        "FunctionType",
        "CodeType",
        "Pickler",
        "Unpickler",
        "ExitStack",
        "StringIO",
        "Listener",
        "Client",
        "Connection",
        "GzipFile",
        "ArgumentParser",
        "Queue",
        "ThreadpoolController",
        "ABCMeta",
        "ModuleType",
        "MethodType",
        "PathLike",
        "Progress",
        "ScriptModule",
        "ScriptFunction",
        "CompilationUnit",
        "PyTorchFileReader",
        "PyTorchFileWriter",
    }
)

#: Pure functions that fitted models legitimately reference (``FunctionTransformer(np.log1p)``,
#: ``make_scorer(accuracy_score)``): NumPy/SciPy math and scikit-learn metrics. The metric
#: modules were checked to re-export no foreign callables.
_MATH = frozenset(
    {
        "log",
        "log1p",
        "log2",
        "log10",
        "exp",
        "expm1",
        "exp2",
        "sqrt",
        "cbrt",
        "square",
        "abs",
        "absolute",
        "fabs",
        "sign",
        "negative",
        "reciprocal",
        "power",
        "float_power",
        "sum",
        "mean",
        "median",
        "std",
        "var",
        "min",
        "max",
        "amin",
        "amax",
        "prod",
        "cumsum",
        "cumprod",
        "nanmean",
        "nansum",
        "nanmedian",
        "nanstd",
        "nanvar",
        "nanmin",
        "nanmax",
        "percentile",
        "quantile",
        "average",
        "clip",
        "floor",
        "ceil",
        "round",
        "around",
        "rint",
        "trunc",
        "tanh",
        "sinh",
        "cosh",
        "arcsinh",
        "arctan",
        "sin",
        "cos",
        "tan",
        "maximum",
        "minimum",
        "add",
        "subtract",
        "multiply",
        "divide",
        "true_divide",
        "mod",
        "argmax",
        "argmin",
        "isnan",
        "isfinite",
        "logical_not",
        "ravel",
        "transpose",
        "asarray",
        "nan_to_num",
        "sort",
    }
)
_FUNCTION_MODULES: dict[str, frozenset[str] | None] = {
    "numpy": _MATH,
    "scipy.special": frozenset(
        {
            "expit",
            "logit",
            "softmax",
            "log_softmax",
            "erf",
            "erfc",
            "gamma",
            "gammaln",
            "boxcox",
            "inv_boxcox",
            "boxcox1p",
            "inv_boxcox1p",
            "xlogy",
            "logsumexp",
            "log1p",
        }
    ),
    "scipy.special._ufuncs": frozenset(
        {
            "expit",
            "logit",
            "erf",
            "erfc",
            "gamma",
            "gammaln",
            "boxcox",
            "inv_boxcox",
            "boxcox1p",
            "inv_boxcox1p",
            "xlogy",
            "log1p",
        }
    ),
    # None: any lower-case function defined in these scikit-learn metric modules.
    "sklearn.metrics._classification": None,
    "sklearn.metrics._regression": None,
    "sklearn.metrics._ranking": None,
    "sklearn.metrics.pairwise": None,
    "sklearn.metrics.cluster._supervised": None,
    "sklearn.metrics.cluster._unsupervised": None,
    "sklearn.feature_selection._univariate_selection": None,
    "sklearn.feature_selection._mutual_info": None,
}
_FUNCTION_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_CLASS_NAME = re.compile(r"_?[A-Z][A-Za-z0-9_]*\Z")

# --------------------------------------------------------------------------------------------
# Denylist: module (exact or as prefix) -> [(name pattern, severity, rule, reason)].
# --------------------------------------------------------------------------------------------
_Entry = tuple[str, Severity, Rule, str]
_EXEC = R.DANGEROUS_IMPORT
_SYS = R.SYSTEM_IMPORT
_GAD = R.GADGET_IMPORT

_OS_ENTRIES: list[_Entry] = [
    ("system", _C, _EXEC, "shell command execution"),
    ("popen", _C, _EXEC, "shell command execution"),
    ("exec*", _C, _EXEC, "replaces the process with another program"),
    ("spawn*", _C, _EXEC, "starts another program"),
    ("posix_spawn*", _C, _EXEC, "starts another program"),
    ("startfile", _C, _EXEC, "starts another program"),
    ("fork*", _H, _SYS, "forks the process"),
    ("kill*", _H, _SYS, "sends signals to processes"),
    ("putenv", _H, _SYS, "changes the process environment"),
    ("environ", _H, _SYS, "reads or changes the process environment"),
    ("*", _H, _SYS, "operating-system access (files, processes, environment)"),
]

_DENY: dict[str, list[_Entry]] = {
    "os": _OS_ENTRIES,
    "posix": _OS_ENTRIES,
    "nt": _OS_ENTRIES,
    "subprocess": [("*", _C, _EXEC, "runs external programs")],
    "_posixsubprocess": [("*", _C, _EXEC, "runs external programs")],
    "pty": [("*", _C, _EXEC, "spawns a program on a pseudo-terminal")],
    "builtins": [
        ("eval", _C, _EXEC, "evaluates Python code"),
        ("exec", _C, _EXEC, "executes Python code"),
        ("compile", _C, _EXEC, "compiles Python code"),
        ("__import__", _C, _EXEC, "imports arbitrary modules"),
        ("getattr", _C, _GAD, "reaches any attribute of any object (code-execution gadget)"),
        ("setattr", _C, _GAD, "changes attributes of objects, classes or modules"),
        ("delattr", _C, _GAD, "deletes attributes of objects, classes or modules"),
        ("globals", _C, _GAD, "exposes module globals"),
        ("locals", _C, _GAD, "exposes local variables"),
        ("vars", _C, _GAD, "exposes object namespaces"),
        ("breakpoint", _C, _EXEC, "starts a debugger"),
        ("open", _H, _SYS, "opens files"),
        ("input", _H, _SYS, "reads from the terminal"),
        ("exit", _H, _SYS, "terminates the process"),
        ("quit", _H, _SYS, "terminates the process"),
        ("help", _H, _SYS, "starts the interactive help system"),
        ("memoryview", _H, _GAD, "exposes raw memory of objects"),
        ("type", _H, _GAD, "creates classes at load time"),
        ("super", _H, _GAD, "reaches methods of parent classes"),
        ("classmethod", _H, _GAD, "wraps callables"),
        ("staticmethod", _H, _GAD, "wraps callables"),
        ("property", _H, _GAD, "wraps callables"),
        ("print", _H, _SYS, "writes to standard output or files"),
        ("map", _H, _GAD, "applies a callable (gadget)"),
        ("filter", _H, _GAD, "applies a callable (gadget)"),
        ("sorted", _H, _GAD, "applies a key callable (gadget)"),
        ("max", _H, _GAD, "applies a key callable (gadget)"),
        ("min", _H, _GAD, "applies a key callable (gadget)"),
        ("iter", _H, _GAD, "calls a callable until a sentinel (gadget)"),
        ("next", _H, _GAD, "drives iterators (gadget)"),
    ],
    "runpy": [("*", _C, _EXEC, "runs Python modules or scripts")],
    "code": [("*", _C, _EXEC, "interactive interpreter that executes Python code")],
    "codeop": [("*", _C, _EXEC, "compiles Python code")],
    "importlib": [("*", _C, _EXEC, "imports arbitrary modules")],
    "imp": [("*", _C, _EXEC, "imports arbitrary modules")],
    "pkgutil": [("*", _C, _EXEC, "imports arbitrary modules by name")],
    "zipimport": [("*", _C, _EXEC, "imports code from zip files")],
    "marshal": [("*", _C, _EXEC, "deserialises Python code objects")],
    "types": [
        ("FunctionType", _C, _EXEC, "builds a function from a code object"),
        ("CodeType", _C, _EXEC, "builds a Python code object"),
        ("LambdaType", _C, _EXEC, "builds a function from a code object"),
        ("MethodType", _C, _GAD, "binds callables to objects"),
        ("*", _H, _GAD, "builds interpreter objects"),
    ],
    "pickle": [("*", _C, _EXEC, "deserialises a nested pickle (runs its code)")],
    "_pickle": [("*", _C, _EXEC, "deserialises a nested pickle (runs its code)")],
    "pickletools": [("*", _H, _GAD, "pickle internals")],
    "copyreg": [
        ("add_extension", _C, _EXEC, "registers extension codes for EXT opcodes"),
        ("*", _H, _GAD, "changes how objects are pickled"),
    ],
    "dill": [("*", _C, _EXEC, "deserialises code (dill)")],
    "cloudpickle": [("*", _C, _EXEC, "deserialises code (cloudpickle)")],
    "joblib": [
        ("load", _C, _EXEC, "loads a nested joblib pickle"),
        ("*", _H, _SYS, "joblib helpers (files, processes, caching)"),
    ],
    "shelve": [("*", _C, _EXEC, "opens a pickle database")],
    "shutil": [
        ("rmtree", _H, _SYS, "deletes folders"),
        ("*", _H, _SYS, "copies, moves or deletes files"),
    ],
    "tempfile": [("*", _H, _SYS, "creates files")],
    "glob": [("*", _H, _SYS, "lists files")],
    "fileinput": [("*", _H, _SYS, "reads files")],
    "linecache": [("*", _H, _SYS, "reads files")],
    "posixpath": [("*", _H, _SYS, "file-system path access")],
    "ntpath": [("*", _H, _SYS, "file-system path access")],
    "genericpath": [("*", _H, _SYS, "file-system path access")],
    "io": [("*", _H, _SYS, "file input/output")],
    "_io": [("*", _H, _SYS, "file input/output")],
    "codecs": [
        ("open", _H, _SYS, "opens files"),
        ("*", _H, _GAD, "codec machinery (can reach arbitrary codecs)"),
    ],
    "pathlib": [("*", _H, _SYS, "file-system access")],
    "socket": [("*", _H, _SYS, "network access")],
    "_socket": [("*", _H, _SYS, "network access")],
    "ssl": [("*", _H, _SYS, "network access")],
    "select": [("*", _H, _SYS, "network access")],
    "asyncio": [("*", _H, _SYS, "network and process access")],
    "urllib": [("*", _H, _SYS, "network access (URL opener)")],
    "http": [("*", _H, _SYS, "network access (HTTP)")],
    "ftplib": [("*", _H, _SYS, "network access (FTP)")],
    "smtplib": [("*", _H, _SYS, "network access (SMTP)")],
    "telnetlib": [("*", _H, _SYS, "network access (telnet)")],
    "poplib": [("*", _H, _SYS, "network access")],
    "imaplib": [("*", _H, _SYS, "network access")],
    "nntplib": [("*", _H, _SYS, "network access")],
    "xmlrpc": [("*", _H, _SYS, "network access (XML-RPC)")],
    "requests": [("*", _H, _SYS, "network access (HTTP)")],
    "httpx": [("*", _H, _SYS, "network access (HTTP)")],
    "aiohttp": [("*", _H, _SYS, "network access (HTTP)")],
    "urllib3": [("*", _H, _SYS, "network access (HTTP)")],
    "webbrowser": [("*", _C, _EXEC, "starts a web browser (runs programs)")],
    "ctypes": [("*", _C, _EXEC, "calls native code")],
    "_ctypes": [("*", _C, _EXEC, "calls native code")],
    "cffi": [("*", _C, _EXEC, "calls native code")],
    "cProfile": [("*", _C, _EXEC, "profiler that executes Python code")],
    "profile": [("*", _C, _EXEC, "profiler that executes Python code")],
    "pdb": [("*", _C, _EXEC, "debugger that executes Python code")],
    "bdb": [("*", _C, _EXEC, "debugger that executes Python code")],
    "timeit": [("*", _C, _EXEC, "executes Python code strings")],
    "trace": [("*", _C, _EXEC, "executes Python code under tracing")],
    "doctest": [("*", _C, _EXEC, "executes Python code in docstrings")],
    "unittest": [("*", _H, _GAD, "test runner (runs code)")],
    "numpy.testing": [
        ("runstring", _C, _EXEC, "executes Python code strings"),
        ("*", _H, _GAD, "NumPy test helpers (run code)"),
    ],
    "numpy.f2py": [("*", _C, _EXEC, "compiles and imports code")],
    "numpy.distutils": [("*", _C, _EXEC, "runs build commands")],
    "numpy.ctypeslib": [("*", _C, _EXEC, "calls native code")],
    "numpy": [
        ("load", _C, _EXEC, "loads files, including pickles"),
        ("loads", _C, _EXEC, "deserialises a nested pickle"),
        ("fromfile", _H, _SYS, "reads files"),
        ("save*", _H, _SYS, "writes files"),
        ("loadtxt", _H, _SYS, "reads files"),
        ("genfromtxt", _H, _SYS, "reads files"),
        ("memmap", _H, _SYS, "maps files"),
        ("tofile", _H, _SYS, "writes files"),
        ("DataSource", _H, _SYS, "opens files and URLs"),
    ],
    "numpy.lib.npyio": [("*", _H, _SYS, "NumPy file input/output")],
    "numpy.lib._npyio_impl": [("*", _H, _SYS, "NumPy file input/output")],
    "numpy.lib.format": [("*", _H, _SYS, "NumPy file input/output")],
    "numpy.lib._datasource": [("*", _H, _SYS, "opens files and URLs")],
    "pip": [("*", _C, _EXEC, "installs packages (runs their code)")],
    "setuptools": [("*", _C, _EXEC, "runs build commands")],
    "distutils": [("*", _C, _EXEC, "runs build commands")],
    "ensurepip": [("*", _C, _EXEC, "installs packages")],
    "venv": [("*", _H, _SYS, "creates environments")],
    "sys": [
        ("modules", _C, _GAD, "reaches every imported module"),
        ("*", _H, _GAD, "interpreter internals"),
    ],
    "gc": [("*", _H, _GAD, "reaches every live object")],
    "inspect": [("*", _H, _GAD, "reaches frames and globals")],
    "functools": [
        ("partial", _H, _GAD, "binds arguments to any callable (gadget)"),
        ("*", _H, _GAD, "higher-order function helpers (gadget)"),
    ],
    "operator": [
        ("attrgetter", _C, _GAD, "reaches any attribute (gadget)"),
        ("methodcaller", _C, _GAD, "calls any method (gadget)"),
        ("call", _C, _GAD, "calls any callable (gadget)"),
        ("getitem", _H, _GAD, "reaches items of any object (gadget)"),
        ("itemgetter", _H, _GAD, "reaches items of any object (gadget)"),
        ("*", _H, _GAD, "operator helpers (gadget)"),
    ],
    "_operator": [
        ("attrgetter", _C, _GAD, "reaches any attribute (gadget)"),
        ("methodcaller", _C, _GAD, "calls any method (gadget)"),
        ("call", _C, _GAD, "calls any callable (gadget)"),
        ("*", _H, _GAD, "operator helpers (gadget)"),
    ],
    "typing": [("*", _C, _EXEC, "evaluates type expressions (eval)")],
    "_functools": [("*", _H, _GAD, "higher-order function helpers (gadget)")],
    "itertools": [("*", _H, _GAD, "drives iterators (gadget)")],
    "threading": [("*", _H, _SYS, "starts threads running callables")],
    "_thread": [("*", _H, _SYS, "starts threads running callables")],
    "multiprocessing": [("*", _C, _EXEC, "starts processes running callables")],
    "concurrent": [("*", _H, _SYS, "runs callables in pools")],
    "signal": [("*", _H, _SYS, "changes signal handlers")],
    "atexit": [("*", _H, _GAD, "registers callables run at exit")],
    "platform": [("*", _H, _SYS, "runs programs to query the platform")],
    "sysconfig": [("*", _H, _SYS, "reads interpreter configuration")],
    "site": [("*", _H, _SYS, "changes the import path")],
    "logging": [("*", _H, _SYS, "logging configuration (files, sockets, eval in config)")],
    "IPython": [("*", _C, _EXEC, "interactive shell that executes code")],
    "torch": [
        ("load", _C, _EXEC, "loads a nested PyTorch checkpoint"),
        ("hub", _C, _EXEC, "downloads and runs code"),
        ("jit", _C, _EXEC, "loads and runs TorchScript"),
        ("from_file", _H, _SYS, "reads files"),
        ("save", _H, _SYS, "writes files"),
    ],
    "torch.hub": [("*", _C, _EXEC, "downloads and runs code")],
    "torch.serialization": [("*", _C, _EXEC, "loads nested checkpoints or files")],
    "torch.jit": [("*", _C, _EXEC, "loads and runs TorchScript")],
    "torch.package": [("*", _C, _EXEC, "imports packaged code")],
    "torch._dynamo": [("*", _C, _EXEC, "compiles and runs code")],
    "torch.utils.cpp_extension": [("*", _C, _EXEC, "compiles and loads native code")],
    "torch._C": [("*", _H, _GAD, "PyTorch internals")],
    "torch._ops": [("*", _H, _GAD, "PyTorch operator registry")],
    "tensorflow": [("*", _H, _SYS, "TensorFlow API (file and network ops)")],
    "keras": [("*", _H, _GAD, "Keras API (can load code)")],
    "yaml": [("*", _H, _GAD, "YAML loaders (some construct objects)")],
    "jinja2": [("*", _C, _EXEC, "template engine that executes code")],
    "mako": [("*", _C, _EXEC, "template engine that executes code")],
    "bz2": [("open", _H, _SYS, "opens files"), ("*", _H, _SYS, "compression with file access")],
    "gzip": [("*", _H, _SYS, "compression with file access")],
    "lzma": [("*", _H, _SYS, "compression with file access")],
    "zipfile": [("*", _H, _SYS, "archive file access")],
    "tarfile": [("*", _H, _SYS, "archive file access")],
    "sqlite3": [("*", _H, _SYS, "database file access")],
    "dbm": [("*", _H, _SYS, "database file access")],
    "mmap": [("*", _H, _SYS, "memory-maps files")],
    "resource": [("*", _H, _SYS, "changes process limits")],
    "pwd": [("*", _H, _SYS, "reads the user database")],
    "grp": [("*", _H, _SYS, "reads the group database")],
    "fcntl": [("*", _H, _SYS, "file control")],
    "pydoc": [("*", _C, _EXEC, "imports modules and runs pagers")],
    "_osx_support": [("*", _C, _EXEC, "runs programs")],
    "_aix_support": [("*", _C, _EXEC, "runs programs")],
    "uuid": [("_get_command_stdout", _C, _EXEC, "runs external programs")],
    "ensurepip._bundled": [("*", _C, _EXEC, "installs packages")],
    "sklearn.utils._testing": [("*", _C, _EXEC, "test helpers that run Python code")],
    "sklearn.externals": [("*", _H, _GAD, "vendored third-party code")],
    "sklearn.datasets": [("*", _H, _SYS, "downloads or reads data sets")],
    "pandas.io": [("*", _H, _SYS, "reads and writes files and URLs")],
    "pandas": [
        ("read_*", _H, _SYS, "reads files and URLs"),
        ("eval", _C, _EXEC, "evaluates expressions"),
    ],
    "pandas.core.computation": [("*", _C, _EXEC, "evaluates expressions")],
    "scipy.io": [("*", _H, _SYS, "reads and writes files")],
    "scipy._lib": [("*", _H, _GAD, "SciPy internals")],
}

#: Module names that a dotted qualified name may reach through a re-export (``torch.os``).
_REACHABLE_MODULES = frozenset(_DENY) | frozenset(m.split(".")[0] for m in _DENY)
_DUNDER = re.compile(r"__\w+__\Z")

#: Dotted qualified names that are safe in real pickles (nested classes and alternate ctors).
_DOTTED_ALLOW = frozenset(
    {
        "builtins:dict.fromkeys",
        "collections:OrderedDict.fromkeys",
        "datetime:datetime.fromisoformat",
        # zoneinfo.ZoneInfo.__reduce__ returns (getattr(ZoneInfo, "_unpickle"), (key, flag))
        "zoneinfo:ZoneInfo._unpickle",
    }
)


def canonical(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names to the Python 3 names ``pickle`` would import (``fix_imports``)."""
    key = (module, name)
    if key in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[key]
    if module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    if module == "commands":
        module = "subprocess"
    elif module == "exceptions":
        module = "builtins"
    return module, name


#: Modules whose deny entries apply to the module itself, not to its submodules.
_EXACT_ONLY = frozenset({"torch", "numpy", "pandas", "joblib", "uuid", "builtins", "copyreg"})
_TORCH_DATA = re.compile(
    r"(?:float|int|uint|bfloat|complex|qint|quint|bits|cfloat|cdouble|chalf|cfloat)\w*\Z"
    r"|\w+Storage\Z"
)


def _deny_lookup(module: str, name: str) -> tuple[Severity, Rule, str] | None:
    parts = module.split(".")
    head = name.split(".", 1)[0]
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        entries = _DENY.get(key)
        if entries is None or (i < len(parts) and key in _EXACT_ONLY):
            continue
        for pattern, sev, rule, reason in entries:
            if pattern == "*" or fnmatch.fnmatchcase(head, pattern):
                return sev, rule, reason
    return None


def _family_allowed(module: str, name: str) -> bool:
    if not module.startswith(_FAMILY_ROOTS) and module not in _FAMILY_MODULES:
        if not (module.startswith("numpy.") and _FAMILY_HELPER.match(name)):
            return False
        return not module.startswith(("numpy.testing", "numpy.f2py", "numpy.distutils"))
    if "." in name or name in _FAMILY_DENIED_NAMES:
        return False
    if not (_CLASS_NAME.match(name) or _FAMILY_HELPER.match(name)):
        return False
    return not any(
        module == p or module.startswith(p + ".") or module.startswith(p + "_")
        for p in _FAMILY_DENIED_PREFIXES
    )


def _config_allows(module: str, name: str, config: ScanConfig | None) -> bool:
    if config is None or not config.allow_globals:
        return False
    allowed = config.allow_globals
    if f"{module}:{name}" in allowed or f"{module}:*" in allowed:
        return True
    parts = module.split(".")
    return any(f"{'.'.join(parts[:i])}.*:*" in allowed for i in range(1, len(parts) + 1))


def judge_global(module: str, name: str, config: ScanConfig | None = None) -> GlobalVerdict:
    """Decide whether importing ``module:name`` while unpickling is safe."""
    original = f"{module}:{name}"
    module, name = canonical(module, name)
    shown = f"{module}.{name}"
    renamed = f" (written as {original})" if f"{module}:{name}" != original else ""
    if not module or not name:
        return GlobalVerdict(False, _H, R.UNKNOWN_IMPORT, f"{original!r} (empty import target)")
    segments = name.split(".")
    if len(segments) == 1:
        if name in _ALLOW.get(module, ()):
            return GlobalVerdict(True, None, None, f"{shown} is on the allowlist")
        if module == "torch" and _TORCH_DATA.match(name):
            return GlobalVerdict(True, None, None, f"{shown} is a PyTorch dtype or storage")
        denied = _deny_lookup(module, name)
        if denied is not None and (denied[0] is _C or not _DUNDER.match(name)):
            sev, rule, reason = denied
            return GlobalVerdict(False, sev, rule, f"{shown}{renamed} ({reason})")
        if _DUNDER.match(name):
            return GlobalVerdict(
                False, _C, R.DUNDER_IMPORT, f"{shown}{renamed} (dunder attribute of a module)"
            )
    else:
        if any(_DUNDER.match(s) for s in segments):
            return GlobalVerdict(
                False,
                _C,
                R.DUNDER_IMPORT,
                f"{shown}{renamed} (walks Python internals through a dunder attribute)",
            )
        if f"{module}:{name}" in _DOTTED_ALLOW:
            return GlobalVerdict(True, None, None, f"{shown} is on the allowlist")
        # Judge by what the dotted name reaches: a module re-export or a method of a class.
        for i in range(1, len(segments)):
            reached_module = ".".join(segments[:i])
            if reached_module in _REACHABLE_MODULES:
                inner = judge_global(reached_module, ".".join(segments[i:]), config)
                if not inner.allowed:
                    why = f"{shown}{renamed} reaches {inner.reason}"
                    return GlobalVerdict(False, inner.severity, inner.rule, why)
        denied = _deny_lookup(module, name)
        if denied is not None:
            sev, rule, reason = denied
            return GlobalVerdict(False, sev, rule, f"{shown}{renamed} ({reason})")
        owner = judge_global(module, segments[0], config)
        if not owner.allowed:
            return GlobalVerdict(
                False,
                owner.severity if owner.severity and owner.severity > Severity.MEDIUM else _H,
                owner.rule if owner.rule is not R.UNKNOWN_IMPORT else R.GADGET_IMPORT,
                f"{shown}{renamed} (attribute of a non-allowlisted target: {owner.reason})",
            )
        if _config_allows(module, name, config):
            return GlobalVerdict(True, None, None, f"{shown} is allowed by the configuration")
        return GlobalVerdict(
            False,
            _H,
            R.GADGET_IMPORT,
            f"{shown}{renamed} (reaches the attribute {'.'.join(segments[1:])!r} of "
            f"{module}.{segments[0]}; methods reached this way act on arbitrary objects)",
        )
    if module in _FUNCTION_MODULES and _FUNCTION_NAME.match(name):
        names = _FUNCTION_MODULES[module]
        if names is None or name in names:
            return GlobalVerdict(True, None, None, f"{shown} is an allowlisted pure function")
    if _family_allowed(module, name):
        return GlobalVerdict(True, None, None, f"{shown} is a class of an allowlisted library")
    if _config_allows(module, name, config):
        return GlobalVerdict(True, None, None, f"{shown} is allowed by the configuration")
    return GlobalVerdict(
        False,
        Severity.MEDIUM,
        R.UNKNOWN_IMPORT,
        f"{shown}{renamed} (not on the allowlist: unknown import)",
    )
