"""TorchScript/mobile modules in flatbuffer form (``PTMF`` at byte 4) are analysed like archives.

``torch.jit.load`` compiles the module's ``jit_sources`` and ``_load_for_lite_interpreter``
runs its functions' operator tables; both build the native classes its object types name.
Every module here is written by the real torch (``save_jit_module_to_flatbuffer``,
``_save_for_lite_interpreter(..., _use_flatbuffer=True)``) and loaded by the real loaders,
which are the oracle: what they run is what the scanner must report, at the severity the zip
form of the same module gets. Malformed buffers are built from those by editing bytes.
"""

from __future__ import annotations

import io
import random
import struct
import warnings
from pathlib import Path
from typing import Any

import pytest

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats._ptflat import read_flat_module

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def _rules(data: bytes, name: str = "model.ff", config: ScanConfig | None = None) -> dict:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name, config).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


def _loud(rules: dict[str, Severity]) -> list[str]:
    return sorted(r for r, s in rules.items() if s >= Severity.MEDIUM)


def _flat(module: Any, tmp_path: Path, extra: dict[str, bytes] | None = None) -> bytes:
    from torch.jit._serialization import save_jit_module_to_flatbuffer

    path = tmp_path / "module.ff"
    save_jit_module_to_flatbuffer(module, str(path), _extra_files=extra)
    data = path.read_bytes()
    assert data[4:8] == b"PTMF"
    return data


def _zip(module: Any) -> bytes:
    buf = io.BytesIO()
    torch.jit.save(module, buf)
    return buf.getvalue()


def _write(tmp_path: Path, data: bytes, name: str = "edited.ff") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _lite(path: str) -> Any:
    from torch.jit.mobile import _load_for_lite_interpreter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _load_for_lite_interpreter(path)


# -- modules -----------------------------------------------------------------------------------


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.lin(x)) + 1


class _Quantized(torch.nn.Module):
    """Quantized packed weights: torch's own native class (quantized.LinearPackedParamsBase)."""

    def __init__(self) -> None:
        super().__init__()
        self.q = torch.ao.nn.quantized.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q(torch.quantize_per_tensor(x, 0.1, 0, torch.quint8)).dequantize()


class _Saver(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.path)  # mltrust: ignore[MLT-CODE-001] the attack under test
        return x


def _saver(target: Path) -> Any:
    return torch.jit.script(_Saver(str(target)))


class _Reader(torch.nn.Module):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.from_file(self.path, size=4, dtype=torch.uint8).float().sum()


def _reader(source: Path) -> Any:
    return torch.jit.script(_Reader(str(source)))


class _NativeClass(torch.nn.Module):
    """Builds a native class outside torch's model namespaces (dist_rpc.WorkerInfo)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.classes.dist_rpc.WorkerInfo("a", 1)  # noqa: F841
        return x + 1


@pytest.fixture(scope="module")
def custom_op() -> Any:
    """A scripted module calling ``mltrust_flat_evil::double``, an op of a custom library."""
    lib = torch.library.Library("mltrust_flat_evil", "DEF")
    lib.define("double(Tensor x) -> Tensor")
    lib.impl("double", lambda x: x * 2, "CPU")

    class CustomOp(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.ops.mltrust_flat_evil.double(x)

    yield torch.jit.script(CustomOp())
    del lib


# -- ordinary modules stay quiet ---------------------------------------------------------------


def test_ordinary_flatbuffer_module_is_quiet(tmp_path: Path) -> None:
    module = torch.jit.script(_Linear())
    data = _flat(module, tmp_path)
    assert not _loud(_rules(data)), _rules(data)
    read = read_flat_module(memoryview(data), 10_000, 100)
    assert ("aten::linear", "") in read.operators and ("aten::add", "Scalar") in read.operators
    # torch mangles the name when the same class was scripted earlier in this process
    # ("...linear.___torch_mangle_27"), as it is in a full test run
    names = {name for name, _ in read.sources}
    assert any(n.startswith("__torch__.torch.nn.modules.linear") for n in names), names
    torch.jit.load(_write(tmp_path, data))(torch.ones(3))  # the oracle loads and runs it


def test_ordinary_lite_flatbuffer_module_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "lite.ff"
    torch.jit.script(_Linear())._save_for_lite_interpreter(str(path), _use_flatbuffer=True)
    data = path.read_bytes()
    assert data[4:8] == b"PTMF"
    assert not _loud(_rules(data)), _rules(data)
    _lite(str(path))(torch.ones(3))


def test_quantized_flatbuffer_module_with_torch_native_class_is_quiet(tmp_path: Path) -> None:
    data = _flat(torch.jit.script(_Quantized()), tmp_path)
    read = read_flat_module(memoryview(data), 10_000, 100)
    assert read.custom_classes == ["__torch__.torch.classes.quantized.LinearPackedParamsBase"]
    assert not _loud(_rules(data)), _rules(data)
    torch.jit.load(_write(tmp_path, data))(torch.ones(1, 3))


def test_flatbuffer_extra_files_are_scanned_as_nested_content(tmp_path: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            import os

            return (os.system, ("true",))  # mltrust: ignore[MLT-CODE-001] the payload under test

    extra = {"meta.json": b'{"name": "linear"}', "evil.pkl": pickle.dumps(Evil())}
    data = _flat(torch.jit.script(_Linear()), tmp_path, extra)
    rules = _rules(data)
    assert rules.get("MLT-PKL-001", Severity.INFO) >= Severity.HIGH, rules
    quiet = _flat(torch.jit.script(_Linear()), tmp_path, {"meta.json": b'{"name": "linear"}'})
    assert not _loud(_rules(quiet)), _rules(quiet)


# -- attacks: the same severity as the zip form ------------------------------------------------


def test_flatbuffer_module_saving_a_file_is_high_like_its_zip_form(tmp_path: Path) -> None:
    target = tmp_path / "written.pt"
    module = _saver(target)
    data = _flat(module, tmp_path)
    assert _rules(_zip(module), "model.pt").get("MLT-PT-005") == Severity.HIGH
    for name in ("model.ff", "model.pt", "weights.bin"):  # the loaders ignore the name
        assert _rules(data, name).get("MLT-PT-005") == Severity.HIGH, name
    torch.jit.load(_write(tmp_path, data))(torch.ones(2))  # the oracle: the file is written
    assert target.exists()
    target.unlink()
    _lite(_write(tmp_path, data))(torch.ones(2))
    assert target.exists()


def test_flatbuffer_module_reading_a_file_is_high_like_its_zip_form(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"\x01\x02\x03\x04")
    module = _reader(secret)
    data = _flat(module, tmp_path)
    assert _rules(_zip(module), "model.pt").get("MLT-PT-005") == Severity.HIGH
    assert _rules(data).get("MLT-PT-005") == Severity.HIGH
    out = torch.jit.load(_write(tmp_path, data))(torch.zeros(1))  # reads the file
    assert float(out[0]) == 10.0


def test_flatbuffer_module_calling_a_custom_op_library_is_medium_like_its_zip_form(
    tmp_path: Path, custom_op: Any
) -> None:
    data = _flat(custom_op, tmp_path)
    assert _rules(_zip(custom_op), "model.pt").get("MLT-PT-006") == Severity.MEDIUM
    assert _rules(data).get("MLT-PT-006") == Severity.MEDIUM
    assert float(_lite(_write(tmp_path, data))(torch.ones(1))[0]) == 2.0  # the op ran


def test_flatbuffer_module_building_a_foreign_native_class_is_medium_like_its_zip_form(
    tmp_path: Path,
) -> None:
    module = torch.jit.script(_NativeClass())
    data = _flat(module, tmp_path)
    assert _rules(_zip(module), "model.pt").get("MLT-PT-006") == Severity.MEDIUM
    assert _rules(data).get("MLT-PT-006") == Severity.MEDIUM
    torch.jit.load(_write(tmp_path, data))(torch.ones(1))


def test_flatbuffer_operator_table_is_judged_when_the_source_is_laundered(
    tmp_path: Path,
) -> None:
    # The lite interpreter never reads jit_sources: an edited source hides nothing.
    target = tmp_path / "written.pt"
    data = _flat(_saver(target), tmp_path)
    assert data.count(b"torch.save(") == 1
    laundered = data.replace(b"torch.save(", b"torch.relu(")
    rules = _rules(laundered)
    assert rules.get("MLT-PT-005") == Severity.HIGH, rules
    _lite(_write(tmp_path, laundered))(torch.ones(2))  # the oracle: the table still saves
    assert target.exists()


def test_flatbuffer_native_class_is_judged_when_the_source_is_laundered(tmp_path: Path) -> None:
    data = _flat(torch.jit.script(_NativeClass()), tmp_path)
    call = (
        b"__torch__.torch.classes.dist_rpc.WorkerInfo.__new__("
        b"__torch__.torch.classes.dist_rpc.WorkerInfo)"
    )
    assert data.count(call) == 1
    laundered = data.replace(call, b"None" + b" " * (len(call) - 4))
    rules = _rules(laundered)
    assert rules.get("MLT-PT-006") == Severity.MEDIUM, rules
    _lite(_write(tmp_path, laundered))(torch.ones(1))  # the oracle: it still loads and runs


def test_flatbuffer_native_class_name_that_is_not_an_identifier_is_medium(
    tmp_path: Path,
) -> None:
    # The loader looks any type string starting with __torch__.torch.classes up as a native
    # class, whatever follows; a name the namespace pattern cannot read is not proven safe.
    data = _flat(torch.jit.script(_Quantized()), tmp_path)
    edited = data.replace(b"torch.classes.quantized.", b"torch.classes.9uantized.")
    assert edited != data
    assert _rules(edited).get("MLT-PT-006") == Severity.MEDIUM
    # the oracle: torch looks the name up as a native class and finds none (an internal
    # assert in this build); a registered one would have been built
    with pytest.raises(RuntimeError):
        torch.jit.load(_write(tmp_path, edited))


def test_flatbuffer_source_reaching_python_internals_is_high(tmp_path: Path) -> None:
    # torch.jit.load compiles jit_sources as it compiles code/**.py: the same check applies.
    data = _flat(torch.jit.script(_Linear()), tmp_path)
    anchor = b"    lin = self.lin\n"
    edited = data.replace(anchor, b"    os.system()\n".ljust(len(anchor) - 1) + b"\n")
    assert edited != data
    assert _rules(edited).get("MLT-PT-001") == Severity.HIGH


# -- malformed and oversized buffers fail closed -----------------------------------------------


def _benign(tmp_path: Path) -> bytes:
    return _flat(torch.jit.script(_Linear()), tmp_path)


def test_truncated_flatbuffer_is_medium(tmp_path: Path) -> None:
    data = _benign(tmp_path)
    for cut in (8, 64, len(data) // 2, len(data) - 16):
        rules = _rules(data[:cut])
        assert rules.get("MLT-PT-006") == Severity.MEDIUM, (cut, rules)


def test_flatbuffer_root_offset_out_of_range_is_medium(tmp_path: Path) -> None:
    data = bytearray(_benign(tmp_path))
    struct.pack_into("<I", data, 0, len(data) + 100)
    assert _rules(bytes(data)).get("MLT-PT-006") == Severity.MEDIUM


def _vector_count_position(data: bytes, slot: int) -> int:
    """Where the length of the root table's vector at vtable ``slot`` is stored."""
    root = struct.unpack_from("<I", data, 0)[0]
    vtable = root - struct.unpack_from("<i", data, root)[0]
    field = root + struct.unpack_from("<H", data, vtable + slot)[0]
    return field + struct.unpack_from("<I", data, field)[0]


def test_flatbuffer_oversized_vector_is_medium(tmp_path: Path) -> None:
    data = bytearray(_benign(tmp_path))
    struct.pack_into("<I", data, _vector_count_position(bytes(data), 12), 0xFFFFFFF0)  # ivalues
    assert _rules(bytes(data)).get("MLT-PT-006") == Severity.MEDIUM


def test_flatbuffer_unknown_value_kind_is_medium(tmp_path: Path) -> None:
    data = _benign(tmp_path)
    read = read_flat_module(memoryview(data), 10_000, 100)
    assert not read.unknown
    # The val_type byte of the first IValue that has one: the loader indexes its parser
    # table with it.
    pos = _vector_count_position(data, 12)
    for i in range(struct.unpack_from("<I", data, pos)[0]):
        entry = pos + 4 + 4 * i
        table = entry + struct.unpack_from("<I", data, entry)[0]
        vtable = table - struct.unpack_from("<i", data, table)[0]
        if struct.unpack_from("<H", data, vtable)[0] > 4:
            kind_at = table + struct.unpack_from("<H", data, vtable + 4)[0]
            break
    else:
        pytest.fail("no IValue with a kind")
    edited = bytearray(data)
    edited[kind_at] = 99
    assert read_flat_module(memoryview(bytes(edited)), 10_000, 100).unknown
    assert _rules(bytes(edited)).get("MLT-PT-006") == Severity.MEDIUM


def test_flatbuffer_over_max_entries_is_a_limit_finding(tmp_path: Path) -> None:
    data = _benign(tmp_path)
    assert "MLT-GEN-003" not in _rules(data)
    low = ScanConfig(limits=Limits(max_entries=5))
    assert _rules(data, config=low).get("MLT-GEN-003") == Severity.MEDIUM


def test_flatbuffer_source_over_max_text_bytes_is_a_limit_finding(tmp_path: Path) -> None:
    data = _benign(tmp_path)
    low = ScanConfig(limits=Limits(max_text_bytes=64))
    assert _rules(data, config=low).get("MLT-GEN-003") == Severity.MEDIUM


def test_mutated_flatbuffers_never_crash_the_scanner(tmp_path: Path) -> None:
    data = _benign(tmp_path)
    rng = random.Random(20261204)
    for _ in range(300):
        edited = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            edited[rng.randrange(8, len(edited))] = rng.randrange(256)
        if rng.random() < 0.2:
            edited = edited[: rng.randrange(8, len(edited))]
        scan_bytes(bytes(edited), "model.ff")  # returns: no exception, no hang


# -- crafted buffers: shared tables, overlapping files, file counts ----------------------------


class _Flat:
    """A minimal flatbuffer writer, front to back (every offset points forward, as uoffsets
    must): tables are written with their vtable just before them, fields 4 bytes each."""

    def __init__(self) -> None:
        self.buf = bytearray(b"\0\0\0\0PTMF")
        self.fixes: list[tuple[int, str]] = []
        self.labels: dict[str, int] = {}

    def _align(self) -> None:
        self.buf += b"\0" * (-len(self.buf) % 4)

    def table(self, label: str, fields: list[tuple[str, object] | None]) -> None:
        self._align()
        vtable = len(self.buf)
        present = [f for f in fields if f is not None]
        self.buf += struct.pack("<HH", 4 + 2 * len(fields), 4 + 4 * len(present))
        at = 4
        for f in fields:
            self.buf += struct.pack("<H", at if f is not None else 0)
            at += 4 if f is not None else 0
        self._align()
        self.labels[label] = len(self.buf)
        self.buf += struct.pack("<i", len(self.buf) - vtable)
        for f in present:
            kind, value = f
            if kind == "off":
                self.fixes.append((len(self.buf), str(value)))
                self.buf += b"\0" * 4
            else:
                self.buf += struct.pack("<I", int(value))  # type: ignore[call-overload]

    def vector(self, label: str, targets: list[str]) -> None:
        self._align()
        self.labels[label] = len(self.buf)
        self.buf += struct.pack("<I", len(targets))
        for target in targets:
            self.fixes.append((len(self.buf), target))
            self.buf += b"\0" * 4

    def string(self, label: str, text: bytes) -> None:
        self._align()
        self.labels[label] = len(self.buf)
        self.buf += struct.pack("<I", len(text)) + text + b"\0"

    def finish(self, root: str) -> bytes:
        struct.pack_into("<I", self.buf, 0, self.labels[root])
        for pos, label in self.fixes:
            assert self.labels[label] > pos, label
            struct.pack_into("<I", self.buf, pos, self.labels[label] - pos)
        return bytes(self.buf)


def _module(fb: _Flat, **slots: str) -> None:
    """The root Module table with the given vector fields (by name) pointing to labels."""
    order = ["bytecode_version", "extra_files", "methods", "state_obj", "ivalues"]
    order += ["storage_data_size", "storage_data", "object_types", "jit_sources"]
    fb.table("root", [("off", slots[name]) if name in slots else None for name in order])


def test_crafted_flatbuffer_function_shared_by_many_values_is_read_once() -> None:
    fb = _Flat()
    _module(fb, ivalues="ivalues")
    fb.vector("ivalues", ["iv"] * 100_000)
    fb.table("iv", [("u8", 16), ("off", "fn")])  # IValueUnion::Function
    fb.table("fn", [("off", "qn"), None, ("off", "ops")])
    fb.string("qn", b"__torch__.M.forward")
    fb.vector("ops", ["op"])
    fb.table("op", [("off", "opname"), ("off", "overload")])
    fb.string("opname", b"aten::save")
    fb.string("overload", b"")
    data = fb.finish("root")
    read = read_flat_module(memoryview(data), 10_000_000, 100)
    assert read.operators == [("aten::save", "")] and read.functions == 1
    assert read.malformed is None and read.exhausted is None
    assert _rules(data).get("MLT-PT-005") == Severity.HIGH
    low = ScanConfig(limits=Limits(max_entries=50_000))
    assert _rules(data, config=low).get("MLT-GEN-003") == Severity.MEDIUM


def test_crafted_flatbuffer_files_sharing_bytes_are_medium() -> None:
    fb = _Flat()
    _module(fb, extra_files="files")
    fb.vector("files", ["a", "b"])
    fb.table("a", [("off", "name_a"), ("off", "long")])
    fb.table("b", [("off", "name_b"), ("off", "inner")])
    fb.string("name_a", b"a.txt")
    fb.string("name_b", b"b.txt")
    fb.string("long", b"x" * 8 + struct.pack("<I", 4) + b"yyyy" + b"x" * 8)
    fb.labels["inner"] = fb.labels["long"] + 4 + 8  # a string inside another: never written
    data = fb.finish("root")
    read = read_flat_module(memoryview(data), 10_000, 100)
    assert [name for name, _ in read.extra_files] == ["a.txt"]
    assert read.unknown
    assert _rules(data).get("MLT-PT-006") == Severity.MEDIUM


def test_crafted_flatbuffer_with_more_files_than_max_archive_members_is_a_limit() -> None:
    fb = _Flat()
    _module(fb, extra_files="files")
    fb.vector("files", [f"f{i}" for i in range(20)])
    for i in range(20):
        fb.table(f"f{i}", [("off", f"n{i}"), ("off", f"c{i}")])
    for i in range(20):
        fb.string(f"n{i}", f"file{i}.txt".encode())
        fb.string(f"c{i}", f"content {i}".encode())
    data = fb.finish("root")
    assert "MLT-GEN-003" not in _rules(data)
    low = ScanConfig(limits=Limits(max_archive_members=5))
    assert _rules(data, config=low).get("MLT-GEN-003") == Severity.MEDIUM


def test_flatbuffer_operators_agree_with_torchs_own_reader(tmp_path: Path, custom_op: Any) -> None:
    info = getattr(torch._C, "_get_module_info_from_flatbuffer", None)
    if info is None:
        pytest.skip("this torch has no _get_module_info_from_flatbuffer")
    modules = [_Linear(), _Quantized(), _NativeClass(), _Saver(str(tmp_path / "w"))]
    for module in [*(torch.jit.script(m) for m in modules), custom_op]:
        data = _flat(module, tmp_path)
        theirs = info(data)
        read = read_flat_module(memoryview(data), 10_000, 100)
        ours = {name + (f".{overload}" if overload else "") for name, overload in read.operators}
        assert ours == set(theirs["opname_to_num_args"]), module
        assert read.functions == len(theirs["function_names"])


def test_crafted_flatbuffer_object_of_a_type_past_object_types_is_medium() -> None:
    # FlatbufferLoader takes object_types()->Get(type_index) without a bounds check.
    fb = _Flat()
    _module(fb, ivalues="ivalues", object_types="types")
    fb.vector("ivalues", ["iv"])
    fb.vector("types", ["t0"])
    fb.table("iv", [("u8", 10), ("off", "obj")])  # IValueUnion::Object
    fb.table("obj", [("u32", 7)])
    fb.table("t0", [("off", "t0name"), ("u8", 1)])
    fb.string("t0name", b"__torch__.M")
    data = fb.finish("root")
    assert read_flat_module(memoryview(data), 10_000, 100).malformed
    assert _rules(data).get("MLT-PT-006") == Severity.MEDIUM
