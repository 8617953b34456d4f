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

from typing import TYPE_CHECKING

from mltrust._lazy import lazy_pattern
from mltrust.scan import _protobuf as pb
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["TensorflowScanner", "TfCheckpointScanner"]

# Only the scanners and what their sniffs need live here; the scanning itself is in
# :mod:`mltrust.scan.formats._tensorflow_scan`, imported when a TensorFlow file is scanned.

_op_name = lazy_pattern(r"^[A-Za-z_>][A-Za-z0-9_>.]*$")


_META_GRAPH_FIELDS = {1, 2, 3, 4, 5, 6, 7}
_FINGERPRINT = "fingerprint.pb"
_KERAS_METADATA = "keras_metadata.pb"
#: TF Hub's (TF1) module marker: a ``ModuleDef`` holding only its format number.
_TFHUB_MODULE = "tfhub_module.pb"


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
        from mltrust.scan.formats._tensorflow_scan import scan_tensorflow

        scan_tensorflow(data, ctx, loc)


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
        from mltrust.scan.formats._tensorflow_scan import scan_checkpoint

        scan_checkpoint(data, ctx, loc)
