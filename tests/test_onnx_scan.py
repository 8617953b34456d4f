"""ONNX scanner: real models are clean; external-data escapes, size lies and risky ops are found."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from _tensor_helpers import assert_clean, ld, rule_ids, scan_data, scan_path, vi
from mltrust.config import Limits, ScanConfig
from mltrust.errors import InputError
from mltrust.findings import Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan.formats.onnx import OnnxScanner

MALFORMED = "MLT-ONX-001"
ESCAPE = "MLT-ONX-002"
MISSING = "MLT-ONX-003"
SIZE = "MLT-ONX-004"
CUSTOM = "MLT-ONX-005"
PYOP = "MLT-ONX-006"


# --- raw builders ----------------------------------------------------------------------------


def tensor(
    name: str,
    dims: list[int],
    *,
    raw: bytes | None = None,
    external: dict[str, str] | None = None,
    dtype: int = 1,
) -> bytes:
    out = b"".join(vi(1, d) for d in dims) + vi(2, dtype) + ld(8, name)
    if raw is not None:
        out += ld(9, raw)
    if external is not None:
        for k, v in external.items():
            out += ld(13, ld(1, k) + ld(2, v))
        out += vi(14, 1)
    return out


def node(op: str, inputs: list[str], outputs: list[str], *, domain: str = "", attrs: bytes = b""):
    out = b"".join(ld(1, i) for i in inputs) + b"".join(ld(2, o) for o in outputs)
    out += ld(3, f"{op.lower()}_0") + ld(4, op)
    if attrs:
        out += attrs
    if domain:
        out += ld(7, domain)
    return out


def graph(nodes: list[bytes], initializers: Sequence[bytes] = ()) -> bytes:
    return b"".join(ld(1, n) for n in nodes) + ld(2, "g") + b"".join(ld(5, t) for t in initializers)


def model(g: bytes, *, functions: Sequence[bytes] = ()) -> bytes:
    out = vi(1, 9) + ld(2, "mltrust-test") + ld(7, g) + ld(8, ld(1, "") + vi(2, 17))
    return out + b"".join(ld(25, f) for f in functions)


def scan_at(path: Path, data: bytes) -> ScanContext:
    """Write ``data`` to ``path`` and scan it there (external data resolves beside it)."""
    path.write_bytes(data)
    return scan_path(path)


def external_model(location: str, *, offset: int = 0, length: int = 16) -> bytes:
    ext = {"location": location, "offset": str(offset), "length": str(length)}
    w = tensor("W", [2, 2], external=ext)
    return model(graph([node("MatMul", ["X", "W"], ["Y"])], [w]))


# --- benign real models ------------------------------------------------------------------------


def small_model() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    b = numpy_helper.from_array(np.zeros(4, np.float32), "B")
    then_g = helper.make_graph(
        [helper.make_node("Identity", ["Z"], ["then_out"])],
        "then",
        [],
        [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [1, 4])],
    )
    else_g = helper.make_graph(
        [helper.make_node("Neg", ["Z"], ["else_out"])],
        "else",
        [],
        [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [1, 4])],
    )
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
        helper.make_node("Add", ["Y", "B"], ["Y2"]),
        helper.make_node("Relu", ["Y2"], ["Z"]),
        helper.make_node("Constant", [], ["C"], value=helper.make_tensor("c", 7, [1], [1])),
        helper.make_node("Cast", ["C"], ["cond"], to=TensorProto.BOOL),
        helper.make_node("If", ["cond"], ["out"], then_branch=then_g, else_branch=else_g),
    ]
    g = helper.make_graph(
        nodes,
        "small",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
        [w, b],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    return m


def test_benign_helper_model_with_subgraphs(tmp_path: Path) -> None:
    path = tmp_path / "small.onnx"
    onnx.save_model(small_model(), str(path))
    ctx = scan_path(path)
    assert ctx.formats == ["onnx"]
    assert ctx.findings == []
    assert ctx.facts["onnx.nodes"] == 8


def test_benign_model_with_external_data_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save_model(
        small_model(),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="ext.onnx.data",
        size_threshold=0,
    )
    assert (tmp_path / "ext.onnx.data").exists()
    ctx = scan_path(path)
    assert ctx.findings == []


def test_benign_model_with_external_data_in_subfolder(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.bin").write_bytes(b"\0" * 16)
    ctx = scan_at(tmp_path / "m.onnx", external_model("weights/w.bin"))
    assert ctx.findings == []


def test_benign_skl2onnx_logistic_regression(tmp_path: Path) -> None:
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    clf = LogisticRegression().fit(x, y)
    onx = skl2onnx.convert_sklearn(clf, initial_types=[("x", FloatTensorType([None, 3]))])
    path = tmp_path / "lr.onnx"
    path.write_bytes(onx.SerializeToString())
    ctx = scan_path(path)
    assert ctx.formats == ["onnx"]
    assert_clean(ctx)


def test_model_local_function_domain_is_not_custom() -> None:
    fn = ld(1, "MyRelu") + ld(4, "x") + ld(5, "y") + ld(7, node("Relu", ["x"], ["y"]))
    fn += ld(9, ld(1, "") + vi(2, 17)) + ld(10, "local.fns")
    data = model(graph([node("MyRelu", ["X"], ["Y"], domain="local.fns")]), functions=[fn])
    ctx = scan_data(data, "m.onnx")
    assert ctx.findings == []


# --- attacks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "/etc/passwd",
        "../../../../etc/passwd",
        "weights/../../secret.key",
        "..\\..\\windows\\win.ini",
        "C:\\Windows\\win.ini",
        "file:///etc/shadow",
        "http://169.254.169.254/latest/meta-data",
        "w.bin\x00.png",
    ],
)
def test_external_data_path_traversal_cve_2022_25882(tmp_path: Path, location: str) -> None:
    ctx = scan_at(tmp_path / "m.onnx", external_model(location))
    hits = [f for f in ctx.findings if f.rule_id == ESCAPE]
    assert hits, location
    assert hits[0].severity == Severity.HIGH


def test_external_data_escape_inside_archive_member_is_still_found() -> None:
    # No folder on disk (an archive member or an in-memory buffer): the path alone decides.
    ctx = scan_data(external_model("/root/.ssh/id_rsa"), "<bytes>")
    assert ESCAPE in rule_ids(ctx)


def test_external_data_symlink_escaping_model_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s" * 64)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    os.symlink(outside / "secret", model_dir / "weights.bin")
    ctx = scan_at(model_dir / "m.onnx", external_model("weights.bin"))
    assert any(f.rule_id == ESCAPE and "symbolic link" in f.message for f in ctx.findings)


def test_external_data_special_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    ctx = scan_at(tmp_path / "m.onnx", external_model("pipe"))
    assert any(f.rule_id == ESCAPE and "not a regular file" in f.message for f in ctx.findings)


def test_external_data_file_missing(tmp_path: Path) -> None:
    ctx = scan_at(tmp_path / "m.onnx", external_model("nowhere.bin"))
    assert MISSING in rule_ids(ctx)


def test_external_data_file_too_small(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 16)
    ctx = scan_at(tmp_path / "m.onnx", external_model("w.bin", offset=1 << 30))
    assert any(f.rule_id == MISSING and "holds 16" in f.message for f in ctx.findings)


def test_external_data_length_does_not_match_shape(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"\0" * 4096)
    ctx = scan_at(tmp_path / "m.onnx", external_model("w.bin", length=4096))
    assert SIZE in rule_ids(ctx)


def test_external_data_escape_hidden_in_if_subgraph(tmp_path: Path) -> None:
    evil = tensor("W", [1], external={"location": "/etc/passwd"})
    inner = graph([node("Identity", ["W"], ["o"])], [evil])
    attr = ld(5, ld(1, "then_branch") + ld(6, inner) + vi(20, 5))
    data = model(graph([node("If", ["c"], ["o"], attrs=attr)]))
    ctx = scan_at(tmp_path / "m.onnx", data)
    assert ESCAPE in rule_ids(ctx)


def test_external_data_escape_in_constant_node_attribute(tmp_path: Path) -> None:
    evil = tensor("c", [1], external={"location": "../../../../proc/self/environ"})
    attr = ld(5, ld(1, "value") + ld(5, evil) + vi(20, 4))
    ctx = scan_at(tmp_path / "m.onnx", model(graph([node("Constant", [], ["c"], attrs=attr)])))
    assert ESCAPE in rule_ids(ctx)


def test_raw_data_size_does_not_match_shape() -> None:
    w = tensor("W", [1000, 1000], raw=b"\0" * 16)
    ctx = scan_data(model(graph([node("Relu", ["W"], ["Y"])], [w])), "m.onnx")
    assert any(f.rule_id == SIZE and "needs 4000000 bytes" in f.message for f in ctx.findings)


def test_tensor_claims_data_it_does_not_hold() -> None:
    w = tensor("W", [1 << 40])
    ctx = scan_data(model(graph([node("Relu", ["W"], ["Y"])], [w])), "m.onnx")
    assert SIZE in rule_ids(ctx)


def test_negative_dimension() -> None:
    w = tensor("W", [-5], raw=b"")
    ctx = scan_data(model(graph([node("Relu", ["W"], ["Y"])], [w])), "m.onnx")
    assert any("negative dimension" in f.message for f in ctx.findings)


def test_raw_data_length_past_end_of_file() -> None:
    w = tensor("W", [4], raw=b"\0" * 16)
    data = model(graph([node("Relu", ["W"], ["Y"])], [w]))
    ctx = scan_data(data[:-30], "m.onnx")
    assert MALFORMED in rule_ids(ctx)


def test_custom_operator_domain() -> None:
    data = model(graph([node("FastGelu", ["X"], ["Y"], domain="com.evil.ops")]))
    ctx = scan_data(data, "m.onnx")
    hits = [f for f in ctx.findings if f.rule_id == CUSTOM]
    assert hits
    assert hits[0].severity == Severity.MEDIUM
    assert "com.evil.ops" in hits[0].message


@pytest.mark.parametrize(
    ("op", "domain"), [("PythonOp", "com.microsoft"), ("PyOp", "ai.onnx.contrib")]
)
def test_python_operator_runs_code(op: str, domain: str) -> None:
    attr = ld(5, ld(1, "func_name") + ld(4, "os.system") + vi(20, 3))
    data = model(graph([node(op, ["X"], ["Y"], domain=domain, attrs=attr)]))
    ctx = scan_data(data, "m.onnx")
    assert any(f.rule_id == PYOP and f.severity == Severity.HIGH for f in ctx.findings)


def test_python_operator_inside_loop_body() -> None:
    body = graph([node("PythonOp", ["x"], ["y"], domain="com.microsoft")])
    attr = ld(5, ld(1, "body") + ld(6, body) + vi(20, 5))
    ctx = scan_data(model(graph([node("Loop", ["n", "c"], ["o"], attrs=attr)])), "m.onnx")
    assert PYOP in rule_ids(ctx)


def test_deep_subgraph_nesting_hits_limit() -> None:
    g = graph([node("Relu", ["x"], ["y"])])
    for _ in range(120):
        attr = ld(5, ld(1, "body") + ld(6, g) + vi(20, 5))
        g = graph([node("Loop", ["n"], ["o"], attrs=attr)])
    ctx = scan_data(model(g), "m.onnx", limits=Limits(max_nesting_depth=50))
    assert "MLT-GEN-003" in rule_ids(ctx)


def test_node_count_above_limit() -> None:
    nodes = [node("Relu", ["x"], ["y"])] * 20
    ctx = scan_data(model(graph(nodes)), "m.onnx", limits=Limits(max_entries=10))
    assert "MLT-GEN-003" in rule_ids(ctx)


def test_truncated_model_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "small.onnx"
    onnx.save_model(small_model(), str(path))
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 3):
        ctx = scan_data(data[:cut], "small.onnx")
        assert MALFORMED in rule_ids(ctx), cut


def test_sniff_rejects_other_protobufs_and_garbage() -> None:
    scanner = OnnxScanner()
    fingerprint = vi(1, 123) + vi(2, 456) + ld(6, vi(1, 1))
    assert not scanner.sniff(memoryview(fingerprint), "fingerprint.pb")
    assert not scanner.sniff(memoryview(b"\x08\x01\x12\x05hello" + b"\xff" * 4), "x.bin")
    assert scanner.sniff(memoryview(model(graph([]))), "noext")


def _scan_direct(data: bytes) -> None:
    scanner = OnnxScanner()
    view = memoryview(data)
    if scanner.sniff(view, "f.onnx"):
        try:
            scanner.scan(view, ScanContext(config=ScanConfig()), Location("<bytes>"))
        except InputError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_crash(body: bytes) -> None:
    started = time.perf_counter()
    _scan_direct(b"\x08\x09" + body)
    assert time.perf_counter() - started < 2


_SEED = small_model().SerializeToString()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_model_never_crashes(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for pos, value in mutations:
        data[pos] = value
    started = time.perf_counter()
    _scan_direct(bytes(data))
    assert time.perf_counter() - started < 2


def test_large_initializer_is_skipped_not_copied() -> None:
    big = tensor("W", [4, 1 << 20], raw=b"\0" * (16 << 20))
    data = model(graph([node("Relu", ["W"], ["Y"])], [big]))
    started = time.perf_counter()
    ctx = scan_data(data, "big.onnx")
    assert ctx.findings == []
    assert time.perf_counter() - started < 2
    assert struct.calcsize("<Q") == 8


def test_python_operator_followed_by_junk_is_still_reported() -> None:
    data = model(graph([node("PythonOp", ["x"], ["y"], domain="com.microsoft")]))
    data += b"\x3a\xff\xff\xff\x0f"  # a graph field claiming far more bytes than remain
    ctx = scan_data(data, "m.onnx")
    assert {PYOP, MALFORMED} <= rule_ids(ctx)


def test_external_data_escape_in_model_without_ir_version(tmp_path: Path) -> None:
    # onnx.load resolves external data before any version check: still an ONNX model to scan.
    w = tensor("W", [2, 2], external={"location": "/etc/passwd"})
    data = ld(7, graph([node("MatMul", ["X", "W"], ["Y"])], [w]))
    ctx = scan_at(tmp_path / "model.bin", data)
    assert ctx.formats == ["onnx"]
    assert ESCAPE in rule_ids(ctx)


def test_float_data_count_does_not_match_shape() -> None:
    floats = ld(4, struct.pack("<3f", 1, 2, 3))
    w = vi(1, 100) + vi(2, 1) + ld(8, "W") + floats
    ctx = scan_data(model(graph([node("Relu", ["W"], ["Y"])], [w])), "m.onnx")
    assert any(f.rule_id == SIZE and "holds 3" in f.message for f in ctx.findings)


def test_benign_typed_data_fields(tmp_path: Path) -> None:
    t = helper.make_tensor("W", TensorProto.FLOAT, [2, 3], [1, 2, 3, 4, 5, 6])
    d = helper.make_tensor("D", TensorProto.DOUBLE, [2], [1.0, 2.0])
    g = helper.make_graph(
        [helper.make_node("Relu", ["W"], ["Y"])],
        "g",
        [],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])],
        [t, d],
    )
    ctx = scan_data(helper.make_model(g).SerializeToString(), "m.onnx")
    assert ctx.findings == []
