"""Which pickle import targets are safe: the exact allowlist, then the denylist for severity.

A target is ``module:qualname`` as written in a GLOBAL/STACK_GLOBAL/INST opcode. It is judged in
this order (first match wins):

1. Python 2 names are mapped to Python 3 ones the way ``_compat_pickle`` does
   (``__builtin__.eval`` -> ``builtins.eval``, ``commands.getoutput`` -> ``subprocess``).
2. An exact entry of :data:`._allowlist.ALLOWLIST` is allowed, with the one use it is allowed
   for (type, call or value; :mod:`._allowlist`). There are no prefix, family or name-shape
   rules: a class that is not listed by its defining module and qualified name is not allowed,
   whatever library it lives in.
3. A qualified name with a dunder segment (``x.__class__``, ``f.__globals__``) is critical:
   it walks interpreter internals.
4. The denylist, by module (and module prefix) and name pattern, only decides *how bad* a
   target that is not allowed is (critical/high with a precise reason); it never allows.
5. A dotted qualified name is judged by what it reaches: ``torch:os.system`` reaches
   ``os.system`` through a module re-export, ``pathlib:Path.touch`` reaches a method of
   ``pathlib.Path``.
6. ``ScanConfig.allow_globals`` (``module:qualname`` or ``module:*``), the user's own decision;
   such targets may be used in any way.
7. Anything else is an unknown import (medium).

The safe loader's unpickler uses :func:`judge_global` too, so scanner and loader share this one
table.
"""

from __future__ import annotations

import _compat_pickle
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mltrust._lazy import lazy_pattern
from mltrust.findings import Rule, Severity
from mltrust.scan._pickle import _rules as R
from mltrust.scan._pickle._allowlist import ALLOWLIST, Allowed, Check, Use

if TYPE_CHECKING:
    from mltrust.config import ScanConfig

__all__ = ["GlobalVerdict", "canonical", "judge_global"]


@dataclass(frozen=True, slots=True)
class GlobalVerdict:
    """The decision about one import target; ``entry`` says how an allowed one may be used."""

    allowed: bool
    severity: Severity | None
    rule: Rule | None
    reason: str
    entry: Allowed | None = None


#: What a target allowed by ``ScanConfig.allow_globals`` may do: anything (the user trusts it).
_CONFIGURED = Allowed(Use.CALL, "allowed by the configuration", Check.DATA)

_C = Severity.CRITICAL
_H = Severity.HIGH

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
    "imaplib": [
        ("IMAP4_stream", _C, _EXEC, "runs a shell command as its transport"),
        ("*", _H, _SYS, "network access"),
    ],
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
    # Code-running helpers from public scanner advisories (picklescan, fickling, modelscan).
    "idlelib": [("*", _C, _EXEC, "IDLE internals that evaluate or run code")],
    "lib2to3": [("*", _C, _EXEC, "evaluates grammar strings or unpickles grammar files")],
    "_pyrepl": [("*", _C, _EXEC, "REPL pagers that run shell commands")],
    "test": [("*", _C, _EXEC, "CPython test helpers that spawn interpreters")],
    "torch.utils.bottleneck": [("*", _C, _EXEC, "profiles (executes) a code string")],
    "torch.utils.collect_env": [("*", _C, _EXEC, "runs shell commands")],
    "torch.utils._config_module": [("*", _C, _EXEC, "unpickles nested configuration bytes")],
    "torch.utils.data": [("*", _C, _EXEC, "data-pipe decoders that unpickle bytes")],
    "torch.fx": [("*", _C, _EXEC, "evaluates guard expressions and generated code")],
    "torch._inductor": [("*", _C, _EXEC, "compiles and runs generated code")],
    "torch.utils": [("*", _H, _GAD, "PyTorch utilities (files, processes, code generation)")],
    "mlflow": [("*", _H, _SYS, "runs projects and reads remote artifacts")],
    "mlflow.projects": [("*", _C, _EXEC, "runs project entry points (shell commands)")],
    "scipy.stats._continuous_distns": [
        (
            "*_gen",
            _H,
            _EXEC,
            "SciPy distribution: its __setstate__ runs exec on a code string "
            "taken from the pickle (_parse_arg_template)",
        ),
    ],
    "scipy.stats._discrete_distns": [
        (
            "*_gen",
            _H,
            _EXEC,
            "SciPy distribution: its __setstate__ runs exec on a code string "
            "taken from the pickle (_parse_arg_template)",
        ),
    ],
    "scipy.stats._distn_infrastructure": [
        (
            "rv_*",
            _H,
            _EXEC,
            "SciPy distribution base: its __setstate__ runs exec on a code "
            "string taken from the pickle",
        ),
    ],
    "scipy._lib": [("*", _H, _GAD, "SciPy internals")],
}

#: Module names that a dotted qualified name may reach through a re-export (``torch.os``).
_REACHABLE_MODULES = frozenset(_DENY) | frozenset(m.split(".")[0] for m in _DENY)


_dunder = lazy_pattern(r"__\w+__\Z")


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


def _config_allows(module: str, name: str, config: ScanConfig | None) -> bool:
    if config is None or not config.allow_globals:
        return False
    allowed = config.allow_globals
    if f"{module}:{name}" in allowed or f"{module}:*" in allowed:
        return True
    parts = module.split(".")
    return any(f"{'.'.join(parts[:i])}.*:*" in allowed for i in range(1, len(parts) + 1))


def judge_global(module: str, name: str, config: ScanConfig | None = None) -> GlobalVerdict:
    """Decide whether importing ``module:name`` while unpickling is safe, and for what use."""
    original = f"{module}:{name}"
    module, name = canonical(module, name)
    shown = f"{module}.{name}"
    renamed = f" (written as {original})" if f"{module}:{name}" != original else ""
    if not module or not name:
        return GlobalVerdict(False, _H, R.UNKNOWN_IMPORT, f"{original!r} (empty import target)")
    entry = ALLOWLIST.get(f"{module}:{name}")
    if entry is not None:
        return GlobalVerdict(
            True, None, None, f"{shown} is on the allowlist as a {entry.use.value}", entry
        )
    segments = name.split(".")
    if len(segments) == 1:
        denied = _deny_lookup(module, name)
        if denied is not None and (denied[0] is _C or not _dunder().match(name)):
            sev, rule, reason = denied
            return GlobalVerdict(False, sev, rule, f"{shown}{renamed} ({reason})")
        if _dunder().match(name):
            return GlobalVerdict(
                False, _C, R.DUNDER_IMPORT, f"{shown}{renamed} (dunder attribute of a module)"
            )
    else:
        if any(_dunder().match(s) for s in segments):
            return GlobalVerdict(
                False,
                _C,
                R.DUNDER_IMPORT,
                f"{shown}{renamed} (walks Python internals through a dunder attribute)",
            )
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
            return GlobalVerdict(
                True, None, None, f"{shown} is allowed by the configuration", _CONFIGURED
            )
        return GlobalVerdict(
            False,
            _H,
            R.GADGET_IMPORT,
            f"{shown}{renamed} (reaches the attribute {'.'.join(segments[1:])!r} of "
            f"{module}.{segments[0]}; methods reached this way act on arbitrary objects)",
        )
    if _config_allows(module, name, config):
        return GlobalVerdict(
            True, None, None, f"{shown} is allowed by the configuration", _CONFIGURED
        )
    return GlobalVerdict(
        False,
        Severity.MEDIUM,
        R.UNKNOWN_IMPORT,
        f"{shown}{renamed} (not on the allowlist: unknown import)",
    )
