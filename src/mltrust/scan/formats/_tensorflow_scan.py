"""The TensorFlow scanners' work (:mod:`mltrust.scan.formats.tensorflow`), imported only when
a TensorFlow file is scanned. See that module for what is reported and why."""

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
from mltrust.scan.formats.tensorflow import (
    _FINGERPRINT,
    _KERAS_METADATA,
    _SSTABLE_FOOTER,
    _SSTABLE_MAGIC,
    _TFHUB_MODULE,
    _looks_like_fingerprint,
    _looks_like_keras_metadata,
    _looks_like_meta_graph,
    _looks_like_saved_model,
    _looks_like_text,
    _looks_like_tfhub_module,
)

if TYPE_CHECKING:
    from mltrust.scan.formats._pbtext import Message

# (*) The protobuf text-format parser is imported where a scan first reads text: sniffing does
# not need it, and a scan of another format should not pay for loading it.

__all__ = [
    "CHECKPOINT_OPS",
    "FILE_OPS",
    "PYTHON_OPS",
    "TABLE_FILE_OPS",
    "scan_checkpoint",
    "scan_tensorflow",
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


#: Findings of one kind listed before the rest are counted (presentation only, so not in
#: :class:`~mltrust.config.Limits`).
_REPORTED_CAP = 50


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


def scan_tensorflow(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan a TensorFlow protobuf (the work of :meth:`TensorflowScanner.scan`)."""
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


_SAVER_FIELDS = ("filename_tensor_name", "save_tensor_name", "restore_op_name")


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


def scan_checkpoint(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan a checkpoint index or data shard (the work of :meth:`TfCheckpointScanner.scan`)."""
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
