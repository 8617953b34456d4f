"""TensorFlow scanner: SavedModel/GraphDef protobufs built by hand (TensorFlow is not installed)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tensor_helpers import assert_clean, ld, rule_ids, scan_data, vi
from mltrust.config import Limits, ScanConfig
from mltrust.errors import InputError
from mltrust.findings import Location, Severity
from mltrust.scan import scan_paths
from mltrust.scan._context import ScanContext
from mltrust.scan.formats.tensorflow import TensorflowScanner

MALFORMED = "MLT-TF-001"
PYTHON = "MLT-TF-002"
FILE = "MLT-TF-003"
CHECKPOINT = "MLT-TF-004"
LAMBDA = "MLT-TF-005"


def attr(key: str, value: bytes) -> bytes:
    return ld(5, ld(1, key) + ld(2, value))


def s_attr(key: str, text: str) -> bytes:
    return attr(key, ld(2, text))


def node(name: str, op: str, inputs: tuple[str, ...] = (), attrs: bytes = b"") -> bytes:
    return ld(1, name) + ld(2, op) + b"".join(ld(3, i) for i in inputs) + attrs


def function(name: str, nodes: list[bytes]) -> bytes:
    signature = ld(1, name)
    return ld(1, signature) + b"".join(ld(3, n) for n in nodes)


def graph_def(nodes: list[bytes], functions: Sequence[bytes] = ()) -> bytes:
    out = b"".join(ld(1, n) for n in nodes)
    if functions:
        out += ld(2, b"".join(ld(1, f) for f in functions))
    return out + ld(4, vi(1, 1205))


def saved_model(gd: bytes, *, saver: bool = True) -> bytes:
    meta_info = ld(4, "serve") + ld(5, "2.15.0")
    meta = ld(1, meta_info) + ld(2, gd)
    if saver:
        meta += ld(3, ld(1, "save/Const:0") + ld(2, "save/Identity:0") + ld(3, "save/restore_all"))
    signature = ld(5, ld(1, "serving_default") + ld(2, ld(3, "tensorflow/serving/predict")))
    return vi(1, 1) + ld(2, meta + signature)


SERVING = [
    node("x", "Placeholder", attrs=attr("dtype", vi(6, 1))),
    node("w", "Const", attrs=attr("value", ld(8, vi(1, 1)))),
    node("b", "Const"),
    node("mm", "MatMul", ("x", "w")),
    node("add", "Add", ("mm", "b")),
    node("relu", "Relu", ("add",)),
    node("out", "Identity", ("relu",)),
]
TF1_SAVER = [
    node("save/Const", "Const"),
    node("save/SaveV2/tensor_names", "Const"),
    node("save/SaveV2", "SaveV2", ("save/Const", "save/SaveV2/tensor_names")),
    node("save/Identity", "Identity", ("save/Const",)),
    node("save/RestoreV2", "RestoreV2", ("save/Const",)),
    node("save/Assign", "Assign", ("w", "save/RestoreV2")),
    node("save/restore_all", "NoOp"),
]
TF2_SAVER = [
    function(
        "__inference__traced_save_123",
        [
            node("StringJoin", "StringJoin"),
            node("ShardedFilename", "ShardedFilename"),
            node("SaveV2", "SaveV2"),
            node("MergeV2Checkpoints", "MergeV2Checkpoints"),
            node("Identity", "Identity"),
        ],
    ),
    function(
        "__inference__traced_restore_456",
        [node("RestoreV2", "RestoreV2"), node("AssignVariableOp", "AssignVariableOp")],
    ),
]
SERVE_FN = function(
    "__inference_serve_77", [node("MatMul", "MatMul", ("x", "w")), node("Relu", "Relu")]
)


def scan_sm(data: bytes, name: str = "saved_model.pb") -> ScanContext:
    return scan_data(data, f"/models/m/{name}")


def test_benign_tf1_saved_model_with_standard_saver() -> None:
    ctx = scan_sm(saved_model(graph_def(SERVING + TF1_SAVER)))
    assert ctx.formats == ["tensorflow"]
    assert_clean(ctx)
    saver = [f for f in ctx.findings if f.rule_id == CHECKPOINT]
    assert saver
    assert all(f.severity == Severity.INFO for f in saver)
    assert ctx.facts["tensorflow.tags"] == "serve"


def test_benign_tf2_saved_model_with_traced_saver_functions() -> None:
    gd = graph_def([*SERVING, node("saver_filename", "Placeholder")], [SERVE_FN, *TF2_SAVER])
    ctx = scan_sm(saved_model(gd, saver=False))
    assert_clean(ctx)
    assert ctx.facts["tensorflow.functions"] == 3


def test_benign_frozen_graph_def() -> None:
    ctx = scan_data(graph_def(SERVING), "frozen_graph.pb")
    assert ctx.formats == ["tensorflow"]
    assert ctx.findings == []


def test_read_file_in_serving_graph_exfiltrates_host_files() -> None:
    evil = [
        node("path", "Const", attrs=attr("value", ld(8, ld(8, "/etc/passwd")))),
        node("leak", "ReadFile", ("path",)),
    ]
    ctx = scan_sm(saved_model(graph_def(SERVING + evil + TF1_SAVER)))
    hits = [f for f in ctx.findings if f.rule_id == FILE]
    assert hits
    assert hits[0].severity == Severity.HIGH
    assert "ReadFile" in hits[0].message


def test_write_file_in_signature_function_overwrites_host_files() -> None:
    fn = function("__inference_serve_9", [node("w", "WriteFile", ("p", "c"))])
    ctx = scan_sm(saved_model(graph_def(SERVING, [fn, *TF2_SAVER]), saver=False))
    assert any(f.rule_id == FILE and "__inference_serve_9" in f.message for f in ctx.findings)


def test_write_file_inside_saver_function_is_still_flagged() -> None:
    fn = function("__inference__traced_save_1", [node("w", "WriteFile", ("p", "c"))])
    ctx = scan_sm(saved_model(graph_def(SERVING, [fn]), saver=False))
    assert FILE in rule_ids(ctx)


@pytest.mark.parametrize("op", ["PyFunc", "PyFuncStateless", "EagerPyFunc"])
def test_pyfunc_in_function_library_runs_python(op: str) -> None:
    fn = function("__inference_call_5", [node("p", op, attrs=s_attr("token", "pyfunc_0"))])
    ctx = scan_sm(saved_model(graph_def(SERVING, [fn, *TF2_SAVER]), saver=False))
    hits = [f for f in ctx.findings if f.rule_id == PYTHON]
    assert hits
    assert hits[0].severity == Severity.CRITICAL
    assert "pyfunc_0" in hits[0].message


def test_pyfunc_in_frozen_graph() -> None:
    ctx = scan_data(graph_def([*SERVING, node("p", "PyFunc")]), "graph.pb")
    assert PYTHON in rule_ids(ctx)


def test_save_v2_in_serving_graph_writes_checkpoints_on_call() -> None:
    evil = [node("dump", "SaveV2", ("path", "names", "slices", "x"))]
    ctx = scan_sm(saved_model(graph_def(SERVING + evil + TF1_SAVER)))
    hits = [f for f in ctx.findings if f.rule_id == CHECKPOINT and f.severity >= Severity.MEDIUM]
    assert hits
    assert "outside the standard saver" in hits[0].message


def test_restore_v2_in_serving_function() -> None:
    fn = function("__inference_serve_3", [node("r", "RestoreV2")])
    ctx = scan_sm(saved_model(graph_def(SERVING, [fn]), saver=False))
    assert any(f.rule_id == CHECKPOINT and f.severity == Severity.MEDIUM for f in ctx.findings)


def test_print_v2_to_file_writes_host_files() -> None:
    p = node("print", "PrintV2", ("x",), s_attr("output_stream", "file:///etc/cron.d/job"))
    ctx = scan_sm(saved_model(graph_def([*SERVING, p])))
    assert any(f.rule_id == FILE and "/etc/cron.d/job" in f.message for f in ctx.findings)


def test_print_v2_to_stderr_is_fine() -> None:
    p = node("print", "PrintV2", ("x",), s_attr("output_stream", "stderr"))
    ctx = scan_sm(saved_model(graph_def([*SERVING, p])))
    assert_clean(ctx)


def test_immutable_const_maps_a_host_file() -> None:
    n = node("c", "ImmutableConst", attrs=s_attr("memory_region_name", "/etc/shadow"))
    ctx = scan_sm(saved_model(graph_def([*SERVING, n])))
    assert any(f.rule_id == FILE and "/etc/shadow" in f.message for f in ctx.findings)


def test_matching_files_and_dataset_readers() -> None:
    evil = [node("g", "MatchingFiles"), node("d", "TextLineDataset")]
    ctx = scan_sm(saved_model(graph_def(SERVING + evil)))
    messages = " ".join(f.message for f in ctx.findings if f.rule_id == FILE)
    assert "MatchingFiles" in messages
    assert "TextLineDataset" in messages


def test_fingerprint_pb_is_recognised_and_clean() -> None:
    data = vi(1, 2**60) + vi(2, 12345) + vi(3, 1) + vi(4, 2) + vi(5, 3) + ld(6, vi(1, 1))
    ctx = scan_data(data, "/m/fingerprint.pb")
    assert ctx.formats == ["tensorflow"]
    assert ctx.findings == []


def keras_metadata(layers: list[dict[str, object]]) -> bytes:
    out = b""
    for i, layer in enumerate(layers):
        obj = vi(2, i) + ld(3, f"root.layer-{i}") + ld(4, "_tf_keras_layer")
        obj += ld(5, json.dumps(layer)) + ld(6, vi(1, 1))
        out += ld(1, obj)
    return out


def test_keras_metadata_with_ordinary_layers_is_clean() -> None:
    layers = [{"class_name": "Dense", "config": {"units": 4, "activation": "relu"}}]
    ctx = scan_data(keras_metadata(layers), "/m/keras_metadata.pb")
    assert ctx.formats == ["tensorflow"]
    assert ctx.findings == []


def test_keras_metadata_lambda_layer_rebuilds_python_code() -> None:
    lam = {
        "class_name": "Lambda",
        "config": {"function": ["4wEAAAAAAAAAAQAAAAQAAAATAAAAcw==", None, None]},
    }
    model = {"class_name": "Sequential", "config": {"layers": [lam]}}
    ctx = scan_data(keras_metadata([model]), "/m/keras_metadata.pb")
    assert any(f.rule_id == LAMBDA and f.severity == Severity.HIGH for f in ctx.findings)


def test_truncated_saved_model_is_malformed() -> None:
    data = saved_model(graph_def(SERVING + TF1_SAVER))
    for cut in (20, len(data) // 2, len(data) - 2):
        ctx = scan_sm(data[:cut])
        assert MALFORMED in rule_ids(ctx), cut


def test_node_count_above_limit() -> None:
    ctx = scan_sm(saved_model(graph_def(SERVING * 3)))
    assert_clean(ctx)
    ctx = scan_data(
        saved_model(graph_def(SERVING * 3)), "saved_model.pb", limits=Limits(max_entries=5)
    )
    assert "MLT-GEN-003" in rule_ids(ctx)


def test_sniff_does_not_claim_onnx_or_random_bytes() -> None:
    scanner = TensorflowScanner()
    onnx_like = vi(1, 9) + ld(2, "pytorch") + ld(7, ld(1, ld(4, "Relu")))
    assert not scanner.sniff(memoryview(onnx_like), "model.onnx")
    assert not scanner.sniff(memoryview(b"\x0a\x03abc\xff\xff"), "x.pb")
    assert scanner.sniff(memoryview(saved_model(graph_def(SERVING))), "anything")


def _scan_direct(data: bytes, name: str) -> None:
    scanner = TensorflowScanner()
    view = memoryview(data)
    if scanner.sniff(view, name):
        try:
            scanner.scan(view, ScanContext(config=ScanConfig()), Location(name))
        except InputError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(["saved_model.pb", "keras_metadata.pb", "x.pb"]))
def test_fuzz_random_bytes_never_crash(body: bytes, name: str) -> None:
    started = time.perf_counter()
    _scan_direct(b"\x08\x01\x12" + body, name)
    _scan_direct(b"\x0a" + body, name)
    assert time.perf_counter() - started < 2


_SEED = saved_model(graph_def(SERVING + TF1_SAVER, TF2_SAVER))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_saved_model_never_crashes(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for pos, value in mutations:
        data[pos] = value
    started = time.perf_counter()
    _scan_direct(bytes(data), "saved_model.pb")
    assert time.perf_counter() - started < 2


def test_variables_folder_checkpoint_files_are_recognised() -> None:
    magic = (0xDB4775248B80FB57).to_bytes(8, "little")
    footer = (b"\x10\x05\x20\x07").ljust(40, b"\0") + magic
    index = b"\0" * 64 + footer
    ctx = scan_data(index, "/m/variables/variables.index")
    assert ctx.formats == ["tf-checkpoint"]
    assert ctx.findings == []
    shard = bytes(range(256)) * 4
    ctx = scan_data(shard, "/m/variables/variables.data-00000-of-00001")
    assert "tf-checkpoint" in ctx.formats
    assert_clean(ctx)


def test_checkpoint_index_footer_past_end() -> None:
    magic = (0xDB4775248B80FB57).to_bytes(8, "little")
    footer = (b"\xff\xff\xff\x7f\x05").ljust(40, b"\0") + magic
    ctx = scan_data(b"\0" * 16 + footer, "/m/variables/variables.index")
    assert MALFORMED in rule_ids(ctx)


def test_lambda_layer_in_saved_model_object_graph_metadata() -> None:
    lam = json.dumps({"class_name": "Lambda", "config": {"function": ["YWJj", None, None]}})
    user_object = ld(1, "_tf_keras_layer") + ld(3, lam)
    object_graph = ld(1, ld(4, user_object))
    meta = ld(1, ld(4, "serve")) + ld(2, graph_def(SERVING)) + ld(7, object_graph)
    ctx = scan_sm(vi(1, 1) + ld(2, meta))
    assert LAMBDA in rule_ids(ctx)


def test_pyfunc_followed_by_junk_is_still_reported() -> None:
    gd = graph_def([*SERVING, node("p", "PyFunc")])
    data = vi(1, 1) + ld(2, ld(2, gd) + b"\x1a\xff\xff\xff\x0f")
    ctx = scan_sm(data)
    assert {PYTHON, MALFORMED} <= rule_ids(ctx)


SAVED_MODEL_PBTXT = """saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" }
  graph_def {
    node { name: "x" op: "Placeholder" }
    node { name: "save/SaveV2" op: "SaveV2" input: "save/Const" }
    node { name: "out" op: "Identity" input: "x" }
    %s
    library {
      function {
        signature { name: "__inference__traced_save_12" }
        node_def { name: "SaveV2" op: "SaveV2" }
      }
      function {
        signature { name: "__inference_serve_3" }
        node_def { name: "mm" op: "MatMul" }
        %s
      }
    }
  }
  saver_def { filename_tensor_name: "save/Const:0" restore_op_name: "save/restore_all" }
}
"""


def test_benign_text_format_saved_model() -> None:
    ctx = scan_data((SAVED_MODEL_PBTXT % ("", "")).encode(), "/m/saved_model.pbtxt")
    assert "tensorflow" in ctx.formats
    assert_clean(ctx)
    assert ctx.facts["tensorflow.nodes"] == 5


def test_text_format_saved_model_with_pyfunc_and_read_file() -> None:
    graph_extra = 'node { name: "leak" op: "ReadFile" input: "path" }'
    fn_extra = (
        'node_def { name: "p" op: "EagerPyFunc" attr { key: "token" value { s: "pyfunc_7" } } }'
    )
    ctx = scan_data((SAVED_MODEL_PBTXT % (graph_extra, fn_extra)).encode(), "saved_model.pbtxt")
    assert {PYTHON, FILE} <= rule_ids(ctx)
    assert any("pyfunc_7" in f.message for f in ctx.findings)


@pytest.mark.parametrize(
    ("function_name", "is_saver"),
    [
        ("__inference__traced_save_1234", True),
        ("__inference__traced_restore_99", True),
        ("__inference_table_save_fn_17", True),
        ("__inference_serve_1", False),
        ("__inference_signature_wrapper_traced_save_x", False),
        ("my_traced_save_1", False),
    ],
)
def test_saver_function_names(function_name: str, is_saver: bool) -> None:
    fn = function(function_name, [node("s", "SaveV2")])
    ctx = scan_sm(saved_model(graph_def(SERVING, [fn]), saver=False))
    medium = [f for f in ctx.findings if f.rule_id == CHECKPOINT and f.severity >= Severity.MEDIUM]
    assert bool(medium) is not is_saver


def with_assets(filenames: list[str], nodes: list[bytes]) -> bytes:
    meta = ld(1, ld(4, "serve")) + ld(2, graph_def(nodes))
    for name in filenames:
        meta += ld(6, ld(1, ld(1, "asset_path:0")) + ld(2, name))
    return vi(1, 1) + ld(2, meta)


def test_vocabulary_table_from_asset_is_benign() -> None:
    table = node("init", "InitializeTableFromTextFileV2", ("table", "asset_path"))
    ctx = scan_sm(with_assets(["vocab.txt"], [*SERVING, table]))
    assert_clean(ctx)
    assert any(f.rule_id == FILE and f.severity == Severity.LOW for f in ctx.findings)


@pytest.mark.parametrize("filename", ["/etc/passwd", "../../../root/.ssh/id_rsa", "file:///x"])
def test_asset_path_traversal_reads_host_file_into_table(filename: str) -> None:
    table = node("init", "InitializeTableFromTextFileV2", ("table", "asset_path"))
    ctx = scan_sm(with_assets([filename], [*SERVING, table]))
    hits = [f for f in ctx.findings if f.rule_id == "MLT-TF-006"]
    assert hits
    assert hits[0].severity == Severity.HIGH


def test_text_format_asset_path_traversal() -> None:
    asset = 'asset_file_def { tensor_info { name: "a:0" } filename: "../../etc/shadow" }'
    text = SAVED_MODEL_PBTXT.replace("  saver_def", f"  {asset}\n  saver_def") % ("", "")
    ctx = scan_data(text.encode(), "saved_model.pbtxt")
    assert "MLT-TF-006" in rule_ids(ctx)
    ctx = scan_data(text.replace("../../etc/shadow", "vocab.txt").encode(), "saved_model.pbtxt")
    assert_clean(ctx)


def write_saved_model_folder(root: Path, extra_serving: Sequence[bytes] = ()) -> None:
    (root / "variables").mkdir(parents=True)
    (root / "assets").mkdir()
    gd = graph_def([*SERVING, *extra_serving, node("saver_filename", "Placeholder")], TF2_SAVER)
    (root / "saved_model.pb").write_bytes(saved_model(gd, saver=False))
    (root / "fingerprint.pb").write_bytes(vi(1, 7) + vi(2, 8) + ld(6, vi(1, 1)))
    layers = [{"class_name": "Dense", "config": {"units": 4}}]
    (root / "keras_metadata.pb").write_bytes(keras_metadata(layers))
    magic = (0xDB4775248B80FB57).to_bytes(8, "little")
    (root / "variables" / "variables.index").write_bytes(
        b"\0" * 64 + (b"\x10\x05\x20\x07").ljust(40, b"\0") + magic
    )
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(b"\x00\x00\x80?" * 64)


def test_benign_saved_model_folder_passes(tmp_path: Path) -> None:
    write_saved_model_folder(tmp_path / "model")
    report = scan_paths([tmp_path / "model"])
    assert not report.failed, [
        (r.path, [(f.rule_id, f.severity.value) for f in r.findings]) for r in report.files
    ]
    assert len(report.files) == 5
    assert all(r.formats for r in report.files)


def test_saved_model_folder_with_read_file_fails(tmp_path: Path) -> None:
    write_saved_model_folder(tmp_path / "model", [node("leak", "ReadFile", ("path",))])
    report = scan_paths([tmp_path / "model"])
    assert report.failed
