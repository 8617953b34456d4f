"""A symbolic pickle machine: every opcode of protocols 0-5, never executed.

The machine walks the opcodes the way ``pickle.Unpickler`` does - same stack, metastack (MARK)
and memo - but with symbolic values (:mod:`._values`). Imports are judged by
:func:`._policy.judge_global`; calls, BUILDs, extension codes and persistent IDs are reported as
they are met, so a payload followed by garbage is still reported (it would run before the parse
error). Large strings and byte strings are skipped by offset.

How each global is *used* is judged too (:mod:`._allowlist`): a class allowlisted as a type
may be rebuilt (NEWOBJ, ``copyreg._reconstructor``/``__newobj__``, a call without arguments)
but calling it with pickle-supplied arguments is reported; a value is never called; a callable
is judged by its arguments. Allowed functions that call one of their arguments
(``_rebuild_from_type_v2``, NumPy's random-state constructors) have that inner call judged as
if the pickle made it. *Restricted* callables - nested deserialisers such as
``torch.storage._load_from_bytes`` and ``getattr`` - are acceptable only as the callable of a
checked direct call; once one is imported, every value stored into a container, BUILD state,
argument or the result is checked for it (wherever it flows, including through the memo), and
a flow anywhere else is reported. What is NOT followed: what a listed class's own methods do
with its state after loading (``__setstate__`` implementations are reviewed instead, see
``tests/test_pickle_allowlist.py``).

joblib files are pickles with raw array bytes written after each ``NumpyArrayWrapper``'s BUILD;
the machine computes the size of that data from the wrapper's state and skips it (or analyses
the nested pickle of an object array), then goes on with the outer pickle. Whether NumPy will
unpickle that data is decided the way NumPy decides it - by the dtype flags in the pickled
state - and a dtype whose fields hold objects under flags that say otherwise (NumPy would read
raw bytes as object pointers) is reported.
"""

from __future__ import annotations

import codecs
import functools
import mmap
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from mltrust._lazy import lazy_pattern
from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import LimitExceeded
from mltrust.findings import Confidence, Location, Rule, Severity
from mltrust.scan import _archive_rules
from mltrust.scan import _rules as G
from mltrust.scan._pickle import _rules as R
from mltrust.scan._pickle._allowlist import ALLOWLIST, Allowed, Check, Use
from mltrust.scan._pickle._policy import GlobalVerdict, canonical, judge_global
from mltrust.scan._pickle._resolve import found_beside, may_resolve
from mltrust.scan._pickle._text import float_arg, int_arg, key_arg, long_arg
from mltrust.scan._pickle._values import Blob, Global, Obj, SDict, SList, SSet, Unknown

if TYPE_CHECKING:
    from mltrust.config import ScanConfig
    from mltrust.scan._context import ScanContext

__all__ = ["PickleSummary", "looks_like_pickle", "pickle_value", "scan_pickle_stream"]

_U1 = struct.Struct("<B").unpack_from
_U2 = struct.Struct("<H").unpack_from
_I4 = struct.Struct("<i").unpack_from
_U4 = struct.Struct("<I").unpack_from
_U8 = struct.Struct("<Q").unpack_from
_F8 = struct.Struct(">d").unpack_from

#: Strings longer than this stay in the buffer as :class:`Blob` references.
_DECODE_LIMIT = 4096
#: Bytes constants longer than this stay in the buffer.
_BYTES_LIMIT = 256
_JOBLIB_WRAPPER = "joblib.numpy_pickle:NumpyArrayWrapper"
_NESTED_LOADERS = frozenset(
    {
        "pickle:loads",
        "_pickle:loads",
        "dill:loads",
        "cloudpickle:loads",
        "torch.storage:_load_from_bytes",
        "numpy:loads",
    }
)
#: Allowlist checks whose callables may only be called directly (never stored or passed on).
_RESTRICTED_CHECKS = frozenset({Check.NESTED_BYTES})
#: Bases ``copyreg._reconstructor`` may use: ``base.__init__(obj, state)`` of a built-in type
#: only fills a built-in container from data.
_RECONSTRUCTOR_BASES = frozenset(
    f"builtins:{n}"
    for n in (
        "object",
        "dict",
        "list",
        "set",
        "frozenset",
        "tuple",
        "int",
        "float",
        "complex",
        "str",
        "bytes",
        "bytearray",
    )
)
#: Used as ``Global.entry`` for ``getattr`` (restricted: see ``call``).
_GETATTR = "getattr"
_SPECIAL_STATE_KEYS = frozenset(
    {
        "__reduce__",
        "__reduce_ex__",
        "__setstate__",
        "__getstate__",
        "__getattr__",
        "__getattribute__",
        "__setattr__",
        "__class__",
        "__dict__",
        "__init__",
        "__new__",
        "__call__",
        "__globals__",
        "__builtins__",
        "__code__",
        "__del__",
        "__eq__",
        "__hash__",
    }
)


_dtype_str = lazy_pattern(r"[<>|=]?([a-zA-Z?])(\d*)")


@dataclass(frozen=True, slots=True)
class PickleSummary:
    """What :func:`scan_pickle_stream` analysed."""

    #: Offset just after the last STOP consumed (or where parsing stopped).
    end: int
    #: Pickle streams analysed.
    streams: int
    opcodes: int
    #: ``module:qualname`` of every global referenced, in order, without duplicates.
    imports: tuple[str, ...]
    #: False when parsing stopped early (malformed input or an exhausted limit).
    complete: bool
    #: Nodes the walks over the symbolic value graph visited (bounded, see ``_VISITS_PER_BYTE``).
    visits: int = 0
    #: The (symbolic) value the last stream's STOP returned; None when it did not stop.
    result: object = None
    #: Where the last stream's last FRAME ends (0 without frames). An unpickler reading an
    #: unbuffered file (no ``peek``, as torch reads the members of its oldest format) has
    #: consumed the whole frame when it returns, so its next ``load`` starts there when that is
    #: after ``end``.
    frame_end: int = 0


class _Malformed(Exception):
    pass


class _Limit(Exception):
    pass


class _Stop(Exception):
    pass


class _Exhausted(_Limit):
    """The value-graph walks spent the analysis's node budget (see :meth:`_Analyser.charge`)."""


#: Node visits every walk over the symbolic value graph may make together, per analysis:
#: ``max_pickle_value_visits`` (a limit) plus this many per byte of data. The tuple walk
#: charges each distinct tuple once (its items plus one) and each value stored once; every
#: such item and value was pushed by an opcode of at least one byte, so a well-formed pickle
#: needs at most about two visits per byte. Only a pickle that makes the analysis do
#: super-linear work (the same large structure walked again and again) reaches the budget; it
#: is then reported as unsafe.
_VISITS_PER_BYTE = 2
#: Visits between two checks of the per-file deadline inside a walk.
_DEADLINE_EVERY = 4096


_OPNAMES: dict[int, str] = {
    0x28: "MARK",
    0x2E: "STOP",
    0x30: "POP",
    0x31: "POP_MARK",
    0x32: "DUP",
    0x46: "FLOAT",
    0x49: "INT",
    0x4A: "BININT",
    0x4B: "BININT1",
    0x4C: "LONG",
    0x4D: "BININT2",
    0x4E: "NONE",
    0x50: "PERSID",
    0x51: "BINPERSID",
    0x52: "REDUCE",
    0x53: "STRING",
    0x54: "BINSTRING",
    0x55: "SHORT_BINSTRING",
    0x56: "UNICODE",
    0x58: "BINUNICODE",
    0x61: "APPEND",
    0x62: "BUILD",
    0x63: "GLOBAL",
    0x64: "DICT",
    0x7D: "EMPTY_DICT",
    0x65: "APPENDS",
    0x67: "GET",
    0x68: "BINGET",
    0x69: "INST",
    0x6A: "LONG_BINGET",
    0x6C: "LIST",
    0x5D: "EMPTY_LIST",
    0x6F: "OBJ",
    0x70: "PUT",
    0x71: "BINPUT",
    0x72: "LONG_BINPUT",
    0x73: "SETITEM",
    0x74: "TUPLE",
    0x29: "EMPTY_TUPLE",
    0x75: "SETITEMS",
    0x47: "BINFLOAT",
    0x80: "PROTO",
    0x81: "NEWOBJ",
    0x82: "EXT1",
    0x83: "EXT2",
    0x84: "EXT4",
    0x85: "TUPLE1",
    0x86: "TUPLE2",
    0x87: "TUPLE3",
    0x88: "NEWTRUE",
    0x89: "NEWFALSE",
    0x8A: "LONG1",
    0x8B: "LONG4",
    0x42: "BINBYTES",
    0x43: "SHORT_BINBYTES",
    0x8C: "SHORT_BINUNICODE",
    0x8D: "BINUNICODE8",
    0x8E: "BINBYTES8",
    0x8F: "EMPTY_SET",
    0x90: "ADDITEMS",
    0x91: "FROZENSET",
    0x92: "NEWOBJ_EX",
    0x93: "STACK_GLOBAL",
    0x94: "MEMOIZE",
    0x95: "FRAME",
    0x96: "BYTEARRAY8",
    0x97: "NEXT_BUFFER",
    0x98: "READONLY_BUFFER",
}


def _escape_decode(body: bytes) -> str:
    """Decode a protocol 0 STRING body the way pickle does, without its warnings."""
    if b"\\" not in body:
        return body.decode("latin-1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        raw: bytes = codecs.escape_decode(body)[0]
    return raw.decode("latin-1")


#: Where ``getattr`` is imported from in protocol 2+ pickles (``__builtin__`` in Python 2 ones).
_BUILTINS_MODULES = frozenset({"builtins", "__builtin__"})


def _is_constant_str(value: object) -> bool:
    return type(value) is str or (isinstance(value, Blob) and value.kind == "str")


#: Characters of a value :func:`_describe` writes at most.
_DESCRIBE_CHARS = 80


def _describe(value: object) -> str:
    """A short text for ``value`` in a finding, in time bounded by its length.

    Never ``repr`` of a container: a pickle can share one tuple many times (DUP, memo GET), so
    ``repr`` would write the shared subtree once per path, exponentially many (red-team DoS).
    Every node written adds at least one character, so stopping at the length bound also
    bounds the nodes visited, however deep or shared the value is.
    """
    out: list[str] = []
    size = 0
    # Work list of values to write and literal text, popped from the end.
    todo: list[tuple[bool, object]] = [(False, value)]
    while todo and size <= _DESCRIBE_CHARS:
        literal, item = todo.pop()
        if literal:
            piece = cast("str", item)
        elif isinstance(item, Global):
            piece = f"{item.module}.{item.name}"
        elif isinstance(item, Obj):
            piece = "the result of calling " if item is value else ""
            todo.append((True, "" if item is value else "(...)"))
            todo.append((False, item.func))
        elif isinstance(item, Unknown):
            piece = item.what
        elif type(item) is tuple:
            piece = "("
            todo.append((True, ",)" if len(item) == 1 else ")"))
            for i in range(min(len(item), _DESCRIBE_CHARS) - 1, -1, -1):
                todo.append((False, item[i]))
                if i:
                    todo.append((True, ", "))
        elif isinstance(item, (SList, SDict, SSet)):
            piece = f"<{type(item).__name__[1:].lower()} of {item.count} items>"
        elif isinstance(item, (str, bytes)):
            piece = repr(item[:_DESCRIBE_CHARS])
        else:
            piece = repr(item)[: _DESCRIBE_CHARS + 1]
        out.append(piece)
        size += len(piece)
    text = "".join(out)
    if todo or len(text) > _DESCRIBE_CHARS:
        return text[: _DESCRIBE_CHARS - 3] + "..."
    return text


#: Verdicts of :func:`judge_global` (which depends on the configuration only through its
#: ``allow_globals``) shared by every analysis, one table per ``allow_globals`` value.
_VERDICTS: dict[frozenset[str], dict[tuple[str, str], GlobalVerdict]] = {}
#: Verdicts kept per table and tables kept at most (a table is emptied when full). A cache's
#: capacity, not a bound on input (a full cache is emptied and the verdicts are computed
#: again, the same), so not in :class:`~mltrust.config.Limits`.
_VERDICT_TABLE_SIZE = 8192
_VERDICT_TABLES = 16


def _verdict_cache(allow: frozenset[str]) -> dict[tuple[str, str], GlobalVerdict]:
    try:
        table = _VERDICTS.get(allow)
    except TypeError:  # an unhashable allow list (not a frozenset): no sharing
        return {}
    if table is None:
        if len(_VERDICTS) >= _VERDICT_TABLES:
            _VERDICTS.clear()
        table = _VERDICTS.setdefault(allow, {})
    elif len(table) >= _VERDICT_TABLE_SIZE:
        table.clear()
    return table


def _direct(data: memoryview) -> bytes | mmap.mmap | memoryview:
    """The bytes or mmap under ``data`` when the view covers all of it, else ``data``.

    Indexing and slicing them gives the same values as through the view, only faster.
    """
    obj = data.obj
    if (
        isinstance(obj, (bytes, mmap.mmap))
        and data.c_contiguous
        and data.itemsize == 1
        and data.nbytes == len(obj)
    ):
        return obj
    return data


_torchscript_class = lazy_pattern(r"^__torch__(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


_TORCHSCRIPT_VERDICT = GlobalVerdict(
    True, None, None, "a TorchScript class, resolved from the archive's code by TorchScript"
)


def _foreign_native_class(module: str) -> bool:
    """Whether ``module`` is ``__torch__.torch.classes.NS`` with an ``NS`` torch does not ship.

    TorchScript's unpickler binds such a global to the native (TorchBind) class registered
    under that name and runs its native ``__setstate__`` (red-team finding: a data.pkl naming
    one was clean while the same class in code/ is MLT-PT-006). The namespaces are
    :mod:`mltrust.scan.formats._torchscript`'s, so source, bytecode and pickles agree.
    """
    from mltrust.scan.formats._torchscript import TORCH_CLASS_NAMESPACES

    parts = module.split(".")
    return (
        len(parts) == 4
        and parts[:3] == ["__torch__", "torch", "classes"]
        and parts[3] not in TORCH_CLASS_NAMESPACES
    )


_FOREIGN_CLASS_VERDICT = GlobalVerdict(
    False,
    Severity.MEDIUM,
    _archive_rules.PT_SCRIPT_UNPROVEN,
    "a native (TorchBind) class outside torch's own: its __setstate__ is another library's "
    "native code",
)


class _Analyser:
    """State shared by the streams of one :func:`scan_pickle_stream` call."""

    def __init__(
        self, data: memoryview, ctx: ScanContext, loc: Location, context: str, joblib: bool
    ) -> None:
        self.buf = data
        # Index and unpack from the underlying bytes/mmap when the view covers all of it:
        # faster than going through the memoryview for every opcode.
        self.raw = _direct(data)
        self.ctx = ctx
        self.loc = loc
        self.context = context
        self.joblib = joblib
        self.config = ctx.config
        limits = ctx.config.limits
        self.max_ops: int = limits.max_pickle_opcodes
        self.max_marks: int = max(64, limits.max_nesting_depth * 50)
        self.max_memo: int = limits.max_pickle_memo
        self.max_stack: int = limits.max_pickle_stack
        self.max_line: int = limits.max_pickle_line_bytes
        self.max_fact_imports: int = limits.max_pickle_fact_imports
        self.opcodes = 0
        self.imports: dict[str, None] = {}
        #: ``module:qualname`` -> how the pickle used it (type/new/call/arg/value), for facts.
        self.uses: dict[str, set[str]] = {}
        self.verdicts = _verdict_cache(ctx.config.allow_globals)
        self.reported: set[tuple[str, str, bool]] = set()
        self.once: set[str] = set()
        self.shadow = False
        #: The shadow view is pickle.load's reading of a joblib object array's pickle (see
        #: ``report_global``).
        self.shadow_objects = False
        #: Set in that view once it met an import excused by :meth:`shifted_import_fails`.
        self.shadow_excused = False
        #: (stack, metastack, memo) the next stream starts with instead of empty ones: the
        #: stdlib unpickler's view of a joblib array region continues the outer stream.
        self.seed: tuple[list[object], list[list[object]], dict[int, object]] | None = None
        self.visits = 0
        self.visit_limit = limits.max_pickle_value_visits + _VISITS_PER_BYTE * len(data)
        self.next_deadline_check = _DEADLINE_EVERY
        #: Embedded payloads already handed to a nested scan (a pickle can call a nested loader
        #: on the same memoised bytes many times: each is scanned once).
        self.nested_seen: set[object] = set()
        #: What the last stream's STOP returned (plain values are Python values).
        self.result: object = None
        self.frame_end = 0
        #: While joblib's reading of an object array's pickle is analysed: the name each
        #: import opcode (by offset) imported there. pickle.load's reading of the same bytes
        #: is excused an unknown import only where it imports the same name (see
        #: ``report_global``).
        self.joblib_names: dict[int, str] | None = None

    def charge(self, nodes: int = 1) -> None:
        """Count ``nodes`` visits of a walk over the value graph against the shared budget.

        Every recursive or repeated walk over symbolic values calls this, so the analysis of
        any pickle does at most a linear amount of walking; the per-file deadline is checked
        here too, so a walk cannot outlive it.
        """
        self.visits += nodes
        if self.visits > self.visit_limit:
            raise _Exhausted(
                f"analysis budget exhausted ({self.visit_limit} visits of the pickle's values, "
                "far more than any ordinary pickle needs): treated as unsafe"
            )
        if self.visits >= self.next_deadline_check:
            self.next_deadline_check = self.visits + _DEADLINE_EVERY
            self.ctx.check_deadline()

    # ------------------------------------------------------------------ reporting helpers
    def at(self, offset: int, index: int, detail: str | None = None) -> Location:
        return self.loc.at(offset, index=index, detail=detail)

    def verdict(self, module: str, name: str) -> GlobalVerdict:
        if self.context == "pytorch" and _foreign_native_class(module):
            return _FOREIGN_CLASS_VERDICT
        if self.context == "pytorch" and _torchscript_class().match(module):
            # TorchScript classes (``__torch__.<qualname>``) are resolved by TorchScript's C++
            # unpickler from the archive's own code/ folder, never imported by Python; a plain
            # Python unpickler cannot import a ``__torch__`` module at all.
            return _TORCHSCRIPT_VERDICT
        key = (module, name)
        v = self.verdicts.get(key)
        if v is None:
            v = judge_global(module, name, self.config)
            self.verdicts[key] = v
        return v

    def report_global(self, g: Global, how: str, offset: int, index: int) -> None:
        """Report a non-allowlisted global once per stream position family."""
        key = (g.module, g.name, self.shadow)
        if key in self.reported:
            return
        self.reported.add(key)
        v = self.verdict(g.module, g.name)
        if v.rule is None:
            return
        if self.shifted_import_fails(g, v):
            return
        rule = R.JOBLIB_HIDDEN_PICKLE if self.shadow else v.rule
        message = f"{how} {v.reason}"
        if self.shadow:
            message = f"raw joblib array data read by pickle.load: {message}"
        confidence = Confidence.MEDIUM if v.rule is R.UNKNOWN_IMPORT else Confidence.HIGH
        self.ctx.report(
            rule,
            message,
            self.at(offset, index, f"target {g.module}:{g.name}"),
            severity=v.severity,
            confidence=confidence,
            extra={"target": f"{g.module}:{g.name}", "context": self.context},
        )

    def shifted_import_fails(self, g: Global, v: GlobalVerdict) -> bool:
        """Whether ``g`` is an import pickle.load makes, and fails on, only because it reads a
        joblib object array's pickle with the outer stream's memo.

        pickle.load's reading of a real joblib object array's pickle fetches the outer
        stream's memo values where joblib's fetches its own, so it "imports" pairs such as
        NumpyArrayWrapper:dtype or joblib.numpy_pickle:dtype, which fail at load time (every
        real dump with an object array does this): only the module differs from joblib's
        reading, the name is the pickle's own. Such an import is excused; the view is read on
        for the imports after it (the module may exist where the file is loaded). Not
        excused, reported like any other: a name joblib's reading did not import at that
        opcode too (fetched from the outer memo), and a pair that resolves here (uu:encode
        with only the module shifted), both red-team rtscan6; see _resolve.py for how
        "resolves" is decided unimported."""
        return (
            self.shadow_objects
            and v.rule is R.UNKNOWN_IMPORT
            and self.same_name(g)
            and not may_resolve(g.module, g.name)
            and not found_beside(self.loc.path, g.module)
        )

    def same_name(self, g: Global) -> bool:
        """Whether joblib's reading imported ``g``'s name at ``g``'s opcode too."""
        names = self.joblib_names
        return names is not None and names.get(g.offset) == g.name

    def use(self, g: Global, how: str) -> None:
        """Record how the pickle used ``g`` (facts only; the checks are in ``call``)."""
        kinds = self.uses.get(g.target)
        if kinds is None:
            if len(self.uses) >= self.max_fact_imports:
                return
            kinds = self.uses[g.target] = set()
        kinds.add(how)

    def finding(
        self,
        rule: Rule,
        message: str,
        offset: int,
        index: int,
        severity: Severity | None = None,
        once: str | None = None,
    ) -> None:
        if self.shadow:
            # The stdlib unpickler's view of joblib raw array data: what would be dangerous
            # there is reported (pickle.load, pandas.read_pickle and torch.load run it).
            if (severity or rule.default_severity) < Severity.MEDIUM or self.shadow_excused:
                # Past an excused import (see shifted_import_fails) pickle.load runs on only
                # where that module exists: what its shifted memo values are then called or
                # built with (a NumpyArrayWrapper called again, in real dumps) is not
                # reported; the imports it makes still are (report_global).
                return
            message = f"raw joblib array data read by pickle.load: {message}"
        if once is not None:
            if once in self.once:
                return
            self.once.add(once)
        self.ctx.report(rule, message, self.at(offset, index), severity=severity)

    # ------------------------------------------------------------------ main entry
    def run(self, start: int, single: bool) -> PickleSummary:
        pos, streams, complete, parting = self.reading(start, single, 0, follow_frames=False)
        result, frame_end = self.result, self.frame_end
        if parting is not None:
            # A reader without ``peek`` (a BytesIO, an unbuffered file: torch.load of a legacy
            # file read from bytes) resumes each load at the end of the FRAME holding the STOP,
            # a buffered file right after the STOP: from the first stream where the two part,
            # that reading is analysed too.
            streams = self.reading(parting, False, streams, follow_frames=True)[1]
            self.result, self.frame_end = result, frame_end
        return self.summary(pos, streams, complete, result)

    def reading(
        self, start: int, single: bool, streams: int, *, follow_frames: bool
    ) -> tuple[int, int, bool, int | None]:
        """Analyse the streams one reader loads from ``start``: (end, streams analysed in all,
        parsed to the last STOP, where the no-peek reading parts from this one or None)."""
        pos = start
        complete = True
        parting: int | None = None
        limit = self.ctx.config.limits.max_pickle_streams
        size = len(self.buf)
        while True:
            if streams >= limit:
                self.ctx.report(
                    G.LIMIT_EXHAUSTED,
                    f"more than {limit} concatenated pickle streams; the rest was not analysed",
                    self.loc.at(pos),
                )
                complete = False
                break
            streams += 1
            self.frame_end = 0
            pos, ok = self.stream(pos, joblib=self.joblib)
            if not ok:
                complete = False
                break
            if single or pos >= size:
                break
            if follow_frames:
                if self.frame_end > pos:
                    pos = self.frame_end
                if pos < size and _more_pickle(self.buf, pos):
                    continue
                break  # bytes the unpicklers refuse (reported by the first reading if at all)
            if _more_pickle(self.buf, pos):
                if (
                    parting is None
                    and self.frame_end > pos
                    and _more_pickle(self.buf, self.frame_end)
                ):
                    parting = self.frame_end
                continue
            if self.frame_end > pos and _more_pickle(self.buf, self.frame_end):
                # A reader without ``peek`` (a BytesIO, an unbuffered file) consumed the rest
                # of the FRAME that holds the STOP: its next load starts after the frame.
                pos = self.frame_end
                continue
            self.ctx.report(
                R.TRAILING_DATA,
                f"{size - pos} bytes after the last pickle stream are not a pickle "
                "(an unpickler fails on them before anything can run)",
                self.loc.at(pos),
            )
            break
        return pos, streams, complete, parting

    def summary(self, pos: int, streams: int, complete: bool, result: object) -> PickleSummary:
        imports = tuple(self.imports)
        cap = self.max_fact_imports
        facts = self.ctx.facts.setdefault("pickle_imports", [])
        if isinstance(facts, list):
            for imp in imports:
                if len(facts) >= cap:
                    break
                if imp not in facts:
                    facts.append(imp)
        uses = self.ctx.facts.setdefault("pickle_uses", {})
        if isinstance(uses, dict):
            for target, kinds in self.uses.items():
                if target in uses or len(uses) < cap:
                    known = uses.setdefault(target, [])
                    uses[target] = sorted(set(known) | kinds)
        return PickleSummary(
            pos,
            streams,
            self.opcodes,
            imports,
            complete,
            self.visits,
            result if complete else None,
            self.frame_end,
        )

    # ------------------------------------------------------------------ one stream
    def stream(self, start: int, *, joblib: bool) -> tuple[int, bool]:
        """Analyse one pickle from ``start``; return (end offset, parsed to STOP)."""
        pool = _MACHINES
        try:
            machine = pool.pop()
        except IndexError:
            machine = _new_machine()
        try:
            return machine(self, start, joblib)
        finally:
            if len(pool) < _MACHINE_POOL:
                pool.append(machine)

    def report_malformed(
        self, exc: Exception, pos: int, op_pos: int, op_index: int, op: int
    ) -> None:
        size = len(self.buf)
        if pos >= size:
            what = "the data ends before a STOP opcode (truncated pickle)"
        elif isinstance(exc, _Malformed):
            what = str(exc)
        elif isinstance(exc, IndexError):
            what = (
                f"{_OPNAMES.get(op, hex(op))} needs more values than the stack holds "
                "(stack underflow) or reads past the end"
            )
        elif isinstance(exc, struct.error):
            what = f"{_OPNAMES.get(op, hex(op))} argument runs past the end of the data"
        else:
            what = f"{_OPNAMES.get(op, hex(op))}: {type(exc).__name__}: {exc}"
        self.ctx.report(
            G.MALFORMED,
            f"pickle parsing stopped at opcode #{op_index}: {what}; pickle.load would fail "
            "here after running the opcodes before it",
            self.at(op_pos, op_index),
        )


#: Idle opcode machines (see :func:`_new_machine`), reused by later streams.
_MACHINES: list[Callable[[_Analyser, int, bool], tuple[int, bool]]] = []
#: Idle machines kept at most (one is in use per stream being analysed at the same time).
_MACHINE_POOL = 8
_NO_DATA = memoryview(b"")
_NO_ANALYSER: _Analyser = cast("_Analyser", None)
_NO_CONTEXT: ScanContext = cast("ScanContext", None)


def _new_machine() -> Callable[[_Analyser, int, bool], tuple[int, bool]]:
    """Build an opcode machine: its handlers and 256-entry dispatch table, made once.

    Making ~90 closures and the table for every stream cost more than analysing a small pickle,
    so a machine is built once and bound to one stream at a time by the returned function; the
    stream's state lives in the cells below, reset before and after each stream. A stream
    started while another runs (a joblib object array, a hidden or nested pickle, another
    thread) takes another machine from :data:`_MACHINES`.
    """
    an = _NO_ANALYSER
    mv = _NO_DATA
    buf: bytes | mmap.mmap | memoryview = b""
    end = 0
    ctx = _NO_CONTEXT
    joblib = False
    stack: list[object] = []
    metastack: list[list[object]] = []
    memo: dict[int, object] = {}
    pending: dict[tuple[str, str], Global] = {}
    getattrs: list[Global] = []
    #: Set once a restricted global (nested loader, getattr) is imported: from then on values
    #: stored into containers, states and arguments are checked for it.
    track = False
    #: Joblib array regions met in this stream, and whether pickle.load's reading of the
    #: stream has definitely ended at the first of them (see ``hidden_pickle_check``).
    regions = 0
    load_ended = False
    op_pos = 0  # offset of the current opcode (for findings)
    op_index = 0  # index of the current opcode (for findings)
    max_marks = 0

    def fail(msg: str) -> _Malformed:
        return _Malformed(msg)

    def readline(pos: int) -> tuple[bytes, int]:
        # The unpicklers read a line of any length (protocol 0 writes a whole array's data as
        # one line): lines are read up to max_text_bytes, and a longer one is a limit (not
        # "malformed": pickle.load reads it).
        limit = max(an.max_line, int(an.config.limits.max_text_bytes))
        window = 256
        while True:
            chunk = bytes(buf[pos : pos + min(window, limit + 1)])
            nl = chunk.find(b"\n")
            if nl >= 0:
                return chunk[:nl], pos + nl + 1
            if pos + len(chunk) >= end:
                raise fail("text argument is not terminated by a newline")
            if window > limit:
                raise _Limit(f"text argument longer than max_text_bytes={limit}")
            window *= 16

    def take(pos: int, n: int) -> int:
        if n < 0:
            raise fail("negative length")
        new = pos + n
        if new > end:
            raise fail(f"argument of {n} bytes runs past the end of the data")
        return new

    def text(pos: int, n: int, kind: str) -> object:
        new = take(pos, n)
        if n > _DECODE_LIMIT:
            return Blob(kind, pos, n)
        if kind == "str":
            return str(buf[pos:new], "utf-8", "surrogatepass")
        return bytes(buf[pos:new])

    def pop_mark() -> list[object]:
        nonlocal stack
        items = stack
        stack = metastack.pop()
        return items

    def do_import(module: str, name: str, offset: int, index: int) -> Global:
        nonlocal track
        target = f"{module}:{name}"
        an.imports[target] = None
        if an.joblib_names is not None and not an.shadow:
            an.joblib_names[offset] = name
        v = an.verdict(module, name)
        entry = v.entry
        restricted = False
        if entry is not None and entry.check in _RESTRICTED_CHECKS:
            restricted = True
        elif not v.allowed and name == "getattr" and module in _BUILTINS_MODULES:
            restricted = True
            getattrs.append(g := Global(module, name, offset, index, False, _GETATTR, True))
            track = True
            return g
        g = Global(module, name, offset, index, v.allowed, entry, restricted)
        if restricted:
            track = True
        if not v.allowed and (module, name) not in pending:
            pending[(module, name)] = g
        if not v.allowed and an.shifted_import_fails(g, v):
            # pickle.load raises ImportError/AttributeError on this import where the module is
            # missing, as here. The view is still read on for its imports (red team rtbenign:
            # a module present only where the file is loaded, torch in a scanner's own venv
            # without it, let pickle.load go on to a later import of os.system that ending
            # here hid); see ``finding`` for what is excused from then on.
            an.shadow_excused = True
        return g

    # ------------------------------------------------------------- how values flow
    def escape(g: Global, how: str) -> None:
        """A restricted global flowed somewhere other than a checked direct call."""
        if g.escaped:
            return
        g.escaped = True
        an.use(g, "value")
        if g.entry is _GETATTR:
            an.report_global(g, f"{how}:", g.offset, g.index)
            return
        an.finding(
            R.CALLABLE_FLOW,
            f"{g.module}.{g.name} ({g.entry.reason if isinstance(g.entry, Allowed) else ''}) "
            f"{how}; it may later be called with data the scanner did not check",
            op_pos,
            op_index,
        )

    #: Tuples already walked by flows() in this stream, by id (the value keeps the object
    #: alive, so an id is not reused while the stream runs): a pickle that shares one sub-tuple
    #: many times (DUP + TUPLE2 repeated) would otherwise make the walk exponential in its
    #: depth (red-team DoS). Emptied when the stream ends.
    walked: dict[int, tuple[object, ...]] = {}

    def flows(value: object, how: str) -> None:
        """Check a value stored into a container, state or argument (tuples, to any depth).

        Iterative and memoised by tuple identity: each tuple of the stream is walked once,
        whatever its depth or how often it is shared, and every item looked at is charged to
        the analysis budget. Only restricted globals are looked for, so there is nothing to walk
        before one is imported (``track``): a tuple built earlier cannot hold one.
        """
        if not track:
            return
        if isinstance(value, Global):
            if value.restricted:
                escape(value, how)
            return
        if type(value) is not tuple:
            return
        todo: list[tuple[object, ...]] = [value]
        while todo:
            tup = todo.pop()
            if id(tup) in walked:
                continue
            walked[id(tup)] = tup
            an.charge(len(tup) + 1)
            for item in tup:
                if isinstance(item, Global):
                    if item.restricted:
                        escape(item, how)
                elif type(item) is tuple and id(item) not in walked:
                    todo.append(item)

    def flows_all(values: list[object] | tuple[object, ...], how: str) -> None:
        if track:
            an.charge(len(values))
            for v in values:
                if isinstance(v, (Global, tuple)):
                    flows(v, how)

    def unvetted(g: Global, how: str, why: str) -> None:
        offset, index = op_pos, op_index
        an.finding(
            R.UNVETTED_USE,
            f"{how} calls {g.module}.{g.name} with pickle-supplied arguments, but it is "
            f"allowlisted only {why}",
            offset,
            index,
        )

    def call(func: object, args: object, how: str, depth: int = 0) -> object:
        offset, index = op_pos, op_index
        if isinstance(func, Global):
            if (
                func.entry is _GETATTR
                and isinstance(args, tuple)
                and len(args) == 2
                and isinstance(args[0], Global)
                and args[0].allowed
                and type(args[1]) is str
            ):
                # ``getattr(Class, "name")`` with an allowlisted class and a constant name is how
                # pickle reduces methods (zoneinfo.ZoneInfo._unpickle): judge the method it
                # reaches, ``module:Class.name``, instead of getattr itself.
                func.safe += 1
                an.use(func, "call")
                owner: Global = args[0]
                reached = do_import(owner.module, f"{owner.name}.{args[1]}", offset, index)
                if not reached.allowed:
                    an.report_global(reached, f"{how} calls getattr, reaching", offset, index)
                    pending.pop((reached.module, reached.name), None)
                return reached
            an.use(func, "new" if how.startswith("NEWOBJ") else "call")
            if not func.allowed:
                target = func.target
                an.report_global(func, f"{how} calls", offset, index)
                pending.pop((func.module, func.name), None)
                if target in _NESTED_LOADERS:
                    nested(args, offset, index, target)
            else:
                judge_call(func, args, how, depth)
        elif isinstance(func, (Obj, Unknown)):
            an.finding(
                R.BAD_CALL_ARGUMENT,
                f"{how} calls {_describe(func)}, a callable computed at load time",
                offset,
                index,
            )
        else:
            raise fail(f"{how} on a non-callable {_describe(func)}")
        return Obj(func, args)

    #: Argument tuples whose globals record_args() already recorded in this stream, by id (a
    #: memoised tuple of many items passed to many calls would make it quadratic).
    recorded: dict[int, tuple[object, ...]] = {}

    def record_args(args: object) -> None:
        if isinstance(args, tuple) and id(args) not in recorded:
            if len(args) > 8:  # small ones cost a constant per call
                recorded[id(args)] = args
                an.charge(len(args))
            for a in args:
                if isinstance(a, Global):
                    an.use(a, "arg")

    def judge_call(g: Global, args: object, how: str, depth: int) -> None:
        """An allowed global called with ``args``: judged by its entry's use and check."""
        entry = g.entry
        if not isinstance(entry, Allowed):
            return
        record_args(args)
        if how.startswith("NEWOBJ"):
            # cls.__new__(cls, *args): no constructor runs; the state comes by BUILD.
            flows(args, f"is passed to {g.module}.{g.name}.__new__")
            return
        no_args = args == () or (isinstance(args, tuple) and not args)
        if entry.use is Use.TYPE:
            if not no_args:
                unvetted(g, how, "as a type rebuilt from BUILD state (its constructor would run)")
            return
        if entry.use is Use.VALUE:
            unvetted(g, how, "as a value (it is never called by a real pickle)")
            return
        check = entry.check
        offset, index = op_pos, op_index
        if depth > 8:
            raise _Limit("callables nested more than 8 deep")
        if check is Check.DATA:
            flows(args, f"is passed to {g.module}.{g.name}")
        elif check is Check.CONSTANT_STR or check is Check.NESTED_BYTES:
            check_constant_args(g, args, how, offset, index)
        elif check is Check.RECONSTRUCTOR:
            check_reconstructor(g, args, how)
        elif check is Check.NEWOBJ:
            if isinstance(args, tuple) and args and isinstance(args[0], Global):
                an.use(args[0], "new")
            flows(args, f"is passed to {g.module}.{g.name}")
        elif check is Check.CALLS_FIRST:
            # _rebuild_from_type_v2(func, new_type, args, state): func(*args)
            if isinstance(args, tuple) and len(args) >= 3:
                inner = args[2] if isinstance(args[2], tuple) else (Unknown("arguments"),)
                flows_all(args[1:], f"is passed to {g.module}.{g.name}")
                call(args[0], inner, f"{how} via {g.module}.{g.name}", depth + 1)
            else:
                flows(args, f"is passed to {g.module}.{g.name}")
        elif check is Check.CALLS_SECOND:
            # __randomstate_ctor(name, ctor): ctor(name)
            if isinstance(args, tuple) and len(args) >= 2:
                flows_all(args[2:], f"is passed to {g.module}.{g.name}")
                call(args[1], (args[0],), f"{how} via {g.module}.{g.name}", depth + 1)
            else:
                flows(args, f"is passed to {g.module}.{g.name}")
        elif check is Check.CALLS_ARG_NO_ARGS:
            # __bit_generator_ctor(cls): cls() when cls is a type
            if isinstance(args, tuple):
                an.charge(len(args))
            for a in args if isinstance(args, tuple) else ():
                if isinstance(a, Global):
                    call(a, (), f"{how} via {g.module}.{g.name}", depth + 1)
        elif check is Check.PARTIAL:
            if isinstance(args, tuple) and args:
                check_partial_func(args[0], how)
                flows_all(args[1:], f"is bound by {g.module}.{g.name}")
            else:
                an.finding(
                    R.BAD_CALL_ARGUMENT,
                    f"{how} calls functools.partial without a function",
                    offset,
                    index,
                )
        elif check is Check.EXTERNAL_FILE:
            flows(args, f"is passed to {g.module}.{g.name}")

    def check_partial_func(func: object, how: str) -> None:
        ok = (
            isinstance(func, Global)
            and func.allowed
            and not func.restricted
            and isinstance(func.entry, Allowed)
        )
        if ok:
            an.use(cast("Global", func), "arg")
            return
        an.finding(
            R.BAD_CALL_ARGUMENT,
            f"{how} binds functools.partial to {_describe(func)}, which is not an allowlisted "
            "function",
            op_pos,
            op_index,
            severity=Severity.HIGH,
        )

    def check_reconstructor(g: Global, args: object, how: str) -> None:
        offset, index = op_pos, op_index
        ok = isinstance(args, tuple) and len(args) == 3 and isinstance(args[0], Global)
        if ok:
            cls, base, state = cast("tuple[Global, object, object]", args)
            an.use(cls, "new")
            if not cls.allowed:
                an.report_global(cls, f"{how} rebuilds", cls.offset, cls.index)
                pending.pop((cls.module, cls.name), None)
            if cls.restricted:
                escape(cls, f"is passed to {g.module}.{g.name}")
            base_ok = (
                isinstance(base, Global)
                and ":".join(canonical(base.module, base.name)) in _RECONSTRUCTOR_BASES
            )
            if base_ok and cast("Global", base).name == "object" and state is not None:
                base_ok = False
            if base_ok:
                an.use(cast("Global", base), "arg")
                flows(state, f"is passed to {g.module}.{g.name}")
                return
        an.finding(
            R.BAD_CALL_ARGUMENT,
            f"{how} calls copyreg._reconstructor with {_describe(args)}: only "
            "(class, object, None) or a built-in base type rebuilds an object without running "
            "other code",
            offset,
            index,
        )

    def latin1_source(value: object) -> object:
        """The text of ``_codecs.encode(text, "latin1")`` (how protocol 2 writes bytes)."""
        if not (
            isinstance(value, Obj)
            and isinstance(value.func, Global)
            and value.func.target == "_codecs:encode"
            and isinstance(value.args, tuple)
            and len(value.args) == 2
            and value.args[1] in ("latin1", "latin-1")
        ):
            return None
        return value.args[0]

    def latin1_constant(value: object) -> bytes | None:
        """Protocol 2 writes bytes as ``_codecs.encode(text, "latin1")``: the constant bytes."""
        text = latin1_source(value)
        if isinstance(text, Blob) and text.kind == "str":
            if text.length > an.config.limits.max_member_bytes:
                return None
            text = str(mv[text.offset : text.offset + text.length], "utf-8", "surrogatepass")
        if type(text) is not str:
            return None
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            return None

    def check_constant_args(func: Global, args: object, how: str, o: int, i: int) -> None:
        target = func.target
        if func.entry is not None and cast("Allowed", func.entry).check is Check.CONSTANT_STR:
            ok = (
                isinstance(args, tuple)
                and 1 <= len(args) <= 2
                and all(_is_constant_str(a) for a in args)
            )
            if not ok:
                an.finding(
                    R.BAD_CALL_ARGUMENT,
                    f"{how} calls {func.module}.{func.name} with non-constant arguments "
                    f"({_describe(args)})",
                    o,
                    i,
                )
            return
        # A nested deserialiser (torch.storage._load_from_bytes): torch.load on embedded bytes.
        payload = args[0] if isinstance(args, tuple) and len(args) == 1 else None
        key = nested_key(payload)
        if key is not None and key in an.nested_seen:
            func.safe += 1  # the same embedded bytes, already scanned
            return
        encoded = latin1_constant(payload)
        if encoded is not None:
            func.safe += 1
            nested((encoded,), o, i, target, key)
        elif isinstance(payload, (bytes, Blob)) and (
            not isinstance(payload, Blob) or payload.kind == "bytes"
        ):
            func.safe += 1
            nested(args, o, i, target, key)
        else:
            an.finding(
                R.BAD_CALL_ARGUMENT,
                f"{how} calls {func.module}.{func.name} on a value computed at load time "
                f"({_describe(payload)}); the bytes it deserialises cannot be scanned",
                o,
                i,
            )

    def nested_key(payload: object) -> object:
        """What identifies the bytes a nested loader would deserialise from ``payload``.

        A pickle can pass the same memoised bytes to a nested loader many times; scanning
        them each time would make the analysis quadratic, so :func:`nested` scans each key
        once. Large payloads are known by their place in the buffer, small ones by value;
        ``None`` when the payload is not constant bytes (or latin-1 text made bytes).
        """
        source, how = payload, "bytes"
        if isinstance(payload, Obj):
            source, how = latin1_source(payload), "latin1"
        if isinstance(source, Blob):
            return (how, source.kind, source.offset, source.length)
        if isinstance(source, (bytes, str)):
            return (how, type(source).__name__, source)
        return None

    def nested(args: object, o: int, i: int, target: str, key: object = None) -> None:
        # Scanned in the shadow (pickle.load) view too: a nested loader runs there as well.
        payload = args[0] if isinstance(args, tuple) and args else None
        if key is None:
            key = nested_key(payload)
        if key is not None:
            if key in an.nested_seen:
                return
            an.nested_seen.add(key)
        if isinstance(payload, Blob) and payload.kind == "bytes":
            view = mv[payload.offset : payload.offset + payload.length]
        elif isinstance(payload, bytes):
            view = memoryview(payload)
        else:
            return
        an.finding(
            R.NESTED_PICKLE,
            f"{target.replace(':', '.')} deserialises {len(view)} embedded bytes; "
            "scanned as nested content",
            o,
            i,
        )
        ctx.scan_nested(view, an.loc.at(o, index=i, detail="nested pickle"), "nested")

    def check_build(inst: object, st: object) -> None:
        offset, index = op_pos, op_index
        if isinstance(inst, Obj):
            cls = _class_of(inst)
            entry = cls.entry if cls is not None else None
            if isinstance(entry, Allowed):
                if entry.check is Check.PARTIAL:
                    # partial.__setstate__((func, args, kwds, dict)) replaces the function.
                    if isinstance(st, tuple) and st:
                        check_partial_func(st[0], "BUILD")
                    else:
                        check_partial_func(st, "BUILD")
                elif entry.check is Check.EXTERNAL_FILE:
                    check_external_file(st, offset, index)
        if isinstance(inst, Global):
            an.finding(
                R.SUSPICIOUS_BUILD,
                f"BUILD sets attributes on {inst.module}.{inst.name} itself "
                "(a class, function or module), changing code for later opcodes",
                offset,
                index,
            )
            return
        dicts: list[object] = [st]
        if isinstance(st, tuple) and len(st) == 2:
            dicts = [st[0], st[1]]
        for d in dicts:
            if isinstance(d, SDict):
                # Through the dict's key index: constant time however often one large dict
                # is used as BUILD state.
                bad = sorted(k for k in _SPECIAL_STATE_KEYS if k in d.index)
                if bad:
                    an.finding(
                        R.SUSPICIOUS_BUILD,
                        f"BUILD state sets special attribute(s) {', '.join(bad)} on "
                        f"{_describe(inst)}",
                        offset,
                        index,
                    )

    def check_dtype_flags(dtype: Obj) -> None:
        st = dtype.state
        if not (
            isinstance(st, tuple) and len(st) >= 5 and (st[2] is not None or st[4] is not None)
        ):
            return  # no fields or subarray: the type code alone decides
        walk = _DtypeWalk(an.charge)
        structure = _dtype_holds_objects(dtype, walk)
        if isinstance(structure, str):
            an.finding(
                R.SUSPICIOUS_BUILD,
                f"BUILD gives a numpy dtype fields or a subarray the analysis cannot resolve "
                f"({structure}), so whether numpy reads raw bytes as object pointers is unknown",
                op_pos,
                op_index,
                severity=Severity.MEDIUM,
            )
            return
        outside = _dtype_field_outside(dtype, walk)
        if outside is not None:
            an.finding(
                R.SUSPICIOUS_BUILD,
                f"BUILD gives a numpy dtype {outside}: numpy reads and writes that field "
                "outside the array's memory (memory corruption)",
                op_pos,
                op_index,
            )
        layout = _dtype_layout(dtype, walk)
        if isinstance(layout, tuple) and layout[1] is None:
            an.finding(
                R.SUSPICIOUS_BUILD,
                "BUILD gives a numpy dtype object fields under flags that say it has none: "
                "numpy then copies raw bytes from the pickle into object pointers (memory "
                "corruption that can be turned into code execution)",
                op_pos,
                op_index,
            )

    def check_external_file(st: object, offset: int, index: int) -> None:
        # joblib's load_build calls the wrapper's read() right after this BUILD: it opens
        # os.path.join(<folder of the path joblib.load was given>, filename) with
        # np.load(allow_pickle=True) (ZNDArrayWrapper: raw Z-file data). A plain name is
        # vouched for only by scanning that companion file itself (rule MLT-JBL-003).
        name = st.get("filename") if isinstance(st, SDict) else None
        if type(name) is str and _plain_file_name().fullmatch(name):
            if ctx.scan_beside(name, an.loc):
                return
            an.finding(
                R.JOBLIB_EXTERNAL_ARRAY,
                f"legacy joblib (< 0.10) array wrapper loads the array from the file {name!r} "
                "next to the model, read with pickle enabled; that file was not found beside "
                "the scanned file (or was not a regular file with a known format), so it was "
                "not checked",
                offset,
                index,
            )
            return
        an.finding(
            R.JOBLIB_EXTERNAL_ARRAY,
            f"legacy joblib array wrapper names the file {_describe(name)}, which is not a "
            "plain file name next to the model: it reads (and unpickles) a file chosen by the "
            "pickle",
            offset,
            index,
            severity=Severity.HIGH,
        )

    # ---------------------------------------------------------------- opcode handlers
    def op_mark(pos: int) -> int:
        nonlocal stack
        if len(metastack) >= max_marks:
            raise _Limit(f"more than {max_marks} nested MARKs")
        metastack.append(stack)
        stack = []
        return pos

    def op_stop(pos: int) -> int:
        raise _Stop(pos, stack.pop())

    def op_pop(pos: int) -> int:
        if stack:
            stack.pop()
        else:
            pop_mark()
        return pos

    def op_pop_mark(pos: int) -> int:
        pop_mark()
        return pos

    def op_dup(pos: int) -> int:
        stack.append(stack[-1])
        return pos

    def op_float(pos: int) -> int:
        line, pos = readline(pos)
        stack.append(float_arg(line))
        return pos

    def op_int(pos: int) -> int:
        line, pos = readline(pos)
        if line == b"00":
            stack.append(False)
        elif line == b"01":
            stack.append(True)
        else:
            stack.append(int_arg(line) if len(line) < 4300 else Unknown("large integer"))
        return pos

    def op_binint(pos: int) -> int:
        stack.append(_I4(buf, pos)[0])
        return pos + 4

    def op_binint1(pos: int) -> int:
        stack.append(buf[pos])
        return pos + 1

    def op_long(pos: int) -> int:
        line, pos = readline(pos)
        stack.append(long_arg(line) if len(line) < 4300 else Unknown("large integer"))
        return pos

    def op_binint2(pos: int) -> int:
        stack.append(_U2(buf, pos)[0])
        return pos + 2

    def op_none(pos: int) -> int:
        stack.append(None)
        return pos

    def op_persid(pos: int) -> int:
        line, pos = readline(pos)
        persistent(_describe(line.decode("ascii")))
        return pos

    def op_binpersid(pos: int) -> int:
        pid = stack.pop()
        if (
            an.context == "pytorch"
            and isinstance(pid, tuple)
            and len(pid) >= 2
            and pid[0] == "module"
            and isinstance(pid[1], Global)
        ):
            # Legacy torch.save of a whole module: persistent_load returns the class named in
            # the id (after comparing its source), so the id stands for that class, which was
            # judged when its GLOBAL was read and is judged again when it is called.
            stack.append(pid[1])
            return pos
        persistent(_describe(pid))
        return pos

    def persistent(pid: str) -> None:
        stack.append(Unknown(f"persistent id {pid}"))
        if an.context != "pytorch":
            offset, index = op_pos, op_index
            an.finding(
                R.PERSISTENT_ID,
                f"persistent id {pid} (resolved by the loader's persistent_load)",
                offset,
                index,
                once="persid",
            )

    def op_reduce(pos: int) -> int:
        args = stack.pop()
        stack[-1] = call(stack[-1], args, "REDUCE")
        return pos

    def op_string(pos: int) -> int:
        line, pos = readline(pos)
        if len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
            stack.append(_escape_decode(line[1:-1]))
        else:
            raise fail("STRING argument is not quoted")
        return pos

    def op_binstring(pos: int) -> int:
        n: int = _I4(buf, pos)[0]
        pos += 4
        value = text(pos, n, "bytes")
        stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)
        return pos + n

    def op_short_binstring(pos: int) -> int:
        n = buf[pos]
        pos += 1
        new = take(pos, n)
        stack.append(str(buf[pos:new], "latin-1"))
        return new

    def op_unicode(pos: int) -> int:
        line, pos = readline(pos)
        stack.append(line.decode("raw-unicode-escape"))
        return pos

    def op_binunicode(pos: int) -> int:
        n: int = _U4(buf, pos)[0]
        pos += 4
        stack.append(text(pos, n, "str"))
        return pos + n

    def op_short_binunicode(pos: int) -> int:
        n = buf[pos]
        pos += 1
        new = pos + n
        if new > end:
            raise fail("string runs past the end of the data")
        stack.append(str(buf[pos:new], "utf-8", "surrogatepass"))
        return new

    def op_binunicode8(pos: int) -> int:
        n: int = _U8(buf, pos)[0]
        pos += 8
        stack.append(text(pos, n, "str"))
        return pos + n

    def op_binbytes(pos: int) -> int:
        n = _U4(buf, pos)[0]
        pos += 4
        stack.append(text(pos, n, "bytes") if n <= _BYTES_LIMIT else Blob("bytes", pos, n))
        return take(pos, n)

    def op_short_binbytes(pos: int) -> int:
        n = buf[pos]
        pos += 1
        new = take(pos, n)
        stack.append(bytes(buf[pos:new]))
        return new

    def op_binbytes8(pos: int) -> int:
        n = _U8(buf, pos)[0]
        pos += 8
        new = take(pos, n)
        stack.append(bytes(buf[pos:new]) if n <= _BYTES_LIMIT else Blob("bytes", pos, n))
        return new

    def op_bytearray8(pos: int) -> int:
        n = _U8(buf, pos)[0]
        pos += 8
        new = take(pos, n)
        stack.append(Blob("bytes", pos, n))
        return new

    def op_append(pos: int) -> int:
        value = stack.pop()
        target = stack[-1]
        if track:
            flows(value, "is stored in a list")
        if isinstance(target, SList):
            target.extend([value])
        elif not isinstance(target, (Obj, Unknown)):
            raise fail(f"APPEND to {_describe(target)}")
        return pos

    def op_appends(pos: int) -> int:
        items = pop_mark()
        target = stack[-1]
        flows_all(items, "is stored in a list")
        if isinstance(target, SList):
            target.extend(items)
        elif not isinstance(target, (Obj, Unknown)):
            raise fail(f"APPENDS to {_describe(target)}")
        return pos

    def op_build(pos: int) -> int:
        st = stack.pop()
        inst = stack[-1]
        check_build(inst, st)
        if track:
            flows(st, "is set as object state by BUILD")
        if isinstance(inst, Obj):
            inst.state = st
            func = inst.func
            if isinstance(func, Global) and func.target in _DTYPE_TARGETS:
                check_dtype_flags(inst)
            # joblib reads array data after the BUILD of *any* NumpyArrayWrapper instance,
            # however it was created (NEWOBJ, copyreg._reconstructor, __newobj__).
            cls = _class_of(inst) if joblib else None
            if cls is not None and cls.target == _JOBLIB_WRAPPER:
                stack[-1] = Unknown("joblib array")
                return joblib_array(pos, st)
        return pos

    def op_global(pos: int) -> int:
        offset, index = op_pos, op_index
        mline, pos = readline(pos)
        nline, pos = readline(pos)
        module = mline.decode("utf-8")
        name = nline.decode("utf-8")
        stack.append(do_import(module, name, offset, index))
        return pos

    def op_stack_global(pos: int) -> int:
        offset, index = op_pos, op_index
        name = stack.pop()
        module = stack.pop()
        name = resolve_str(name)
        module = resolve_str(module)
        if type(module) is str and type(name) is str:
            stack.append(do_import(module, name, offset, index))
            return pos
        # Both unpicklers require exactly str: a value known not to be one makes them raise
        # before anything is imported.
        if _not_a_str(module) or _not_a_str(name):
            raise fail("STACK_GLOBAL operands are not strings")
        if not an.shadow:
            ctx.report(
                R.COMPUTED_IMPORT,
                f"STACK_GLOBAL imports module {_describe(module)}, name {_describe(name)}: "
                "the target is computed at load time",
                an.at(offset, index),
            )
        stack.append(Unknown("computed import"))
        return pos

    def resolve_str(value: object) -> object:
        if isinstance(value, Blob) and value.kind == "str" and value.length <= an.max_line:
            return str(mv[value.offset : value.offset + value.length], "utf-8", "surrogatepass")
        return value

    def op_dict(pos: int) -> int:
        items = pop_mark()
        flows_all(items, "is stored in a dict")
        d = SDict()
        for k in range(0, len(items) - 1, 2):
            d.set(items[k], items[k + 1])
        stack.append(d)
        return pos

    def op_empty_dict(pos: int) -> int:
        stack.append(SDict())
        return pos

    def op_get(pos: int) -> int:
        line, pos = readline(pos)
        stack.append(memo_get(key_arg(line)))
        return pos

    def memo_get(key: int) -> object:
        try:
            return memo[key]
        except KeyError:
            raise fail(f"memo key {key} not found") from None

    def op_binget(pos: int) -> int:
        key = buf[pos]
        try:
            stack.append(memo[key])
        except KeyError:
            raise fail(f"memo key {key} not found") from None
        return pos + 1

    def op_long_binget(pos: int) -> int:
        stack.append(memo_get(_U4(buf, pos)[0]))
        return pos + 4

    def op_inst(pos: int) -> int:
        offset, index = op_pos, op_index
        mline, pos = readline(pos)
        nline, pos = readline(pos)
        g = do_import(mline.decode("ascii"), nline.decode("ascii"), offset, index)
        args = tuple(pop_mark())
        stack.append(call(g, args, "INST"))
        return pos

    def op_list(pos: int) -> int:
        items = pop_mark()
        flows_all(items, "is stored in a list")
        lst = SList()
        lst.extend(items)
        stack.append(lst)
        return pos

    def op_empty_list(pos: int) -> int:
        stack.append(SList())
        return pos

    def op_obj(pos: int) -> int:
        items = pop_mark()
        if not items:
            raise fail("OBJ without a class")
        stack.append(call(items[0], tuple(items[1:]), "OBJ"))
        return pos

    def op_put(pos: int) -> int:
        line, pos = readline(pos)
        key = key_arg(line)
        if key < 0:
            raise fail("negative PUT index")
        memo[key] = stack[-1]
        return pos

    def op_binput(pos: int) -> int:
        memo[buf[pos]] = stack[-1]
        return pos + 1

    def op_long_binput(pos: int) -> int:
        memo[_U4(buf, pos)[0]] = stack[-1]
        return pos + 4

    def op_setitem(pos: int) -> int:
        value = stack.pop()
        key = stack.pop()
        target = stack[-1]
        if track:
            # Each on its own: a (key, value) tuple would be a new object to remember per item.
            flows(key, "is stored in a dict")
            flows(value, "is stored in a dict")
        if isinstance(target, SDict):
            target.set(key, value)
        elif not isinstance(target, (Obj, Unknown)):
            raise fail(f"SETITEM on {_describe(target)}")
        return pos

    def op_setitems(pos: int) -> int:
        items = pop_mark()
        target = stack[-1]
        flows_all(items, "is stored in a dict")
        if isinstance(target, SDict):
            target.update(items)
        elif not isinstance(target, (Obj, Unknown)):
            raise fail(f"SETITEMS on {_describe(target)}")
        return pos

    def op_tuple(pos: int) -> int:
        items = tuple(pop_mark())
        stack.append(items)
        return pos

    def op_empty_tuple(pos: int) -> int:
        stack.append(())
        return pos

    def op_binfloat(pos: int) -> int:
        stack.append(_F8(buf, pos)[0])
        return pos + 8

    def op_proto(pos: int) -> int:
        if buf[pos] > 5:
            raise fail(f"unsupported pickle protocol {buf[pos]}")
        return pos + 1

    def op_newobj(pos: int) -> int:
        args = stack.pop()
        cls = stack.pop()
        stack.append(call(cls, args, "NEWOBJ"))
        return pos

    def ext(code: int) -> None:
        offset, index = op_pos, op_index
        an.finding(
            R.EXTENSION,
            f"EXT opcode with extension code {code}: imports whatever the loading process "
            "registered with copyreg.add_extension",
            offset,
            index,
        )
        stack.append(Unknown(f"extension {code}"))

    def op_ext1(pos: int) -> int:
        ext(buf[pos])
        return pos + 1

    def op_ext2(pos: int) -> int:
        ext(_U2(buf, pos)[0])
        return pos + 2

    def op_ext4(pos: int) -> int:
        ext(_I4(buf, pos)[0])
        return pos + 4

    def op_tuple1(pos: int) -> int:
        stack[-1] = (stack[-1],)
        return pos

    def op_tuple2(pos: int) -> int:
        b = stack.pop()
        stack[-1] = (stack[-1], b)
        return pos

    def op_tuple3(pos: int) -> int:
        c = stack.pop()
        b = stack.pop()
        stack[-1] = (stack[-1], b, c)
        return pos

    def op_true(pos: int) -> int:
        stack.append(True)
        return pos

    def op_false(pos: int) -> int:
        stack.append(False)
        return pos

    def op_long1(pos: int) -> int:
        n = buf[pos]
        pos += 1
        new = take(pos, n)
        stack.append(int.from_bytes(buf[pos:new], "little", signed=True))
        return new

    def op_long4(pos: int) -> int:
        n = _I4(buf, pos)[0]
        pos += 4
        new = take(pos, n)
        if n <= 64:
            stack.append(int.from_bytes(buf[pos:new], "little", signed=True))
        else:
            stack.append(Unknown("large integer"))
        return new

    def op_empty_set(pos: int) -> int:
        stack.append(SSet())
        return pos

    def op_additems(pos: int) -> int:
        items = pop_mark()
        target = stack[-1]
        flows_all(items, "is stored in a set")
        if isinstance(target, SSet):
            target.extend(items)
        elif not isinstance(target, (Obj, Unknown)):
            raise fail(f"ADDITEMS on {_describe(target)}")
        return pos

    def op_frozenset(pos: int) -> int:
        s = SSet(frozen=True)
        items = pop_mark()
        flows_all(items, "is stored in a set")
        s.extend(items)
        stack.append(s)
        return pos

    def op_newobj_ex(pos: int) -> int:
        kwargs = stack.pop()
        args = stack.pop()
        cls = stack.pop()
        stack.append(call(cls, (args, kwargs), "NEWOBJ_EX"))
        return pos

    def op_memoize(pos: int) -> int:
        memo[len(memo)] = stack[-1]
        return pos

    def op_frame(pos: int) -> int:
        n = _U8(buf, pos)[0]
        pos += 8
        if pos + n > end:
            raise fail(f"frame of {n} bytes runs past the end of the data")
        an.frame_end = pos + n
        return pos

    def op_next_buffer(pos: int) -> int:
        offset, index = op_pos, op_index
        an.finding(
            R.BUFFER,
            "NEXT_BUFFER takes an out-of-band buffer supplied by the loader",
            offset,
            index,
            once="buffer",
        )
        stack.append(Unknown("out-of-band buffer"))
        return pos

    def op_readonly_buffer(pos: int) -> int:
        _ = stack[-1]  # underflow check
        return pos

    # ---------------------------------------------------------------- joblib arrays
    def joblib_array(pos: int, st: object) -> int:
        offset, index = op_pos, op_index
        if an.frame_end > pos:
            # joblib's unpickler has read the whole FRAME into memory: it reads the array data
            # from the file AFTER the frame, then runs the frame's remaining opcodes; the stdlib
            # unpickler runs those opcodes at once. joblib's own pickler always ends the frame
            # at the wrapper's BUILD, so no real dump looks like this.
            an.finding(
                R.JOBLIB_ARRAY_UNRESOLVED,
                f"joblib NumpyArrayWrapper: its BUILD is inside a FRAME that goes on for "
                f"{an.frame_end - pos} more bytes; joblib.load reads the array data after the "
                "frame and then runs the rest of the frame, pickle.load runs the rest at once "
                "(not analysed)",
                offset,
                index,
                severity=Severity.HIGH,
            )
            raise _Limit("joblib array inside a frame")
        info = _wrapper_layout(st, _DtypeWalk(an.charge))
        if isinstance(info, str):
            an.finding(
                R.JOBLIB_ARRAY_UNRESOLVED,
                f"joblib NumpyArrayWrapper: {info}; the raw array data that follows cannot "
                "be located",
                offset,
                index,
            )
            raise _Limit("joblib array size unknown")
        count, itemsize, hasobject, aligned = info
        if hasobject is None:
            an.finding(
                R.JOBLIB_ARRAY_UNRESOLVED,
                "joblib NumpyArrayWrapper: its dtype has object fields but its pickled flags "
                "say it has none, so numpy would read raw file bytes as object pointers",
                offset,
                index,
                severity=Severity.HIGH,
            )
            raise _Limit("joblib array dtype forges object pointers")
        if hasobject:
            # joblib reads the object array's pickle with a fresh unpickler (fresh memo);
            # pickle.load, torch.load and numpy.load read the same bytes as more opcodes of
            # this stream, with its stack and memo (MEMOIZE keys shift, GETs fetch this
            # stream's values): both views are analysed.
            # joblib's reading first: pickle.load's is checked against the names it imports.
            names = an.joblib_names
            an.joblib_names = {}
            try:
                an.frame_end = 0
                inner_end, ok = an.stream(pos, joblib=False)
                inner_frame_end = an.frame_end
                hidden_pickle_check(pos, offset, index, objects=True)
            finally:
                an.joblib_names = names
            an.frame_end = inner_frame_end
            if not ok:
                raise _Limit("object array pickle could not be analysed")
            if an.frame_end > inner_end:
                # The C unpickler joblib uses for object arrays reads whole frames: the file
                # is left at the end of the frame holding the STOP, not right after the STOP.
                an.finding(
                    R.JOBLIB_ARRAY_UNRESOLVED,
                    f"joblib object array: its pickle's last FRAME goes on for "
                    f"{an.frame_end - inner_end} bytes after its STOP; joblib.load resumes "
                    "after the frame, other readers right after the STOP (not analysed)",
                    offset,
                    index,
                    severity=Severity.HIGH,
                )
                raise _Limit("joblib object array frame ends after its STOP")
            return inner_end
        region = pos
        if aligned:
            if pos >= end:
                raise_truncated(offset, index)
            pos += 1 + buf[pos]
        if itemsize == 0 and count > 0:
            an.finding(
                R.JOBLIB_ARRAY_UNRESOLVED,
                f"joblib NumpyArrayWrapper: {count} elements of a 0-byte dtype; joblib.load "
                "fails on it, joblib.load(mmap_mode=...) reads no data and goes on unpickling "
                "right here (analysed that way)",
                offset,
                index,
            )
        nbytes = count * itemsize
        new = pos + nbytes
        if new > end:
            raise_truncated(offset, index)
        hidden_pickle_check(region, offset, index)
        return new

    def raise_truncated(offset: int, index: int) -> None:
        an.finding(
            R.JOBLIB_TRUNCATED,
            "joblib array data runs past the end of the file",
            offset,
            index,
        )
        raise _Limit("joblib array truncated")

    def hidden_pickle_check(region: int, offset: int, index: int, *, objects: bool = False) -> None:
        """The stdlib unpickler's view: it reads the array region (raw data, or an object
        array's own pickle when ``objects``) as more opcodes of this stream, with this stream's
        stack, marks and memo (copied: the view must not change the joblib view's values).

        Up to the first array region joblib.load and pickle.load read the same opcodes, so
        pickle.load reaches that region exactly; when its first byte is no opcode (joblib's
        alignment pad length, < 16, never is one: real dumps stop there) pickle.load fails
        there and reads no later region of the stream, which is then not analysed as one.
        A later region is analysed as if pickle.load reached it, unless that one failure
        ended it (an array region read as opcodes may end anywhere: fail closed)."""
        nonlocal regions, load_ended
        if an.shadow or load_ended:
            return
        regions += 1
        if region >= end or table[buf[region]] is op_invalid:
            load_ended = regions == 1
            return
        # The memo is shared copy-on-write (a real joblib dump with thousands of object arrays
        # and a large memo would otherwise copy it for each); the stacks are copied, charged at
        # the cost of a C-level copy.
        an.charge((len(stack) + sum(map(len, metastack))) // 16 + len(metastack) + 1)
        frame_end = an.frame_end
        an.shadow = True
        an.shadow_objects = objects
        an.seed = (list(stack), [list(m) for m in metastack], _MemoOverlay(memo))
        try:
            an.stream(region, joblib=False)
        finally:
            an.shadow = False
            an.shadow_objects = False
            an.shadow_excused = False
            an.seed = None
            an.frame_end = frame_end

    def op_invalid(pos: int) -> int:
        raise fail(f"invalid opcode 0x{buf[pos - 1]:02x}")

    table: list[Callable[[int], int]] = [op_invalid] * 256
    for code, fn in (
        (0x28, op_mark),
        (0x2E, op_stop),
        (0x30, op_pop),
        (0x31, op_pop_mark),
        (0x32, op_dup),
        (0x46, op_float),
        (0x49, op_int),
        (0x4A, op_binint),
        (0x4B, op_binint1),
        (0x4C, op_long),
        (0x4D, op_binint2),
        (0x4E, op_none),
        (0x50, op_persid),
        (0x51, op_binpersid),
        (0x52, op_reduce),
        (0x53, op_string),
        (0x54, op_binstring),
        (0x55, op_short_binstring),
        (0x56, op_unicode),
        (0x58, op_binunicode),
        (0x61, op_append),
        (0x62, op_build),
        (0x63, op_global),
        (0x64, op_dict),
        (0x7D, op_empty_dict),
        (0x65, op_appends),
        (0x67, op_get),
        (0x68, op_binget),
        (0x69, op_inst),
        (0x6A, op_long_binget),
        (0x6C, op_list),
        (0x5D, op_empty_list),
        (0x6F, op_obj),
        (0x70, op_put),
        (0x71, op_binput),
        (0x72, op_long_binput),
        (0x73, op_setitem),
        (0x74, op_tuple),
        (0x29, op_empty_tuple),
        (0x75, op_setitems),
        (0x47, op_binfloat),
        (0x80, op_proto),
        (0x81, op_newobj),
        (0x82, op_ext1),
        (0x83, op_ext2),
        (0x84, op_ext4),
        (0x85, op_tuple1),
        (0x86, op_tuple2),
        (0x87, op_tuple3),
        (0x88, op_true),
        (0x89, op_false),
        (0x8A, op_long1),
        (0x8B, op_long4),
        (0x42, op_binbytes),
        (0x43, op_short_binbytes),
        (0x8C, op_short_binunicode),
        (0x8D, op_binunicode8),
        (0x8E, op_binbytes8),
        (0x8F, op_empty_set),
        (0x90, op_additems),
        (0x91, op_frozenset),
        (0x92, op_newobj_ex),
        (0x93, op_stack_global),
        (0x94, op_memoize),
        (0x95, op_frame),
        (0x96, op_bytearray8),
        (0x97, op_next_buffer),
        (0x98, op_readonly_buffer),
    ):
        table[code] = fn

    def shadow_prefix() -> str:
        return "raw joblib array data read by pickle.load: " if an.shadow else ""

    def run_stream(analyser: _Analyser, start: int, stream_joblib: bool) -> tuple[int, bool]:
        nonlocal an, mv, buf, end, ctx, joblib, stack, metastack, memo, pending, getattrs
        nonlocal op_pos, op_index, max_marks, track, regions, load_ended
        an = analyser
        mv = analyser.buf
        buf = raw = analyser.raw
        end = len(mv)
        ctx = analyser.ctx
        joblib = stream_joblib
        stack = []
        metastack = []
        memo = {}
        pending = {}
        getattrs = []
        walked.clear()
        recorded.clear()
        track = False
        regions = 0
        load_ended = False
        seed = analyser.seed
        if seed is not None:
            analyser.seed = None
            stack, metastack, memo = seed
        op_pos = start
        op_index = 0
        max_marks = analyser.max_marks
        max_memo = analyser.max_memo
        max_stack = analyser.max_stack
        dispatch = table
        try:
            pos = start
            count = an.opcodes
            budget = an.max_ops + count
            ok = False
            op = -1
            try:
                while True:
                    op = raw[pos]
                    op_pos = pos
                    op_index = count
                    count += 1
                    if not count & 0xFFFF:
                        if count > budget:
                            raise _Limit(f"more than {an.max_ops} opcodes in one pickle stream")
                        if len(memo) > max_memo or len(stack) > max_stack:
                            raise _Limit(
                                f"memo ({len(memo)}) or stack ({len(stack)}) larger than the "
                                "analysis keeps in memory"
                            )
                        ctx.check_deadline()
                    pos = dispatch[op](pos + 1)
            except _Stop as stop:
                ok = True
                pos = stop.args[0]
                an.result = stop.args[1]
                if track:
                    flows(stop.args[1], "is the result of the pickle")
            except _Exhausted as exc:
                # Reported even for a shadow stream: the budget is the whole analysis's.
                ctx.report(
                    G.LIMIT_EXHAUSTED,
                    f"pickle: {exc}",
                    an.at(op_pos, op_index),
                    severity=Severity.HIGH,
                )
            except (_Limit, LimitExceeded) as exc:
                # Reported for the shadow (pickle.load) view too: what was not analysed there
                # may be what runs.
                ctx.report(
                    G.LIMIT_EXHAUSTED, f"{shadow_prefix()}pickle: {exc}", an.at(op_pos, op_index)
                )
            except RecursionError:
                ctx.report(
                    G.LIMIT_EXHAUSTED,
                    f"{shadow_prefix()}pickle: nesting too deep",
                    an.at(pos, op_index),
                )
            except (
                _Malformed,
                IndexError,
                KeyError,
                ValueError,
                TypeError,
                struct.error,
                UnicodeDecodeError,
                OverflowError,
            ) as exc:
                if not an.shadow:
                    an.report_malformed(exc, pos, op_pos, op_index, op)
            finally:
                an.opcodes = count
                for g in pending.values():
                    an.report_global(g, "imports", g.offset, g.index)
                for g in getattrs:
                    # getattr is acceptable only when every use was a checked
                    # getattr(AllowlistedClass, "name") call.
                    if g.escaped or not g.safe:
                        an.report_global(g, "imports", g.offset, g.index)
            return pos, ok
        finally:
            # Drop the stream's references (the data may be a mapping the caller closes).
            an = _NO_ANALYSER
            mv = _NO_DATA
            buf = b""
            ctx = _NO_CONTEXT
            stack = []
            metastack = []
            memo = {}
            pending = {}
            getattrs = []
            walked.clear()
            recorded.clear()

    return run_stream


class _MemoOverlay(dict[int, object]):
    """A stream's memo as another view of the stream sees it: reads fall through to ``base``,
    writes stay here, ``len`` counts both (MEMOIZE keys), all in constant time."""

    def __init__(self, base: dict[int, object]) -> None:
        super().__init__()
        self.base = base
        self.extra = 0

    def __missing__(self, key: int) -> object:
        return self.base[key]

    def __setitem__(self, key: int, value: object) -> None:
        if not dict.__contains__(self, key) and key not in self.base:
            self.extra += 1
        dict.__setitem__(self, key, value)

    def __len__(self) -> int:
        return len(self.base) + self.extra


_NOT_STR = (bytes, int, float, type(None), bool, SDict, SList, SSet, tuple)


def _not_a_str(value: object) -> bool:
    """Whether ``value`` is known not to be a str: a constant or container of another type, an
    allowlisted class, function or singleton, or an instance of an allowlisted type (none of
    which subclasses str; the str-like entries ``builtins:str``, ``numpy:str_`` are calls)."""
    if isinstance(value, _NOT_STR):
        return True
    if isinstance(value, Global):
        # Built-in allowlist entries only: a target the configuration allows could be anything.
        return value.allowed and ALLOWLIST.get(value.target) is value.entry
    if isinstance(value, Obj):
        cls = _class_of(value)
        if cls is None or not cls.allowed or ALLOWLIST.get(cls.target) is not cls.entry:
            return False
        return isinstance(cls.entry, Allowed) and cls.entry.use is Use.TYPE
    return False


_plain_file_name = lazy_pattern(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}")


def _class_of(obj: Obj) -> Global | None:
    """The class an object was created from: NEWOBJ's class or _reconstructor's first argument."""
    func = obj.func
    if not isinstance(func, Global):
        return None
    entry = func.entry
    if (
        isinstance(entry, Allowed)
        and entry.check in (Check.RECONSTRUCTOR, Check.NEWOBJ)
        and isinstance(obj.args, tuple)
        and obj.args
        and isinstance(obj.args[0], Global)
    ):
        return obj.args[0]
    return func


class _DtypeWalk:
    """One walk over numpy dtype values: results memoised by node identity, visits charged.

    A dtype's fields and subarray are dtypes again, and a pickle can share one dtype among
    thousands of fields at every level (memo GET): without the memo the walk is exponential.
    A dtype met again while its own structure is being decided (a cycle made with BUILD) is
    unresolved, which callers report.
    """

    __slots__ = ("charge", "memo")

    def __init__(self, charge: Callable[[int], None]) -> None:
        self.charge = charge
        self.memo: dict[int, bool | str] = {}

    def visit(self, nodes: int) -> None:
        # A dtype node costs several times a tuple item (calls, a regular expression).
        self.charge(nodes * _DTYPE_WEIGHT)


#: Budget units one dtype node or field costs (a tuple item costs one).
_DTYPE_WEIGHT = 4


#: More elements than any file holds: element counts are capped here (a product of many
#: dimensions would otherwise grow into a huge integer, quadratic to compute).
_MANY = 1 << 64


def _elements(dims: tuple[int, ...]) -> int:
    """The product of non-negative dimensions, capped at :data:`_MANY`."""
    if 0 in dims:
        return 0
    count = 1
    for d in dims:
        count = min(count * d, _MANY)
    return count


def _wrapper_layout(st: object, walk: _DtypeWalk) -> tuple[int, int, bool | None, bool] | str:
    """(element count, item size, has objects, aligned) of a NumpyArrayWrapper state."""
    if not isinstance(st, SDict):
        return "its state is not a constant dict"
    shape = st.get("shape")
    if isinstance(shape, tuple):
        walk.visit(len(shape))
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        return f"its shape {_describe(shape)} is not a constant tuple of sizes"
    count = _elements(shape)
    dtype = st.get("dtype")
    itemsize_hasobj = _dtype_layout(dtype, walk)
    if isinstance(itemsize_hasobj, str):
        return itemsize_hasobj
    itemsize, hasobject = itemsize_hasobj
    alignment = st.get("numpy_array_alignment_bytes", None)
    if alignment is not None and type(alignment) is not int:
        return f"its alignment {_describe(alignment)} is not a constant"
    return count, itemsize, hasobject, alignment is not None


#: Targets that build a numpy dtype from a type code (its state then comes by BUILD).
_DTYPE_TARGETS = frozenset({"numpy:dtype", "numpy.core.multiarray:dtype"})


#: Scalar types numpy.dtype is called with instead of a type code (record arrays).
_DTYPE_TYPE_CODES = {"numpy:record": "V", "numpy:void": "V", "numpy:object_": "O"}


def _dtype_code(dtype: object) -> str | None:
    """The type code a ``numpy.dtype(...)`` call was made with, or None if not a constant."""
    if not (
        isinstance(dtype, Obj)
        and isinstance(dtype.func, Global)
        and dtype.func.target in _DTYPE_TARGETS
        and isinstance(dtype.args, tuple)
        and dtype.args
    ):
        return None
    first = dtype.args[0]
    if type(first) is str:
        # Real type codes are short ("<f8", "M8[ns]"); a long one is not taken as constant
        # (it would make every look at the dtype cost its length).
        return first if len(first) <= DEFAULT_LIMITS.max_pickle_dtype_code else None
    if isinstance(first, Global):
        return _DTYPE_TYPE_CODES.get(":".join(canonical(first.module, first.name)))
    return None


def _is_dtype(dtype: object) -> bool:
    return _dtype_code(dtype) is not None


#: NumPy 2's StringDType, rebuilt by this function from ``(coerce[, na_object])``. Its arrays
#: hold objects (``hasobject``; 16-byte elements pointing into an arena), so np.save and
#: joblib pickle them whole instead of writing raw bytes.
_STRING_DTYPE = "numpy._core._internal:_convert_to_stringdtype_kwargs"


def _is_string_dtype(dtype: object) -> bool:
    """A StringDType as its own reduction builds it (no BUILD state: it has none)."""
    return (
        isinstance(dtype, Obj)
        and isinstance(dtype.func, Global)
        and dtype.func.target == _STRING_DTYPE
        and dtype.state is None
    )


def _dtype_holds_objects(dtype: object, walk: _DtypeWalk, depth: int = 0) -> bool | str:
    """Whether a dtype's structure (type code, subarray base, field types) holds objects.

    NumPy decides ``hasobject`` from the *flags* in the pickled state, not from the structure,
    so the two are compared by the caller: a structure with objects under flags without them
    makes NumPy read raw file bytes as object pointers.
    """
    key = id(dtype)
    known = walk.memo.get(key)
    if known is not None:
        return known
    walk.visit(1)
    if depth > 16:
        return "dtype nested too deep"
    walk.memo[key] = "a dtype that contains itself"  # until decided: a cycle is unresolved
    result = _dtype_structure(dtype, walk, depth)
    walk.memo[key] = result
    return result


def _dtype_structure(dtype: object, walk: _DtypeWalk, depth: int) -> bool | str:
    """:func:`_dtype_holds_objects` of one dtype not met before in ``walk``."""
    if _is_string_dtype(dtype):
        return True
    if not _is_dtype(dtype):
        return f"a field or subarray dtype {_describe(dtype)} is not a constant numpy.dtype"
    obj = cast("Obj", dtype)
    code = cast("str", _dtype_code(obj))
    if code.lstrip("<>|=").startswith("O"):
        return True
    st = obj.state
    if st is None:
        return False
    if not isinstance(st, tuple) or len(st) < 5:
        return f"dtype state {_describe(st)} is not understood"
    subarray, fields = st[2], st[4]
    parts: list[object] = []
    if subarray is not None:
        if not (isinstance(subarray, tuple) and len(subarray) == 2):
            return f"dtype subarray {_describe(subarray)} is not understood"
        parts.append(subarray[0])
    if fields is not None:
        if not isinstance(fields, SDict):
            return f"dtype fields {_describe(fields)} are not a constant dict"
        walk.visit(len(fields.items))
        for _, spec in fields.items:
            if not (isinstance(spec, tuple) and spec):
                return f"dtype field {_describe(spec)} is not understood"
            parts.append(spec[0])
    for part in parts:
        inner = _dtype_holds_objects(part, walk, depth + 1)
        if inner is not False:
            return inner
    return False


def _dtype_field_outside(dtype: Obj, walk: _DtypeWalk) -> str | None:
    """A field or subarray that does not fit in the element size the state declares."""
    st = dtype.state
    if not (isinstance(st, tuple) and len(st) >= 6 and type(st[5]) is int):
        return None
    elsize = st[5]
    parts: list[tuple[object, int, int, str]] = []  # (dtype, offset, count, what)
    subarray, fields = st[2], st[4]
    if isinstance(subarray, tuple) and len(subarray) == 2:
        shape = subarray[1]
        dims = shape if isinstance(shape, tuple) else (shape,)
        walk.visit(len(dims))
        for d in dims:
            if type(d) is not int or d < 0:
                return f"a subarray shape {_describe(shape)} that is not constant"
        count = _elements(cast("tuple[int, ...]", dims))
        parts.append((subarray[0], 0, count, "subarray"))
    if isinstance(fields, SDict):
        walk.visit(len(fields.items))
        for name, spec in fields.items:
            if isinstance(spec, tuple) and len(spec) >= 2:
                if type(spec[1]) is not int:
                    return f"a field {_describe(name)} whose offset is not constant"
                parts.append((spec[0], spec[1], 1, f"field {_describe(name)}"))
    for part, offset, count, what in parts:
        layout = _dtype_layout(part, walk)
        if isinstance(layout, str):
            continue  # reported as unresolved by the caller's structure check if it matters
        size = layout[0] * count
        if offset < 0 or offset + size > elsize:
            return f"{what} at bytes {offset}..{offset + size} of a {elsize}-byte element"
    return None


def _dtype_layout(dtype: object, walk: _DtypeWalk) -> tuple[int, bool | None] | str:
    """(item size, has objects) of a wrapper's dtype; ``None`` for "has objects" when the
    pickled flags hide object fields (NumPy would read raw bytes as object pointers)."""
    if _is_string_dtype(dtype):
        return 16, True
    if not _is_dtype(dtype):
        return f"its dtype {_describe(dtype)} is not a constant numpy.dtype"
    obj = cast("Obj", dtype)
    code = cast("str", _dtype_code(obj))
    m = _dtype_str().fullmatch(code.split("[", 1)[0])
    if m is None:
        return f"dtype code {code!r} is not understood"
    kind, digits = m.group(1), m.group(2)
    elsize = -1
    flags = -1
    st = obj.state
    if st is not None:
        if not (isinstance(st, tuple) and len(st) in (8, 9)):
            return f"dtype state {_describe(st)} is not understood"
        if type(st[5]) is not int or type(st[7]) is not int:
            return "dtype state has a computed element size or flags"
        elsize = st[5]
        flags = st[7]
    structure = _dtype_holds_objects(obj, walk)
    if isinstance(structure, str):
        return structure
    # NumPy's hasobject: the flags when the state gives them, else the type code.
    has_objects = bool(flags & 1) if flags >= 0 else structure
    if structure and not has_objects:
        return 8, None
    if has_objects:
        return 8, True
    if st is not None and kind in "VSUa":
        # NumPy (arraydescr_setstate) takes the stored element size of a flexible type as it
        # is, 0 and negative included; only numpy.dtype("V") without copy=True is the shared
        # unsized descriptor, whose size stays 0 whatever the state says.
        copy = obj.args[2] if isinstance(obj.args, tuple) and len(obj.args) >= 3 else False
        if not digits and copy is not True:
            if type(copy) is not bool:
                return f"dtype {code!r} with a computed copy flag {_describe(copy)}"
            return 0, False
        if elsize < 0:
            return f"dtype {code!r} with a negative element size {elsize}"
        return elsize, False
    if not digits:
        sizes = {"?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "e": 2, "f": 4, "d": 8}
        if kind in sizes:
            return sizes[kind], False
        return f"dtype code {code!r} has no size"
    n = int(digits)
    if kind == "U":
        n *= 4
    if n <= 0:
        return f"dtype code {code!r} has no size"
    return n, False


# ------------------------------------------------------------------------------ sniffing
# Stack effect per opcode: (values popped, values pushed, argument kind).
# Argument kinds: 0 none, n>0 fixed bytes, -1 one line, -2 two lines, -4 u4 length,
# -8 u8 length, -5 u1 length, -9 i4 length, -3 mark (push), -6 pop-mark.
_FIXED: dict[int, tuple[int, int, int]] = {
    0x28: (0, 0, -3),
    0x2E: (1, 0, 0),
    0x30: (1, 0, 0),
    0x31: (0, 0, -6),
    0x32: (1, 2, 0),
    0x46: (0, 1, -1),
    0x49: (0, 1, -1),
    0x4A: (0, 1, 4),
    0x4B: (0, 1, 1),
    0x4C: (0, 1, -1),
    0x4D: (0, 1, 2),
    0x4E: (0, 1, 0),
    0x50: (0, 1, -1),
    0x51: (1, 1, 0),
    0x52: (2, 1, 0),
    0x53: (0, 1, -1),
    0x54: (0, 1, -9),
    0x55: (0, 1, -5),
    0x56: (0, 1, -1),
    0x58: (0, 1, -4),
    0x61: (2, 1, 0),
    0x62: (2, 1, 0),
    0x63: (0, 1, -2),
    0x64: (0, 1, -6),
    0x7D: (0, 1, 0),
    0x65: (1, 1, -6),
    0x67: (0, 1, -1),
    0x68: (0, 1, 1),
    0x69: (0, 1, -7),
    0x6A: (0, 1, 4),
    0x6C: (0, 1, -6),
    0x5D: (0, 1, 0),
    0x6F: (0, 1, -6),
    0x70: (1, 1, -1),
    0x71: (1, 1, 1),
    0x72: (1, 1, 4),
    0x73: (3, 1, 0),
    0x74: (0, 1, -6),
    0x29: (0, 1, 0),
    0x75: (1, 1, -6),
    0x47: (0, 1, 8),
    0x80: (0, 0, 1),
    0x81: (2, 1, 0),
    0x82: (0, 1, 1),
    0x83: (0, 1, 2),
    0x84: (0, 1, 4),
    0x85: (1, 1, 0),
    0x86: (2, 1, 0),
    0x87: (3, 1, 0),
    0x88: (0, 1, 0),
    0x89: (0, 1, 0),
    0x8A: (0, 1, -5),
    0x8B: (0, 1, -9),
    0x42: (0, 1, -4),
    0x43: (0, 1, -5),
    0x8C: (0, 1, -5),
    0x8D: (0, 1, -8),
    0x8E: (0, 1, -8),
    0x8F: (0, 1, 0),
    0x90: (1, 1, -6),
    0x91: (0, 1, -6),
    0x92: (3, 1, 0),
    0x93: (2, 1, 0),
    0x94: (1, 1, 0),
    0x95: (0, 0, 8),
    0x96: (0, 1, -8),
    0x97: (0, 1, 0),
    0x98: (1, 1, 0),
}
_IMPORT_OPS = frozenset({0x63, 0x69, 0x93, 0x82, 0x83, 0x84})
_CALL_OPS = frozenset({0x52, 0x81, 0x92, 0x6F, 0x69, 0x62})
_FIRST_OPS = frozenset(
    {0x28, 0x63, 0x5D, 0x7D, 0x29, 0x4E, 0x49, 0x53, 0x56, 0x4B, 0x4A, 0x58, 0x55, 0x54}
    | {0x82, 0x83, 0x84, 0x8F, 0x96}
    | {0x46, 0x4C, 0x47, 0x4D, 0x42, 0x43, 0x88, 0x89, 0x8C, 0x8D, 0x8E, 0x8A, 0x8B, 0x95}
)
#: ``_FIXED`` as a 256-entry table: (pops, pushes, argument kind, imports, calls) or None.
_EFFECTS: list[tuple[int, int, int, bool, bool] | None] = [
    (*_FIXED[op], op in _IMPORT_OPS, op in _CALL_OPS) if op in _FIXED else None for op in range(256)
]


_module_line = lazy_pattern(rb"[A-Za-z_][A-Za-z0-9_.]*\Z")


_name_line = lazy_pattern(rb"[A-Za-z_][A-Za-z0-9_.]*\Z")


def _text_number(op: int, line: bytes) -> bool:
    """Whether an unpickler reads the INT/LONG/GET/PUT/FLOAT argument ``line`` (no newline)."""
    parse = {0x49: int_arg, 0x4C: long_arg, 0x46: float_arg}.get(op, key_arg)
    try:
        parse(line)
    except ValueError:
        return False
    return True


def _more_pickle(data: memoryview, pos: int) -> bool:
    """Whether the bytes after a pickle's STOP are analysed as the next pickle stream.

    A loader that calls ``load`` again (torch's legacy format, joblib, a program reading a
    sequence of pickles) unpickles them; so unless the unpicklers would refuse them before any
    import or call could run (the sniffer's oracle, :func:`simulate`), they are analysed.
    Only bytes that can run nothing are left as "trailing data".
    """
    from mltrust.scan.formats._pickle_head import Reach, simulate

    if looks_like_pickle(data, pos, strict=False):
        return True
    return simulate(data, pos, max_ops=4096)[0] is not Reach.NOTHING


def _sniff_line(data: memoryview, pos: int) -> bytes | None:
    """The text argument at ``pos`` (without its newline), or None if there is none."""
    window = 256
    while True:
        chunk = bytes(data[pos : pos + window])
        nl = chunk.find(b"\n")
        if nl >= 0:
            return chunk[:nl]
        if len(chunk) < window or window >= DEFAULT_LIMITS.max_pickle_line_bytes:
            return None
        window *= 16


def looks_like_pickle(
    data: memoryview,
    start: int = 0,
    *,
    strict: bool = True,
    need_import: bool = False,
    max_ops: int = 48,
) -> bool:
    """Whether the bytes at ``start`` simulate as a plausible pickle for ``max_ops`` opcodes.

    Checks opcode validity, argument bounds, text-argument syntax and stack discipline on a
    bounded head only. ``strict`` also requires a protocol 0/1 pickle (no PROTO) to start with
    a value-pushing opcode and to run at least a few opcodes or reach STOP.
    """
    data = _direct(data)  # type: ignore[assignment]
    size = len(data)
    pos = start
    if pos >= size:
        return False
    first = data[pos]
    has_proto = first == 0x80
    if has_proto:
        if pos + 1 >= size or data[pos + 1] > 5:
            return False
    elif first not in _FIRST_OPS:
        return False
    # With a PROTO header only opcode validity is checked (a real pickle must never be missed);
    # without one the stack discipline is simulated too, so that text is not claimed.
    check_stack = not has_proto
    depth = 0
    marks: list[int] = []
    ops = 0
    seen_import = False
    seen_call = False
    effects = _EFFECTS

    def broken() -> bool:
        # Opcodes already run before the parse error: a pickle that does its damage and
        # then breaks is still a pickle.
        if need_import:
            return False
        return (has_proto and ops >= 3) or (seen_import and seen_call and ops >= 4)

    while ops < max_ops:
        if pos >= size:
            return broken() or (not strict and not need_import and ops >= 8)
        op = data[pos]
        eff = effects[op]
        if eff is None:
            return broken()
        pops, pushes, arg, imports, calls = eff
        pos += 1
        ops += 1
        if imports:
            seen_import = True
        if calls:
            seen_call = True
        if op == 0x80 and pos < size and data[pos] > 5:
            return broken()
        if arg > 0:
            pos += arg
        elif arg == -1 or arg == -2 or arg == -7:
            nlines = 1 if arg == -1 else 2
            for i in range(nlines):
                line = _sniff_line(data, pos)
                if line is None:
                    return broken()
                nl = len(line)
                if arg in (-2, -7):
                    pattern = _module_line() if i == 0 else _name_line()
                    if not pattern.match(line):
                        return broken()
                elif op in (0x49, 0x4C, 0x67, 0x70, 0x46):
                    if not _text_number(op, line):
                        return broken()
                elif op == 0x53:
                    if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
                        return broken()
                elif op == 0x50 and not line.isascii():
                    return broken()
                pos += nl + 1
        elif arg == -4 and pos + 4 <= size:
            pos += 4 + int.from_bytes(data[pos : pos + 4], "little")
        elif arg == -8 and pos + 8 <= size:
            pos += 8 + int.from_bytes(data[pos : pos + 8], "little")
        elif arg == -5 and pos < size:
            pos += 1 + data[pos]
        elif arg == -9 and pos + 4 <= size:
            n = int.from_bytes(data[pos : pos + 4], "little", signed=True)
            if n < 0:
                return broken()
            pos += 4 + n
        elif arg in (-4, -8, -5, -9):
            return broken()
        if not check_stack:
            if op == 0x2E:
                return not need_import or seen_import
            if pos > size:
                return broken()
            continue
        if arg == -3:
            marks.append(depth)
            depth = 0
            continue
        if arg in (-6, -7):
            if not marks:
                return broken()
            if op in (0x65, 0x75, 0x90) and marks[-1] < 1:
                return broken()
            if op == 0x6F and depth < 1:
                return broken()
            depth = marks.pop()
            if op in (0x65, 0x75, 0x90, 0x31):
                continue
            depth += 1
            continue
        if op == 0x30 and depth == 0:
            if not marks:
                return broken()
            depth = marks.pop()
            continue
        if depth < pops:
            return broken()
        depth += pushes - pops
        if op == 0x2E:
            # pickle.load returns the top value and ignores anything left on the stack.
            return (not need_import or seen_import) and (ops >= 2 or not strict)
        if pos > size:
            return broken()
    if need_import:
        return seen_import and seen_call
    return True


@functools.cache
def _value_config() -> ScanConfig:
    from mltrust.config import ScanConfig

    return ScanConfig()


def pickle_value(data: memoryview, start: int = 0) -> tuple[object, int] | None:
    """The value the pickle at ``start`` evaluates to, and where it ends, or None.

    The symbolic machine runs the one stream (nothing is executed; findings are dropped), so
    *any* opcodes that compute a constant give its value - what a loader that compares the
    unpickled value (torch's legacy magic number) sees. Imports and calls give symbolic values.
    """
    from mltrust.scan._context import ScanContext

    ctx = ScanContext(config=_value_config())
    summary = _Analyser(data, ctx, Location("<value>"), "pytorch", False).run(start, True)
    if not summary.complete:
        return None
    return summary.result, summary.end


def scan_pickle_stream(
    data: memoryview,
    ctx: ScanContext,
    loc: Location,
    *,
    start: int = 0,
    single: bool = False,
    context: str = "pickle",
) -> PickleSummary:
    """Analyse the pickle stream(s) in ``data`` from ``start`` and report findings to ``ctx``.

    Never raises for malformed input: a malformed or limit finding is reported and the summary
    says ``complete=False``. ``single`` stops after one STOP; otherwise concatenated pickles are
    analysed too (up to ``max_pickle_streams``) and non-pickle trailing bytes are reported.
    ``context`` is ``"pickle"``, ``"joblib"`` (NumpyArrayWrapper data follows its BUILD; the
    default for plain pickles too, since the bytes decide), ``"pytorch"`` (persistent IDs are
    normal), ``"npy"`` (numpy.load: read only as pickle.load reads it) or any other label used
    in messages.
    """
    # numpy.load reads an object array with pickle.load: joblib arrays are not read there.
    joblib = context not in ("pytorch", "npy")
    analyser = _Analyser(data, ctx, loc, context, joblib)
    return analyser.run(start, single)
