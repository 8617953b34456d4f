"""Red-team round 7 (issue 10): structures the scanner left unread or half-read.

* HDF5 dense storage whose name index is a v2 B-tree deeper than one leaf (thousands of
  attributes or links), huge heap objects and nested fractal-heap indirect blocks: every
  attribute and link libhdf5 finds must be read, with h5py as the oracle.
"""

from __future__ import annotations

import dataclasses
import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.hdf5 import read_root_attributes
from test_keras_h5 import keras2_config, lambda_layer


def _rules(data: bytes, name: str, config: ScanConfig | None = None) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name, config).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


# -- HDF5: dense storage behind multi-level v2 B-trees ---------------------------------------


def _btree_depths(data: bytes) -> list[int]:
    """Depth of every v2 B-tree header in the file (the field after the record size)."""
    depths = []
    at = data.find(b"BTHD")
    while at >= 0:
        depths.append(int.from_bytes(data[at + 12 : at + 14], "little"))
        at = data.find(b"BTHD", at + 1)
    return depths


def _many_attributes(
    config: dict[str, Any], count: int, position: int, fixed: bool = False
) -> bytes:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        for i in range(count):
            if i == position:
                text = json.dumps(config).encode()
                f.attrs["model_config"] = np.bytes_(text) if fixed else text
            f.attrs[f"note_{i:05d}"] = f"value {i}"
        f.attrs["keras_version"] = b"2.15.0"
    return bio.getvalue()


def _h5py_attribute_names(data: bytes) -> set[str]:
    h5py = pytest.importorskip("h5py")
    with h5py.File(io.BytesIO(data), "r") as f:
        return set(f.attrs.keys())


@pytest.mark.parametrize("position", [0, 700, 1399])
def test_h5_lambda_deep_in_a_two_level_attribute_name_index(position: int, canary: Path) -> None:
    data = _many_attributes(keras2_config([lambda_layer(canary)]), 1400, position)
    assert max(_btree_depths(data)) >= 2  # libhdf5 built internal nodes over internal nodes
    attrs = read_root_attributes(memoryview(data))
    assert not attrs.dense
    assert set(attrs.names) == _h5py_attribute_names(data)  # every name h5py lists
    assert len(attrs.names) == len(set(attrs.names))
    result = scan_bytes(data, "model.h5")
    lam = [f for f in result.findings if f.rule_id == "MLT-KER-001"]
    assert lam and lam[0].severity == Severity.CRITICAL
    assert dict(result.facts).get("keras_config") is True  # read where Keras reads it
    assert "MLT-H5-001" not in {f.rule_id for f in result.findings}
    assert not canary.exists()


def test_h5_many_benign_attributes_are_read_and_clean() -> None:
    data = _many_attributes(keras2_config(), 1400, 3)
    attrs = read_root_attributes(memoryview(data))
    assert set(attrs.names) == _h5py_attribute_names(data)
    assert scan_bytes(data, "model.h5").findings == ()


def test_h5_huge_fixed_length_config_in_dense_storage_is_read_exactly(canary: Path) -> None:
    """A model_config over 64 KiB stored as a fixed-length string is a huge heap object, kept
    outside the managed blocks and found through the heap's own B-tree."""
    filler = [{"class_name": "Dense", "config": {"name": f"d{i}", "units": 8}} for i in range(2000)]
    data = _many_attributes(keras2_config([*filler, lambda_layer(canary)]), 30, 10, fixed=True)
    assert len(_btree_depths(data)) == 2  # the name index and the huge-object index
    attrs = read_root_attributes(memoryview(data))
    assert not attrs.dense and set(attrs.names) == _h5py_attribute_names(data)
    result = scan_bytes(data, "model.h5")
    assert {f.rule_id for f in result.findings} == {"MLT-KER-001"}
    assert dict(result.facts).get("keras_config") is True


def _many_links(external_at: int | None, count: int = 1400) -> tuple[bytes, int]:
    h5py = pytest.importorskip("h5py")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        layers = f.create_group("layers")
        for i in range(count):
            if i == external_at:
                layers[f"layer_{i:05d}x"] = h5py.ExternalLink("/etc/secret.h5", "/data")
            layers.create_group(f"layer_{i:05d}")
    data = bio.getvalue()
    with h5py.File(io.BytesIO(data), "r") as f:
        objects: list[str] = []
        f.visit(objects.append)
    return data, len(objects) + 1


@pytest.mark.parametrize("position", [0, 900, 1399])
def test_h5_external_link_deep_in_a_two_level_link_name_index(position: int) -> None:
    data, _ = _many_links(position)
    assert max(_btree_depths(data)) >= 1
    rules = _rules(data, "model.weights.h5")
    assert rules == {"MLT-H5-004": Severity.HIGH}, rules


def test_h5_thousands_of_links_walk_clean_and_every_object_is_visited() -> None:
    data, objects = _many_links(None)
    result = scan_bytes(data, "model.weights.h5")
    assert result.findings == ()
    assert dict(result.facts)["hdf5_objects"] == objects  # h5py's visit, plus the root


def _root_btree(data: bytes) -> tuple[int, int, int, int]:
    """(header offset, root node address, record count, record size) of the first B-tree."""
    at = data.find(b"BTHD")
    record_size = int.from_bytes(data[at + 10 : at + 12], "little")
    root = int.from_bytes(data[at + 16 : at + 24], "little")
    count = int.from_bytes(data[at + 24 : at + 26], "little")
    return at, root, count, record_size


def test_h5_attribute_name_index_that_loops_fails_closed(canary: Path) -> None:
    data = bytearray(_many_attributes(keras2_config([lambda_layer(canary)]), 1400, 700))
    _, root, count, record_size = _root_btree(bytes(data))
    assert data[root : root + 4] == b"BTIN"
    child = root + 6 + count * record_size  # first child pointer: now the root itself
    data[child : child + 8] = root.to_bytes(8, "little")
    assert read_root_attributes(memoryview(bytes(data))).dense
    rules = _rules(bytes(data), "model.h5")
    assert rules.get("MLT-H5-001") == Severity.MEDIUM, rules
    assert rules.get("MLT-KER-001") == Severity.CRITICAL  # the content search still finds it


def test_h5_attribute_name_index_deeper_than_the_limit_fails_closed() -> None:
    data = _many_attributes(keras2_config(), 1400, 3)
    tight = ScanConfig(limits=dataclasses.replace(Limits(), max_nesting_depth=1))
    assert read_root_attributes(memoryview(data), tight.limits).dense
    assert _rules(data, "model.h5", tight).get("MLT-H5-001") == Severity.MEDIUM
    forged = bytearray(data)
    at, *_ = _root_btree(data)
    forged[at + 12 : at + 14] = (0xFFFF).to_bytes(2, "little")  # a forged depth
    assert _rules(bytes(forged), "model.h5") == {"MLT-H5-001": Severity.MEDIUM}


# -- ONNX text syntax (.onnxtxt): parsed as onnx.parser parses it ------------------------------


def _onnx_parse(text: str) -> Any:
    onnx = pytest.importorskip("onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the onnxtxt format is experimental"
        return onnx.parser.parse_model(text)


def _oracle_view(model: Any) -> tuple[list[tuple[str, str, str]], list[tuple[str, list[Any]]]]:
    """Every node (subgraphs and functions included) and every tensor's external data of a
    ModelProto, as onnx built it."""
    nodes: list[tuple[str, str, str]] = []
    external: list[tuple[str, list[Any]]] = []

    def tensor(t: Any) -> None:
        if t.external_data or t.data_location == 1:
            external.append((t.name, [(e.key, e.value) for e in t.external_data]))

    def graph(g: Any) -> None:
        for t in g.initializer:
            tensor(t)
        node_list(g.node)

    def node_list(items: Any) -> None:
        for n in items:
            nodes.append((n.domain, n.op_type, n.name))
            for a in n.attribute:
                for sub in [a.g] if a.HasField("g") else list(a.graphs):
                    graph(sub)
                for t in [a.t] if a.HasField("t") else list(a.tensors):
                    tensor(t)

    graph(model.graph)
    for f in model.functions:
        node_list(f.node)
        for a in f.attribute_proto:
            if a.HasField("g"):
                graph(a.g)
    return sorted(nodes), sorted(external)


_ONNXTXT_CASES = {
    "custom_domain_without_header": "g (float[2] X) => (float[2] Y) { Y = my.custom.Evil(X) }",
    "domain_split_by_comments": "g (float[2] X) => (float[2] Y) {\n"
    "  Y = my # not a comment end\n . custom\t. Evil <a = 1> (X) }",
    "leading_dot_domain": 'g (float[2] X) => (float[2] Y) { ["n"] Y = .my.Evil(X) }',
    "python_op": '<ir_version: 8, opset_import: ["com.microsoft": 1]>\n'
    'g (float[2] X) => (float[2] Y) { Y = com.microsoft.PythonOp <f: string = "a}b{"> (X) }',
    "external_data_in_initializer": 'g (float[2] X) => (float[2] Y) <float[2] W = ["location": '
    '"..\\/..\\/etc/passwd", "offset": "0"]> { Y = Add(X, W) }',
    "external_data_in_input_default": 'g (float[2] X = ["location": "/etc/shadow"]) => '
    "(float[2] Y) { Y = Identity(X) }",
    "external_data_in_constant_attribute": "g () => (float[2] Y) { Y = Constant <value: tensor = "
    'float[2] = ["location": "x.bin", "location": "/abs"]> () }',
    "custom_op_in_subgraph": "g (bool C, float[2] X) => (float[2] Y) { Y = If (C) <then_branch: "
    "graph = t () => (float[2] Z) { Z = evil.Op(X) }, else_branch: graph = e () => "
    "(float[2] Z) { Z = Identity(X) }> }",
    "custom_op_in_function_attribute_default": '<opset_import: ["": 17, "local": 1]>\n'
    "g (float[2] X) => (float[2] Y) { Y = local.F(X) }\n"
    '<domain: "local", opset_import: ["": 17]>\nF <body: graph = b () => (float[2] Z) '
    "{ Z = evil.Op() }> (a) => (b) { b = Relu(a) }",
    "local_function_is_not_custom": '<opset_import: ["": 17, "local": 1]>\n'
    "g (float[2] X) => (float[2] Y) { Y = local.F(X) }\n"
    '<domain: "local", opset_import: ["": 17]>\nF (a) => (b) { b = Relu(a) }',
    "benign": '<ir_version: 8, opset_import: ["": 17], metadata_props: ["location": "/x"]>\n'
    "agraph (float[N, 128] X, float[128, 10] W, float[10] B) => (float[N, 10] C)\n"
    '<float[2] k = {1.0, -inf, nan, 2e5}, string[1] s = {"a\\"b"}>\n'
    "{\n  T = MatMul(X, W)\n  S = Add(T, B)\n  C = Softmax <axis = -1> (S)\n}",
}


@pytest.mark.parametrize("case", sorted(_ONNXTXT_CASES))
def test_onnxtxt_reads_what_onnx_parser_reads(case: str) -> None:
    from mltrust.scan.formats._onnxtxt import parse_model

    text = _ONNXTXT_CASES[case]
    nodes, external = _oracle_view(_onnx_parse(text))
    ours = parse_model(text, 200, 10_000)
    assert sorted(ours.nodes) == nodes
    assert sorted((name, entries) for name, entries in ours.external) == external


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("custom_domain_without_header", {"MLT-ONX-005": Severity.MEDIUM}),
        ("domain_split_by_comments", {"MLT-ONX-005": Severity.MEDIUM}),
        ("python_op", {"MLT-ONX-006": Severity.HIGH}),
        ("external_data_in_initializer", {"MLT-ONX-002": Severity.HIGH}),
        ("external_data_in_input_default", {"MLT-ONX-002": Severity.HIGH}),
        ("external_data_in_constant_attribute", {"MLT-ONX-002": Severity.HIGH}),
        ("custom_op_in_subgraph", {"MLT-ONX-005": Severity.MEDIUM}),
        ("custom_op_in_function_attribute_default", {"MLT-ONX-005": Severity.MEDIUM}),
        ("local_function_is_not_custom", {}),
        ("benign", {}),
    ],
)
def test_onnxtxt_model_is_checked_like_a_binary_one(
    case: str, expected: dict[str, Severity]
) -> None:
    rules = _rules(_ONNXTXT_CASES[case].encode(), "model.onnxtxt")
    rules.pop("MLT-CFG-006", None)  # the YAML reader's note on text that is not YAML (low)
    assert rules == expected, rules


def test_onnxtxt_saved_by_onnx_is_read(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    w = TensorProto(name="W", data_type=TensorProto.UINT8, dims=[4])
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    then = helper.make_graph(
        [helper.make_node("Op", [], ["z"], domain="my.ops")],
        "then",
        [],
        [helper.make_tensor_value_info("z", TensorProto.UINT8, [4])],
    )
    nodes = [
        helper.make_node("Add", ["x", "W"], ["y"]),
        helper.make_node("If", ["c"], ["z"], then_branch=then, else_branch=then),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, [4])],
        [helper.make_tensor_value_info("z", TensorProto.UINT8, [4])],
        [w],
    )
    path = tmp_path / "model.onnxtxt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onnx.save_model(helper.make_model(graph), str(path))
        loaded = onnx.load(str(path), load_external_data=False)  # read by its suffix
    assert loaded.graph.initializer[0].external_data[0].value == "../../etc/passwd"
    rules = _rules(path.read_bytes(), path.name)
    assert rules.get("MLT-ONX-002") == Severity.HIGH, rules
    assert rules.get("MLT-ONX-005") == Severity.MEDIUM, rules


@pytest.mark.parametrize(
    "text",
    [
        "g (float[2] X) => (float[2] Y) { Y = my.Evil(X) ",  # unterminated
        "g (float[2] X) => (float[2] Y) { Y = my.Evil(X) } trailing",
        'g (float[2] X) => (float[2] Y) { Y = Evil <s = "unterminated> (X) }',
        "ir_version: 8 graph { node { op_type: 'Evil' domain: 'x' } }",  # textproto content
        "g (float[2] X) => (float[2] Y) { Y = \u00e9vil(X) }",
    ],
)
def test_onnxtxt_that_cannot_be_parsed_fails_closed(text: str) -> None:
    rules = _rules(text.encode(), "model.onnxtxt")
    assert rules.get("MLT-ONX-007") == Severity.MEDIUM, rules


def test_onnxtxt_nested_beyond_the_limit_fails_closed() -> None:
    inner = "Z = Identity(X)"
    for _ in range(300):
        inner = f"Z = If (C) <then_branch: graph = t () => (float[2] Z) {{ {inner} }}>"
    text = f"g (bool C, float[2] X) => (float[2] Z) {{ {inner} }}"
    rules = _rules(text.encode(), "model.onnxtxt")
    assert rules.get("MLT-ONX-007") == Severity.MEDIUM, rules  # not analysed: fails closed


# -- TorchScript code/: the operators the module's source names ------------------------------


def _jit_bytes(module: Any) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def _torch_modules() -> Any:
    torch = pytest.importorskip("torch")

    class FileOps(torch.nn.Module):
        def __init__(self, out: str) -> None:
            super().__init__()
            self.out = out

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.save(x, self.out)  # writes any path when the model runs
            y = torch.from_file("/etc/hostname", False, 1, dtype=torch.uint8)  # reads any file
            return x + y.float().sum()

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.bn = torch.nn.BatchNorm2d(4)
            self.fc = torch.nn.Linear(4, 2)
            self.rnn = torch.nn.LSTM(2, 3, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.bn(self.conv(x))), 1)
            out, _ = self.rnn(self.fc(h.flatten(1)).unsqueeze(1))
            return torch.softmax(out.squeeze(1), dim=-1)

    return torch, FileOps, Net


def test_torchscript_that_writes_and_reads_files_is_high(tmp_path: Path) -> None:
    torch, file_ops, _ = _torch_modules()
    target = tmp_path / "written.pt"
    data = _jit_bytes(torch.jit.script(file_ops(str(target))))
    rules = _rules(data, "model.pt")
    assert rules.get("MLT-PT-005") == Severity.HIGH, rules
    # The oracle: torch.jit.load compiles the code and running it writes the chosen path.
    loaded = torch.jit.load(io.BytesIO(data))
    assert not target.exists()
    loaded(torch.zeros(1))
    assert target.exists()


def test_ordinary_scripted_and_traced_models_stay_quiet() -> None:
    torch, _, net = _torch_modules()
    x = torch.zeros(1, 3, 8, 8)
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and torch.ao deprecation notes
        dynamic = torch.ao.quantization.quantize_dynamic(mlp, {torch.nn.Linear}, dtype=torch.qint8)
        built = [
            torch.jit.script(net()),
            torch.jit.trace(net().eval(), x),
            torch.jit.script(mlp),
            torch.jit.script(dynamic),  # quantized packed parameters: torch.classes.quantized
        ]
    for module in built:
        result = scan_bytes(_jit_bytes(module), "model.pt")
        assert dict(result.facts).get("torchscript_code_files", 0) >= 1
        loud = [f for f in result.findings if f.severity >= Severity.MEDIUM]
        assert loud == [], [f.message for f in loud]


def _with_code(source: bytes) -> bytes:
    """A real scripted archive whose top module's source is replaced by ``source``."""
    torch = pytest.importorskip("torch")
    archive = _jit_bytes(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2))))
    out = io.BytesIO()
    replaced = 0
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            # the class folder may be mangled (container/___torch_mangle_3.py) when another
            # Sequential was scripted earlier in the process
            name = info.filename
            if "/code/__torch__/torch/nn/modules/container" in name and name.endswith(".py"):
                data, replaced = source, replaced + 1
            dst.writestr(info.filename, data)
    assert replaced == 1
    return out.getvalue()


@pytest.mark.parametrize(
    ("source", "rule", "severity"),
    [
        (b"def f(x: Tensor) -> Tensor:\n  ops.aten.save(x, 'p')\n  return x\n", "MLT-PT-005", "h"),
        (b"def f(x: Tensor) -> Tensor:\n  _0 = torch.save\n  return x\n", "MLT-PT-005", "h"),
        (b"def f(x: Tensor) -> Tensor:\n  return ops.my_ops.run(x)\n", "MLT-PT-006", "m"),
        (
            b"def f(x: Tensor) -> Tensor:\n  _0 = getattr(torch, 'save')\n  return x\n",
            "MLT-PT-006",
            "m",
        ),
        (
            b"def f(x: Tensor) -> Tensor:\n"
            b"  s = __torch__.torch.classes.dist_c10d.TCPStore('h', 1)\n  return x\n",
            "MLT-PT-006",
            "m",
        ),
        (b"def f(x: Tensor) -> Tensor:\n  return x +\n", "MLT-PT-006", "m"),
        (b"def f(x: Tensor) -> Tensor:\n  _0 = ops.aten\n  return x\n", "MLT-PT-006", "m"),
        (b"def f(x: Tensor) -> Tensor:\n  _0 = torch.classes.evil.C()\n", "MLT-PT-006", "m"),
    ],
)
def test_torchscript_source_edits_are_reported(source: bytes, rule: str, severity: str) -> None:
    rules = _rules(_with_code(source), "model.pt")
    expected = Severity.HIGH if severity == "h" else Severity.MEDIUM
    assert rules.get(rule) == expected, rules


def test_torchscript_source_edited_to_call_ops_aten_save_runs_and_is_high(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    target = tmp_path / "written.pt"
    archive = _jit_bytes(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2))))
    with zipfile.ZipFile(io.BytesIO(archive)) as src:
        name = next(n for n in src.namelist() if "/modules/container" in n and n.endswith(".py"))
        source = src.read(name).decode()
    anchor = '    _0 = getattr(self, "0")\n'
    assert anchor in source
    edited = source.replace(anchor, f'    ops.aten.save(input, "{target}")\n' + anchor)
    data = _with_code(edited.encode())
    assert _rules(data, "model.pt").get("MLT-PT-005") == Severity.HIGH
    torch.jit.load(io.BytesIO(data))(torch.zeros(2))  # the oracle: the edited code runs
    assert target.exists()


def _lite(module: Any, path: Path, keep_code: bool) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Lite Interpreter is deprecated"
        module._save_for_lite_interpreter(str(path))
    if keep_code:
        return path.read_bytes()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(path) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            if "/code/" not in info.filename:  # the lite interpreter runs bytecode.pkl only
                dst.writestr(info.filename, src.read(info))
    path.write_bytes(out.getvalue())
    return out.getvalue()


def test_mobile_bytecode_without_source_that_writes_files_is_high(tmp_path: Path) -> None:
    torch, file_ops, _ = _torch_modules()
    target = tmp_path / "written.pt"
    path = tmp_path / "model.ptl"
    data = _lite(torch.jit.script(file_ops(str(target))), path, keep_code=False)
    rules = _rules(data, "model.ptl")
    assert rules.get("MLT-PT-005") == Severity.HIGH, rules
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.jit.mobile import _load_for_lite_interpreter

        loaded = _load_for_lite_interpreter(str(path))  # the oracle: no code/ needed
    loaded(torch.zeros(1))
    assert target.exists()


def test_mobile_bytecode_of_an_ordinary_model_stays_quiet(tmp_path: Path) -> None:
    torch, _, net = _torch_modules()
    for keep in (True, False):
        data = _lite(torch.jit.script(net()), tmp_path / f"m{keep}.ptl", keep_code=keep)
        loud = [f for f in scan_bytes(data, "model.ptl").findings if f.severity >= Severity.MEDIUM]
        assert loud == [], [f.message for f in loud]


def test_h5_name_index_claiming_billions_of_records_fails_closed_fast() -> None:
    """A forged node size widens the record-count fields: a child may then claim 2**32 - 1
    records, which must be refused before anything is allocated for them."""
    data = bytearray(_many_attributes(keras2_config(), 1400, 3))
    at, *_ = _root_btree(bytes(data))
    data[at + 6 : at + 10] = (0xFFFFFFFF).to_bytes(4, "little")  # node size
    assert read_root_attributes(memoryview(bytes(data))).dense
    assert _rules(bytes(data), "model.h5") == {"MLT-H5-001": Severity.MEDIUM}


def test_onnxtxt_of_real_models_reads_what_onnx_reads_and_stays_quiet() -> None:
    """onnx ships real models with its backend tests: printed as text, each is parsed to the
    same nodes and external data by both parsers, and none gets a finding."""
    onnx = pytest.importorskip("onnx")
    data_dir = Path(onnx.__file__).parent / "backend" / "test" / "data"
    paths = sorted(data_dir.glob("*/*/model.onnx"))[:60]
    if not paths:
        pytest.skip("this onnx build ships no backend test models")
    from mltrust.scan.formats._onnxtxt import parse_model

    for path in paths:
        text = onnx.printer.to_text(onnx.load(str(path), load_external_data=False))
        nodes, external = _oracle_view(_onnx_parse(text))
        ours = parse_model(text, 200, 10_000_000)
        assert (sorted(ours.nodes), sorted(ours.external)) == (nodes, external), path
        rules = _rules(text.encode(), "model.onnxtxt")
        rules.pop("MLT-CFG-006", None)
        assert rules == {}, (path, rules)
