"""ONNX models: a protobuf ``ModelProto`` read field by field, without the onnx package.

Checked: external-data locations (absolute paths, ``..``, URLs, symbolic links or special files
reach outside the model's folder: arbitrary file read when loading, CVE-2022-25882 class),
external files that are missing or too short, tensors whose stored bytes do not match their
shape and type, operators from custom domains (native libraries loaded at runtime) and operators
that run Python. Subgraphs (``If``/``Loop``/``Scan`` bodies), model-local functions and training
graphs are walked with a depth bound. Tensor payloads are skipped by offset, never copied.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeGuard

from mltrust._lazy import lazy_pattern
from mltrust.errors import InputError, LimitExceeded
from mltrust.findings import Location
from mltrust.scan import _protobuf as pb
from mltrust.scan._context import ScanContext
from mltrust.scan.formats import _rules_tensor as rules
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.scan.formats._pbtext import Message

# (*) The protobuf text-format parsers are imported where a scan first reads text: sniffing
# needs neither, and a scan of another format should not pay for loading them.

__all__ = [
    "CODE_EXECUTION_OPS",
    "STANDARD_DOMAINS",
    "OnnxScanner",
    "OnnxTextScanner",
    "OrtFormatScanner",
    "analyze_onnx_json",
    "is_onnx_text_syntax",
    "looks_like_onnx_json",
    "unsafe_location",
]

# ModelProto field -> wire type.
_MODEL_FIELDS = {
    1: pb.VARINT,  # ir_version
    2: pb.LEN,  # producer_name
    3: pb.LEN,  # producer_version
    4: pb.LEN,  # domain
    5: pb.VARINT,  # model_version
    6: pb.LEN,  # doc_string
    7: pb.LEN,  # graph
    8: pb.LEN,  # opset_import
    14: pb.LEN,  # metadata_props
    20: pb.LEN,  # training_info
    25: pb.LEN,  # functions
}
_SNIFF_FIELDS = 64

#: Operator domains served by ONNX itself and by ONNX Runtime's built-in kernels.
STANDARD_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.preview",
        "ai.onnx.preview.training",
        "ai.onnx.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.microsoft.dml",
        "com.ms.internal.nhwc",
    }
)
#: Operators that call back into Python (ONNX Runtime training's PythonOp, onnxruntime-extensions'
#: PyOp family): the model names a Python function that the runtime imports and calls.
CODE_EXECUTION_OPS = frozenset({"PythonOp", "PythonOpGrad", "PyOp", "PyCustomOp", "PyFunc"})

#: TensorProto data type -> bits per element (STRING and UNDEFINED are variable / absent).
_ELEM_BITS = {
    1: 32,
    2: 8,
    3: 8,
    4: 16,
    5: 16,
    6: 32,
    7: 64,
    9: 8,
    10: 16,
    11: 64,
    12: 32,
    13: 64,
    14: 64,
    15: 128,
    16: 16,
    17: 8,
    18: 8,
    19: 8,
    20: 8,
    21: 4,
    22: 4,
    23: 4,
    24: 8,
    25: 2,
    26: 2,
    27: 6,
    28: 6,
}
#: Data types stored in float_data/double_data -> values stored per element (complex: two).
_FIXED_FIELD_VALUES = {1: 1, 14: 2, 11: 1, 15: 2}


_url = lazy_pattern(r"^[A-Za-z][A-Za-z0-9+.\-]*:")


#: Findings of one kind listed before the rest are counted (presentation only, so not in
#: :class:`~mltrust.config.Limits`).
_REPORTED_CAP = 20


@dataclass(eq=False, repr=False)  # state, never compared or printed: no generated == or repr
class _Walk:
    """State of one model walk."""

    data: memoryview
    ctx: ScanContext
    loc: Location
    functions: set[tuple[str, str]]
    base_dir: str | None
    max_depth: int
    max_entries: int
    entries: int = 0
    nodes: int = 0
    initializers: int = 0
    ops: Counter[tuple[str, str]] = field(default_factory=Counter)
    op_offsets: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    size_problems: list[tuple[str, int]] = field(default_factory=list)
    external_checked: dict[str, int] = field(default_factory=dict)

    def count(self) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise LimitExceeded(f"more than max_entries={self.max_entries} nodes and tensors")
        if self.entries % 4096 == 0:
            self.ctx.check_deadline()


class OnnxScanner(FormatScanner):
    name = "onnx"
    description = "ONNX models: external data paths, tensor sizes, custom and Python operators"
    priority = 40
    suffixes = (".onnx",)
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        if len(data) < 2:
            return False
        # Exporters write ir_version (field 1) first. A model without it is still loaded by
        # onnx.load (which resolves external data before any check), so it must be scanned:
        # then the graph field has to be present and start like a GraphProto. Fields that
        # ModelProto does not define (or with another wire type) are skipped by every protobuf
        # reader, onnx.load and onnxruntime included: they may come first (red-team finding:
        # one leading unknown field made the model "unknown format"), and then the graph is
        # required too.
        with_ir_version = data[0] == 0x08
        unknown = False
        seen: set[int] = set()
        graph: pb.Field | None = None
        try:
            for index, f in enumerate(pb.iter_fields(data)):
                if _MODEL_FIELDS.get(f.number) != f.wire_type:
                    unknown = True
                else:
                    if index == 0 and with_ir_version and not 1 <= f.value <= 64:
                        with_ir_version = False
                    seen.add(f.number)
                    if f.number == 7 and graph is None:
                        graph = f
                if index + 1 >= _SNIFF_FIELDS and (graph is not None or index >= 4096):
                    break
        except pb.ProtobufError as exc:
            # A truncated model: everything before the graph parsed as a ModelProto and the
            # graph field itself runs past the end. Report it as a malformed ONNX model.
            key_at = exc.offset
            truncated_graph = key_at < len(data) and data[key_at] == (7 << 3 | pb.LEN)
            if not with_ir_version or unknown:
                return truncated_graph and name.lower().endswith(".onnx")
            return bool(seen) and (truncated_graph or name.lower().endswith(".onnx"))
        if with_ir_version and not unknown:
            return 7 in seen or 8 in seen or name.lower().endswith(".onnx")
        return graph is not None and _starts_like_graph(data, graph)

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        limits = ctx.config.limits
        base_dir = None
        if not loc.members and os.path.isfile(loc.path):
            base_dir = os.path.dirname(os.path.abspath(loc.path))
        walk = _Walk(data, ctx, loc, set(), base_dir, limits.max_nesting_depth, limits.max_entries)
        try:
            _model(walk)
        except LimitExceeded:
            raise
        except pb.ProtobufError as exc:
            ctx.report(rules.ONNX_MALFORMED, str(exc), loc.at(exc.offset))
        except InputError as exc:
            ctx.report(rules.ONNX_MALFORMED, str(exc), loc)
        finally:
            # What was seen before a parse error or an exhausted limit is still reported: junk
            # appended after a Python operator must not hide it.
            _finish(walk)


class OrtFormatScanner(FormatScanner):
    """ONNX Runtime's own model format (``.ort``): recognised, not parsed (fail closed).

    onnxruntime loads it by the ``.ort`` suffix, and from bytes by the flatbuffer file
    identifier ``ORTM`` at byte 4, whatever the name (red-team finding: it was "unknown
    format", low, and passed the gate).
    """

    name = "ort"
    description = "ONNX Runtime format models (.ort flatbuffers): recognised, not analysed"
    priority = 40
    suffixes = (".ort",)
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        return len(data) >= 8 and bytes(data[4:8]) == b"ORTM"

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        ctx.report(
            rules.ONNX_ORT_FORMAT,
            f"ONNX Runtime format model of {len(data)} bytes: its graph and operators were "
            "not analysed",
            loc,
        )


# --- ONNX models in text and JSON form -------------------------------------------------------
#
# onnx.load picks a serialisation by file extension: ``.txtpb``/``.textproto``/``.prototxt``/
# ``.pbtxt`` (protobuf text format), ``.json``/``.onnxjson`` (protobuf JSON) and
# ``.onnxtxt``/``.onnxtext`` (ONNX's own text syntax), and resolves external data for all of
# them (red-team finding: such models were scanned as plain configs or not at all). The first
# two are read here for what the binary walk reports; the third is parsed by ``._onnxtxt``.
# ``onnx.load(path, format=...)`` reads each under any name, so each is also recognised by
# content.

#: ModelProto field names, as text format and JSON (both spellings) write them.
_MODEL_FIELD_NAMES = frozenset(
    {
        "ir_version",
        "producer_name",
        "producer_version",
        "domain",
        "model_version",
        "doc_string",
        "graph",
        "opset_import",
        "metadata_props",
        "training_info",
        "functions",
        "configuration",
    }
)


_text_model = lazy_pattern(
    rb"(?:\s|#[^\n]*+)*+(?:(?:graph|functions|opset_import|training_info)\s*:?\s*[{<]"
    rb"|ir_version\s*:\s*\d|producer_name\s*:\s*[\"'])"
)


#: Suffixes by which ``onnx.load`` reads a file as ONNX text syntax.
_ONNXTXT_SUFFIXES = (".onnxtxt", ".onnxtext")


#: The blanks ``onnx.parser`` skips before every token: C ``isspace`` and ``#`` comments (read
#: possessively, so that a run of ``#`` costs linear time).
_ONNXTXT_SKIP = rb"(?:[ \t\n\v\f\r]|#[^\n]*+)*+"

#: How ONNX text syntax can open: a model header whose first keyword is any of the header's
#: (onnx.parser takes them in any order: a header opening with producer_name was a config to
#: the sniff, and clean) and whose value opens as onnx.parser reads that keyword's (an integer,
#: a ``[`` list, a ``"`` string: an XML root ``<domain:create ...>`` was medium), or a graph's
#: name (an identifier or a quoted string) followed by its inputs' ``(`` or, with none, its
#: ``=>``. Matched on the whole buffer, not a head: comments of any length may come first (the
#: pattern stops at the first other byte).
_onnxtxt_opening = lazy_pattern(
    _ONNXTXT_SKIP
    + rb"(?:(?P<header><)"
    + _ONNXTXT_SKIP
    + rb"(?:(?:ir_version|model_version)"
    + _ONNXTXT_SKIP
    + rb":"
    + _ONNXTXT_SKIP
    + rb"[-+0-9]|(?:opset_import|metadata_props)"
    + _ONNXTXT_SKIP
    + rb":"
    + _ONNXTXT_SKIP
    + rb"\[|(?:producer_name|producer_version|domain|doc_string)"
    + _ONNXTXT_SKIP
    + rb":"
    + _ONNXTXT_SKIP
    + rb'"'
    + rb")|(?P<name>[A-Za-z_][A-Za-z0-9_]*+|\"(?:[^\"\\]|\\.)*+\")"
    + _ONNXTXT_SKIP
    + rb"(?:\(|=>))",
    re.DOTALL,
)

#: Characters of a graph's opening read by the parser when sniffing (from its name on): an
#: opening still well formed where they end is claimed (see ``_onnxtxt.opens_graph``).
_ONNXTXT_SNIFF_CHARS = 64 * 1024


def is_onnx_text_syntax(data: memoryview) -> bool:
    """Whether ``data`` is a model in ONNX's own text syntax, by content, as ``onnx.load(path,
    format="onnxtxt")`` and ``onnx.parser.parse_model`` read one under any file name.

    Decisions (red-team finding: a model without its ``<...>`` header, in a ``.txt``, was not
    recognised): a header opening with a model keyword is claimed; so is a graph whose
    signature (name, inputs, ``=>``, outputs, value infos, up to the ``{`` of its nodes) our
    parser reads, which no script, prose or config has (arrow functions, calls and shell
    functions all fail inside it: see the corpus test). What is claimed is then parsed whole;
    text that opens like a model but does not parse is medium (MLT-ONX-007), since the body
    our parser rejects may be one onnx.parser reads. Text whose opening is not one of these,
    or that only a lenient reader could take for one (a BOM, ``//`` comments, a non-ASCII
    space), is not ONNX text to onnx.parser, and is left to the other sniffers.
    """
    match = _onnxtxt_opening().match(data)
    if match is None:
        return False
    if match.group("header") is not None:
        return True
    start = match.start("name")
    head = bytes(data[start : start + 4 * _ONNXTXT_SNIFF_CHARS])
    complete = start + len(head) >= len(data)
    # Decoded leniently: the signature is ASCII whatever the rest is, and a reader that
    # decodes leniently reads the same model (the scan's strict decoding then fails closed).
    text = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=complete)
    if len(text) > _ONNXTXT_SNIFF_CHARS:
        text, complete = text[:_ONNXTXT_SNIFF_CHARS], False
    from mltrust.config import DEFAULT_LIMITS
    from mltrust.scan.formats._onnxtxt import opens_graph  # (*)

    return opens_graph(
        text,
        complete=complete,
        max_depth=DEFAULT_LIMITS.max_nesting_depth,
        max_entries=DEFAULT_LIMITS.max_entries,
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _field(d: dict[str, object], name: str) -> object:
    """A protobuf JSON field, by its proto name or its camelCase JSON name."""
    return d[name] if name in d else d.get(_camel(name))


def looks_like_onnx_json(doc: object) -> TypeGuard[dict[str, object]]:
    """Whether a parsed JSON document has the shape of an ONNX ModelProto."""
    if not isinstance(doc, dict):
        return False
    graph = _field(doc, "graph")
    if isinstance(graph, dict) and isinstance(_field(graph, "node"), list):
        return True
    return _field(doc, "ir_version") is not None and _field(doc, "opset_import") is not None


def _text_walk(ctx: ScanContext, loc: Location) -> _Walk:
    limits = ctx.config.limits
    return _Walk(
        memoryview(b""), ctx, loc, set(), None, limits.max_nesting_depth, limits.max_entries
    )


def _note_node(w: _Walk, op_type: str, domain: str, name: str) -> None:
    w.count()
    w.nodes += 1
    key = (domain, op_type)
    w.ops[key] += 1
    w.op_offsets.setdefault(key, (0, name))


def _note_external(w: _Walk, label: str, entries: dict[str, str]) -> None:
    location = entries.get("location", "")
    reason = unsafe_location(location) if location else "is missing"
    if reason:
        w.ctx.report(
            rules.ONNX_EXTERNAL_DATA_ESCAPE if location else rules.ONNX_MALFORMED,
            f"{label}: external data location {location!r} {reason}",
            w.loc.at(detail=label),
        )


def analyze_onnx_json(doc: dict[str, object], ctx: ScanContext, loc: Location) -> None:
    """Operators, local functions and external data of an ONNX model in protobuf JSON."""
    ctx.facts["onnx.serialization"] = "json"
    w = _text_walk(ctx, loc)
    stack: list[tuple[object, int]] = [(doc, 0)]
    tensors = 0
    while stack:
        node, depth = stack.pop()
        if depth > w.max_depth:
            raise LimitExceeded(f"ONNX JSON nests deeper than {w.max_depth} levels")
        if isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
            continue
        if not isinstance(node, dict):
            continue
        op_type = _field(node, "op_type")
        if isinstance(op_type, str):
            domain = _field(node, "domain")
            name = _field(node, "name")
            _note_node(w, op_type, domain if isinstance(domain, str) else "", str(name or ""))
        external = _field(node, "external_data")
        if isinstance(external, list) and external:
            tensors += 1
            entries = {
                str(_field(e, "key")): str(_field(e, "value"))
                for e in external
                if isinstance(e, dict)
            }
            _note_external(w, f"tensor {_field(node, 'name')!r}", entries)
        stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
    functions = _field(doc, "functions")
    for function in functions if isinstance(functions, list) else []:
        if isinstance(function, dict):
            w.functions.add((str(_field(function, "domain") or ""), str(_field(function, "name"))))
    _finish(w)


class OnnxTextScanner(FormatScanner):
    """ONNX models in protobuf text format or ONNX's own text syntax."""

    name = "onnx-text"
    description = (
        "ONNX models in text form (.textproto/.txtpb/.prototxt/.pbtxt and ONNX's own .onnxtxt "
        "syntax): operators, external data"
    )
    priority = 35
    suffixes = (".txtpb", ".textproto", ".prototxt", ".onnxtxt", ".onnxtext")
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        if name.lower().endswith(_ONNXTXT_SUFFIXES):
            return True  # onnx.load picks the text syntax by this suffix, whatever the content
        return _text_model().match(data) is not None or is_onnx_text_syntax(data)

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        limits = ctx.config.limits
        if len(data) > limits.max_text_bytes:
            raise LimitExceeded(
                f"text ONNX model of {len(data)} bytes exceeds max_text_bytes="
                f"{limits.max_text_bytes}"
            )
        name = loc.members[-1] if loc.members else loc.path
        if name.lower().endswith(_ONNXTXT_SUFFIXES) or is_onnx_text_syntax(data):
            _scan_onnxtxt(data, ctx, loc)
            return
        ctx.facts["onnx.serialization"] = "textproto"
        w = _text_walk(ctx, loc)
        text = bytes(data).decode("utf-8", "replace")
        from mltrust.scan.formats._pbtext import walk  # (*)

        def on_close(msg: Message, parents: tuple[Message, ...]) -> None:
            if msg.name == "node" or (msg.scalars.get("op_type") and msg.name != "functions"):
                _note_node(w, msg.first("op_type"), msg.first("domain"), msg.first("name"))
            elif msg.name == "functions" and not parents:
                w.functions.add((msg.first("domain"), msg.first("name")))
            entries = {e.first("key"): e.first("value") for e in msg.child("external_data")}
            if entries:
                _note_external(w, f"tensor {msg.first('name')!r}", entries)

        try:
            walk(text, on_close, max_depth=limits.max_nesting_depth, max_messages=w.max_entries)
        finally:
            _finish(w)


def _scan_onnxtxt(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """ONNX's own text syntax, parsed as ``onnx.parser`` parses it (:mod:`._onnxtxt`), then
    checked like any other serialisation; text it cannot parse fails closed."""
    ctx.facts["onnx.serialization"] = "onnxtxt"
    limits = ctx.config.limits
    try:
        text = bytes(data).decode("utf-8")  # onnx.load decodes it strictly too
        from mltrust.scan.formats._onnxtxt import parse_model  # (*)

        model = parse_model(text, limits.max_nesting_depth, limits.max_entries)
    except (UnicodeDecodeError, InputError) as exc:
        ctx.report(
            rules.ONNX_ORT_FORMAT,
            f"ONNX model in ONNX text syntax that could not be parsed ({exc}): its "
            "graph and operators were not analysed",
            loc,
        )
        return
    w = _text_walk(ctx, loc)
    w.functions.update(model.functions)
    try:
        for domain, op_type, name in model.nodes:
            _note_node(w, op_type, domain, name)
        for name, entries in model.external:
            locations = [value for key, value in entries if key == "location"]
            for location in locations or [""]:
                _note_external(w, f"tensor {name!r}", {"location": location})
    finally:
        _finish(w)


def _model(walk: _Walk) -> None:
    data, ctx = walk.data, walk.ctx
    try:
        for f in pb.iter_fields(data):
            if f.number == 25 and f.wire_type == pb.LEN:
                walk.functions.add(_function_id(data, f))
    except pb.ProtobufError:
        pass  # the walk below reports it, after checking what comes before
    graphs = 0
    for f in pb.iter_fields(data):
        if f.number == 1 and f.wire_type == pb.VARINT:
            ctx.facts["onnx.ir_version"] = f.value
        elif f.number == 7 and f.wire_type == pb.LEN:
            graphs += 1
            _graph(walk, f, 1)
        elif f.number == 20 and f.wire_type == pb.LEN:
            for t in pb.iter_fields(data, f.value, f.end):
                if t.number in (1, 2) and t.wire_type == pb.LEN:
                    _graph(walk, t, 2)
        elif f.number == 25 and f.wire_type == pb.LEN:
            _function(walk, f, 1)
    if graphs == 0:
        ctx.report(rules.ONNX_MALFORMED, "model has no graph", walk.loc)


def _finish(walk: _Walk) -> None:
    ctx, loc = walk.ctx, walk.loc
    ctx.facts["onnx.nodes"] = walk.nodes
    ctx.facts["onnx.initializers"] = walk.initializers
    _report_ops(walk)
    for message, offset in walk.size_problems[:_REPORTED_CAP]:
        ctx.report(rules.ONNX_TENSOR_SIZE, message, loc.at(offset))
    if len(walk.size_problems) > _REPORTED_CAP:
        ctx.report(
            rules.ONNX_TENSOR_SIZE,
            f"{len(walk.size_problems) - _REPORTED_CAP} more tensor size problems not listed",
            loc,
        )


def _starts_like_graph(data: memoryview, f: pb.Field) -> bool:
    """Whether the first field of the message in ``f`` is a GraphProto field."""
    if f.size == 0:
        return False
    key = data[f.value]
    return key & 7 == pb.LEN and key >> 3 in (1, 2, 5, 10, 11, 12, 13, 15)


def _function_id(data: memoryview, f: pb.Field) -> tuple[str, str]:
    name = domain = ""
    for g in pb.iter_fields(data, f.value, f.end):
        if g.number == 1 and g.wire_type == pb.LEN:
            name = pb.text(data, g, 4096)
        elif g.number == 10 and g.wire_type == pb.LEN:
            domain = pb.text(data, g, 4096)
    return domain, name


def _graph(w: _Walk, f: pb.Field, depth: int) -> None:
    pb.check_depth(depth, w.max_depth, f.offset)
    for g in pb.iter_fields(w.data, f.value, f.end):
        if g.wire_type != pb.LEN:
            continue
        if g.number == 1:
            _node(w, g, depth + 1)
        elif g.number == 5:
            w.initializers += 1
            _tensor(w, g, depth + 1)
        elif g.number == 15:
            w.initializers += 1
            for s in pb.iter_fields(w.data, g.value, g.end):
                if s.number in (1, 2) and s.wire_type == pb.LEN:
                    _tensor(w, s, depth + 2)


def _function(w: _Walk, f: pb.Field, depth: int) -> None:
    pb.check_depth(depth, w.max_depth, f.offset)
    for g in pb.iter_fields(w.data, f.value, f.end):
        if g.number == 7 and g.wire_type == pb.LEN:
            _node(w, g, depth + 1)
        elif g.number == 11 and g.wire_type == pb.LEN:
            _attribute(w, g, depth + 1)


def _node(w: _Walk, f: pb.Field, depth: int) -> None:
    pb.check_depth(depth, w.max_depth, f.offset)
    w.count()
    w.nodes += 1
    op_type = domain = name = ""
    attributes: list[pb.Field] = []
    for g in pb.iter_fields(w.data, f.value, f.end):
        if g.wire_type != pb.LEN:
            continue
        if g.number == 4:
            op_type = pb.text(w.data, g, 4096)
        elif g.number == 7:
            domain = pb.text(w.data, g, 4096)
        elif g.number == 3:
            name = pb.text(w.data, g, 4096)
        elif g.number == 5:
            attributes.append(g)
    key = (domain, op_type)
    w.ops[key] += 1
    w.op_offsets.setdefault(key, (f.offset, name))
    for a in attributes:
        _attribute(w, a, depth + 1)


def _attribute(w: _Walk, f: pb.Field, depth: int) -> None:
    pb.check_depth(depth, w.max_depth, f.offset)
    for g in pb.iter_fields(w.data, f.value, f.end):
        if g.wire_type != pb.LEN:
            continue
        if g.number in (6, 11):  # g, graphs
            _graph(w, g, depth + 1)
        elif g.number in (5, 10):  # t, tensors
            _tensor(w, g, depth + 1)
        elif g.number in (22, 23):  # sparse_tensor, sparse_tensors
            for s in pb.iter_fields(w.data, g.value, g.end):
                if s.number in (1, 2) and s.wire_type == pb.LEN:
                    _tensor(w, s, depth + 2)


def _tensor(w: _Walk, f: pb.Field, depth: int) -> None:
    pb.check_depth(depth, w.max_depth, f.offset)
    w.count()
    data = w.data
    dims: list[int] = []
    data_type = 0
    name = ""
    raw: pb.Field | None = None
    external: dict[str, str] = {}
    location_external = False
    typed_fields = 0
    fixed_values = 0
    for g in pb.iter_fields(data, f.value, f.end):
        if g.number == 1:
            if g.wire_type == pb.VARINT:
                dims.append(_signed(g.value))
            elif g.wire_type == pb.LEN:
                pos = g.value
                while pos < g.end:
                    dim, pos = pb.read_varint(data, pos, g.end)
                    dims.append(_signed(dim))
                    if len(dims) > 64:
                        raise InputError(f"tensor at byte {f.offset} has more than 64 dims")
        elif g.number == 2 and g.wire_type == pb.VARINT:
            data_type = g.value
        elif g.number == 8 and g.wire_type == pb.LEN:
            name = pb.text(data, g, 4096)
        elif g.number == 9 and g.wire_type == pb.LEN:
            raw = g
        elif g.number == 13 and g.wire_type == pb.LEN:
            key = value = ""
            for e in pb.iter_fields(data, g.value, g.end):
                if e.number == 1 and e.wire_type == pb.LEN:
                    key = pb.text(data, e, 4096)
                elif e.number == 2 and e.wire_type == pb.LEN:
                    value = pb.text(data, e, 65536)
            external[key] = value
        elif g.number == 14 and g.wire_type == pb.VARINT:
            location_external = g.value == 1
        elif g.number in (4, 5, 6, 7, 10, 11):
            typed_fields += 1
            if g.number in (4, 10):  # float_data (fixed32), double_data (fixed64)
                width = 4 if g.number == 4 else 8
                fixed_values += g.size // width if g.wire_type == pb.LEN else 1
    label = f"tensor {name!r}" if name else f"tensor at byte {f.offset}"
    if any(d < 0 for d in dims):
        w.size_problems.append((f"{label} has a negative dimension {dims}", f.offset))
        return
    count = 1
    for d in dims:
        count *= d
    bits = _ELEM_BITS.get(data_type)
    nbytes = None if bits is None else -(-count * bits // 8)
    if location_external or external:
        _external(w, f, label, external, nbytes)
        return
    if raw is not None:
        if nbytes is not None and raw.size != nbytes:
            w.size_problems.append(
                (
                    f"{label}: shape {dims} of data type {data_type} needs {nbytes} bytes but "
                    f"raw_data holds {raw.size}",
                    raw.offset,
                )
            )
    elif data_type in _FIXED_FIELD_VALUES and fixed_values:
        expected = count * _FIXED_FIELD_VALUES[data_type]
        if fixed_values != expected:
            w.size_problems.append(
                (
                    f"{label}: shape {dims} of data type {data_type} needs {expected} stored "
                    f"values but the tensor holds {fixed_values}",
                    f.offset,
                )
            )
    elif typed_fields == 0 and count > 0 and nbytes is not None and data_type != 0:
        w.size_problems.append(
            (f"{label}: shape {dims} needs {nbytes} bytes but the tensor holds no data", f.offset)
        )


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _external(
    w: _Walk, f: pb.Field, label: str, external: dict[str, str], nbytes: int | None
) -> None:
    ctx, where = w.ctx, w.loc.at(f.offset, detail=label)
    location = external.get("location", "")
    if not location:
        ctx.report(rules.ONNX_MALFORMED, f"{label} has external data without a location", where)
        return
    try:
        offset = int(external.get("offset", "0") or "0")
        length = int(external["length"]) if external.get("length") else None
    except ValueError:
        ctx.report(
            rules.ONNX_MALFORMED,
            f"{label}: external data offset/length are not integers: {external!r}",
            where,
        )
        return
    if offset < 0 or (length is not None and length < 0):
        ctx.report(rules.ONNX_MALFORMED, f"{label}: negative external offset/length", where)
        return
    if length is not None and nbytes is not None and length != nbytes:
        w.size_problems.append(
            (
                f"{label}: external data length {length} does not match the {nbytes} bytes its "
                "shape and type need",
                f.offset,
            )
        )
    reason = unsafe_location(location)
    if reason:
        ctx.report(
            rules.ONNX_EXTERNAL_DATA_ESCAPE,
            f"{label}: external data location {location!r} {reason}",
            where,
        )
        return
    if w.base_dir is None:
        return  # inside an archive or an in-memory buffer: no folder to resolve against
    target = os.path.join(w.base_dir, location.replace("\\", "/"))
    real_base = os.path.realpath(w.base_dir)
    real_target = os.path.realpath(target)
    if os.path.commonpath([real_base, real_target]) != real_base:
        ctx.report(
            rules.ONNX_EXTERNAL_DATA_ESCAPE,
            f"{label}: external data location {location!r} resolves through a symbolic link to "
            f"{real_target!r}, outside the model's folder",
            where,
        )
        return
    size = w.external_checked.get(real_target)
    if size is None:
        try:
            st = os.stat(real_target)
        except OSError:
            ctx.report(
                rules.ONNX_EXTERNAL_DATA_MISSING,
                f"{label}: external data file {location!r} does not exist",
                where,
            )
            w.external_checked[real_target] = -1
            return
        if not stat.S_ISREG(st.st_mode):
            ctx.report(
                rules.ONNX_EXTERNAL_DATA_ESCAPE,
                f"{label}: external data location {location!r} is not a regular file",
                where,
            )
            w.external_checked[real_target] = -2
            return
        size = st.st_size
        w.external_checked[real_target] = size
    if size < 0:
        return
    needed = offset + (length if length is not None else (nbytes or 0))
    if needed > size:
        ctx.report(
            rules.ONNX_EXTERNAL_DATA_MISSING,
            f"{label}: external data needs bytes up to {needed} of {location!r}, which holds "
            f"{size}",
            where,
        )


def unsafe_location(location: str) -> str | None:
    """Why a relative file reference (external data, asset) is unsafe on its face, or ``None``."""
    if "\x00" in location:
        return "contains a NUL byte"
    if "_ORT_MEM_ADDR_" in location:
        return "is ONNX Runtime's in-memory marker (its offset is read as a raw memory address)"
    norm = location.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        return "is an absolute path"
    if _url().match(norm):
        return "is a URL or has a scheme"
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    level = 0
    for part in parts:
        level = level - 1 if part == ".." else level + 1
        if level < 0:
            return "escapes the model's folder with '..'"
    return None


def _report_ops(w: _Walk) -> None:
    custom: dict[str, list[str]] = {}
    for (domain, op_type), n in sorted(w.ops.items()):
        offset, node_name = w.op_offsets[(domain, op_type)]
        where = w.loc.at(offset, detail=f"node {node_name!r}" if node_name else None)
        if op_type in CODE_EXECUTION_OPS:
            w.ctx.report(
                rules.ONNX_RISKY_OP,
                f"{n} node(s) use operator {domain or 'ai.onnx'}::{op_type}, which runs Python "
                "code named in the model",
                where,
            )
        elif domain not in STANDARD_DOMAINS and (domain, op_type) not in w.functions:
            custom.setdefault(domain, []).append(op_type)
    for domain, ops in custom.items():
        offset, node_name = w.op_offsets[(domain, ops[0])]
        w.ctx.report(
            rules.ONNX_CUSTOM_DOMAIN,
            f"custom operator domain {domain!r} (ops: {', '.join(ops[:10])}) needs a custom "
            "operator library loaded at runtime",
            w.loc.at(offset, detail=f"node {node_name!r}" if node_name else None),
        )
    if custom:
        w.ctx.facts["onnx.custom_domains"] = sorted(custom)
