"""TensorFlow SavedModel (``saved_model.pb``), frozen ``GraphDef`` files and their companions.

The protobufs are read field by field (no TensorFlow import). Every op of the graph and of every
function in its library is classified:

* ``PyFunc``, ``PyFuncStateless``, ``EagerPyFunc`` call a Python function registered in the
  loading process: critical (arbitrary Python).
* File-system ops (``ReadFile``, ``WriteFile``, ``MatchingFiles``, file-backed readers and
  datasets, summary writers, ``ImmutableConst``'s memory-mapped file, debug ops and ``PrintV2``
  writing to files): high wherever they appear. No serving graph needs them, and the standard
  saver does not use them.
* ``InitializeTableFromTextFile(V2)`` reads a vocabulary file when the model loads; text models
  do this with a file shipped in ``assets/``, so it is low. The asset file names of the
  ``MetaGraphDef`` are checked instead: an absolute, ``..`` or URL name is high.
* Checkpoint ops (``SaveV2``, ``RestoreV2``, ``MergeV2Checkpoints``, ``ShardedFilename``...):
  every SavedModel contains them in its saver (TF1: nodes under the ``save/`` scope named by the
  ``SaverDef``; TF2: the ``__inference__traced_save_*``/``__inference__traced_restore_*``
  functions and per-object ``*_save_fn_*``/``*_restore_fn_*`` functions), where they only run
  when the user saves or restores, on a path the user gives. There
  they are reported as info. Anywhere else (the serving graph, a signature function) they read or
  write checkpoint files at paths the model chooses when it is called: medium.

Companion files of a SavedModel folder are recognised so that a clean folder scans clean:
``fingerprint.pb`` (hashes only) and ``keras_metadata.pb`` (Keras layer configs as JSON, checked
for ``Lambda`` layers, whose Python code Keras rebuilds when loading).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mltrust._lazy import lazy_pattern
from mltrust.errors import InputError, LimitExceeded
from mltrust.findings import Location, Severity
from mltrust.scan import _protobuf as pb
from mltrust.scan._context import ScanContext
from mltrust.scan.formats import _rules_tensor as rules
from mltrust.scan.formats.onnx import unsafe_location
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.scan.formats._pbtext import Message

# (*) The protobuf text-format parser is imported where a scan first reads text: sniffing does
# not need it, and a scan of another format should not pay for loading it.

__all__ = [
    "CHECKPOINT_OPS",
    "FILE_OPS",
    "PYTHON_OPS",
    "TABLE_FILE_OPS",
    "TensorflowScanner",
    "TfCheckpointScanner",
]

PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
FILE_OPS = frozenset(
    {
        "ReadFile",
        "WriteFile",
        "MatchingFiles",
        "WholeFileReader",
        "WholeFileReaderV2",
        "TextLineReader",
        "TextLineReaderV2",
        "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2",
        "TFRecordReader",
        "TFRecordReaderV2",
        "LMDBReader",
        "IdentityReader",
        "IdentityReaderV2",
        "ImmutableConst",
        "TextLineDataset",
        "TFRecordDataset",
        "TFRecordDatasetV2",
        "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2",
        "CSVDataset",
        "CSVDatasetV2",
        "ExperimentalCSVDataset",
        "LMDBDataset",
        "ExperimentalLMDBDataset",
        "SqlDataset",
        "ExperimentalSqlDataset",
        "LoadDataset",
        "SaveDataset",
        "SaveDatasetV2",
        "SnapshotDataset",
        "SnapshotDatasetV2",
        "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord",
        "CreateSummaryFileWriter",
        "CreateSummaryDbWriter",
        "SummaryWriter",
        "DebugIdentity",
        "DebugIdentityV2",
        "DebugIdentityV3",
        "DebugNanCount",
        "DebugNumericSummary",
        "DebugNumericSummaryV2",
        # dataset.cache(filename) writes cache files; file listing; vocabulary/checkpoint
        # readers taking paths as inputs; tf.data service clients (network); proto codecs
        # reading a descriptor file (red-team finding: these scanned clean).
        "CacheDataset",
        "CacheDatasetV2",
        "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset",
        "GenerateVocabRemapping",
        "LoadAndRemapMatrix",
        "DataServiceDataset",
        "DataServiceDatasetV2",
        "DataServiceDatasetV3",
        "DataServiceDatasetV4",
        "RegisterDataset",
        "RegisterDatasetV2",
    }
)
#: Ops that read a text file when the model loads; normally a vocabulary shipped as an asset, so
#: reported as low (the asset file names themselves are checked for escapes).
TABLE_FILE_OPS = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
CHECKPOINT_OPS = frozenset(
    {
        "SaveV2",
        "RestoreV2",
        "MergeV2Checkpoints",
        "Save",
        "SaveSlices",
        "Restore",
        "RestoreSlice",
        "ShardedFilename",
        "ShardedFilespec",
    }
)
#: Ops whose string attributes may name an output file (``file://...``).
_STREAM_ATTR_OPS = {"PrintV2": "output_stream"}
#: Proto codecs whose ``descriptor_source`` may name a file to read (default ``local://``).
_DESCRIPTOR_ATTR_OPS = frozenset({"DecodeProtoV2", "EncodeProto"})


_tf1_saver_scope = lazy_pattern(r"^save(_\d+)?/")


_tf2_saver_function = lazy_pattern(
    r"^__inference_(_traced_(save|restore)|.*_(save|restore)_fn)_\d+$"
)


_op_name = lazy_pattern(r"^[A-Za-z_>][A-Za-z0-9_>.]*$")


#: Findings of one kind listed before the rest are counted (presentation only, so not in
#: :class:`~mltrust.config.Limits`).
_REPORTED_CAP = 50
_META_GRAPH_FIELDS = {1, 2, 3, 4, 5, 6, 7}
_FINGERPRINT = "fingerprint.pb"
_KERAS_METADATA = "keras_metadata.pb"
#: TF Hub's (TF1) module marker: a ``ModuleDef`` holding only its format number.
_TFHUB_MODULE = "tfhub_module.pb"


@dataclass(eq=False, repr=False)  # state, never compared or printed: no generated == or repr
class _Hit:
    """Where one kind of op was first seen in a graph, and how often."""

    offset: int
    node: str
    detail: str
    count: int = 1


@dataclass(eq=False, repr=False)  # state, never compared or printed: no generated == or repr
class _Walk:
    """State of one walk over a TensorFlow graph: the ops seen and what they hit."""

    data: memoryview
    ctx: ScanContext
    loc: Location
    max_entries: int
    saver_prefixes: set[str] = field(default_factory=set)
    nodes: int = 0
    functions: int = 0
    #: (rule kind, op, context) -> where it was first seen and how often
    hits: dict[tuple[str, str, str], _Hit] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)

    def hit(self, kind: str, op: str, context: str, offset: int, node: str, detail: str) -> None:
        key = (kind, op, context)
        entry = self.hits.get(key)
        if entry is None:
            self.hits[key] = _Hit(offset, node, detail)
        else:
            entry.count += 1


class TensorflowScanner(FormatScanner):
    name = "tensorflow"
    description = "TensorFlow SavedModel / GraphDef protobufs: Python, file-system, checkpoint ops"
    priority = 40
    suffixes = (".pb",)
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        base = name.rsplit("/", 1)[-1].lower()
        try:
            if base == _FINGERPRINT:
                return _looks_like_fingerprint(data)
            if base == _KERAS_METADATA:
                return _looks_like_keras_metadata(data)
            if base == _TFHUB_MODULE:
                return _looks_like_tfhub_module(data)
            return (
                _looks_like_saved_model(data)
                or _looks_like_graph_def(data)
                or _looks_like_text(data, base)
                or _looks_like_meta_graph(data, base)
            )
        except pb.ProtobufError:
            return False

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        base = loc.members[-1] if loc.members else loc.path
        base = base.replace("\\", "/").rsplit("/", 1)[-1].lower()
        try:
            if base == _FINGERPRINT and _looks_like_fingerprint(data):
                ctx.facts["tensorflow.kind"] = "fingerprint"
                for _ in pb.iter_fields(data):
                    pass
                return
            if base == _TFHUB_MODULE and _looks_like_tfhub_module(data):
                ctx.facts["tensorflow.kind"] = "tfhub_module"
                return
            if base == _KERAS_METADATA and _looks_like_keras_metadata(data):
                ctx.facts["tensorflow.kind"] = "keras_metadata"
                _keras_metadata(data, ctx, loc)
                return
            walk = _Walk(data, ctx, loc, ctx.config.limits.max_entries)
            try:
                if _looks_like_text(data, base):
                    ctx.facts["tensorflow.kind"] = "text"
                    _text_graph(walk)
                elif _looks_like_saved_model(data):
                    ctx.facts["tensorflow.kind"] = "saved_model"
                    _saved_model(walk)
                elif _looks_like_meta_graph(data, base):
                    ctx.facts["tensorflow.kind"] = "meta_graph"
                    _meta_graph(walk, pb.Field(2, pb.LEN, 0, len(data), 0))
                else:
                    ctx.facts["tensorflow.kind"] = "graph_def"
                    _graph_def(walk, 0, len(data))
            finally:
                # Ops seen before a parse error are still reported: junk appended after a
                # PyFunc must not hide it.
                _report(walk)
        except LimitExceeded:
            raise
        except pb.ProtobufError as exc:
            ctx.report(rules.TF_MALFORMED, str(exc), loc.at(exc.offset))
        except InputError as exc:
            ctx.report(rules.TF_MALFORMED, str(exc), loc)


# --- sniffing -------------------------------------------------------------------------------------


def _looks_like_saved_model(data: memoryview) -> bool:
    if len(data) < 4:
        return False
    if _starts_like_saved_model(data, 0):
        # A SavedModel has only fields 1 and 2 at the top level (an ONNX model has a graph, 7).
        try:
            for index, f in enumerate(pb.iter_fields(data)):
                if (f.number, f.wire_type) not in ((1, pb.VARINT), (2, pb.LEN)):
                    return _with_unknown_fields(data)
                if index >= 64:
                    break
        except pb.ProtobufError:
            pass  # truncated: reported as malformed by the scan
        return True
    return _with_unknown_fields(data)


def _starts_like_saved_model(data: memoryview, pos: int) -> bool:
    """Whether ``data`` at ``pos`` holds an optional schema version, then a MetaGraphDef."""
    if data[pos] == 0x08:
        version, pos = pb.read_varint(data, pos + 1, min(len(data), pos + 11))
        if version > 16:
            return False
    if pos >= len(data) or data[pos] != 0x12:
        return False
    length, inner = pb.read_varint(data, pos + 1, min(len(data), pos + 11))
    if length == 0 or inner >= len(data):
        return False
    key, _ = pb.read_varint(data, inner, min(len(data), inner + 5))
    return key & 7 == pb.LEN and key >> 3 in _META_GRAPH_FIELDS


def _with_unknown_fields(data: memoryview) -> bool:
    """A SavedModel with fields it does not define: protobuf readers (TensorFlow's included)
    skip unknown fields, so a ``meta_graphs`` field after one is still loaded (red-team
    finding: a leading unknown field hid a PyFunc). The known fields must have their types
    and a field 2 must parse as a MetaGraphDef (every field of it one MetaGraphDef has). An
    ONNX graph field (7) does not exclude it: a polyglot is scanned as both."""
    meta = False
    try:
        for index, f in enumerate(pb.iter_fields(data)):
            if index >= 256:
                break
            if f.number == 1 and f.wire_type != pb.VARINT:
                return False
            if f.number == 2:
                if f.wire_type != pb.LEN or not _is_meta_graph(data, f):
                    return False
                meta = True
    except pb.ProtobufError:
        return False
    return meta


def _is_meta_graph(data: memoryview, f: pb.Field) -> bool:
    seen = False
    for index, g in enumerate(pb.iter_fields(data, f.value, f.end)):
        if g.wire_type != pb.LEN or g.number not in _META_GRAPH_FIELDS:
            return False
        seen = True
        if index >= 64:
            break
    return seen


def _looks_like_meta_graph(data: memoryview, base: str) -> bool:
    """A TF1 checkpoint's ``*.meta`` (a bare MetaGraphDef): ``import_meta_graph`` builds its
    graph and ``Saver.restore`` runs the op its SaverDef names (red-team finding: a WriteFile
    there writes any file on restore, and the file was "unknown format")."""
    return base.endswith(".meta") and _is_meta_graph(data, pb.Field(2, pb.LEN, 0, len(data), 0))


def _looks_like_graph_def(data: memoryview) -> bool:
    if len(data) < 6 or data[0] != 0x0A:
        return False
    _, inner = pb.read_varint(data, 1, min(len(data), 11))
    fields = []
    end = min(len(data), inner + 4096)
    pos = inner
    for _ in range(2):
        key, pos = pb.read_varint(data, pos, end)
        if key & 7 != pb.LEN:
            return False
        length, pos = pb.read_varint(data, pos, end)
        if pos + length > end:
            return False
        fields.append((key >> 3, bytes(data[pos : pos + length])))
        pos += length
    (n1, node_name), (n2, op) = fields
    return (
        n1 == 1
        and n2 == 2
        and bool(node_name)
        and node_name.isascii()
        and node_name.decode().isprintable()
        and _op_name().match(op.decode("ascii", "replace")) is not None
    )


def _looks_like_fingerprint(data: memoryview) -> bool:
    seen = False
    for f in pb.iter_fields(data):
        if not ((1 <= f.number <= 5 and f.wire_type == pb.VARINT) or (f.number == 6)):
            return False
        seen = True
    return seen


def _looks_like_tfhub_module(data: memoryview) -> bool:
    fields = list(pb.iter_fields(data))
    return 0 < len(fields) <= 4 and all(f.wire_type == pb.VARINT for f in fields)


def _looks_like_keras_metadata(data: memoryview) -> bool:
    seen = False
    for f in pb.iter_fields(data):
        if f.number != 1 or f.wire_type != pb.LEN:
            return False
        seen = True
    return seen


# --- walking --------------------------------------------------------------------------------------


def _saved_model(w: _Walk) -> None:
    meta_graphs = 0
    unexpected: list[pb.Field] = []
    for f in pb.iter_fields(w.data):
        if f.number == 1 and f.wire_type == pb.VARINT:
            w.ctx.facts["tensorflow.schema_version"] = f.value
        elif f.number == 2 and f.wire_type == pb.LEN:
            meta_graphs += 1
            _meta_graph(w, f)
        else:
            unexpected.append(f)
    # Fields TensorFlow does not define are skipped by its reader: the meta graphs after them
    # were walked above; the file is still not one TensorFlow wrote.
    if unexpected:
        w.ctx.report(
            rules.TF_MALFORMED,
            f"{len(unexpected)} field(s) a SavedModel does not define (first: field "
            f"{unexpected[0].number} at byte {unexpected[0].offset}); TensorFlow skips them",
            w.loc.at(unexpected[0].offset),
        )
    if meta_graphs == 0:
        raise InputError("SavedModel has no MetaGraphDef")
    w.ctx.facts["tensorflow.meta_graphs"] = meta_graphs


def _meta_graph(w: _Walk, f: pb.Field) -> None:
    data = w.data
    graph_defs: list[pb.Field] = []
    try:
        for g in pb.iter_fields(data, f.value, f.end):
            if g.number == 3 and g.wire_type == pb.LEN:  # saver_def
                for s in pb.iter_fields(data, g.value, g.end):
                    if s.number in (1, 2, 3) and s.wire_type == pb.LEN:
                        tensor = pb.text(data, s, 4096)
                        if "/" in tensor:
                            w.saver_prefixes.add(tensor.rsplit("/", 1)[0] + "/")
            elif g.number == 2 and g.wire_type == pb.LEN:
                graph_defs.append(g)
            elif g.number == 7 and g.wire_type == pb.LEN:  # object_graph_def
                _object_graph(w, g)
            elif g.number == 6 and g.wire_type == pb.LEN:  # asset_file_def
                _asset(w, g)
            elif g.number == 1 and g.wire_type == pb.LEN:  # meta_info_def: tags
                tags = [
                    pb.text(data, t, 256)
                    for t in pb.iter_fields(data, g.value, g.end)
                    if t.number == 4 and t.wire_type == pb.LEN
                ]
                if tags:
                    w.ctx.facts["tensorflow.tags"] = ",".join(sorted(set(tags)))
    finally:
        # The graph is walked even when a later field is malformed (the error still propagates).
        for g in graph_defs:
            _graph_def(w, g.value, g.end)


def _check_asset_name(w: _Walk, filename: str, offset: int) -> None:
    """An asset file name that is empty or leaves the SavedModel folder is reported."""
    reason = unsafe_location(filename) if filename else "is empty"
    if reason:
        w.ctx.report(
            rules.TF_ASSET_ESCAPE, f"asset file name {filename!r} {reason}", w.loc.at(offset)
        )


def _asset(w: _Walk, f: pb.Field) -> None:
    for g in pb.iter_fields(w.data, f.value, f.end):
        if g.number == 2 and g.wire_type == pb.LEN:
            _check_asset_name(w, pb.text(w.data, g, 65536), g.offset)


def _object_graph(w: _Walk, f: pb.Field) -> None:
    """Keras layer configs kept in ``SavedUserObject.metadata`` (TF 2.0-2.4 Keras models)."""
    data = w.data
    for node_field in pb.iter_fields(data, f.value, f.end):
        if node_field.number != 1 or node_field.wire_type != pb.LEN:
            continue
        for g in pb.iter_fields(data, node_field.value, node_field.end):
            if g.number != 4 or g.wire_type != pb.LEN:  # user_object
                continue
            for u in pb.iter_fields(data, g.value, g.end):
                if u.number == 3 and u.wire_type == pb.LEN and u.size:
                    _check_keras_json(data, u, w.ctx, w.loc)


def _graph_def(w: _Walk, start: int, end: int) -> None:
    for f in pb.iter_fields(w.data, start, end):
        if f.wire_type != pb.LEN:
            continue
        if f.number == 1:
            _node(w, f, "graph", None)
        elif f.number == 2:  # FunctionDefLibrary
            for g in pb.iter_fields(w.data, f.value, f.end):
                if g.number == 1 and g.wire_type == pb.LEN:
                    _function(w, g)
    w.ctx.facts["tensorflow.nodes"] = w.nodes
    w.ctx.facts["tensorflow.functions"] = w.functions


def _function(w: _Walk, f: pb.Field) -> None:
    w.functions += 1
    name = ""
    nodes: list[pb.Field] = []
    for g in pb.iter_fields(w.data, f.value, f.end):
        if g.number == 1 and g.wire_type == pb.LEN:  # signature: OpDef
            for s in pb.iter_fields(w.data, g.value, g.end):
                if s.number == 1 and s.wire_type == pb.LEN:
                    name = pb.text(w.data, s, 4096)
        elif g.number == 3 and g.wire_type == pb.LEN:
            nodes.append(g)
    saver = _tf2_saver_function().search(name) is not None
    for n in nodes:
        _node(w, n, f"function {name!r}", saver)


def _node(w: _Walk, f: pb.Field, context: str, in_saver_function: bool | None) -> None:
    w.nodes += 1
    if w.nodes > w.max_entries:
        raise LimitExceeded(f"more than max_entries={w.max_entries} graph nodes")
    if w.nodes % 4096 == 0:
        w.ctx.check_deadline()
    data = w.data
    name = op = ""
    attrs: list[pb.Field] = []
    for g in pb.iter_fields(data, f.value, f.end):
        if g.wire_type != pb.LEN:
            continue
        if g.number == 1:
            name = pb.text(data, g, 4096)
        elif g.number == 2:
            op = pb.text(data, g, 4096)
        elif g.number == 5:
            attrs.append(g)
    _classify(
        w,
        name,
        op,
        context,
        in_saver_function,
        f.offset,
        lambda key: _string_attr(data, attrs, key),
    )


def _classify(
    w: _Walk,
    name: str,
    op: str,
    context: str,
    in_saver_function: bool | None,
    offset: int,
    attr: Callable[[str], str],
) -> None:
    """Record what the node ``name`` running ``op`` means; ``attr`` reads a string attribute."""
    w.ops[op] += 1
    if op in PYTHON_OPS:
        token = attr("token")
        detail = f"calls registered Python function {token!r}" if token else ""
        w.hit("python", op, context, offset, name, detail)
    elif op in FILE_OPS:
        detail = ""
        if op == "ImmutableConst":
            region = attr("memory_region_name")
            detail = f"maps file {region!r}" if region else ""
        elif op.startswith("Debug"):
            detail = "writes debug dumps"
        w.hit("file", op, context, offset, name, detail)
    elif op in TABLE_FILE_OPS:
        w.hit("table", op, context, offset, name, "")
    elif op in _DESCRIPTOR_ATTR_OPS:
        source = attr("descriptor_source")
        if source and source != "local://":
            w.hit("file", op, context, offset, name, f"reads proto descriptors from {source!r}")
    elif op in _STREAM_ATTR_OPS:
        stream = attr(_STREAM_ATTR_OPS[op])
        if stream and not stream.startswith(("log(", "stderr", "stdout")):
            w.hit("file", op, context, offset, name, f"writes to {stream!r}")
    elif op in CHECKPOINT_OPS:
        if in_saver_function is None:
            in_saver = _tf1_saver_scope().match(name) is not None or any(
                name.startswith(p) for p in w.saver_prefixes
            )
        else:
            in_saver = in_saver_function
        w.hit("saver" if in_saver else "checkpoint", op, context, offset, name, "")


def _string_attr(data: memoryview, attrs: list[pb.Field], wanted: str) -> str:
    """The ``s`` value of attribute ``wanted`` (or the first of its list), else ``""``."""
    for a in attrs:
        key = ""
        value: pb.Field | None = None
        for e in pb.iter_fields(data, a.value, a.end):
            if e.number == 1 and e.wire_type == pb.LEN:
                key = pb.text(data, e, 256)
            elif e.number == 2 and e.wire_type == pb.LEN:
                value = e
        if key != wanted or value is None:
            continue
        for v in pb.iter_fields(data, value.value, value.end):
            if v.number == 2 and v.wire_type == pb.LEN:  # s
                return pb.text(data, v, 4096)
            if v.number == 1 and v.wire_type == pb.LEN:  # list: first s
                for item in pb.iter_fields(data, v.value, v.end):
                    if item.number == 2 and item.wire_type == pb.LEN:
                        return pb.text(data, item, 4096)
    return ""


def _report(w: _Walk) -> None:
    for reported, ((kind, op, context), hit) in enumerate(w.hits.items()):
        if reported >= _REPORTED_CAP:
            w.ctx.report(
                rules.TF_FILE_OP,
                f"{len(w.hits) - reported} more op findings not listed",
                w.loc,
                severity=Severity.INFO,
            )
            break
        where = w.loc.at(hit.offset, detail=f"node {hit.node!r} in {context}")
        suffix = f": {hit.detail}" if hit.detail else ""
        text = f"{hit.count} {op} node(s) in {context}{suffix}"
        if kind == "python":
            w.ctx.report(rules.TF_PYTHON_OP, f"{text} (arbitrary Python)", where)
        elif kind == "file":
            w.ctx.report(rules.TF_FILE_OP, f"{text} (file-system access)", where)
        elif kind == "table":
            w.ctx.report(
                rules.TF_FILE_OP,
                f"{text}: reads a text file when the model loads (normally a vocabulary asset)",
                where,
                severity=Severity.LOW,
            )
        elif kind == "checkpoint":
            w.ctx.report(
                rules.TF_CHECKPOINT_OP,
                f"{text}, outside the standard saver: reads or writes checkpoint files when the "
                "model runs",
                where,
            )
        else:
            w.ctx.report(
                rules.TF_CHECKPOINT_OP,
                f"{text}, part of the standard saver (expected)",
                where,
                severity=Severity.INFO,
            )


# --- text format (saved_model.pbtxt, graph.pbtxt) -------------------------------------------------


#: First field of a text SavedModel, after comments: ``saved_model_schema_version: 1`` or
#: ``meta_graphs {`` (``:``, ``<`` and the list form ``: [`` allowed, as text_format allows
#: them).
_text_saved_model = lazy_pattern(
    rb"(?:\s|#[^\n]*+)*+(?:saved_model_schema_version\s*:|meta_graphs\s*(?::?\s*[{<]|:\s*\[))"
)


#: First field of a text GraphDef (``graph.pbtxt``), recognised with a ``.pbtxt`` name.
_text_graph_def = lazy_pattern(
    rb"(?:\s|#[^\n]*+)*+(?:node|library|versions)\s*(?::?\s*[{<]|:\s*\[)"
)


#: First field of a text MetaGraphDef (a ``.meta`` file TensorFlow reads as text when it is
#: not binary).
_text_meta_graph = lazy_pattern(
    rb"(?:\s|#[^\n]*+)*+(?:meta_info_def|graph_def|saver_def|collection_def|signature_def)"
    rb"\s*(?::?\s*[{<]|:\s*\[)"
)


_SAVER_FIELDS = ("filename_tensor_name", "save_tensor_name", "restore_op_name")


#: What each text form above can open with: white space, a ``#`` comment or a field name (all
#: lower case). Any other first byte matches none of them, without running the patterns.
_TEXT_OPENINGS = frozenset(b" \t\n\r\f\v#abcdefghijklmnopqrstuvwxyz")


def _looks_like_text(data: memoryview, base: str) -> bool:
    head = bytes(data[:4096])
    if not head or head[0] not in _TEXT_OPENINGS:
        return False
    if _text_saved_model().match(head):
        return True
    if base.endswith(".meta") and _text_meta_graph().match(head):
        return True
    return base.endswith(".pbtxt") and _text_graph_def().match(head) is not None


def _text_graph(w: _Walk) -> None:
    """Ops of a text-format SavedModel or GraphDef, read with the text-format reader
    (:mod:`._pbtext`): every ``node``/``node_def`` message, whatever its field order."""
    limits = w.ctx.config.limits
    if len(w.data) > limits.max_text_bytes:
        raise LimitExceeded(
            f"text protobuf of {len(w.data)} bytes exceeds max_text_bytes={limits.max_text_bytes}"
        )
    text = bytes(w.data).decode("utf-8", "replace")
    from mltrust.scan.formats._pbtext import walk  # (*)

    nodes: list[tuple[Message, tuple[Message, ...]]] = []

    def on_close(msg: Message, parents: tuple[Message, ...]) -> None:
        for key in _SAVER_FIELDS:
            for tensor in msg.scalars.get(key, ()):
                if "/" in tensor:
                    w.saver_prefixes.add(tensor.rsplit("/", 1)[0] + "/")
        for filename in msg.scalars.get("filename", ()):
            _check_asset_name(w, filename, msg.offset)
        if msg.name in ("node", "node_def"):
            nodes.append((msg, parents))
        elif msg.name == "function":
            w.functions += 1

    try:
        walk(text, on_close, max_depth=limits.max_nesting_depth, max_messages=w.max_entries)
    finally:
        # Nodes read before a parse error are classified too (their function's name may be
        # missing when the error cut the function short).
        for msg, parents in nodes:
            w.nodes += 1
            if w.nodes > w.max_entries:
                raise LimitExceeded(f"more than max_entries={w.max_entries} graph nodes")
            function = next((p for p in reversed(parents) if p.name == "function"), None)
            if function is None:
                context, saver = "graph", None
            else:
                sigs = list(function.child("signature"))
                name = sigs[-1].last("name") if sigs else ""
                context = f"function {name!r}"
                saver = _tf2_saver_function().search(name) is not None
            # A repeated singular field: Merge keeps the last value, Parse rejects the file;
            # every op written is classified (red-team finding: "op: Relu op: EagerPyFunc").
            for op in dict.fromkeys(msg.scalars.get("op", [""])):
                _classify(w, msg.last("name"), op, context, saver, msg.offset, _text_attr(msg))
        w.ctx.facts["tensorflow.nodes"] = w.nodes
        w.ctx.facts["tensorflow.functions"] = w.functions


def _text_attr(node: Message) -> Callable[[str], str]:
    def lookup(key: str) -> str:
        for attr in node.child("attr"):
            if attr.first("key") != key:
                continue
            for value in attr.child("value"):
                if value.scalars.get("s"):
                    return value.first("s")
                for lst in value.child("list"):
                    if lst.scalars.get("s"):
                        return lst.first("s")
        return ""

    return lookup


# --- keras_metadata.pb ----------------------------------------------------------------------------


def _keras_metadata(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    limits = ctx.config.limits
    objects = 0
    for f in pb.iter_fields(data):
        objects += 1
        if objects > limits.max_entries:
            raise LimitExceeded(f"more than max_entries={limits.max_entries} Keras objects")
        for g in pb.iter_fields(data, f.value, f.end):
            if g.number == 5 and g.wire_type == pb.LEN:
                _check_keras_json(data, g, ctx, loc)
    ctx.facts["tensorflow.keras_objects"] = objects


def _check_keras_json(data: memoryview, g: pb.Field, ctx: ScanContext, loc: Location) -> None:
    limits = ctx.config.limits
    if g.size > limits.max_text_bytes:
        raise LimitExceeded(f"Keras metadata of {g.size} bytes exceeds max_text_bytes")
    try:
        doc = json.loads(bytes(data[g.value : g.end]).decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        ctx.report(
            rules.TF_MALFORMED,
            f"Keras metadata is not valid JSON: {exc}",
            loc.at(g.offset),
        )
        return
    for path in _lambda_layers(doc, limits.max_nesting_depth)[:20]:
        ctx.report(
            rules.TF_KERAS_LAMBDA,
            f"Keras Lambda layer or serialized function at {path}",
            loc.at(g.offset),
        )


def _lambda_layers(doc: object, max_depth: int) -> list[str]:
    found: list[str] = []
    stack: list[tuple[object, str, int]] = [(doc, "$", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > max_depth:
            raise LimitExceeded(f"Keras metadata nests deeper than {max_depth} levels")
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                found.append(path)
            if node.get("function_type") == "lambda":
                found.append(f"{path}.function")
            for k, v in node.items():
                stack.append((v, f"{path}.{k}", depth + 1))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                stack.append((v, f"{path}[{i}]", depth + 1))
    return found


# --- variables/ checkpoint files ------------------------------------------------------------------

#: Footer magic of the SSTable that holds a TensorFlow checkpoint index (``variables.index``).
_SSTABLE_MAGIC = (0xDB4775248B80FB57).to_bytes(8, "little")
_SSTABLE_FOOTER = 48


_data_shard = lazy_pattern(r"\.data-\d{5}-of-\d{5}$")


class TfCheckpointScanner(FormatScanner):
    """TensorFlow checkpoint files of a SavedModel's ``variables/`` folder.

    The index (``variables.index``) is an SSTable recognised by its footer magic; data shards
    (``variables.data-00000-of-00001``) hold raw tensor bytes that TensorFlow reads by offset and
    never interprets as code, so they are recorded as raw data. Other scanners still run on the
    same bytes: a shard that is really a pickle or an archive is reported by them.
    """

    name = "tf-checkpoint"
    description = "TensorFlow checkpoint index (SSTable) and raw data shards"
    priority = 10
    can_execute_code = False

    def sniff(self, data: memoryview, name: str) -> bool:
        if len(data) >= _SSTABLE_FOOTER and data[len(data) - 8 :] == _SSTABLE_MAGIC:
            return True
        return ".data-" in name and _data_shard().search(name) is not None

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        if len(data) >= _SSTABLE_FOOTER and data[len(data) - 8 :] == _SSTABLE_MAGIC:
            ctx.facts["tensorflow.checkpoint"] = "index"
            # Footer: metaindex and index block handles (two varint pairs), then padding.
            footer = len(data) - _SSTABLE_FOOTER
            pos = footer
            for what in ("metaindex offset", "metaindex size", "index offset", "index size"):
                value, pos = pb.read_varint(data, pos, len(data) - 8)
                if value > len(data):
                    ctx.report(
                        rules.TF_MALFORMED,
                        f"checkpoint index footer: {what} {value} is past the end of the file",
                        loc.at(footer),
                    )
                    return
        else:
            ctx.facts["tensorflow.checkpoint"] = "data shard"
