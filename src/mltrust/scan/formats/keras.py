"""Keras model-config analysis, shared by ``.keras`` (``config.json``) and ``.h5`` models.

A Keras model is rebuilt from a JSON config. Two things in it run code on load:

* **Lambda layers**: the layer's function is stored as marshalled Python bytecode, base64
  encoded (Keras 2: ``"function": ["<b64>", null, null], "function_type": "lambda"``; Keras 3:
  ``{"class_name": "__lambda__", "config": {"code": "<b64>", ...}}``). Keras 3 refuses it unless
  ``safe_mode=False``; Keras 2 ``.h5`` loaders have no safe mode at all.
* **References to callables**: Keras 3 objects are ``{"module", "class_name", "config",
  "registered_name"}``; functions are ``{"module": m, "class_name": "function", "config": name}``;
  Keras 2 Lambda layers may name ``module`` + ``function``. A module outside Keras is imported
  and the named attribute called while the model is rebuilt (CVE-2025-1550).

The bytecode is never unmarshalled: the readable names in it (``co_names`` and constants are
stored as plain ASCII strings by ``marshal``) are extracted by scanning the bytes.

:func:`judge_callable` also serves the Hydra ``_target_`` checks of the config scanner: it
applies a denylist of dangerous callables first, then the project's ``allow_targets``, then the
pickle analyser's :func:`judge_global` when that module is installed.
"""

from __future__ import annotations

import binascii
import builtins
import functools
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mltrust._lazy import lazy_pattern
from mltrust.config import DEFAULT_LIMITS, ScanConfig
from mltrust.findings import Location, Severity
from mltrust.scan import _rules
from mltrust.scan._context import ScanContext
from mltrust.scan.formats._rules_keras_config import (
    KER_CUSTOM_OBJECT,
    KER_DANGEROUS_CALLABLE,
    KER_LAMBDA,
)

__all__ = [
    "Judgement",
    "analyze_keras_config",
    "is_keras_config",
    "judge_callable",
    "marshal_names",
]

#: Names reported per Lambda (presentation only, so not in :class:`~mltrust.config.Limits`).
_SHOWN_NAMES = 24

_KERAS_ROOTS = (
    "keras",
    "keras_nlp",
    "keras_cv",
    "keras_hub",
    "tf_keras",
    "tensorflow.keras",
    "tensorflow.python.keras",
)

#: Keras's own callables that turn a config into file writes, downloads or code.
_KERAS_DANGEROUS_NAMES = {
    "get_file": "downloads a file and writes it anywhere (CVE-2025-8747 safe_mode bypass)",
    "load_model": "loads another model file while this one is rebuilt",
    "load_weights": "reads another file while the model is rebuilt",
    "func_load": "unmarshals Python bytecode",
    "enable_unsafe_deserialization": "turns safe_mode off for everything loaded afterwards",
    "TFSMLayer": "loads and runs an external TensorFlow SavedModel graph",
    "deserialize_keras_object": "rebuilds another object from data (hides the real target)",
}

#: Names that are never a Keras layer, loss or activation, whatever Keras module holds them.
_GENERIC_DANGEROUS_NAMES = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "shutil",
        "system",
        "popen",
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "import_module",
        "getattr",
        "setattr",
        "rmtree",
        "remove",
        "unlink",
        "copy",
        "copyfile",
        "move",
        "makedirs",
        "rename",
        "File",
        "urlopen",
        "urlretrieve",
        "run_path",
        "run_module",
        "loads",
        "load",
    }
)
#: Segments of Keras module paths holding file, download and code utilities, not model parts.
_KERAS_UTILITY_SEGMENTS = frozenset(
    {"utils", "saving", "file_utils", "io_utils", "python_utils", "config", "legacy_h5_format"}
)


def _keras_internal_hazard(module: str, name: object) -> str | None:
    """Why ``module.name`` inside Keras is not a model part, or None when it may be one."""
    if not isinstance(name, str):
        return None
    if name in _KERAS_DANGEROUS_NAMES:
        return _KERAS_DANGEROUS_NAMES[name]
    if name in _GENERIC_DANGEROUS_NAMES:
        return "file, process or import helper, not a model component"
    segments = set(module.split("."))
    if name[:1].islower() and segments & _KERAS_UTILITY_SEGMENTS:
        return "Keras utility function (files, downloads, code loading), not a model component"
    return None


# Dangerous callables, by dotted prefix: (severity, reason, gadget). Checked before any allowlist.
_EXEC = "runs shell commands"
_CODE = "evaluates or compiles Python code"
_DENY_PREFIXES: dict[str, tuple[Severity, str]] = {
    "os.": (Severity.CRITICAL, "operating-system access (commands, files, environment)"),
    "posix.": (Severity.CRITICAL, "operating-system access (commands, files)"),
    "nt.": (Severity.CRITICAL, "operating-system access (commands, files)"),
    "subprocess.": (Severity.CRITICAL, _EXEC),
    "pty.": (Severity.CRITICAL, _EXEC),
    "commands.": (Severity.CRITICAL, _EXEC),
    "popen2.": (Severity.CRITICAL, _EXEC),
    "platform.popen": (Severity.CRITICAL, _EXEC),
    "asyncio.subprocess.": (Severity.CRITICAL, _EXEC),
    "asyncio.create_subprocess": (Severity.CRITICAL, _EXEC),
    "multiprocessing.": (Severity.HIGH, "starts processes"),
    "shutil.": (Severity.CRITICAL, "copies, moves or deletes files"),
    "tempfile.": (Severity.HIGH, "creates files"),
    "importlib.": (Severity.CRITICAL, "imports arbitrary modules"),
    "pkgutil.": (Severity.HIGH, "imports or resolves arbitrary names"),
    "runpy.": (Severity.CRITICAL, "runs Python modules or files"),
    "code.": (Severity.CRITICAL, _CODE),
    "codeop.": (Severity.CRITICAL, _CODE),
    "marshal.": (Severity.CRITICAL, "unmarshals Python bytecode"),
    "types.": (Severity.HIGH, "builds functions or code objects"),
    "pickle.": (Severity.CRITICAL, "unpickles data (runs code)"),
    "_pickle.": (Severity.CRITICAL, "unpickles data (runs code)"),
    "cPickle.": (Severity.CRITICAL, "unpickles data (runs code)"),
    "dill.": (Severity.CRITICAL, "unpickles data (runs code)"),
    "cloudpickle.": (Severity.CRITICAL, "unpickles data (runs code)"),
    "joblib.load": (Severity.CRITICAL, "unpickles a file (runs code)"),
    "numpy.load": (Severity.HIGH, "loads files that may hold pickles"),
    "numpy.testing.": (Severity.CRITICAL, "test runners that execute code"),
    "torch.load": (Severity.CRITICAL, "unpickles a checkpoint (runs code)"),
    "torch.hub.": (Severity.CRITICAL, "downloads and runs code"),
    "torch.jit.load": (Severity.HIGH, "loads and runs a TorchScript program"),
    "ctypes.": (Severity.CRITICAL, "calls native code"),
    "cffi.": (Severity.CRITICAL, "calls native code"),
    "socket.": (Severity.CRITICAL, "opens network connections"),
    "urllib.": (Severity.HIGH, "fetches URLs"),
    "http.": (Severity.HIGH, "opens network connections"),
    "requests.": (Severity.HIGH, "fetches URLs"),
    "httpx.": (Severity.HIGH, "fetches URLs"),
    "ftplib.": (Severity.HIGH, "opens network connections"),
    "smtplib.": (Severity.HIGH, "opens network connections"),
    "telnetlib.": (Severity.HIGH, "opens network connections"),
    "webbrowser.": (Severity.HIGH, "opens URLs"),
    "sys.": (Severity.HIGH, "changes interpreter state"),
    "signal.": (Severity.HIGH, "changes process state"),
    "pdb.": (Severity.CRITICAL, "debugger that runs code"),
    "bdb.": (Severity.CRITICAL, "debugger that runs code"),
    "cProfile.": (Severity.CRITICAL, "profiler that runs code"),
    "profile.": (Severity.CRITICAL, "profiler that runs code"),
    "timeit.": (Severity.CRITICAL, "runs code given as text"),
    "trace.": (Severity.CRITICAL, "runs code"),
    "pip.": (Severity.CRITICAL, "installs packages (runs their code)"),
    "setuptools.": (Severity.HIGH, "builds and installs packages"),
    "distutils.": (Severity.HIGH, "builds and installs packages"),
    "io.open": (Severity.HIGH, "opens files"),
    "io.FileIO": (Severity.HIGH, "opens files"),
    "codecs.open": (Severity.HIGH, "opens files"),
    "pathlib.": (Severity.HIGH, "file-system access"),
    "glob.": (Severity.MEDIUM, "lists files"),
    "tensorflow.io.": (Severity.HIGH, "reads or writes files"),
    "tensorflow.python.ops.gen_io_ops.": (Severity.HIGH, "reads or writes files"),
    "tensorflow.python.ops.io_ops.": (Severity.HIGH, "reads or writes files"),
    "tensorflow.python.lib.io.": (Severity.HIGH, "reads or writes files"),
    "tensorflow.python.ops.script_ops.": (Severity.CRITICAL, "runs Python functions in the graph"),
    "tensorflow.py_function": (Severity.CRITICAL, "runs Python functions in the graph"),
    "tensorflow.numpy_function": (Severity.CRITICAL, "runs Python functions in the graph"),
    "tensorflow.compat.v1.py_func": (Severity.CRITICAL, "runs Python functions in the graph"),
    "tensorflow.saved_model.load": (Severity.HIGH, "loads and runs another model graph"),
    "hydra._internal.": (Severity.HIGH, "resolves arbitrary names"),
    "hydra.utils.": (Severity.HIGH, "resolves or calls another target given as data"),
    "omegaconf.OmegaConf.load": (Severity.MEDIUM, "reads another file"),
    "nemo.utils.model_utils.import_class_by_path": (Severity.HIGH, "resolves arbitrary names"),
    "functools.": (Severity.HIGH, "wraps another callable given as data"),
    "operator.": (Severity.HIGH, "attribute/method gadgets"),
    "typing._eval_type": (Severity.CRITICAL, _CODE),
    "typing.get_type_hints": (Severity.HIGH, "evaluates annotations"),
    "jinja2.": (Severity.HIGH, "renders templates"),
    "yaml.load": (Severity.CRITICAL, "loads YAML with an unsafe loader"),
    "yaml.unsafe_load": (Severity.CRITICAL, "loads YAML with an unsafe loader"),
    "yaml.full_load": (Severity.HIGH, "loads YAML with an unsafe loader"),
    "transformers.dynamic_module_utils.": (Severity.CRITICAL, "imports remote code"),
}

_BUILTIN_MODULES = ("builtins", "__builtin__", "__builtins__")
_BUILTINS_CODE = {
    "eval": _CODE,
    "exec": _CODE,
    "compile": _CODE,
    "__import__": "imports arbitrary modules",
    "open": "opens files",
    "input": "reads the terminal",
    "breakpoint": "starts a debugger",
    "exit": "exits the process",
    "quit": "exits the process",
    "globals": "exposes interpreter state",
    "locals": "exposes interpreter state",
    "vars": "exposes interpreter state",
    "help": "starts the interactive help",
    "memoryview": "raw memory access",
}
_BUILTINS_GADGETS = {
    "getattr": "reaches any attribute (gadget)",
    "setattr": "changes any attribute",
    "delattr": "deletes any attribute",
    "type": "builds classes",
    "object": "base of gadget chains",
    "classmethod": "wraps callables",
    "staticmethod": "wraps callables",
    "super": "reaches parent classes",
    "apply": "calls another callable",
    "execfile": _CODE,
    "reload": "reimports modules",
}
#: Plain data constructors: harmless as a target.
_BUILTINS_SAFE = frozenset(
    {
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bool",
        "range",
        "slice",
        "len",
        "min",
        "max",
        "sum",
        "abs",
        "round",
        "sorted",
        "reversed",
        "zip",
        "enumerate",
        "NotImplemented",
        "Ellipsis",
    }
)


@dataclass(frozen=True, slots=True)
class Judgement:
    """What :func:`judge_callable` decided about one ``module.name`` target."""

    #: None when the target is allowed (no finding).
    severity: Severity | None
    reason: str
    #: True when the severity comes from a denylist entry (dangerous or gadget), False when the
    #: target is merely unknown.
    known_bad: bool = False

    @property
    def allowed(self) -> bool:
        return self.severity is None


def _pickle_judge() -> Callable[[str, str, ScanConfig], Any] | None:
    """The pickle analyser's ``judge_global``, when that package is installed."""
    try:
        module = importlib.import_module("mltrust.scan._pickle")
    except ImportError:
        return None
    judge = getattr(module, "judge_global", None)
    return judge if callable(judge) else None


def _denylist(dotted: str) -> Judgement | None:
    """The verdict of the denylist on ``dotted``, or None when it names nothing known."""
    parts = dotted.split(".")
    if parts[0] in _BUILTIN_MODULES:
        first = parts[1] if len(parts) > 1 else ""
        if first in _BUILTINS_CODE:
            return Judgement(Severity.CRITICAL, f"builtins.{first} {_BUILTINS_CODE[first]}", True)
        if first in _BUILTINS_GADGETS:
            return Judgement(Severity.HIGH, f"builtins.{first} {_BUILTINS_GADGETS[first]}", True)
        if first in _BUILTINS_SAFE and len(parts) == 2:
            return Judgement(None, "plain builtin data type")
        return None
    best: tuple[str, tuple[Severity, str]] | None = None
    for prefix, verdict in _DENY_PREFIXES.items():
        if dotted.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, verdict)
    if best is not None:
        severity, reason = best[1]
        return Judgement(severity, f"{dotted}: {reason}", True)
    # A dangerous module reached as an attribute of another (``numpy.os.system``).
    for i in range(1, len(parts)):
        tail = ".".join(parts[i:])
        if parts[i] in ("os", "subprocess", "builtins", "posix", "importlib", "sys") and (
            i < len(parts) - 1
        ):
            return Judgement(Severity.CRITICAL, f"{dotted} reaches {tail} through {parts[0]}", True)
        if parts[i] in ("__import__", "__builtins__", "__globals__", "__subclasses__"):
            return Judgement(Severity.CRITICAL, f"{dotted} reaches {parts[i]}", True)
    if len(parts) > 1 and parts[-1] in ("eval", "exec", "system", "popen", "spawnv", "execv"):
        return Judgement(Severity.CRITICAL, f"{dotted} names {parts[-1]}", True)
    return None


def _allowed_by_config(dotted: str, config: ScanConfig) -> bool:
    for prefix in config.allow_targets:
        if dotted == prefix.rstrip(".") or dotted.startswith(
            prefix if prefix.endswith((".", ":")) else prefix + "."
        ):
            return True
    return False


@functools.lru_cache(maxsize=8192)
def judge_callable(
    dotted: str,
    config: ScanConfig,
    *,
    allow_exact: frozenset[str] = frozenset(),
    split: tuple[str, str] | None = None,
) -> Judgement:
    """Judge the callable named by the dotted path ``dotted`` (``os.system``, ``torch.nn.Linear``).

    Order: the denylist of dangerous callables and gadgets (always wins); the project's
    ``allow_targets``; the caller's ``allow_exact`` names (reviewed entries, exact matches
    only); the pickle analyser's ``judge_global`` when installed, given ``split`` (module,
    name) or else the path split before its last component; otherwise the target is unknown
    (medium).
    """
    dotted = dotted.strip()
    if not dotted or not all(p.isidentifier() for p in dotted.split(".")):
        return Judgement(Severity.MEDIUM, f"{dotted!r} is not a valid dotted Python name")
    denied = _denylist(dotted)
    if denied is not None:
        return denied
    if _allowed_by_config(dotted, config):
        return Judgement(None, "allowed by allow_targets")
    if dotted in allow_exact:
        return Judgement(None, "on the caller's exact allowlist")
    judge = _pickle_judge()
    if judge is not None and "." in dotted:
        module, name = split if split is not None else tuple(dotted.rsplit(".", 1))
        verdict = judge(module, name, config)
        if getattr(verdict, "allowed", False):
            return Judgement(None, "allowed by the import allowlist")
        sev = getattr(verdict, "severity", None)
        if isinstance(sev, Severity) and sev > Severity.MEDIUM:
            return Judgement(sev, f"{dotted}: {getattr(verdict, 'reason', '')}", True)
    return Judgement(Severity.MEDIUM, f"{dotted} is not a known-safe callable")


# --------------------------------------------------------------------------------------------
# Lambda bytecode


_MARSHAL_SHORT = {0x7A, 0x5A}  # TYPE_SHORT_ASCII 'z', TYPE_SHORT_ASCII_INTERNED 'Z'
_MARSHAL_LONG = {0x61, 0x41, 0x75, 0x74, 0x73}  # 'a' 'A' 'u' 't' 's' (4-byte length)


_ident = lazy_pattern(rb"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


#: Names in bytecode that turn a Lambda into a command runner.
_DANGEROUS_CODE_NAMES = frozenset(
    {
        "os",
        "system",
        "popen",
        "subprocess",
        "Popen",
        "check_output",
        "check_call",
        "eval",
        "exec",
        "compile",
        "__import__",
        "__builtins__",
        "builtins",
        "importlib",
        "import_module",
        "socket",
        "urlopen",
        "urllib",
        "requests",
        "pty",
        "spawn",
        "shutil",
        "rmtree",
        "remove",
        "unlink",
        "pickle",
        "marshal",
        "ctypes",
        "getattr",
        "open",
        "write",
        "environ",
        "exit",
    }
)


def marshal_names(code: bytes, limit: int = _SHOWN_NAMES) -> list[str]:
    """Readable identifiers in marshalled bytecode, found by scanning (never unmarshalled)."""
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    n = len(code)
    while i < n - 1 and len(out) < limit:
        tag = code[i] & 0x7F
        text: bytes | None = None
        if tag in _MARSHAL_SHORT:
            size = code[i + 1]
            if i + 2 + size <= n:
                text = code[i + 2 : i + 2 + size]
                step = 2 + size
        elif tag in _MARSHAL_LONG and i + 5 <= n:
            size = int.from_bytes(code[i + 1 : i + 5], "little")
            if size <= 256 and i + 5 + size <= n:
                text = code[i + 5 : i + 5 + size]
                step = 5 + size
        if text is not None and len(text) >= 2 and _ident().match(text):
            name = text.decode("ascii")
            if name not in seen and name not in ("lambda", "<lambda>"):
                seen.add(name)
                out.append(name)
            i += step
            continue
        i += 1
    return out


def _lambda_code(value: object) -> str | None:
    """The base64 bytecode string of a serialized function, if ``value`` holds one."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    if isinstance(value, dict):
        for key in ("code", "value"):
            inner = value.get(key)
            found = _lambda_code(inner)
            if found is not None:
                return found
    return None


def _describe_code(b64: str | None) -> tuple[list[str], bool]:
    """Names referenced by base64 ``b64`` bytecode, and whether any is dangerous."""
    if not b64:
        return [], False
    import base64  # only Lambda layers carry base64 bytecode

    try:
        raw = base64.b64decode(
            b64[: DEFAULT_LIMITS.max_keras_code_b64].encode("ascii", "ignore"), validate=False
        )
    except (binascii.Error, ValueError):
        return [], False
    names = marshal_names(raw)
    return names, any(n in _DANGEROUS_CODE_NAMES for n in names)


# --------------------------------------------------------------------------------------------
# Config walk


def too_many_findings(ctx: ScanContext, start: int, loc: Location) -> bool:
    """True (after reporting it once) when a document has produced too many findings."""
    if len(ctx.findings) - start < ctx.limits.max_findings_per_document:
        return False
    ctx.report(
        _rules.LIMIT_EXHAUSTED,
        f"more than "
        f"{ctx.limits.max_findings_per_document} findings in one document; the rest of it was "
        "not checked",
        loc,
    )
    return True


def is_keras_config(doc: object) -> bool:
    """Whether a parsed JSON document has the shape of a Keras model (or layer) config."""
    if not isinstance(doc, dict):
        return False
    if isinstance(doc.get("class_name"), str) and "config" in doc:
        return True
    if "keras_version" in doc or "optimizer_config" in doc:
        return True
    return isinstance(doc.get("module"), str) and "registered_name" in doc


def _is_keras_module(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in _KERAS_ROOTS)


#: TensorFlow modules of plain tensor math, whose functions serve as activations and losses.
_TF_MATH_MODULES = frozenset(
    {
        "tensorflow.math",
        "tensorflow.nn",
        "tensorflow.python.ops.math_ops",
        "tensorflow.python.ops.gen_math_ops",
        "tensorflow.python.ops.nn_ops",
        "tensorflow.python.ops.gen_nn_ops",
        "tensorflow.python.ops.nn_impl",
        "tensorflow.python.ops.array_ops",
        "tensorflow.python.ops.special_math_ops",
    }
)


def _iter_dicts(
    doc: object, ctx: ScanContext, loc: Location
) -> Iterator[tuple[dict[str, Any], str]]:
    """Every dict in ``doc`` with a JSON-pointer-like path, bounded by depth and shared nodes."""
    max_depth = ctx.config.limits.max_nesting_depth
    seen: set[int] = set()
    stack: list[tuple[object, str, int]] = [(doc, "", 0)]
    too_deep = False
    visited = 0
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                continue
            seen.add(id(node))
            visited += 1
            if visited % 4096 == 0:
                ctx.check_deadline()
        if depth > max_depth:
            too_deep = True
            continue
        if isinstance(node, dict):
            yield node, path or "/"
            for key, value in reversed(list(node.items())):
                if isinstance(value, (dict, list)):
                    stack.append((value, f"{path}/{key}", depth + 1))
        elif isinstance(node, list):
            for idx in range(len(node) - 1, -1, -1):
                value = node[idx]
                if isinstance(value, (dict, list)):
                    stack.append((value, f"{path}/{idx}", depth + 1))
    if too_deep:
        ctx.report(
            _rules.LIMIT_EXHAUSTED,
            f"config nested deeper than max_nesting_depth={max_depth}; deeper parts not checked",
            loc,
        )


def _layer_name(d: dict[str, Any]) -> str:
    cfg = d.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
        return f" {cfg['name']!r}"
    name = d.get("name")
    return f" {name!r}" if isinstance(name, str) else ""


def _report_lambda(
    ctx: ScanContext,
    loc: Location,
    where: str,
    what: str,
    b64: str | None,
    *,
    keras3: bool,
) -> None:
    names, dangerous = _describe_code(b64)
    msg = what
    if names:
        msg += " whose code references " + ", ".join(names[:12])
    if keras3 and not dangerous:
        severity = Severity.HIGH
        msg += (
            ": marshalled Python bytecode runs when the model is loaded with safe_mode=False "
            "(refused by the Keras 3 default safe_mode=True, but often overridden)"
        )
    else:
        severity = Severity.CRITICAL
        msg += ": marshalled Python bytecode runs when the model is loaded" + (
            " with safe_mode=False" if keras3 else " (Keras 2/.h5 loaders have no safe mode)"
        )
    ctx.report(KER_LAMBDA, msg, loc.at(detail=where), severity=severity)


def _check_lambda_layer(
    d: dict[str, Any], cfg: dict[str, Any], ctx: ScanContext, loc: Location, where: str
) -> None:
    """Keras 2 style Lambda config: ``function``/``output_shape``/``mask`` + ``*_type``."""
    for key in ("function", "output_shape", "mask"):
        value = cfg.get(key)
        if value is None or isinstance(value, dict):
            continue  # Keras 3 dicts are handled where they are visited
        kind = cfg.get(f"{key}_type")
        module_key = "module" if key == "function" else f"{key}_module"
        if kind == "function" and isinstance(value, str):
            module = cfg.get(module_key)
            what = f"Lambda layer{_layer_name(d)} {key}"
            if isinstance(module, str) and (_is_keras_module(module) or module in _TF_MATH_MODULES):
                reason = _keras_internal_hazard(module, value)
                if reason is not None:
                    ctx.report(
                        KER_DANGEROUS_CALLABLE,
                        f"{what} reaches {module}.{value}: {reason}",
                        loc.at(detail=where),
                        severity=Severity.HIGH,
                    )
                continue
            dotted = f"{module}.{value}" if isinstance(module, str) and module else value
            _report_callable(ctx, loc, where, dotted, what)
            continue
        code = _lambda_code(value)
        looks_like_code = (
            code is not None and len(code) >= 16 and (kind == "lambda" or key == "function")
        )
        if kind == "lambda" or looks_like_code:
            _report_lambda(
                ctx,
                loc,
                f"{where}/config/{key}",
                f"Lambda layer{_layer_name(d)} {key}",
                code,
                keras3=False,
            )


#: Keras layers whose ``from_config`` reads a file (or URL) named by their ``vocabulary``:
#: the index lookups read it through ``tf.io.gfile`` even with safe_mode on (CVE-2025-12058).
_VOCABULARY_FILE_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
#: Config keys those layers, and KerasHub/KerasNLP tokenizers (``BytePairTokenizer``,
#: ``WordPieceTokenizer``, ``SentencePieceTokenizer`` and their model subclasses), open as a
#: file when given a string.
_FILE_KEYS = ("vocabulary", "merges", "proto")


def _embedded_bytes(value: object) -> bytes | None:
    """The bytes Keras rebuilds from a config value: a ``__bytes__`` object (Keras encodes its
    ``value`` as UTF-8) or a base64 string (``TorchModuleWrapper`` since Keras 3.10)."""
    if isinstance(value, dict) and value.get("class_name") == "__bytes__":
        inner = value.get("config")
        text = inner.get("value") if isinstance(inner, dict) else None
        return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else None
    if isinstance(value, str):
        import base64  # only TorchModuleWrapper configs carry base64 payloads

        try:
            return base64.b64decode(
                value[: DEFAULT_LIMITS.max_keras_code_b64].encode("ascii"), validate=True
            )
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return value.encode("utf-8", "surrogatepass")
    return None


def _check_layer_hazards(
    class_name: object, cfg: dict[str, Any], ctx: ScanContext, loc: Location, where: str
) -> None:
    """Built-in Keras layers whose ``from_config`` loads code or files named by their config.

    ``TorchModuleWrapper`` unpickles its ``module`` with ``torch.load(weights_only=False)``
    (refused by safe_mode only since Keras 3.11); the payload is also scanned as a nested file,
    so a malicious pickle gets the pickle scanner's findings. The index lookups and the
    KerasHub tokenizers read a ``vocabulary`` (``merges``, ``proto``) given as a path or URL
    while the model is rebuilt.
    """
    if class_name == "TorchModuleWrapper" and "module" in cfg:
        ctx.report(
            KER_DANGEROUS_CALLABLE,
            "TorchModuleWrapper layer: Keras rebuilds its torch module with "
            "torch.load(weights_only=False), which runs any code in the embedded pickle "
            "(refused by safe_mode only since Keras 3.11)",
            loc.at(detail=f"{where}/config/module"),
            severity=Severity.HIGH,
        )
        payload = _embedded_bytes(cfg.get("module"))
        if payload:
            ctx.scan_nested(payload, loc.member(f"[{where}/config/module]"), "module.pt")
    if not isinstance(class_name, str):
        return
    tokenizer = class_name in _VOCABULARY_FILE_LAYERS or class_name.endswith("Tokenizer")
    for key in _FILE_KEYS if tokenizer else ():
        path = cfg.get(key)
        if not isinstance(path, str) or not path:
            continue
        from mltrust.scan.formats.onnx import unsafe_location

        unsafe = unsafe_location(path)
        ctx.report(
            KER_DANGEROUS_CALLABLE,
            f"{class_name} reads its {key} from {path!r} while the model is rebuilt, even with "
            "safe_mode on (CVE-2025-12058: file disclosure or SSRF)"
            + (f"; the path {unsafe}" if unsafe else ""),
            loc.at(detail=f"{where}/config/{key}"),
            severity=Severity.HIGH if unsafe else Severity.MEDIUM,
        )


def _report_callable(
    ctx: ScanContext,
    loc: Location,
    where: str,
    dotted: str,
    what: str,
    split: tuple[str, str] | None = None,
) -> bool:
    """Judge a non-Keras ``dotted`` callable; True when a finding was reported."""
    verdict = judge_callable(dotted, ctx.config, split=split)
    if verdict.allowed:
        return False
    if verdict.known_bad:
        ctx.report(
            KER_DANGEROUS_CALLABLE,
            f"{what} reaches {dotted}, imported and called when the model is loaded: "
            f"{verdict.reason}",
            loc.at(detail=where),
            severity=verdict.severity,
        )
    else:
        ctx.report(
            KER_CUSTOM_OBJECT,
            f"{what} needs custom code {dotted}, imported and run when the model is loaded",
            loc.at(detail=where),
        )
    return True


def _check_object(d: dict[str, Any], ctx: ScanContext, loc: Location, where: str) -> None:
    class_name = d.get("class_name")
    module = d.get("module")
    registered = d.get("registered_name")
    cfg = d.get("config")
    if class_name == "__lambda__":
        _report_lambda(
            ctx,
            loc,
            where,
            "serialized Python lambda (__lambda__)",
            _lambda_code(cfg),
            keras3=True,
        )
        return
    if class_name == "Lambda" and isinstance(cfg, dict):
        _check_lambda_layer(d, cfg, ctx, loc, where)
    if isinstance(cfg, dict):
        _check_layer_hazards(class_name, cfg, ctx, loc, where)
    if not isinstance(class_name, str):
        return
    reported = False
    if isinstance(module, str) and module:
        name = cfg if class_name == "function" and isinstance(cfg, str) else class_name
        if module in _TF_MATH_MODULES and class_name == "function":
            pass
        elif _is_keras_module(module):
            reason = _keras_internal_hazard(module, name)
            if reason is not None:
                ctx.report(
                    KER_DANGEROUS_CALLABLE,
                    f"Keras object reaches {module}.{name}: {reason}",
                    loc.at(detail=where),
                    severity=Severity.HIGH,
                )
                reported = True
        elif module in _BUILTIN_MODULES and class_name == "function" and isinstance(cfg, str):
            if hasattr(builtins, cfg):
                reported = _report_callable(
                    ctx, loc, where, f"builtins.{cfg}", f"Keras function {cfg!r}"
                )
            else:
                ctx.report(
                    KER_CUSTOM_OBJECT,
                    f"Keras function {cfg!r} is custom code that must be importable when the "
                    "model is loaded",
                    loc.at(detail=where),
                )
                reported = True
        else:
            reported = _report_callable(
                ctx,
                loc,
                where,
                f"{module}.{name}",
                f"Keras object {class_name!r}",
                split=(module, name) if isinstance(name, str) else None,
            )
    if not reported and isinstance(registered, str) and ">" in registered:
        package, _, reg_name = registered.partition(">")
        package = package.strip()
        if package and not _is_keras_module(package.lower()):
            dotted = f"{package}.{reg_name}".strip(".")
            denied = _denylist(dotted) if all(p.isidentifier() for p in dotted.split(".")) else None
            if denied is not None and not denied.allowed:
                ctx.report(
                    KER_DANGEROUS_CALLABLE,
                    f"Keras object registered as {registered!r}: {denied.reason}",
                    loc.at(detail=where),
                    severity=denied.severity,
                )
            elif not _allowed_by_config(dotted, ctx.config):
                ctx.report(
                    KER_CUSTOM_OBJECT,
                    f"Keras custom object {registered!r} is code from package {package!r} that "
                    "must be importable and runs when the model is loaded",
                    loc.at(detail=where),
                )


def analyze_keras_config(
    doc: object, ctx: ScanContext, loc: Location, *, references: bool = True
) -> None:
    """Report Lambda layers and non-Keras callables found anywhere in the parsed config ``doc``.

    ``references=False`` checks only serialized code (Lambda layers, ``__lambda__``), for
    documents that do not have the shape of a Keras config.
    """
    start = len(ctx.findings)
    for d, where in _iter_dicts(doc, ctx, loc):
        if too_many_findings(ctx, start, loc):
            break
        if references:
            _check_object(d, ctx, loc, where)
        else:
            class_name = d.get("class_name")
            cfg = d.get("config")
            if class_name == "__lambda__":
                _report_lambda(
                    ctx,
                    loc,
                    where,
                    "serialized Python lambda (__lambda__)",
                    _lambda_code(cfg),
                    keras3=True,
                )
            elif class_name == "Lambda" and isinstance(cfg, dict):
                _check_lambda_layer(d, cfg, ctx, loc, where)
            if isinstance(cfg, dict):
                _check_layer_hazards(class_name, cfg, ctx, loc, where)
