"""Red team 8: TorchScript operator names, ONNX text and HDF5 dense storage.

Every attack is built here from the real libraries (torch, onnx, h5py) or raw bytes, and the
real loader is the oracle: what it runs or reads is what the scanner must report.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes


def _rules(data: bytes, name: str) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


def _loud(rules: dict[str, Severity]) -> bool:
    return any(s >= Severity.MEDIUM for s in rules.values())


# -- TorchScript: names the importer resolves to aten::save ----------------------------------


@pytest.fixture(scope="module")
def torch_base() -> tuple[Any, bytes]:
    """torch and a real scripted archive whose forward is ``return torch.add(x, 1)``."""
    torch = pytest.importorskip("torch")

    class AddOne(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + 1

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(AddOne()), buf)
    return torch, buf.getvalue()


def _inject(archive: bytes, lines: str) -> bytes:
    """The archive with ``lines`` run in forward before its return."""
    out = io.BytesIO()
    done = 0
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            anchor = "    return torch.add("
            if info.filename.endswith(".py") and anchor.encode() in data:
                text = data.decode().replace(anchor, lines + anchor)
                data, done = text.encode(), done + 1
            dst.writestr(info.filename, data)
    assert done == 1
    return out.getvalue()


# Each line reaches aten::save (a file write at a chosen path) when forward runs.
_SAVE_SPELLINGS = {
    # the importer's torch is the builtin module aten, whose "autograd" is aten again
    "torch_autograd": "    torch.autograd.save(x, {p!r})\n",
    "torch_autograd_twice": "    torch.autograd.autograd.save(x, {p!r})\n",
    # ops.NS.autograd is aten whatever NS is: prim is an allowed namespace
    "ops_prim_autograd": "    ops.prim.autograd.save(x, {p!r})\n",
    # the module aliased to a local, then the operator taken from the local
    "alias_torch_autograd": "    a = torch.autograd\n    a.save(x, {p!r})\n",
    "getattr_torch_autograd": "    getattr(torch.autograd, 'save')(x, {p!r})\n",
    "fork_torch_autograd": "    f = fork(torch.autograd.save, x, {p!r})\n    torch.wait(f)\n",
}


@pytest.mark.parametrize("case", sorted(_SAVE_SPELLINGS))
def test_torchscript_save_under_another_spelling_is_reported(
    case: str, torch_base: tuple[Any, bytes], tmp_path: Path
) -> None:
    torch, base = torch_base
    target = tmp_path / "written.pt"
    data = _inject(base, _SAVE_SPELLINGS[case].format(p=str(target)))
    rules = _rules(data, "model.pt")
    assert _loud(rules), rules
    if "alias" not in case and "getattr" not in case:
        assert rules.get("MLT-PT-005") == Severity.HIGH, rules
    torch.jit.load(io.BytesIO(data))(torch.ones(2))  # the oracle: the file is written
    assert target.exists()


def test_torchscript_native_class_namespace_aliased_to_a_local_is_reported(
    torch_base: tuple[Any, bytes],
) -> None:
    torch, base = torch_base
    # dist_rpc is not one of torch's model class namespaces; the alias hid it from the check
    data = _inject(base, "    c = __torch__.torch.classes\n    w = c.dist_rpc.WorkerInfo('a', 1)\n")
    assert _rules(data, "model.pt").get("MLT-PT-006") == Severity.MEDIUM
    torch.jit.load(io.BytesIO(data))(torch.ones(2))  # the oracle: it compiles and runs


def test_torchscript_flatbuffer_module_is_not_unknown(
    torch_base: tuple[Any, bytes], tmp_path: Path
) -> None:
    torch, base = torch_base
    from torch.jit._serialization import save_jit_module_to_flatbuffer

    target = tmp_path / "written.pt"
    scripted = torch.jit.load(io.BytesIO(_inject(base, f"    torch.save(x, {str(target)!r})\n")))
    path = tmp_path / "model.ff"
    save_jit_module_to_flatbuffer(scripted, str(path))
    data = path.read_bytes()
    assert data[4:8] == b"PTMF"
    for name in ("model.ff", "model.pt", "weights.bin"):  # torch.jit.load ignores the name
        # analysed since: its aten::save is high, as in the zip form (was: medium, not read)
        assert _rules(data, name).get("MLT-PT-005") == Severity.HIGH, name
    torch.jit.load(str(path))(torch.ones(2))  # the oracle: torch.jit.load runs it
    assert target.exists()


def test_torchscript_ordinary_module_names_stay_quiet(torch_base: tuple[Any, bytes]) -> None:
    _, base = torch_base
    assert not _loud(_rules(base, "model.pt"))
    annotated = _inject(base, "    y = torch.autograd.grad([x], [x], allow_unused=True)\n")
    assert not _loud(_rules(annotated, "model.pt"))


def test_torchscript_mobile_operators_row_with_extra_elements_is_read(
    torch_base: tuple[Any, bytes], tmp_path: Path
) -> None:
    torch, base = torch_base
    import pickle

    from torch.jit.mobile import _load_for_lite_interpreter

    target = tmp_path / "written.pt"
    scripted = torch.jit.load(io.BytesIO(_inject(base, f"    torch.save(x, {str(target)!r})\n")))
    mobile = tmp_path / "m.ptl"
    with pytest.warns(DeprecationWarning):
        scripted._save_for_lite_interpreter(str(mobile))

    def widen(value: Any) -> Any:  # ("operators", table) -> ("operators", table, ())
        if isinstance(value, tuple):
            if len(value) == 2 and value[0] == "operators":
                return (*value, ())
            return tuple(widen(v) for v in value)
        return value

    out = io.BytesIO()
    with (
        zipfile.ZipFile(mobile) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst,
    ):
        for info in src.infolist():
            if "/code/" in info.filename:
                continue  # the lite interpreter runs bytecode.pkl alone
            data = src.read(info)
            if info.filename.endswith("/bytecode.pkl"):
                # mltrust: ignore[MLT-CODE-001] torch just wrote it: tuples, strings, ints
                data = pickle.dumps(widen(pickle.loads(data)), protocol=2)
            dst.writestr(info, data)
    assert _rules(out.getvalue(), "m.ptl").get("MLT-PT-005") == Severity.HIGH
    mobile.write_bytes(out.getvalue())
    _load_for_lite_interpreter(str(mobile))(torch.ones(2))  # the oracle: aten::save runs
    assert target.exists()


def test_torchscript_scripted_autograd_grad_stays_quiet(torch_base: tuple[Any, bytes]) -> None:
    torch, _ = torch_base

    class Grad(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = (x * x).sum()
            g = torch.autograd.grad([y], [x])
            out = g[0]
            assert out is not None
            return out

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(Grad()), buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        source = b"".join(z.read(n) for n in z.namelist() if n.endswith(".py"))
    assert b"grad(" in source
    assert not _loud(_rules(buf.getvalue(), "model.pt"))


def _lite_without_code(torch: Any, module: Any, path: Path) -> bytes:
    """``module`` saved for the lite interpreter, with its ``code/`` source left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the lite interpreter is deprecated
        torch.jit.script(module)._save_for_lite_interpreter(str(path))
    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if "/code/" not in info.filename:
                dst.writestr(info, src.read(info))
    path.write_bytes(out.getvalue())
    return out.getvalue()


def test_torchscript_mobile_module_building_a_foreign_native_class_is_reported(
    torch_base: tuple[Any, bytes], tmp_path: Path
) -> None:
    torch, _ = torch_base

    class MakesWorkerInfo(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            torch.classes.dist_rpc.WorkerInfo("a", 1)  # CREATE_OBJECT of a types entry
            return x + 1

    data = _lite_without_code(torch, MakesWorkerInfo(), tmp_path / "m.ptl")
    assert _rules(data, "m.ptl").get("MLT-PT-006") == Severity.MEDIUM
    # the oracle: the lite interpreter builds the native object from bytecode.pkl alone
    lite = torch._C._load_for_lite_interpreter(str(tmp_path / "m.ptl"), None)
    assert lite.run_method("forward", (torch.ones(2),)).tolist() == [2.0, 2.0]


def test_torchscript_quantized_mobile_module_stays_quiet(
    torch_base: tuple[Any, bytes], tmp_path: Path
) -> None:
    torch, _ = torch_base
    mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao deprecation notes
        dynamic = torch.ao.quantization.quantize_dynamic(mlp, {torch.nn.Linear}, dtype=torch.qint8)
    data = _lite_without_code(torch, dynamic, tmp_path / "q.ptl")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert any(b"torch.classes.quantized" in z.read(n) for n in z.namelist())
    assert not _loud(_rules(data, "q.ptl"))


# -- ONNX text syntax under another name ----------------------------------------------------

_HEADER_PRODUCER_FIRST = (
    '<producer_name: "x", ir_version: 8, opset_import: ["": 17, "evil.ns": 1]>\n'
    "agraph (float[N] X) => (float[N] Y) {\n  Y = evil.ns.Run(X)\n}\n"
)
_HEADERLESS = "agraph (float[N] X) => (float[N] Y) {\n  Y = evil.ns.Run(X)\n}\n"


def _onnx_text_oracle(text: str, tmp_path: Path) -> set[tuple[str, str]]:
    """What onnx.load(path, format="onnxtxt") builds: a name need not say it is text."""
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "model.txt"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the onnxtxt format is experimental"
        model = onnx.load(str(path), format="onnxtxt", load_external_data=False)
    return {(n.domain, n.op_type) for n in model.graph.node}


def test_onnxtxt_header_opening_with_any_keyword_is_recognised(tmp_path: Path) -> None:
    assert _onnx_text_oracle(_HEADER_PRODUCER_FIRST, tmp_path) == {("evil.ns", "Run")}
    rules = _rules(_HEADER_PRODUCER_FIRST.encode(), "model.txt")
    assert rules.get("MLT-ONX-005") == Severity.MEDIUM, rules


def test_onnxtxt_without_header_under_another_name_is_recognised(tmp_path: Path) -> None:
    assert _onnx_text_oracle(_HEADERLESS, tmp_path) == {("evil.ns", "Run")}
    assert _loud(_rules(_HEADERLESS.encode(), "model.txt"))


def _with_data_pkl(archive: bytes, payload: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, payload if info.filename.endswith("/data.pkl") else src.read(info))
    return out.getvalue()


@pytest.mark.parametrize("namespace", ["dist_rpc", "evilns"])
def test_torchscript_data_pkl_naming_a_foreign_native_class_is_reported(
    namespace: str, torch_base: tuple[Any, bytes]
) -> None:
    torch, base = torch_base
    cls = "WorkerInfo" if namespace == "dist_rpc" else "Foo"
    # GLOBAL, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, BUILD, STOP
    payload = f"\x80\x02c__torch__.torch.classes.{namespace}\n{cls}\n)\x81}}b.".encode("latin-1")
    data = _with_data_pkl(base, payload)
    assert _rules(data, "model.pt").get("MLT-PT-006") == Severity.MEDIUM
    # the oracle: torch.jit.load looks the class up among the registered native classes and,
    # when one is registered (dist_rpc.WorkerInfo), builds it
    with pytest.raises((RuntimeError, IndexError)) as err:  # it then lacks a module's state
        torch.jit.load(io.BytesIO(data))
    assert ("Unknown type name" in str(err.value)) == (namespace == "evilns")


def test_torchscript_torchaudio_file_operators_are_reported(torch_base: tuple[Any, bytes]) -> None:
    torch, base = torch_base
    # torchaudio registers these in its own namespace (TORCH_LIBRARY_FRAGMENT(torchaudio, m)):
    # the first writes a chosen path, the second reads any path or URL through ffmpeg
    lines = (
        "    ops.torchaudio.sox_io_save_audio_file('/tmp/x.wav', x, 8000, True, None, None, None)\n"
        "    w = ops.torchaudio.ffmpeg_load('http://host/a.wav')\n"
    )
    data = _inject(base, lines)
    assert _loud(_rules(data, "model.pt"))
    # the oracle (torchaudio is not installed here): torch.jit.load binds the name to whatever
    # operator is registered under it
    with pytest.raises(RuntimeError, match="torchaudio::"):
        torch.jit.load(io.BytesIO(data))
