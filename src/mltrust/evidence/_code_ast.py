"""ML-specific dangerous-code rules over Python's ``ast`` (nothing is imported or run).

Every callee, argument and base class is first resolved to *canonical dotted names* through one
per-module symbol table (:class:`_Symbols`), and the rule table runs on those names, never on
the text of the code. The table follows ``import``/``import as``/``from import``, assignments of
names and attributes, ``__import__``/``importlib.import_module`` of constant strings,
``getattr`` with a constant name, ``X.__dict__[...]``/``vars(X)[...]`` with a constant key and
``sys.modules[...]``. It is flow-insensitive: a name bound several times (in any scope) stands
for every value it is ever bound to, so a rebinding can only add findings.

:func:`analyse_project` also follows names across the project's own modules (what each module
exports, to a fixed point). A dangerous module or callable that leaves the table (passed to a
call, returned, stored in a container or an attribute) is a finding where it leaves, so an
attribute of a receiver the table cannot resolve (``m.loads`` with ``m`` a parameter) need not
be one. Code given as a constant string to ``exec``/``eval``/``compile``/``timeit``... is
parsed and analysed as part of the module.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from mltrust.config import DEFAULT_LIMITS
from mltrust.evidence import _rules
from mltrust.findings import Rule

__all__ = ["CodeHit", "analyse_source"]

_DESERIALIZERS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "pickle._load",
    "pickle._loads",
    "pickle._Unpickler",
    "cPickle.load",
    "cPickle.loads",
    "cPickle.Unpickler",
    "_pickle.load",
    "_pickle.loads",
    "_pickle.Unpickler",
    "dill.load",
    "dill.loads",
    "dill.Unpickler",
    "dill.load_session",
    "dill.load_module",
    "cloudpickle.load",
    "cloudpickle.loads",
    "cloudpickle.Unpickler",
    "joblib.load",
    "joblib.numpy_pickle.load",
    "joblib.numpy_pickle.NumpyUnpickler",
    "sklearn.externals.joblib.load",
    "pandas.read_pickle",
    "pandas.io.pickle.read_pickle",
    "pandas.io.api.read_pickle",
    "pandas.compat.pickle_compat.load",
    "pandas.compat.pickle_compat.loads",
    "shelve.open",
    "shelve.Shelf",
    "shelve.BsdDbShelf",
    "shelve.DbfilenameShelf",
    "jsonpickle.decode",
    "jsonpickle.loads",
    "marshal.load",
    "marshal.loads",
    "torch.package.PackageImporter",
    # multiprocessing: a connection's recv() unpickles whatever the peer process sends
    "multiprocessing.reduction.ForkingPickler.loads",
    "multiprocessing.connection._ForkingPickler.loads",
    "multiprocessing.connection.Client().recv",
    "multiprocessing.connection.Listener().accept().recv",
    "multiprocessing.connection.Connection().recv",
    "multiprocessing.connection.PipeConnection().recv",
    # klepto's archives store entries with pickle or dill
    *(
        f"{module}.{archive}"
        for module in ("klepto", "klepto.archives")
        for archive in (
            "file_archive",
            "dir_archive",
            "sql_archive",
            "sqltable_archive",
            "hdf_archive",
            "hdfdir_archive",
        )
    ),
}
#: Key-value stores that unpickle their values unless told otherwise: name -> (the argument
#: that chooses how values are decoded, its position, the values that still unpickle). An
#: argument of None: the store always unpickles.
_PICKLING_STORES: dict[str, tuple[str, int, frozenset[str]] | None] = {
    **dict.fromkeys(
        ("sqlitedict.SqliteDict", "sqlitedict.sqlitedict.SqliteDict", "sqlitedict.open"),
        ("decode", 6, frozenset()),
    ),
    **dict.fromkeys(
        ("diskcache.Cache", "diskcache.core.Cache"),
        ("disk", 2, frozenset({"diskcache.Disk", "diskcache.core.Disk"})),
    ),
    **dict.fromkeys(
        ("diskcache.FanoutCache", "diskcache.fanout.FanoutCache"),
        ("disk", 3, frozenset({"diskcache.Disk", "diskcache.core.Disk"})),
    ),
    **dict.fromkeys(
        (
            "diskcache.Deque",
            "diskcache.Index",
            "diskcache.persistent.Deque",
            "diskcache.persistent.Index",
        ),
        None,
    ),
}
#: Modules whose purpose is deserialising: calling any attribute of one is a finding unless the
#: attribute is in :data:`_PICKLE_HARMLESS` (so ``pickle._loads``, ``dill._dill.load`` or a name
#: added by a later release are not missed), and the module itself handed on as a value is one.
_PICKLE_MODULES = frozenset(
    {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "jsonpickle"}
)
#: Attributes of those modules that only serialise, name an error or a constant, or configure.
_PICKLE_HARMLESS = frozenset(
    {
        "dump",
        "dumps",
        "Pickler",
        "CloudPickler",
        "PickleBuffer",
        "PickleError",
        "PicklingError",
        "UnpicklingError",
        "HIGHEST_PROTOCOL",
        "DEFAULT_PROTOCOL",
        "format_version",
        "compatible_formats",
        "bytes_types",
        "whichmodule",
        "version",
        "encode",
        "settings",
        "detect",
        "source",
        "copy",
        "pickles",
        "dump_session",
        "dump_module",
        "register",
        "register_pickle_by_value",
        "unregister_pickle_by_value",
        "set_encoder_options",
        "set_preferred_backend",
        "__name__",
        "__version__",
        "__file__",
        "__doc__",
        "__all__",
        "__spec__",
    }
)
#: Members of an unpickler class that a restricted subclass calls on its base.
_UNPICKLER_MEMBERS = frozenset(
    {"__init__", "find_class", "persistent_load", "__name__", "__qualname__", "__doc__"}
)
_TORCH_LOADS = frozenset({"torch.load", "torch.serialization.load"})
#: torch loaders of a URL that torch.load the download: name -> position of ``weights_only``.
_TORCH_URL_LOADS = {
    "torch.hub.load_state_dict_from_url": 6,
    "torch.utils.model_zoo.load_url": 6,
}
#: torch.hub calls that import the ``hubconf.py`` of a repository (downloaded from GitHub, or
#: a local folder): its code runs, whatever the arguments.
_TORCH_HUB_CODE = frozenset({"torch.hub.load", "torch.hub.list", "torch.hub.help"})
#: Loaders taking ``allow_pickle`` -> its position among the positional arguments.
_NUMPY_LOADS = {
    "numpy.load": 2,
    "np.load": 2,
    "numpy.lib.npyio.load": 2,
    "numpy.lib._npyio_impl.load": 2,
    "numpy.lib.format.read_array": 1,
    "np.lib.format.read_array": 1,
}
#: skops loaders taking ``trusted`` -> its position: the types it names (or, for ``True`` in
#: older releases, any type) are constructed while loading, which can run code.
_SKOPS_LOADS = {
    "skops.io.load": 1,
    "skops.io.loads": 1,
    "skops.io._persist.load": 1,
    "skops.io._persist.loads": 1,
}
#: Keras loaders whose 4th positional argument is ``safe_mode``.
_KERAS_LOADS = frozenset(
    {
        "keras.models.load_model",
        "keras.saving.load_model",
        "keras.src.saving.saving_api.load_model",
        "tensorflow.keras.models.load_model",
        "tensorflow.keras.saving.load_model",
        "tf.keras.models.load_model",
        "tf_keras.models.load_model",
    }
)
#: Callables whose ``**kwargs`` of unknown content may carry ``trust_remote_code=True``.
_REMOTE_CODE_CALLS = frozenset({"from_pretrained", "pipeline", "load_dataset"})
#: The only PyYAML loaders that construct plain data (and only while the module leaves them be).
_YAML_SAFE = frozenset(
    {
        "yaml.SafeLoader",
        "yaml.CSafeLoader",
        "yaml.BaseLoader",
        "yaml.CBaseLoader",
        "yaml.loader.SafeLoader",
        "yaml.loader.BaseLoader",
        "yaml.cyaml.CSafeLoader",
        "yaml.cyaml.CBaseLoader",
    }
)
#: Modules most of whose namespace is a dangerous callable: an attribute of one chosen at run
#: time (``getattr(pickle, name)``) is a finding of the module's rule.
_DANGEROUS_MODULES = {
    "pickle": _rules.CODE_PICKLE_LOAD,
    "cPickle": _rules.CODE_PICKLE_LOAD,
    "_pickle": _rules.CODE_PICKLE_LOAD,
    "dill": _rules.CODE_PICKLE_LOAD,
    "cloudpickle": _rules.CODE_PICKLE_LOAD,
    "joblib": _rules.CODE_PICKLE_LOAD,
    "marshal": _rules.CODE_PICKLE_LOAD,
    "shelve": _rules.CODE_PICKLE_LOAD,
    "jsonpickle": _rules.CODE_PICKLE_LOAD,
    "torch.serialization": _rules.CODE_TORCH_LOAD,
    "yaml": _rules.CODE_YAML_LOAD,
    "builtins": _rules.CODE_EVAL_DYNAMIC,
    "posix": _rules.CODE_LOW_LEVEL_SPAWN,
    "nt": _rules.CODE_LOW_LEVEL_SPAWN,
    "_posixsubprocess": _rules.CODE_LOW_LEVEL_SPAWN,
    "_winapi": _rules.CODE_LOW_LEVEL_SPAWN,
    "ctypes.pythonapi": _rules.CODE_INTERNALS,
}
#: Attribute names that are dangerous on a module chosen at run time (``__import__(name).loads``).
_DANGEROUS_ATTRS = frozenset(
    {"load", "loads", "Unpickler", "unsafe_load", "unsafe_load_all", "eval", "exec", "decode"}
)
#: PyYAML classes that construct only plain data, called directly (``yaml.SafeLoader(s)``).
_YAML_SAFE_PARTS = _YAML_SAFE | {
    "yaml.SafeConstructor",
    "yaml.BaseConstructor",
    "yaml.constructor.SafeConstructor",
    "yaml.constructor.BaseConstructor",
}
#: PyYAML functions that register constructors or resolvers (their Loader argument is not a
#: loader handed on to be used).
_YAML_REGISTRARS = frozenset(
    {
        "yaml.add_constructor",
        "yaml.add_multi_constructor",
        "yaml.add_implicit_resolver",
        "yaml.add_path_resolver",
    }
)
#: Dangerous modules that are findings when handed on as a value (the rule each belongs to).
_VALUE_MODULES = {
    **dict.fromkeys(_PICKLE_MODULES, _rules.CODE_PICKLE_LOAD),
    "builtins": _rules.CODE_EVAL_DYNAMIC,
    "yaml": _rules.CODE_YAML_LOAD,
}
_EVAL = frozenset({"eval", "exec", "compile", "builtins.eval", "builtins.exec", "builtins.compile"})
#: Callables that run (or compile) Python source given as an argument: name -> (position,
#: keyword names) of each argument that is code (or a file or module to run).
_RUNNERS: dict[str, tuple[tuple[int, str], ...]] = {
    "eval": ((0, "source"),),
    "exec": ((0, "source"),),
    "compile": ((0, "source"),),
    "builtins.eval": ((0, "source"),),
    "builtins.exec": ((0, "source"),),
    "builtins.compile": ((0, "source"),),
    "timeit.timeit": ((0, "stmt"), (1, "setup")),
    "timeit.repeat": ((0, "stmt"), (1, "setup")),
    "timeit.Timer": ((0, "stmt"), (1, "setup")),
    "code.compile_command": ((0, "source"),),
    "codeop.compile_command": ((0, "source"),),
    "code.InteractiveInterpreter().runsource": ((0, "source"),),
    "code.InteractiveInterpreter().runcode": ((0, "code"),),
    "code.InteractiveConsole().runsource": ((0, "source"),),
    "code.InteractiveConsole().runcode": ((0, "code"),),
    "code.InteractiveConsole().push": ((0, "line"),),
    "pdb.run": ((0, "statement"),),
    "pdb.runeval": ((0, "expression"),),
    "pdb.runctx": ((0, "statement"),),
    "pdb.Pdb().run": ((0, "cmd"),),
    "pdb.Pdb().runeval": ((0, "expr"),),
    "pdb.Pdb().runctx": ((0, "cmd"),),
    "bdb.Bdb().run": ((0, "cmd"),),
    "bdb.Bdb().runeval": ((0, "expr"),),
    "bdb.Bdb().runctx": ((0, "cmd"),),
    "cProfile.run": ((0, "statement"),),
    "cProfile.runctx": ((0, "statement"),),
    "cProfile.Profile().run": ((0, "cmd"),),
    "cProfile.Profile().runctx": ((0, "cmd"),),
    "profile.run": ((0, "statement"),),
    "profile.runctx": ((0, "statement"),),
    "profile.Profile().run": ((0, "cmd"),),
    "profile.Profile().runctx": ((0, "cmd"),),
    "runpy.run_path": ((0, "path_name"),),
    "runpy.run_module": ((0, "mod_name"),),
    # a module loaded from a file (or a zip, or a folder) chosen by path
    "importlib.util.spec_from_file_location": ((1, "location"),),
    "importlib.machinery.SourceFileLoader": ((1, "path"),),
    "importlib._bootstrap_external.SourceFileLoader": ((1, "path"),),
    "importlib.machinery.FileFinder": ((0, "path"),),
    "zipimport.zipimporter": ((0, "path"),),
    "imp.load_source": ((1, "pathname"),),
    "imp.load_package": ((1, "path"),),
    "pkgutil.get_importer": ((0, "path_item"),),
    "pkgutil.ImpImporter": ((0, "path"),),
    # doctest runs the examples of a string (or of a file) as code
    "doctest.run_docstring_examples": ((0, "f"),),
    "doctest.testfile": ((0, "filename"),),
    "doctest.DocFileSuite": ((0, "paths"),),
    "doctest.debug_src": ((0, "src"),),
    "doctest.debug_script": ((0, "src"),),
    "doctest.DocTestRunner().run": ((0, "test"),),
    "doctest.DebugRunner().run": ((0, "test"),),
}
#: Loaders of a module (or of doctest examples) from a file, a zip or a folder chosen by path:
#: a path that is not a literal is a finding of its own (the file is not the project's code
#: that was analysed), whatever names the path is built from.
_FILE_LOADERS = frozenset(
    {
        "importlib.util.spec_from_file_location",
        "importlib.machinery.SourceFileLoader",
        "importlib._bootstrap_external.SourceFileLoader",
        "importlib.machinery.FileFinder",
        "zipimport.zipimporter",
        "imp.load_source",
        "imp.load_package",
        "pkgutil.get_importer",
        "pkgutil.ImpImporter",
        "doctest.testfile",
        "doctest.DocFileSuite",
    }
)
#: Runners whose argument is a file or module to run, not code text.
_PATH_RUNNERS = _FILE_LOADERS | {"runpy.run_path", "runpy.run_module"}
#: Spellings of the doctest calls whose constant string arguments hold examples (``>>> ...``):
#: the examples are parsed (never run) and analysed as part of the module.
_DOCTEST_SINKS = frozenset(
    {"run_docstring_examples", "debug_src", "debug_script", "get_doctest", "get_examples"}
)
#: Runners of code read from the terminal, or built from a code object: findings whatever the
#: arguments.
_ALWAYS_RUNS = frozenset(
    {
        "code.interact",
        "code.InteractiveConsole().interact",
        "types.FunctionType",
        "types.LambdaType",
        "types.CodeType",
        "timeit.main",
        # compiled code or a native module loaded from a file: nothing to analyse
        "importlib.machinery.SourcelessFileLoader",
        "importlib.machinery.ExtensionFileLoader",
        "imp.load_compiled",
        "imp.load_dynamic",
        "imp.load_module",
    }
)
#: Classes whose instances the table follows (``code.InteractiveInterpreter().runsource``).
_INSTANCE_CLASSES = frozenset(
    {
        "code.InteractiveInterpreter",
        "code.InteractiveConsole",
        "pdb.Pdb",
        "bdb.Bdb",
        "cProfile.Profile",
        "profile.Profile",
        "timeit.Timer",
        "doctest.DocTestParser",
        "doctest.DocTestRunner",
        "doctest.DebugRunner",
        "multiprocessing.connection.Client",
        "multiprocessing.connection.Listener",
        "multiprocessing.connection.Listener().accept",
        "multiprocessing.connection.Connection",
        "multiprocessing.connection.PipeConnection",
    }
)
#: Processes started below the os/subprocess functions that shell-injection checks know.
_SPAWNERS = frozenset(
    {
        "os.posix_spawn",
        "os.posix_spawnp",
        "pty.spawn",
        "_posixsubprocess.fork_exec",
        "_winapi.CreateProcess",
        *(
            f"{module}.{function}"
            for module in ("posix", "nt")
            for function in (
                "system",
                "posix_spawn",
                "posix_spawnp",
                "execv",
                "execve",
                "spawnv",
                "spawnve",
                "startfile",
            )
        ),
    }
)
#: Attributes that lead from any object to every class, module or builtin, or to a caller's
#: globals: the classic sandbox-escape gadgets (reading them is a finding). A frame alone
#: (``gi_frame``, ``cr_frame``: coroutine introspection in async libraries) is not: the escape
#: goes on to its ``f_globals``/``f_builtins``, which are.
_GADGET_ATTRS = frozenset(
    {
        "__subclasses__",
        "__globals__",
        "func_globals",
        "__builtins__",
        "f_globals",
        "f_builtins",
    }
)
#: ``ctypes.pythonapi`` functions that compile or run Python source.
_PYTHONAPI_RUNNERS = ("PyRun_", "Py_CompileString", "PyEval_Eval", "PyImport_ExecCode")
#: Names of calls whose constant string arguments may be Python code: parsed and analysed as
#: part of the module (by name as written, so an alias only adds a parse).
_CODE_SINKS = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "timeit",
        "repeat",
        "Timer",
        "runsource",
        "runcode",
        "push",
        "run",
        "runeval",
        "runctx",
        "compile_command",
    }
)
_CODE_KEYWORDS = frozenset(
    {"source", "stmt", "setup", "statement", "expression", "expr", "cmd", "code", "line"}
)
_DUNDER_IMPORT = frozenset({"__import__", "builtins.__import__", "importlib.__import__"})
_IMPORTERS = _DUNDER_IMPORT | {"importlib.import_module", "pkgutil.resolve_name"}
_GETATTR = frozenset(
    {
        "getattr",
        "builtins.getattr",
        "object.__getattribute__",
        "builtins.object.__getattribute__",
        "type.__getattribute__",
        "builtins.type.__getattribute__",
        "types.ModuleType.__getattribute__",
        "inspect.getattr_static",
    }
)
_SETATTR = frozenset(
    {
        "setattr",
        "builtins.setattr",
        "object.__setattr__",
        "builtins.object.__setattr__",
        "type.__setattr__",
        "types.ModuleType.__setattr__",
    }
)
_DELATTR = frozenset({"delattr", "builtins.delattr", "object.__delattr__", "type.__delattr__"})
_SETITEM = frozenset({"operator.setitem", "operator.__setitem__", "operator.delitem"})
#: Methods that change the object they are called on (a mapping, a class, a module).
_MUTATING_METHODS = frozenset(
    {
        "update",
        "setdefault",
        "pop",
        "popitem",
        "clear",
        "__setitem__",
        "__delitem__",
        "__setattr__",
        "__delattr__",
        "add_constructor",
        "add_multi_constructor",
    }
)
_VARS = frozenset({"vars", "builtins.vars"})
_SCOPES = frozenset({"globals", "locals", "builtins.globals", "builtins.locals"})
_PARTIAL = frozenset({"functools.partial", "functools.partialmethod"})
#: Spellings of one module under another name.
_MODULE_ALIASES = {"__builtins__": "builtins", "__builtin__": "builtins"}
#: A value nothing is known about (a parameter, a call result, a literal).
_UNKNOWN = "?"
#: A module chosen at run time (``__import__(name)``).
_DYNAMIC = "*"
#: ``None`` (a Loader of None makes PyYAML refuse to load).
_NONE = "<None>"
#: Prefix of a class defined in this module.
_CLASS = "<class>:"
_CONSTRUCTOR_METHODS = frozenset({"add_constructor", "add_multi_constructor"})
#: Node types that bind a name, and those that may change a class or module attribute.
_BINDERS = frozenset(
    {
        ast.Import,
        ast.ImportFrom,
        ast.ClassDef,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.Lambda,
        ast.Assign,
        ast.AnnAssign,
        ast.AugAssign,
        ast.NamedExpr,
        ast.For,
        ast.AsyncFor,
        ast.comprehension,
        ast.With,
        ast.AsyncWith,
        ast.ExceptHandler,
        ast.Match,
        ast.Call,
    }
)
_MUTATORS = frozenset({ast.Call, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete})
#: Calls that look at a callable without calling it.
_INSPECTORS = frozenset(
    {
        n
        for b in ("isinstance", "issubclass", "setattr", "delattr", "hasattr", "id", "type", "repr")
        for n in (b, "builtins." + b)
    }
)
#: Nodes that open a scope of their own.
_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.Module)
#: Where a callable is handed on to code the rules do not follow.
_HANDING_ON = (
    ast.keyword,
    ast.arguments,  # a default value: ``def f(d, load=pickle.loads)``
    ast.Return,
    ast.Yield,
    ast.YieldFrom,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.Lambda,
    ast.Starred,
    ast.Await,
)
_CONTENT_CALLS = {
    "read",
    "read_text",
    "read_bytes",
    "readline",
    "readlines",
    "urlopen",
    "get",
    "post",
    "decode",
    "getvalue",
    "recv",
    "input",
}
_CONTENT_ATTRS = {
    "text",
    "content",
    "body",
    "data",
    "form",
    "args",
    "values",
    "json",
    "files",
    "params",
    "query_params",
    "cookies",
    "headers",
    "argv",
    "environ",
    "stdin",
}
_URI_WORDS = ("uri", "url", "path", "file", "model", "source", "src", "content")


@dataclass(frozen=True, slots=True)
class CodeHit:
    rule: Rule
    line: int
    message: str
    #: A file this call runs as Python, named by a constant path (``runpy.run_path("x")``,
    #: ``exec(open("x").read())``, ``SourceFileLoader("m", "x")``): the collector analyses
    #: that file as Python when it is in the project (and drops this hit), else keeps it.
    runs: str = ""


#: Loaders of a module from a file path -> (position, keyword) of the path.
_FILE_LOADER_PATHS = {
    "importlib.machinery.SourceFileLoader": (1, "path"),
    "importlib._bootstrap_external.SourceFileLoader": (1, "path"),
    "importlib.machinery.SourcelessFileLoader": (1, "path"),
    "importlib.util.spec_from_file_location": (1, "location"),
    "importlib._bootstrap_external.spec_from_file_location": (1, "location"),
}
#: Callables whose result's ``read()``/``read_text()`` is a file's text.
_FILE_OPENERS = frozenset(
    {"open", "builtins.open", "io.open", "codecs.open", "pathlib.Path", "pathlib.PurePath"}
    | {"pathlib.PosixPath", "pathlib.WindowsPath", "io.FileIO"}
)


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


#: A flag argument that is not given at all.
_ABSENT = "absent"


def _flag(
    args: list[ast.expr], keywords: list[ast.keyword], name: str, position: int | None = None
) -> bool | str | None:
    """What a call passes for a flag: the truth of a constant (``1`` is true, as the callee
    reads it), None when it is not known (a variable, ``*args`` that may reach its position,
    ``**kwargs`` that may hold it), or :data:`_ABSENT` when it is certainly not passed."""
    for kw in keywords:
        if kw.arg == name:
            return _truth(kw.value)
    if position is not None:
        for index, arg in enumerate(args):
            if isinstance(arg, ast.Starred):
                return None
            if index == position:
                return _truth(arg)
    for kw in keywords:
        if kw.arg is not None:
            continue
        spread = kw.value
        if isinstance(spread, ast.Dict) and all(_const_str(k) is not None for k in spread.keys):
            for key, value in zip(spread.keys, spread.values, strict=True):
                if _const_str(key) == name:
                    return _truth(value)
            continue
        return None
    return _ABSENT


def _truth(node: ast.expr) -> bool | None:
    if isinstance(node, ast.Constant):
        return bool(node.value)
    return None


def _deserializer(name: str) -> bool:
    """Whether a canonical name deserialises: a known loader, any attribute of a pickle-like
    module not known to be harmless (``pickle._loads``, ``dill._dill.load``), or a member of an
    unpickler class other than those a restricted subclass calls (``pickle.Unpickler.load``)."""
    if name in _DESERIALIZERS:
        return True
    parts = name.split(".")
    if len(parts) < 2 or parts[0] not in _PICKLE_MODULES or parts[1] in _PICKLE_HARMLESS:
        return False
    if _DYNAMIC in parts[1:3] or (parts[1].startswith("__") and parts[1].endswith("__")):
        # chosen at run time (reported as dynamic where it is chosen), or the module's own
        # machinery (``__dict__``, ``__getattribute__``: followed to what they fetch)
        return False
    return len(parts) == 2 or parts[2] not in _UNPICKLER_MEMBERS


def _const_str(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _text(node: ast.AST) -> str:
    """The dotted text of a callee as written (for messages only, never for decisions)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ""
    return ".".join([node.id, *reversed(parts)])


def _join(base: str, attr: str) -> str:
    return f"{base}.{attr}" if base else attr


def _mentions(node: ast.AST) -> set[str]:
    """Names (``x``) and attribute names (``.x``) an expression mentions: what its value
    depends on in the symbol table."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            name = _MODULE_ALIASES.get(sub.id, sub.id)
            out.update((name, "." + name))
        elif isinstance(sub, ast.Attribute):
            out.add("." + sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and len(sub.value) < 200:
            out.add("." + sub.value)
    return out


def _bound_names(target: ast.expr) -> Iterator[ast.Name]:
    for sub in ast.walk(target):
        if isinstance(sub, ast.Name):
            yield sub


class _Project:
    """The project's own modules, for resolving names across them.

    ``modules``: each dotted name a module may be imported as -> (what it exports, the modules
    it star-imports). :meth:`expand` follows ``helpers.load`` to what ``helpers.py`` binds
    ``load`` to, and on through re-exports of re-exports (breadth first, to a fixed point or
    ``max_export_depth`` steps, whichever comes first).
    """

    def __init__(self, modules: dict[str, tuple[dict[str, set[str]], list[str]]]) -> None:
        self.modules = modules
        self._memo: dict[str, frozenset[str]] = {}

    def _step(self, name: str) -> set[str]:
        parts = name.split(".")
        out: set[str] = set()
        for i in range(1, len(parts)):
            found = self.modules.get(".".join(parts[:i]))
            if found is None:
                continue
            table, stars = found
            rest = parts[i:]
            for j in range(len(rest), 0, -1):
                values = table.get(".".join(rest[:j]))
                if values:
                    out |= {".".join([v, *rest[j:]]) for v in values}
                    break
            else:
                out |= {".".join([s, *rest]) for s in stars if s}
        return out

    def expand(self, name: str) -> frozenset[str]:
        """Other canonical names ``name`` stands for through the project's modules."""
        found = self._memo.get(name)
        if found is not None:
            return found
        seen = {name}
        frontier = [name]
        for _ in range(DEFAULT_LIMITS.max_export_depth):
            step: list[str] = []
            for current in frontier:
                for value in self._step(current):
                    if value not in seen:
                        seen.add(value)
                        step.append(value)
            frontier = step
            if not frontier or len(seen) > DEFAULT_LIMITS.max_name_candidates:
                break
        seen.discard(name)
        result = frozenset(seen)
        self._memo[name] = result
        return result


class _Symbols:
    """One module's symbol table: local name -> the canonical dotted names it may stand for.

    ``names``: a name's candidates (``?`` for a value that is not a known name or module, such
    as a parameter or a call result). ``attrs``: the same for attributes assigned anywhere
    (``yaml.SafeLoader = X``, ``self.f = pickle.loads``), keyed by the canonical name of the
    target. ``mutated``: canonical names (and local classes) whose constructors or attributes
    the module changes. ``classes``: the classes this module defines.
    """

    def __init__(
        self, nodes: list[ast.AST], package: str | None = None, project: _Project | None = None
    ) -> None:
        self.names: dict[str, set[str]] = {}
        self.attrs: dict[str, set[str]] = {}
        self.classes: dict[str, list[ast.ClassDef]] = {}
        #: Names bound by a ``def`` (a callable, not a string of code).
        self.functions: set[str] = set()
        self.star: list[str] = []
        #: The dotted package of this module (for relative imports), when known.
        self.package = package
        self.project = project
        self.mutated: set[str] = set()
        #: (line, name) of each change to a name under ``yaml``.
        self.yaml_patches: list[tuple[int, str]] = []
        self._pending: set[str] = set()
        #: (target expression, value expression) of every assignment, resolved in rounds.
        bindings: list[tuple[ast.expr, ast.expr | None]] = []
        for node in nodes:
            if type(node) not in _BINDERS:
                continue
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self._bind(a.asname, {a.name})
                    else:
                        top = a.name.split(".")[0]
                        self._bind(top, {top})
            elif isinstance(node, ast.ImportFrom):
                module = self._absolute(node.level, node.module or "")
                for a in node.names:
                    if a.name == "*":
                        self.star.append(module)
                    else:
                        self._bind(a.asname or a.name, {_join(module, a.name)})
            elif isinstance(node, ast.ClassDef):
                self.classes.setdefault(node.name, []).append(node)
                self._bind(node.name, {_CLASS + node.name})
                # ``class C: f = pickle.loads`` is also ``C.f`` and ``self.f``
                for stmt in node.body:
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                        for target in targets:
                            if isinstance(target, ast.Name):
                                for owner in (_CLASS + node.name, _UNKNOWN):
                                    member = ast.Attribute(ast.Name(owner), target.id)
                                    bindings.append((member, stmt.value))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not isinstance(node, ast.Lambda):
                    self._bind(node.name, {_UNKNOWN})
                    self.functions.add(node.name)
                args = node.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    self._bind(arg.arg, {_UNKNOWN})
                for arg_or_none in (args.vararg, args.kwarg):
                    if arg_or_none is not None:
                        self._bind(arg_or_none.arg, {_UNKNOWN})
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    self._pairs(target, node.value, bindings)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                value = node.value if not isinstance(node, ast.AugAssign) else None
                if isinstance(node, ast.AnnAssign) and value is None:
                    continue
                bindings.append((node.target, value))
            elif isinstance(node, ast.NamedExpr):
                bindings.append((node.target, node.value))
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
                # ``for m in (pickle, dill)``: each element of a literal; anything else unknown
                element: ast.expr | None = None
                if isinstance(node.iter, (ast.List, ast.Tuple, ast.Set)):
                    element = ast.Subscript(node.iter, ast.Constant(0), ast.Load())
                if isinstance(node.target, ast.Name):
                    bindings.append((node.target, element))
                else:
                    bindings.append((node.target, None))
            elif isinstance(node, ast.Match):
                for case in node.cases:
                    self._match_bindings(node.subject, case.pattern, bindings, whole=True)
            elif isinstance(node, ast.Call):
                self._setattr_binding(node, bindings)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                for item in node.items:
                    if item.optional_vars is None:
                        continue
                    # ``with Client(addr) as c``: the followed classes' __enter__ return self
                    value = item.context_expr if isinstance(item.context_expr, ast.Call) else None
                    if not isinstance(item.optional_vars, ast.Name):
                        value = None
                    bindings.append((item.optional_vars, value))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self._bind(node.name, {_UNKNOWN})
        self._propagate(bindings)
        for node in nodes:
            if type(node) in _MUTATORS:
                self._note_mutation(node)

    # -- building --------------------------------------------------------------------------
    def _absolute(self, level: int, module: str) -> str:
        """The module a ``from`` import names: relative ones resolved against this module's
        package when it is known (else kept with their leading dots)."""
        if level == 0:
            return module
        if self.package is None:
            return "." * level + module
        parts = self.package.split(".") if self.package else []
        if level - 1 > len(parts):
            return "." * level + module
        base = parts[: len(parts) - (level - 1)]
        return ".".join([*base, module] if module else base)

    @staticmethod
    def _match_bindings(
        subject: ast.expr,
        pattern: ast.pattern,
        out: list[tuple[ast.expr, ast.expr | None]],
        *,
        whole: bool,
    ) -> None:
        """``case m`` and ``case _ as m`` bind the subject itself; any other capture binds a
        part of it (unknown)."""
        if isinstance(pattern, ast.MatchAs):
            if pattern.name is not None:
                out.append((ast.Name(pattern.name, ast.Store()), subject if whole else None))
            if pattern.pattern is not None:
                _Symbols._match_bindings(subject, pattern.pattern, out, whole=whole)
            return
        if isinstance(pattern, ast.MatchOr):
            for alternative in pattern.patterns:
                _Symbols._match_bindings(subject, alternative, out, whole=whole)
            return
        for sub in ast.walk(pattern):
            captured = None
            if isinstance(sub, (ast.MatchAs, ast.MatchStar)):
                captured = sub.name
            elif isinstance(sub, ast.MatchMapping):
                captured = sub.rest
            if captured:
                out.append((ast.Name(captured, ast.Store()), None))

    @staticmethod
    def _setattr_binding(node: ast.Call, out: list[tuple[ast.expr, ast.expr | None]]) -> None:
        """``setattr(obj, "f", pickle.loads)`` and ``obj.__setattr__("f", ...)`` bind ``obj.f``
        like an assignment (by the call's spelling: an alias only adds a binding)."""
        func, args = node.func, node.args
        spelled = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if spelled in ("setattr", "__setattr__") and len(args) == 3:
            name = _const_str(args[1])
            if name is not None:
                out.append((ast.Attribute(args[0], name, ast.Store()), args[2]))
        elif isinstance(func, ast.Attribute) and spelled == "__setattr__" and len(args) == 2:
            name = _const_str(args[0])
            if name is not None:
                out.append((ast.Attribute(func.value, name, ast.Store()), args[1]))

    def _propagate(self, bindings: list[tuple[ast.expr, ast.expr | None]]) -> None:
        """Bind every assignment until nothing changes.

        A worklist: an assignment is evaluated again only when a name or attribute name it
        mentions gained a candidate, so a chain of any length resolves in time linear in its
        size. Candidate sets only grow (and stop at ``max_name_candidates``), so this ends;
        past ``max_symbol_steps`` evaluations it raises ``ValueError`` and the file is reported
        as not analysed rather than judged on a half-built table.
        """
        users: dict[str, list[int]] = {}
        for index, (target, value) in enumerate(bindings):
            mentioned = _mentions(target) | (_mentions(value) if value is not None else set())
            for key in mentioned:
                users.setdefault(key, []).append(index)
        # A name some assignment binds stands for nothing until that assignment is evaluated
        # (not for itself, which would make every chain grow to the candidate limit).
        self._pending = {t.id for t, _ in bindings if isinstance(t, ast.Name)}
        queued = [True] * len(bindings)
        queue = deque(range(len(bindings)))
        budget = max(DEFAULT_LIMITS.max_symbol_steps, 8 * len(bindings))
        while queue:
            budget -= 1
            if budget < 0:
                raise ValueError("too many interdependent assignments to resolve names")
            index = queue.popleft()
            queued[index] = False
            target, value = bindings[index]
            found = self.resolve(value) if value is not None else {_UNKNOWN}
            changed: list[str] = []
            if isinstance(target, ast.Name):
                if self._bind(target.id, found):
                    changed.append(target.id)
            elif isinstance(target, (ast.Attribute, ast.Subscript)):
                for key in self._target_keys(target):
                    if self._add(self.attrs, key, found):
                        changed.append("." + key.rsplit(".", 1)[-1])
            else:
                for name in _bound_names(target):
                    if self._bind(name.id, {_UNKNOWN}):
                        changed.append(name.id)
            for key in changed:
                for user in users.get(key, ()):
                    if not queued[user]:
                        queued[user] = True
                        queue.append(user)
        for pending in self._pending:
            if not self.names.get(pending):
                self.names[pending] = {_UNKNOWN}  # only bound in a cycle of names: unknown
        self._pending = set()

    @staticmethod
    def _pairs(
        target: ast.expr, value: ast.expr, out: list[tuple[ast.expr, ast.expr | None]]
    ) -> None:
        """``a, b = x, y`` binds pairwise; any other unpacking binds to an unknown value."""
        if isinstance(target, (ast.Tuple, ast.List)):
            if (
                isinstance(value, (ast.Tuple, ast.List))
                and len(value.elts) == len(target.elts)
                and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
            ):
                for t, v in zip(target.elts, value.elts, strict=True):
                    _Symbols._pairs(t, v, out)
                return
            out.append((target, None))
            return
        out.append((target, value))

    @staticmethod
    def _add(table: dict[str, set[str]], key: str, values: set[str]) -> bool:
        have = table.setdefault(key, set())
        if values <= have or len(have) > DEFAULT_LIMITS.max_name_candidates:
            return False
        have |= values
        return True

    def _bind(self, name: str, values: set[str]) -> bool:
        return self._add(self.names, name, values)

    def _target_keys(self, target: ast.Attribute | ast.Subscript) -> set[str]:
        """Canonical names an attribute (or constant-key subscript) target may be."""
        if isinstance(target, ast.Attribute):
            return {_join(b, target.attr) for b in self.resolve(target.value)}
        key = _const_str(target.slice)
        base = self.namespace(target.value)
        if key is None or base is None:
            return set()
        return {_join(b, key) for b in base}

    def _note_mutation(self, node: ast.AST) -> None:
        """Record loaders (or any class or module) whose constructors or attributes the module
        changes; a change under ``yaml`` is also kept with its line (:attr:`yaml_patches`),
        since it makes every module's "safe" loader unsafe, not only this one's."""
        touched: set[str] = set()
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _CONSTRUCTOR_METHODS:
                touched |= self.resolve(func.value)
            callee = self.resolve(func)
            # ``vars(yaml).update(...)``, ``ac = L.add_constructor; ac(...)``,
            # ``yaml.SafeLoader.yaml_constructors.update(...)``: the receiver changes
            for name in callee:
                owner, _, method = name.rpartition(".")
                if not owner or method not in _MUTATING_METHODS:
                    continue
                if method in ("__setattr__", "__delattr__"):
                    # ``yaml.__setattr__("SafeLoader", X)``: that attribute of the receiver
                    key = _const_str(node.args[0]) if node.args else None
                    touched.add(_join(owner, key if key is not None else _DYNAMIC))
                else:
                    touched.add(owner)
            if callee & {"yaml.add_constructor", "yaml.add_multi_constructor"}:
                loader = _kw(node, "Loader") or (node.args[2] if len(node.args) > 2 else None)
                if loader is not None:
                    touched |= self.resolve(loader)
            if callee & (_SETATTR | _DELATTR) and node.args:
                key = _const_str(node.args[1]) if len(node.args) > 1 else None
                for base in self.resolve(node.args[0]):
                    touched.add(_join(base, key if key is not None else _DYNAMIC))
            if callee & _SETITEM and node.args:
                key = _const_str(node.args[1]) if len(node.args) > 1 else None
                for base in self.namespace(node.args[0]) or self.resolve(node.args[0]):
                    touched.add(_join(base, key if key is not None else _DYNAMIC))
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                # ``L.yaml_constructors[tag] = f``, ``L.construct_x = f``, ``yaml.SafeLoader = X``
                inner = target
                while isinstance(inner, ast.Subscript):
                    # ``vars(yaml)["SafeLoader"] = X``, ``sys.modules["yaml"] = fake``
                    space = self.namespace(inner.value)
                    if space is not None:
                        key = _const_str(inner.slice)
                        for base in space:
                            if base:
                                touched.add(_join(base, key if key is not None else _DYNAMIC))
                            else:
                                touched.add(_join(key, _DYNAMIC) if key else _DYNAMIC)
                    inner = inner.value
                if isinstance(inner, ast.Attribute):
                    owners = self.resolve(inner.value)
                    touched |= owners | {_join(b, inner.attr) for b in owners}
        self.mutated |= touched
        patched = sorted(t for t in touched if t.startswith("yaml."))
        if patched:
            self.yaml_patches.append((getattr(node, "lineno", 0), patched[0]))

    # -- resolution ------------------------------------------------------------------------
    def _name(self, name: str) -> set[str]:
        name = _MODULE_ALIASES.get(name, name)
        found = self.names.get(name)
        if found:
            # A name also bound to something unknown (a parameter, ``pickle = lazy("pickle")``)
            # may still be what its spelling says.
            return found | {name} if _UNKNOWN in found else set(found)
        if name in self._pending:
            return set()
        out = {name}
        out.update(_join(m, name) for m in self.star)
        return out

    def namespace(self, node: ast.expr) -> set[str] | None:
        """Modules a mapping stands for: ``X.__dict__``, ``vars(X)``, ``__builtins__``,
        ``sys.modules`` (as the empty prefix); None when it is none of those."""
        if isinstance(node, ast.Name) and _MODULE_ALIASES.get(node.id) == "builtins":
            return {"builtins"}
        found = self.resolve(node)
        if "sys.modules" in found:
            return {""}
        # X.__dict__ and vars(X) (which resolves to X.__dict__), however they were reached
        out = {c.removesuffix(".__dict__") for c in found if c.endswith(".__dict__")}
        return out or None

    @staticmethod
    def _mapping_get(callee: set[str], args: list[ast.expr]) -> set[str] | None:
        """``sys.modules.get("pickle")``, ``vars(builtins).get("eval")``, ``X.__dict__.get``."""
        if not args:
            return None
        key = _const_str(args[0])
        out: set[str] = set()
        for name in callee:
            if not name.endswith(".get"):
                continue
            owner = name.removesuffix(".get")
            if owner == "sys.modules":
                out.add(key if key is not None else _DYNAMIC)
            elif owner.endswith(".__dict__"):
                out.add(_join(owner.removesuffix(".__dict__"), key or _DYNAMIC))
        return out or None

    def resolve(self, node: ast.AST, depth: int = 0) -> set[str]:
        """The canonical dotted names an expression may stand for (``?``: not a known name)."""
        if depth > 40:
            return {_UNKNOWN}
        out = self._resolve(node, depth)
        if len(out) > DEFAULT_LIMITS.max_name_candidates:
            return {_UNKNOWN}
        # An attribute or name the module assigns to also stands for what it was assigned.
        extra: set[str] = set()
        for name in out:
            extra |= self.attrs.get(name, set())
            if self.project is not None:
                # ``helpers.load`` where the project's helpers.py binds ``load = pickle.loads``
                extra |= self.project.expand(name)
        return out | extra

    def _resolve(self, node: ast.AST, depth: int) -> set[str]:
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.Attribute):
            if node.attr == "__call__":
                return self.resolve(node.value, depth + 1)  # ``pickle.loads.__call__`` is it
            # ``?.f`` (an attribute of an unknown object) still finds ``self.f = pickle.loads``
            return {_join(b, node.attr) for b in self.resolve(node.value, depth + 1)}
        if isinstance(node, ast.Constant):
            return {_NONE} if node.value is None else {_UNKNOWN}
        if isinstance(node, ast.IfExp):
            return self.resolve(node.body, depth + 1) | self.resolve(node.orelse, depth + 1)
        if isinstance(node, ast.BoolOp):
            out: set[str] = set()
            for value in node.values:
                out |= self.resolve(value, depth + 1)
            return out
        if isinstance(node, ast.NamedExpr):
            return self.resolve(node.value, depth + 1)
        if isinstance(node, ast.Subscript):
            key = _const_str(node.slice)
            scope = node.value
            if isinstance(scope, (ast.List, ast.Tuple, ast.Set, ast.Dict)):
                # ``[pickle][0]``, ``{"f": pickle.loads}["f"]``: any element it may be
                elements = scope.values if isinstance(scope, ast.Dict) else scope.elts
                found: set[str] = set()
                for element in elements[: DEFAULT_LIMITS.max_name_candidates]:
                    found |= self.resolve(element, depth + 1)
                return found or {_UNKNOWN}
            if isinstance(scope, ast.Call) and self.resolve(scope.func, depth + 1) & _SCOPES:
                return self._name(key) if key is not None else {_UNKNOWN}
            base = self.namespace(node.value)
            if base is None:
                return {_UNKNOWN}
            if key is None:
                return {_join(b, _DYNAMIC) if b else _DYNAMIC for b in base}
            return {_join(b, key) if b else key for b in base}
        if isinstance(node, ast.Call):
            callee = self.resolve(node.func, depth + 1)
            args = node.args
            getter = self._attrgetter(node.func, depth)
            if getter is not None and len(args) == 1:
                # ``operator.attrgetter("loads")(pickle)``
                return {
                    _join(b, getter) if b != _UNKNOWN else b
                    for b in self.resolve(args[0], depth + 1)
                }
            instances = {c + "()" for c in self.instance_classes(callee, depth)}
            if instances:
                return instances | {_UNKNOWN}
            if callee & _GETATTR and len(args) in (2, 3):
                name = _const_str(args[1])
                out = {
                    (_join(b, name if name is not None else _DYNAMIC) if b != _UNKNOWN else b)
                    for b in self.resolve(args[0], depth + 1)
                }
                if len(args) == 3:
                    out |= self.resolve(args[2], depth + 1)
                return out
            if callee & _VARS and args:
                return {_join(b, "__dict__") for b in self.resolve(args[0], depth + 1)}
            mapped = self._mapping_get(callee, args)
            if mapped is not None:
                return mapped
            if callee & _IMPORTERS and args:
                name = _const_str(args[0])
                if name is None or name.startswith("."):
                    return {_DYNAMIC}
                if callee & _DUNDER_IMPORT:
                    return {name.split(".")[0]}
                return {name.replace(":", ".")}  # pkgutil.resolve_name("pickle:loads")
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("__getattribute__", "__getattr__")
                and len(args) == 1
            ):
                name = _const_str(args[0])
                return {
                    _join(b, name if name is not None else _DYNAMIC)
                    for b in self.resolve(node.func.value, depth + 1)
                }
            return {_UNKNOWN}
        return {_UNKNOWN}

    def _attrgetter(self, func: ast.expr, depth: int = 0) -> str | None:
        """The attribute an ``operator.attrgetter(...)`` call fetches (``*``: chosen at run
        time), or None when ``func`` is not such a call of one argument."""
        if not isinstance(func, ast.Call) or len(func.args) != 1 or func.keywords:
            return None
        if "operator.attrgetter" not in self.resolve(func.func, depth + 1):
            return None
        return _const_str(func.args[0]) or _DYNAMIC

    def instance_classes(self, callee: set[str], depth: int = 0) -> set[str]:
        """The followed classes (:data:`_INSTANCE_CLASSES`) a call of ``callee`` makes an
        instance of, directly or through a class of this module deriving from one."""
        out = callee & _INSTANCE_CLASSES
        for name in callee:
            if name.startswith(_CLASS) and depth < 8:
                for cls in self.classes.get(name.removeprefix(_CLASS), []):
                    for base in cls.bases:
                        out |= self.instance_classes(self.resolve(base, depth + 1), depth + 1)
        return out

    def deserializer_base(self, name: str, depth: int = 0) -> str | None:
        """For a class of this module (``<class>:P``) that derives from an unpickler without
        restricting it: the unpickler (``pickle.Unpickler``). A subclass that defines
        ``find_class`` (anywhere between it and the unpickler) is the documented way to
        restrict what a pickle may import: its allowlist is the reviewed part, not a finding."""
        if not name.startswith(_CLASS) or depth > 8:
            return None
        for cls in self.classes.get(name.removeprefix(_CLASS), []):
            if any(
                isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))
                and stmt.name == "find_class"
                for stmt in cls.body
            ):
                continue
            for base in cls.bases:
                for candidate in sorted(self.resolve(base)):
                    if _deserializer(candidate):
                        return candidate
                    found = self.deserializer_base(candidate, depth + 1)
                    if found is not None:
                        return found
        return None

    def exports(self) -> dict[str, set[str]]:
        """What other modules of the project get when they import a name of this one (or an
        attribute of one of its classes, ``C.f``): the canonical names it may stand for."""
        out: dict[str, set[str]] = {}

        def keep(values: set[str]) -> set[str]:
            return {v for v in values if v not in (_UNKNOWN, _NONE) and not v.startswith(_CLASS)}

        for name, values in self.names.items():
            kept = keep(values)
            if name in self.classes:
                base = self.deserializer_base(_CLASS + name)
                if base is not None:
                    kept.add(base)
            if kept:
                out[name] = kept
        for key, values in self.attrs.items():
            if key.startswith(_CLASS):
                kept = keep(values)
                if kept:
                    out.setdefault(key.removeprefix(_CLASS), set()).update(kept)
        return out

    def is_mutated(self, name: str) -> bool:
        """Whether the module rebinds ``name``, changes its constructors or attributes, or
        sets an attribute chosen at run time on its module. Any such change to a ``yaml.``
        name counts for every yaml name: loaders share constructor tables with their bases."""
        if name in self.mutated or _join(name.rsplit(".", 1)[0], _DYNAMIC) in self.mutated:
            return True
        return name.startswith("yaml.") and any(
            m == "yaml" or m.startswith("yaml.") for m in self.mutated
        )


@dataclass(slots=True)
class _Parsed:
    """One source parsed and indexed: its tree, the code strings it runs (each a module of its
    own, all its nodes numbered with the line of the call that runs it), every node of both,
    each node's parent, and the nodes inside annotations (a type is named there, nothing is
    called)."""

    tree: ast.Module
    code_strings: list[ast.Module]
    nodes: list[ast.AST]
    parents: dict[int, ast.AST]
    annotations: set[int]


def _code_string(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, bytes):
        try:
            return node.value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _parse_code_strings(call: ast.Call, budget: list[int]) -> list[ast.Module]:
    """The constant strings a call of a code runner (by its spelling, :data:`_CODE_SINKS`)
    is given, parsed as Python, every node numbered with the call's line. A string that is
    not Python is skipped: it cannot run."""
    func = call.func
    spelled = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
    doctest = spelled in _DOCTEST_SINKS
    if spelled not in _CODE_SINKS and not doctest:
        return []
    keywords = _CODE_KEYWORDS | {"f", "src", "string"} if doctest else _CODE_KEYWORDS
    values = [*call.args[:2], *(k.value for k in call.keywords if k.arg in keywords)]
    out: list[ast.Module] = []
    for value in values:
        text = _code_string(value)
        if text is None or not text.strip() or len(text) > budget[0]:
            continue
        budget[0] -= len(text)
        if doctest:
            text = _doctest_source(text)
        try:
            module = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for sub in ast.walk(module):
            if "lineno" in sub._attributes:
                sub.lineno = call.lineno  # type: ignore[attr-defined]
                sub.end_lineno = call.end_lineno  # type: ignore[attr-defined]
        out.append(module)
    return out


def _doctest_source(text: str) -> str:
    """The examples (``>>> ...``) of a doctest text as one Python source (parsed by doctest's
    own parser, which only splits text; nothing runs). A text doctest cannot parse has no
    examples that run."""
    import doctest

    try:
        examples = doctest.DocTestParser().get_examples(text)
    except ValueError:
        return ""
    return "".join(example.source for example in examples)


def _parse(source: str) -> _Parsed:
    """Parse a source and index it in one walk; code given as constant strings to ``exec``,
    ``eval``, ``compile``, ``timeit`` and the like is parsed too, and analysed as part of the
    module (it runs with the module's names), to ``max_code_string_depth`` strings deep."""
    tree = ast.parse(source)
    nodes: list[ast.AST] = []
    parents: dict[int, ast.AST] = {}
    roots: list[ast.AST] = []
    code_strings: list[ast.Module] = []
    budget = [DEFAULT_LIMITS.max_code_string_chars]
    todo: deque[tuple[ast.AST, int]] = deque([(tree, 0)])
    while todo:
        node, depth = todo.popleft()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
            todo.append((child, depth))
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
        elif isinstance(node, ast.Call) and depth < DEFAULT_LIMITS.max_code_string_depth:
            for module in _parse_code_strings(node, budget):
                code_strings.append(module)
                todo.append((module, depth + 1))
    annotations = {id(sub) for root in roots for sub in ast.walk(root)}
    return _Parsed(tree, code_strings, nodes, parents, annotations)


class _Visitor(ast.NodeVisitor):
    def __init__(self, parsed: _Parsed, symbols: _Symbols) -> None:
        self.parents, self.annotations = parsed.parents, parsed.annotations
        self.symbols = symbols
        self.tainted: set[str] = set()
        self.hits: list[CodeHit] = []
        self._seen: set[tuple[str, int]] = set()
        #: Set while the code of a constant string run by exec/eval/... is visited.
        self.in_code_string = False

    # -- yaml loaders ----------------------------------------------------------------------
    def _safe_loader(self, node: ast.expr | None) -> bool:
        """Whether a Loader expression can only be a safe PyYAML loader.

        Every name the expression may stand for (through the symbol table, never by its
        text) must be the real ``yaml.SafeLoader``/``CSafeLoader``/``BaseLoader``/
        ``CBaseLoader`` that this module never rebinds or gives constructors to, ``None``
        (PyYAML then refuses to load), or a class of this module that is itself safe
        (:meth:`_safe_class`). A parameter, a call result, an attribute of an object or a class
        imported from elsewhere is not proven safe and stays a finding.
        """
        if node is None:
            return False
        return self._safe_names(self.symbols.resolve(node), 0)

    def _safe_names(self, names: set[str], depth: int) -> bool:
        if not names or depth > 8:
            return False
        for name in names:
            if name == _NONE:
                continue
            if name.startswith(_CLASS):
                if not self._safe_class(name.removeprefix(_CLASS), depth + 1):
                    return False
                continue
            if name not in _YAML_SAFE or self.symbols.is_mutated(name):
                return False
        return True

    def _safe_class(self, name: str, depth: int) -> bool:
        """A class of this module is a safe loader only when every definition of it derives
        only from safe loaders, has no metaclass or keywords, a body of nothing but a
        docstring or ``pass``, and the module never adds constructors to it or assigns to its
        attributes. Conservative on purpose: anything else a class body does can change what
        the loader constructs."""
        if self.symbols.is_mutated(_CLASS + name):
            return False
        for cls in self.symbols.classes.get(name, []):
            if not cls.bases or cls.keywords or cls.decorator_list:
                return False
            for stmt in cls.body:
                if isinstance(stmt, ast.Pass):
                    continue
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    continue
                return False
            for base in cls.bases:
                if not self._safe_names(self.symbols.resolve(base), depth + 1):
                    return False
        return bool(self.symbols.classes.get(name))

    # -- taint of names holding external content ----------------------------------------
    def _external(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call):
                func = sub.func
                attr = (
                    func.attr
                    if isinstance(func, ast.Attribute)
                    else (func.id if isinstance(func, ast.Name) else "")
                )
                if attr in _CONTENT_CALLS or attr == "open":
                    return True
            elif (isinstance(sub, ast.Attribute) and sub.attr in _CONTENT_ATTRS) or (
                isinstance(sub, ast.Name) and self._tainted_name(sub.id)
            ):
                return True
        return False

    def _tainted_name(self, name: str) -> bool:
        return name in self.tainted or any(w in name.lower() for w in _URI_WORDS)

    def visit_Assign(self, node: ast.Assign) -> None:
        if self._external(node.value):
            for target in node.targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        self.tainted.add(sub.id)
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            if item.optional_vars is not None and self._external(item.context_expr):
                for sub in ast.walk(item.optional_vars):
                    if isinstance(sub, ast.Name):
                        self.tainted.add(sub.id)
        self.generic_visit(node)

    # -- calls ---------------------------------------------------------------------------
    def visit_Call(self, node: ast.Call) -> None:
        callee = self.symbols.resolve(node.func)
        for name in sorted(callee):
            self._check_call(node, name, node.args, node.keywords)
        self._file_loader(node, callee)
        line = node.lineno
        if callee & _PARTIAL and node.args:
            # functools.partial(f, *a, **kw) is f called later with a and kw: judged here.
            for name in sorted(self.symbols.resolve(node.args[0])):
                self._check_call(
                    node, name, node.args[1:], node.keywords, how=" (through functools.partial)"
                )
        self._methodcaller(node)
        # getattr(pickle, name), pickle.__getattribute__(name), vars(pickle).get(name)
        produced = self.symbols.resolve(node)
        owners = {c.removesuffix("." + _DYNAMIC) for c in produced if c.endswith("." + _DYNAMIC)}
        self._dynamic_attribute(owners, line, "getattr")
        self._gadget(produced, line)
        if callee & _SETATTR and len(node.args) > 1 and _const_str(node.args[1]) == "__code__":
            self._gadget({"__code__"}, line, store=True)
        if callee & (_DUNDER_IMPORT | {"pkgutil.resolve_name"}) and (
            not node.args or _const_str(node.args[0]) is None
        ):
            self._hit(
                _rules.CODE_EVAL_DYNAMIC,
                line,
                f"{_text(node.func) or '__import__'}() of a name built at run time (dynamic): any "
                "module can be imported and called",
            )
        shown = _text(node.func) or next((c for c in sorted(callee) if c != _UNKNOWN), "")
        shorts = {c.rsplit(".", 1)[-1] for c in callee} | {shown.rsplit(".", 1)[-1]}
        if "load_model" in shorts:
            keras = bool(callee & _KERAS_LOADS)
            mode = _flag(node.args, node.keywords, "safe_mode", 3 if keras else None)
            if mode is False:
                self._hit(_rules.CODE_KERAS_UNSAFE, line, f"{shown}(safe_mode=False)")
            elif mode is None and (keras or _kw(node, "safe_mode") is not None):
                self._hit(
                    _rules.CODE_KERAS_UNSAFE,
                    line,
                    f"{shown}() with safe_mode not proven true (a variable, *args or **kwargs)",
                )
        trust = _flag(node.args, node.keywords, "trust_remote_code")
        if trust is True:
            self._hit(_rules.CODE_REMOTE_CODE, line, f"{shown or 'call'}(trust_remote_code=True)")
        elif trust is None and (
            _kw(node, "trust_remote_code") is not None or shorts & _REMOTE_CODE_CALLS
        ):
            self._hit(
                _rules.CODE_REMOTE_CODE,
                line,
                f"{shown or 'call'}() with trust_remote_code not proven false (a variable or "
                "**kwargs of unknown content)",
            )
        self._value_use(node)  # map(getattr(pickle, "loads"), xs)
        self.generic_visit(node)

    def _methodcaller(self, node: ast.Call) -> None:
        """``operator.methodcaller("loads", d)(pickle)`` is ``pickle.loads(d)``."""
        inner = node.func
        if not isinstance(inner, ast.Call) or not inner.args or not node.args:
            return
        if "operator.methodcaller" not in self.symbols.resolve(inner.func):
            return
        method = _const_str(inner.args[0]) or _DYNAMIC
        bases = self.symbols.resolve(node.args[0])
        if method == _DYNAMIC:
            self._dynamic_attribute(bases, node.lineno, "methodcaller")
            return
        for base in sorted(bases - {_UNKNOWN}):
            self._check_call(
                node,
                _join(base, method),
                inner.args[1:],
                inner.keywords,
                how=" (through operator.methodcaller)",
            )

    def _check_call(
        self,
        node: ast.Call,
        name: str,
        args: list[ast.expr],
        keywords: list[ast.keyword],
        *,
        how: str = "",
    ) -> None:
        """The rule table, on one canonical callee name (``how``: through what it is called,
        when not directly)."""
        line = node.lineno
        short = name.rsplit(".", 1)[-1]
        if name.startswith(_CLASS):
            self._check_class_call(name, line, how)
        elif name in _PICKLING_STORES:
            self._check_store(name, args, keywords, line, how)
        elif _deserializer(name):
            family = name.split(".", 1)[0]
            self._hit(
                _rules.CODE_PICKLE_LOAD,
                line,
                f"{name}(){how} deserializes with {family}, which can run code or crash the "
                "interpreter on crafted input",
            )
        elif name in _TORCH_LOADS and _flag(args, keywords, "weights_only") is not True:
            self._hit(_rules.CODE_TORCH_LOAD, line, f"{name}() without weights_only=True{how}")
        elif name in _TORCH_URL_LOADS:
            if _flag(args, keywords, "weights_only", _TORCH_URL_LOADS[name]) is not True:
                self._hit(
                    _rules.CODE_TORCH_LOAD,
                    line,
                    f"{name}() without weights_only=True{how}: the download is torch.load-ed",
                )
        elif name in _TORCH_HUB_CODE:
            self._hit(
                _rules.CODE_REMOTE_CODE,
                line,
                f"{name}(){how} imports the repository's hubconf.py: its code runs here",
            )
        elif name in _SPAWNERS:
            self._hit(
                _rules.CODE_LOW_LEVEL_SPAWN,
                line,
                f"{name}(){how} starts a process below the os/subprocess functions",
            )
        elif name.startswith(("ctypes.pythonapi.", "ctypes.pydll.")) or name == "ctypes.PyDLL":
            if short.startswith(_PYTHONAPI_RUNNERS):
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC,
                    line,
                    f"{name}(){how} compiles or runs Python source through the C API",
                )
            else:
                self._hit(
                    _rules.CODE_INTERNALS,
                    line,
                    f"{name}(){how} calls the interpreter's C API directly",
                )
        elif name in ("yaml.load", "yaml.load_all"):
            loader = _kw(ast.Call(node.func, args, keywords), "Loader") or (
                args[1] if len(args) > 1 else None
            )
            if not self._safe_loader(loader):
                shown = sorted(self.symbols.resolve(loader)) if loader is not None else []
                text = ", ".join(s for s in shown if s != _UNKNOWN) or "default/unknown"
                self._hit(_rules.CODE_YAML_LOAD, line, f"{name}(){how} with Loader={text}")
        elif name in ("yaml.unsafe_load", "yaml.unsafe_load_all"):
            self._hit(_rules.CODE_YAML_LOAD, line, f"{name}(){how}")
        elif self._unsafe_yaml_part(name):
            self._hit(
                _rules.CODE_YAML_LOAD,
                line,
                f"{name}(){how} used directly: a yaml loader that is not proven safe",
            )
        elif name in _NUMPY_LOADS:
            allow = _flag(args, keywords, "allow_pickle", _NUMPY_LOADS[name])
            if allow is True or allow is None:
                said = "allow_pickle=True" if allow else "allow_pickle not proven false"
                self._hit(_rules.CODE_NUMPY_PICKLE, line, f"{name}({said}){how}")
        elif name in _SKOPS_LOADS:
            trusted = _flag(args, keywords, "trusted", _SKOPS_LOADS[name])
            if trusted is not _ABSENT and trusted is not False:
                self._hit(
                    _rules.CODE_PICKLE_LOAD,
                    line,
                    f"{name}(trusted=...){how}: the types it trusts (or any) are constructed "
                    "while loading, which can run code",
                )
        elif name in _RUNNERS:
            self._check_runner(node, name, args, keywords, how)
        elif name in _ALWAYS_RUNS:
            self._hit(
                _rules.CODE_EVAL_DYNAMIC,
                line,
                f"{name}(){how} runs code that is not analysed (a code object, compiled code, a "
                "native module or the terminal)",
            )
        elif name.startswith(_DYNAMIC + ".") and short in _DANGEROUS_ATTRS:
            rule = _rules.CODE_PICKLE_LOAD
            if short in ("eval", "exec"):
                rule = _rules.CODE_EVAL_DYNAMIC
            self._hit(rule, line, f"{short}(){how} of a module chosen at run time (dynamic)")

    def _check_store(
        self,
        name: str,
        args: list[ast.expr],
        keywords: list[ast.keyword],
        line: int,
        how: str,
    ) -> None:
        """A key-value store that unpickles its values: a finding unless the argument that
        chooses the decoding is given and is not one that still unpickles (``**kwargs`` or
        ``*args`` that may hold it count as not given)."""
        choice = _PICKLING_STORES[name]
        given: ast.expr | None = None
        if choice is not None:
            keyword, position, pickling = choice
            given = _kw(ast.Call(ast.Name("_"), args, keywords), keyword)
            if (
                given is None
                and len(args) > position
                and not any(isinstance(a, ast.Starred) for a in args[: position + 1])
            ):
                given = args[position]
            if given is not None and self.symbols.resolve(given) & pickling:
                given = None
        if given is None:
            how_set = f" without {choice[0]}= of a non-pickle codec" if choice else ""
            self._hit(
                _rules.CODE_PICKLE_LOAD,
                line,
                f"{name}(){how}{how_set}: its values are unpickled when read, which can run code",
            )

    def _gadget(self, names: set[str], line: int, *, store: bool = False) -> None:
        """A sandbox-escape gadget reached (``X.__subclasses__``, ``f.__globals__``...), or a
        function's ``__code__`` replaced."""
        for name in sorted(names):
            attr = name.rsplit(".", 1)[-1]
            if attr in _GADGET_ATTRS or (store and attr == "__code__"):
                what = f"{attr} replaced" if store else f"{attr} reached"
                self._hit(
                    _rules.CODE_INTERNALS,
                    line,
                    f"{what}: an interpreter internal used to escape a sandbox or reach any "
                    "module or builtin",
                )
                return

    def _check_class_call(self, name: str, line: int, how: str) -> None:
        """A class of this module called: an unrestricted unpickler, or a yaml loader that is
        not proven safe, used directly."""
        shown = name.removeprefix(_CLASS)
        base = self.symbols.deserializer_base(name)
        if base is not None:
            self._hit(
                _rules.CODE_PICKLE_LOAD,
                line,
                f"{shown}(){how} derives from {base} without restricting find_class: it "
                "deserializes like its base, which can run code on crafted input",
            )
        elif self._derives_from_yaml(name, 0) and not self._safe_names({name}, 0):
            self._hit(
                _rules.CODE_YAML_LOAD,
                line,
                f"{shown}(){how}: a yaml loader class that is not proven safe, used directly",
            )

    def _check_runner(
        self,
        node: ast.Call,
        name: str,
        args: list[ast.expr],
        keywords: list[ast.keyword],
        how: str,
    ) -> None:
        """eval/exec/compile and the other runners of code given as text: a finding when the
        code (or the file or module to run) is not a literal. A literal is parsed and analysed
        as part of the module instead (see :func:`_parse`)."""
        line = node.lineno
        short = name.rsplit(".", 1)[-1]
        values: list[ast.expr | None] = []
        for position, keyword in _RUNNERS[name]:
            value = _kw(ast.Call(node.func, args, keywords), keyword)
            if value is None:
                before = args[: position + 1]
                if any(isinstance(a, ast.Starred) for a in before) or any(
                    k.arg is None for k in keywords
                ):
                    values.append(None)  # *args or **kwargs may fill it
                    continue
                value = args[position] if len(args) > position else None
            if value is not None:
                values.append(value)
        if how and not values:
            values.append(None)  # functools.partial(eval): the code comes later
        for value in values:
            path = _const_str(value) if name == "runpy.run_path" and value is not None else None
            if path is not None:
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC,
                    line,
                    f"{name}(){how} runs the file {path!r}, which is not a file of the project",
                    runs=path,
                )
                continue
            path = self._file_text(value) if name in _EVAL and value is not None else None
            if path is not None:
                self._hit(
                    _rules.CODE_EVAL_CONTENT,
                    line,
                    f"{short}(){how} of the text of the file {path!r}, which is not a file of "
                    "the project",
                    runs=path,
                )
                continue
            if value is not None and _code_string(value) is not None:
                continue
            if value is not None and self._callable_argument(name, value):
                continue
            if name in _FILE_LOADERS:
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC,
                    line,
                    f"{name}(){how} loads code from a file chosen at run time (not analysed here)",
                )
            elif value is not None and self._external(value):
                self._hit(
                    _rules.CODE_EVAL_CONTENT,
                    line,
                    f"{short}(){how} of content read from a file, URI, request or response",
                )
            elif name in _PATH_RUNNERS:
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC,
                    line,
                    f"{name}(){how} runs a file or module chosen at run time",
                )
            elif name in _EVAL:
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC, line, f"{short}(){how} of a value built at run time"
                )
            else:
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC,
                    line,
                    f"{name}(){how} runs Python code that is not a literal",
                )

    def _file_text(self, value: ast.expr) -> str | None:
        """The constant path of ``open(PATH).read()``, ``Path(PATH).read_text()``..., else
        None."""
        if not (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Attribute)
            and value.func.attr in ("read", "read_text", "read_bytes")
            and isinstance(value.func.value, ast.Call)
            and value.func.value.args
        ):
            return None
        opener = value.func.value
        if not self.symbols.resolve(opener.func) & _FILE_OPENERS:
            return None
        return _const_str(opener.args[0])

    def _file_loader(self, node: ast.Call, callee: set[str]) -> None:
        """``SourceFileLoader("m", PATH)``, ``spec_from_file_location("m", PATH)``: a module
        loaded from a file whatever its name; a constant PATH is a file to analyse."""
        for name in sorted(callee & set(_FILE_LOADER_PATHS)):
            position, keyword = _FILE_LOADER_PATHS[name]
            value = _kw(node, keyword) or (
                node.args[position] if len(node.args) > position else None
            )
            path = _const_str(value) if value is not None else None
            if path is not None:
                self._hit(
                    _rules.CODE_EVAL_DYNAMIC,
                    node.lineno,
                    f"{name}() loads the file {path!r} as a module, which is not a file of "
                    "the project",
                    runs=path,
                )

    def _callable_argument(self, runner: str, value: ast.expr) -> bool:
        """``timeit.timeit(fn)`` times a callable, not code text: a lambda, a function of this
        module (or a method named like one), or a ``functools.partial``."""
        if not runner.startswith("timeit."):
            return False
        if isinstance(value, ast.Lambda):
            return True
        if isinstance(value, ast.Name):
            return value.id in self.symbols.functions
        if isinstance(value, ast.Attribute):
            return value.attr in self.symbols.functions
        if isinstance(value, ast.Call):
            return bool(self.symbols.resolve(value.func) & _PARTIAL)
        return False

    def _dynamic_attribute(self, modules: set[str], line: int, how: str) -> None:
        """``getattr(pickle, name)``, ``vars(builtins)[name]``: fail closed on a dangerous
        module."""
        for module in sorted(modules):
            rule = _DANGEROUS_MODULES.get(module)
            if rule is not None:
                self._hit(
                    rule,
                    line,
                    f"{how}({module}, <name>): an attribute of {module} chosen at run time "
                    "(dynamic)",
                )

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load) and _const_str(node.slice) is None:
            # X.__dict__[name], vars(X)[name] (sys.modules[name] is judged where it is used)
            base = self.symbols.namespace(node.value)
            if base:
                self._dynamic_attribute(base, node.lineno, "vars")
        elif isinstance(node.ctx, ast.Load) and self.symbols.namespace(node.value):
            self._gadget(self.symbols.resolve(node), node.lineno)  # vars(f)["__globals__"]
        self._value_use(node)
        self.generic_visit(node)

    # -- yaml parts used directly --------------------------------------------------------
    def _unsafe_yaml_part(self, name: str) -> bool:
        """``yaml.UnsafeLoader``, ``yaml.constructor.FullConstructor``...: a PyYAML loader or
        constructor class other than the safe ones (or a safe one this module changes)."""
        if not name.startswith("yaml.") or not name.endswith(("Loader", "Constructor")):
            return False
        return name not in _YAML_SAFE_PARTS or self.symbols.is_mutated(name)

    def _derives_from_yaml(self, name: str, depth: int) -> bool:
        """Whether a class of this module derives from a PyYAML loader or constructor."""
        if depth > 8:
            return False
        for cls in self.symbols.classes.get(name.removeprefix(_CLASS), []):
            for base in cls.bases:
                for candidate in self.symbols.resolve(base):
                    if candidate.startswith("yaml.") and candidate.endswith(
                        ("Loader", "Constructor")
                    ):
                        return True
                    if candidate.startswith(_CLASS) and self._derives_from_yaml(
                        candidate, depth + 1
                    ):
                        return True
        return False

    # -- dangerous callables handed on as values ---------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._value_use(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.ctx, ast.Load):
            self._value_use(node)
            self._gadget({node.attr}, node.lineno)
        elif node.attr == "__code__":
            self._gadget({node.attr}, node.lineno, store=True)
        self.generic_visit(node)

    def _dangerous_value(self, name: str, node: ast.expr) -> tuple[Rule, str] | None:
        """The rule a value is a finding of when it is handed on, and how to name it."""
        if name in _VALUE_MODULES:
            if isinstance(node, ast.Name) and node.id == name:
                # a name bound to something unknown (a parameter called ``pickle``) also
                # stands for its spelling; as a value that spelling alone is not the module
                bound = self.symbols.names.get(_MODULE_ALIASES.get(name, name))
                if bound is not None and name not in bound:
                    return None
            return _VALUE_MODULES[name], f"{name} (the module)"
        if _deserializer(name):
            return _rules.CODE_PICKLE_LOAD, name
        if name in _TORCH_LOADS or name in _TORCH_URL_LOADS:
            return _rules.CODE_TORCH_LOAD, name
        if name in _TORCH_HUB_CODE:
            return _rules.CODE_REMOTE_CODE, name
        if name in _SPAWNERS:
            return _rules.CODE_LOW_LEVEL_SPAWN, name
        if name.startswith("ctypes.pythonapi."):
            return _rules.CODE_INTERNALS, name
        if name in _EVAL:
            return _rules.CODE_EVAL_DYNAMIC, name
        if name in ("yaml.unsafe_load", "yaml.unsafe_load_all"):
            return _rules.CODE_YAML_LOAD, name
        if self._unsafe_yaml_part(name) and not self._argument_of(node) & _YAML_REGISTRARS:
            # (the Loader given to yaml.add_constructor and the like is not handed on)
            return _rules.CODE_YAML_LOAD, name
        if name.startswith(_CLASS):
            base = self.symbols.deserializer_base(name)
            if base is not None:
                return _rules.CODE_PICKLE_LOAD, f"{name.removeprefix(_CLASS)} (a {base})"
        return None

    def _value_use(self, node: ast.expr) -> None:
        """A dangerous callable or module passed, returned or stored where it is not followed
        (``map(pickle.loads, xs)``, ``return torch.load``, ``run(pickle)``, ``[pickle]``,
        ``self.f = pickle.loads``): a finding where it is handed on. So a receiver the table
        cannot resolve (a parameter, ``?.loads``) is never a dangerous module that got there
        unseen: it got there through a hand-off that is itself a finding."""
        if id(node) in self.annotations or not self._handed_on(node):
            return
        for name in sorted(self.symbols.resolve(node)):
            found = self._dangerous_value(name, node)
            if found is not None:
                rule, what = found
                self._hit(
                    rule,
                    node.lineno,
                    f"{what} handed on as a value: how it is used later is not checked",
                )
                return

    def _argument_of(self, node: ast.expr) -> set[str]:
        """The callee a node is an argument (or keyword argument) of, resolved."""
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.keyword):
            parent = self.parents.get(id(parent))
        if isinstance(parent, ast.Call) and node is not parent.func:
            return self.symbols.resolve(parent.func)
        return set()

    def _handed_on(self, node: ast.expr) -> bool:
        """Whether a value is handed on where the table does not follow it: passed to a call
        (other than one that only looks at it, ``getattr`` with a name the table resolves, or
        ``setattr`` with a constant name), returned, yielded, put in a container, stored in an
        attribute or an item, made a match subject, a default or a decorator. Not: called,
        bound to a name, used as a base class, compared, or part of a longer dotted name."""
        child: ast.AST = node
        parent = self.parents.get(id(node))
        while isinstance(parent, (ast.IfExp, ast.BoolOp)) and child is not getattr(
            parent, "test", None
        ):
            child, parent = parent, self.parents.get(id(parent))
        if parent is None:
            return False
        if isinstance(parent, ast.Call):
            return self._handed_to_call(parent, child)
        if isinstance(parent, ast.Attribute):
            return False
        if isinstance(parent, ast.Subscript):
            return parent.value is not child
        if isinstance(parent, (ast.Assign, ast.AnnAssign)):
            # stored in an attribute: ``obj.f = v``, or a class body's ``f = v`` (an attribute
            # of the class, reached through its instances and subclasses anywhere)
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            return child is parent.value and (
                any(not isinstance(t, ast.Name) for t in targets) or self._in_class_body(parent)
            )
        if isinstance(parent, ast.Match):
            return child is parent.subject
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return any(child is d for d in parent.decorator_list)
        return isinstance(parent, _HANDING_ON)

    def _in_class_body(self, node: ast.AST) -> bool:
        """Whether ``node`` runs in a class body (its innermost scope is a class)."""
        scope = self.parents.get(id(node))
        while scope is not None and not isinstance(scope, _SCOPE_NODES):
            scope = self.parents.get(id(scope))
        return isinstance(scope, ast.ClassDef)

    def _handed_to_call(self, call: ast.Call, child: ast.AST) -> bool:
        if child is call.func:
            return False
        callee = self.symbols.resolve(call.func)
        # a function of this module named like a builtin resolves to "?" too: not exempt
        if not callee or _UNKNOWN in callee:
            return True
        index = next((i for i, a in enumerate(call.args) if a is child), -1)
        if index == 0 and self.symbols._attrgetter(call.func) is not None:
            return False  # operator.attrgetter("loads")(pickle): resolved
        if callee <= _SETATTR:
            # setattr(obj, "f", v) binds obj.f (followed here) and, like ``obj.f = v``, stores
            # v in an object other modules reach: handed on, whatever the name
            return index == 2
        if index == 0 and callee <= (_GETATTR | _VARS | _PARTIAL):
            return False
        return not callee <= _INSPECTORS

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if _const_str(key) == "trust_remote_code" and _truth(value) is not False:
                self._hit(
                    _rules.CODE_REMOTE_CODE,
                    node.lineno,
                    "trust_remote_code not proven false (dict)"
                    if _truth(value) is None
                    else "trust_remote_code=True (dict)",
                )
        self.generic_visit(node)

    def _hit(self, rule: Rule, line: int, message: str, *, runs: str = "") -> None:
        if (rule.id, line) in self._seen:
            return
        self._seen.add((rule.id, line))
        if self.in_code_string:
            message += " (in code given as a string to run at this line)"
        self.hits.append(CodeHit(rule, line, message, runs))


#: What a source that cannot be analysed raises.
_ANALYSIS_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError)


def _run(parsed: _Parsed, symbols: _Symbols) -> list[CodeHit]:
    visitor = _Visitor(parsed, symbols)
    for line, name in symbols.yaml_patches:
        visitor._hit(
            _rules.CODE_YAML_LOAD,
            line,
            f"{name} is changed at run time (rebound, or given constructors): a yaml loader "
            "trusted as safe anywhere in the process may no longer be",
        )
    visitor.visit(parsed.tree)
    visitor.in_code_string = True
    for module in parsed.code_strings:
        visitor.visit(module)
    return sorted(visitor.hits, key=lambda h: h.line)


def analyse_source(source: str) -> Iterator[CodeHit]:
    """Findings of the ML rules in one Python source, on its own (names imported from other
    modules are not followed: see :func:`analyse_project`). Raises ``SyntaxError`` or
    ``ValueError``."""
    parsed = _parse(source)
    yield from _run(parsed, _Symbols(parsed.nodes))


def _module_path(rel: str) -> list[str] | None:
    """The dotted parts of the module a project file is, from the project root (a package's
    ``__init__.py`` is the package); None for a file that is not a module."""
    parts = rel.split("/")
    last = parts[-1]
    stem = next((last[: -len(x)] for x in (".py", ".pyw") if last.endswith(x)), None)
    if not stem:
        return None
    return parts[:-1] if stem == "__init__" else [*parts[:-1], stem]


def _module_names(rel: str, packages: set[str]) -> list[str]:
    """Every name a project file may be imported as: its dotted path from the project root,
    and from each folder below that is not a package (no ``__init__.py``), since any of those
    may be on ``sys.path`` (``src/`` layouts, scripts run from their folder)."""
    parts = _module_path(rel)
    if not parts:
        return []
    folders = rel.split("/")[:-1]
    return [
        ".".join(parts[i:])
        for i in range(len(parts))
        if i == 0 or "/".join(folders[:i]) not in packages
    ]


#: First parts of every canonical name a rule acts on (and the module chosen at run time).
_WATCHED_ROOTS = frozenset(
    n.split(".", 1)[0]
    for group in (
        _DESERIALIZERS,
        _PICKLE_MODULES,
        _VALUE_MODULES,
        _DANGEROUS_MODULES,
        _EVAL,
        _RUNNERS,
        _ALWAYS_RUNS,
        _INSTANCE_CLASSES,
        _TORCH_LOADS,
        _TORCH_URL_LOADS,
        _TORCH_HUB_CODE,
        _PICKLING_STORES,
        _SPAWNERS,
        _NUMPY_LOADS,
        _KERAS_LOADS,
        _YAML_SAFE_PARTS,
        _IMPORTERS,
        _GETATTR,
        _SETATTR,
        _SETITEM,
        _VARS,
        _SCOPES,
        _PARTIAL,
        {"torch", "transformers", "operator", "sys", "ctypes", _DYNAMIC},
    )
    for n in group
)
#: Last parts of names some rules act on whatever their module (``*.load_model``).
_WATCHED_SHORTS = frozenset({"load_model", *_REMOTE_CODE_CALLS})


def _watched(name: str) -> bool:
    """Whether a canonical name is one the rules may act on."""
    return name.split(".", 1)[0] in _WATCHED_ROOTS or name.rsplit(".", 1)[-1] in _WATCHED_SHORTS


def analyse_project(
    files: list[tuple[str, str, bool]], nodes_out: dict[int, list[ast.AST]] | None = None
) -> list[list[CodeHit] | Exception]:
    """Findings of the ML rules in each source of a project: ``(path relative to the project
    root, text, whether it is an importable module)`` -> its hits, or the exception that kept
    it from being analysed (``SyntaxError``, ``ValueError``, ``RecursionError``,
    ``MemoryError``), in order.

    Names are followed across the project's own modules: each module's symbol table is built,
    what it exports (module-level names, attributes of its classes, star imports) is collected
    under every name the module may be imported as, and a module that imports one whose
    exports reach a name the rules act on has its table built again with those exports
    (``from helpers import load`` where helpers.py has ``from pickle import loads as load``).
    Re-exports of re-exports are followed to a fixed point (bounded). ``nodes_out`` receives
    each parsed source's nodes by index (the secret search reads its string constants from
    them instead of parsing the source again).
    """
    packages = {
        rel.rsplit("/", 1)[0] if "/" in rel else ""
        for rel, _, importable in files
        if importable and rel.rsplit("/", 1)[-1] == "__init__.py"
    }
    results: list[list[CodeHit] | Exception] = [[] for _ in files]
    built: dict[int, tuple[_Parsed, _Symbols, str | None]] = {}
    modules: dict[str, tuple[dict[str, set[str]], list[str]]] = {}
    for index, (rel, text, importable) in enumerate(files):
        path = _module_path(rel) if importable else None
        package = None
        if path is not None:
            package = ".".join(path if rel.rsplit("/", 1)[-1] == "__init__.py" else path[:-1])
        try:
            parsed = _parse(text)
            symbols = _Symbols(parsed.nodes, package)
        except _ANALYSIS_ERRORS as exc:
            results[index] = exc
            continue
        built[index] = (parsed, symbols, package)
        if nodes_out is not None:
            nodes_out[index] = parsed.nodes
        if path is None:
            continue
        table = symbols.exports()
        if not table and not symbols.star:
            continue
        for name in _module_names(rel, packages):
            have = modules.setdefault(name, ({}, []))
            for key, values in table.items():
                have[0].setdefault(key, set()).update(values)
            have[1].extend(symbols.star)
    project = _Project(modules)

    def touches(symbols: _Symbols) -> bool:
        """Whether a value this module binds stands, through the project's exports, for a name
        the rules act on (only then is its table built again with the exports; names used
        directly are expanded where they are used either way)."""
        mentioned = {v for vs in symbols.names.values() for v in vs} | set(symbols.star)
        mentioned |= {v for vs in symbols.attrs.values() for v in vs}
        return any(_watched(x) for v in mentioned for x in project.expand(v))

    for index, (parsed, symbols, package) in built.items():
        try:
            if modules and touches(symbols):
                symbols = _Symbols(parsed.nodes, package, project)
            else:
                symbols.project = project
            results[index] = _run(parsed, symbols)
        except _ANALYSIS_ERRORS as exc:
            results[index] = exc
    return results
