"""Rules reported by the pickle and joblib analysers."""

from __future__ import annotations

from mltrust.findings import Severity, define_rule

__all__ = [
    "BAD_CALL_ARGUMENT",
    "BUFFER",
    "CALLABLE_FLOW",
    "COMPUTED_IMPORT",
    "DANGEROUS_IMPORT",
    "DUNDER_IMPORT",
    "EXTENSION",
    "GADGET_IMPORT",
    "JOBLIB_ARRAY_UNRESOLVED",
    "JOBLIB_EXTERNAL_ARRAY",
    "JOBLIB_HIDDEN_PICKLE",
    "JOBLIB_TRUNCATED",
    "NESTED_PICKLE",
    "PERSISTENT_ID",
    "SUSPICIOUS_BUILD",
    "SYSTEM_IMPORT",
    "TRAILING_DATA",
    "UNKNOWN_IMPORT",
    "UNVETTED_USE",
]

_ATLAS = ("AML.T0011.000", "AML.T0010.003")
_FIX = (
    "Do not load this file. Re-export the model from a trusted source, preferably in a "
    "format that cannot carry code (safetensors, ONNX)."
)

DANGEROUS_IMPORT = define_rule(
    "MLT-PKL-001",
    "pickle-code-execution",
    "The pickle imports or calls a function that executes code or shell commands when the "
    "file is loaded (os.system, eval, exec, subprocess, runpy...).",
    Severity.CRITICAL,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
SYSTEM_IMPORT = define_rule(
    "MLT-PKL-002",
    "pickle-system-access",
    "The pickle imports a function that reads or writes files, opens network connections or "
    "manages processes when the file is loaded.",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
GADGET_IMPORT = define_rule(
    "MLT-PKL-003",
    "pickle-gadget",
    "The pickle imports a gadget that turns harmless-looking imports into code execution "
    "(getattr, functools.partial, operator.attrgetter/methodcaller, typing._eval_type...).",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
UNKNOWN_IMPORT = define_rule(
    "MLT-PKL-004",
    "pickle-unknown-import",
    "The pickle imports a target that is not on the allowlist of safe ML-ecosystem classes and "
    "functions; loading it runs that target's code.",
    Severity.MEDIUM,
    cwe=502,
    atlas=_ATLAS,
    remediation="Review the named target; if the project trusts it, add it to "
    "[scan] allow_globals as 'module:qualname'.",
)
COMPUTED_IMPORT = define_rule(
    "MLT-PKL-005",
    "pickle-computed-import",
    "A STACK_GLOBAL takes its module or name from a value computed at load time, so the "
    "imported target cannot be known without executing the pickle.",
    Severity.CRITICAL,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
DUNDER_IMPORT = define_rule(
    "MLT-PKL-006",
    "pickle-dunder-traversal",
    "The pickle imports a qualified name that walks Python internals (__class__, __globals__, "
    "__builtins__, __subclasses__...), a classic sandbox escape.",
    Severity.CRITICAL,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
EXTENSION = define_rule(
    "MLT-PKL-007",
    "pickle-extension-code",
    "The pickle uses EXT1/EXT2/EXT4 opcodes; the copyreg extension registry is empty by default, "
    "so the import target depends on the loading process and cannot be checked.",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
SUSPICIOUS_BUILD = define_rule(
    "MLT-PKL-008",
    "pickle-suspicious-build",
    "A BUILD opcode sets attributes on a class, function or module, or sets special attributes "
    "(__reduce__, __setstate__, __dict__...) that change what later opcodes execute.",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
PERSISTENT_ID = define_rule(
    "MLT-PKL-009",
    "pickle-persistent-id",
    "The pickle uses persistent IDs (PERSID/BINPERSID); their meaning depends on the loader.",
    Severity.LOW,
    cwe=502,
)
TRAILING_DATA = define_rule(
    "MLT-PKL-010",
    "pickle-trailing-data",
    "Bytes follow the last pickle stream on which both unpicklers fail before any import or "
    "call (nothing in them can run when unpickled); they may hide a second format (polyglot).",
    Severity.LOW,
    cwe=434,
)
NESTED_PICKLE = define_rule(
    "MLT-PKL-011",
    "pickle-nested-pickle",
    "The pickle deserialises an embedded serialized object while loading (a nested pickle or "
    "PyTorch byte stream); the embedded bytes were scanned too.",
    Severity.INFO,
    cwe=502,
    atlas=_ATLAS,
)
BAD_CALL_ARGUMENT = define_rule(
    "MLT-PKL-012",
    "pickle-suspicious-call-argument",
    "An allowlisted function is called with arguments that are computed at load time or "
    "otherwise outside its safe use (for example _codecs.encode on a non-constant string).",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
BUFFER = define_rule(
    "MLT-PKL-013",
    "pickle-out-of-band-buffer",
    "The pickle uses out-of-band buffers (protocol 5 NEXT_BUFFER); the data comes from the "
    "loader, not from the file.",
    Severity.LOW,
    cwe=502,
)
JOBLIB_ARRAY_UNRESOLVED = define_rule(
    "MLT-JBL-001",
    "joblib-array-unresolved",
    "A joblib NumpyArrayWrapper's shape or dtype cannot be determined without executing the "
    "pickle, so the size of the raw array data after it is unknown and the rest of the file "
    "was not checked; or joblib.load and other readers would resume at different places after "
    "it (a FRAME that goes on past the wrapper or past an object array's STOP: high; a 0-byte "
    "element type that only mmap_mode loads).",
    Severity.MEDIUM,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
JOBLIB_TRUNCATED = define_rule(
    "MLT-JBL-002",
    "joblib-array-truncated",
    "A joblib array's raw data runs past the end of the file.",
    Severity.MEDIUM,
    cwe=20,
    atlas=_ATLAS,
    remediation="Re-export the model; do not load a truncated file.",
)
JOBLIB_EXTERNAL_ARRAY = define_rule(
    "MLT-JBL-003",
    "joblib-external-array",
    "A legacy joblib (< 0.10) array wrapper loads an array from another file named in the "
    "pickle: joblib.load opens that name in the folder of the path it is given, with "
    "numpy.load(allow_pickle=True) (ZNDArrayWrapper: as raw Z-file data). When the model is a "
    "file on disk (plain or compressed as a whole) and the name is a plain file name of a "
    "regular file beside it, that file is scanned by content as part of this one and its "
    "findings are this file's: the wrapper alone is then no finding. Medium when that file "
    "cannot be checked (missing, a link, content of no known format, a scan of bytes in memory "
    "or of an archive member); high when the name reaches elsewhere (a path separator, '..', "
    "an absolute path) or cannot be resolved. mltrust.load refuses every legacy wrapper.",
    Severity.MEDIUM,
    cwe=502,
    atlas=_ATLAS,
    remediation="Re-save the model with a current joblib (one self-contained file).",
)
JOBLIB_HIDDEN_PICKLE = define_rule(
    "MLT-JBL-004",
    "joblib-hidden-pickle",
    "The raw array region after a joblib NumpyArrayWrapper, read by pickle.load (or "
    "pandas.read_pickle, torch.load) as more opcodes of the same stream, imports or calls "
    "code: harmless for joblib.load, but executed by those readers.",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
UNVETTED_USE = define_rule(
    "MLT-PKL-014",
    "pickle-unvetted-use",
    "An allowlisted class or value is called with pickle-supplied arguments, a use it was not "
    "allowlisted for: classes are allowlisted to be rebuilt from BUILD state, and running their "
    "constructor on attacker data is not vetted.",
    Severity.MEDIUM,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
CALLABLE_FLOW = define_rule(
    "MLT-PKL-015",
    "pickle-callable-flow",
    "A callable allowlisted only for direct, checked calls (a nested deserialiser such as "
    "torch.storage._load_from_bytes, or getattr) is stored in a container, object state or "
    "argument, where the loaded object may call it later with data the scanner did not check.",
    Severity.HIGH,
    cwe=502,
    atlas=_ATLAS,
    remediation=_FIX,
)
