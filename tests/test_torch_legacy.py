"""Legacy (non-zip) PyTorch files and PyTorch zip checkpoints."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.pytorch import LegacyTorchScanner, read_storage_keys
from test_archive_zip import rules
from test_numpy_npy import needs_pickle

torch = pytest.importorskip("torch")

MAGIC = 0x1950A86A20F9469CFC6C


def legacy_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def zip_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_sniff_legacy_magic() -> None:
    data = legacy_bytes({"w": torch.ones(3)})
    assert LegacyTorchScanner().sniff(memoryview(data), "m.pt")
    assert not LegacyTorchScanner().sniff(memoryview(pickle.dumps({"a": 1}, protocol=2)), "x")


def test_storage_keys_parser() -> None:
    assert read_storage_keys(pickle.dumps(["1", "22"], protocol=2)) == ["1", "22"]
    assert read_storage_keys(pickle.dumps([1], protocol=2)) is None


@needs_pickle
def test_legacy_state_dict_is_clean() -> None:
    sd = {
        "w": torch.arange(6, dtype=torch.float32),
        "b": torch.ones(2, dtype=torch.float64),
        "i": torch.zeros(3, dtype=torch.int8),
        "h": torch.ones(4, dtype=torch.float16),
    }
    result = scan_bytes(legacy_bytes(sd), "m.pt")
    assert result.formats[0] == "pytorch-legacy"
    assert "pickle" not in result.formats
    assert not result.fails(Severity.MEDIUM), result.findings


@needs_pickle
def test_legacy_payload_appended_after_storages(canary: object) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (f"touch {canary}",))

    data = legacy_bytes({"w": torch.ones(3)}) + pickle.dumps(Evil(), protocol=2)
    result = scan_bytes(data, "m.pt")
    assert "MLT-PT-004" in rules(result)
    assert result.fails(Severity.HIGH)


@needs_pickle
def test_legacy_payload_in_object_pickle(canary: object) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (f"touch {canary}",))

    proto = pickle.dumps(MAGIC, protocol=2) + pickle.dumps(1001, protocol=2)
    proto += pickle.dumps({"protocol_version": 1001}, protocol=2)
    proto += pickle.dumps(Evil(), protocol=2) + pickle.dumps([], protocol=2)
    result = scan_bytes(proto, "m.pt")
    assert result.formats[0] == "pytorch-legacy"
    assert result.fails(Severity.HIGH)


@needs_pickle
def test_legacy_truncated_storages() -> None:
    data = legacy_bytes({"w": torch.ones(100)})
    assert "MLT-PT-003" in rules(scan_bytes(data[:-40], "m.pt"))


@needs_pickle
def test_legacy_bad_version() -> None:
    proto = pickle.dumps(MAGIC, protocol=2) + pickle.dumps(7, protocol=2)
    proto += pickle.dumps({}, protocol=2) + pickle.dumps({}, protocol=2)
    proto += pickle.dumps([], protocol=2)
    assert "MLT-PT-002" in rules(scan_bytes(proto, "m.pt"))


@needs_pickle
def test_zip_checkpoint_with_optimizer_is_clean() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(2, 4)).sum().backward()
    opt.step()
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}
    result = scan_bytes(zip_bytes(ckpt), "ckpt.pt")
    assert result.formats[0] == "zip"
    assert not result.fails(Severity.MEDIUM), result.findings


@needs_pickle
def test_zip_checkpoint_malicious_data_pkl(canary: object) -> None:
    import zipfile

    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (f"touch {canary}",))

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(Evil(), protocol=2))
        zf.writestr("archive/version", "3\n")
    result = scan_bytes(buf.getvalue(), "ckpt.pt")
    assert result.fails(Severity.HIGH)


def test_torchscript_archive_ordinary_code_not_flagged() -> None:
    seq = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Dropout(), torch.nn.LayerNorm(4)
    )
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(seq), buf)
    result = scan_bytes(buf.getvalue(), "m.pt")
    assert any("code/" in f for f in result.formats) or result.formats[0] == "zip"
    assert "MLT-PT-001" not in rules(result), result.findings


@needs_pickle
@settings(max_examples=100, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 400),
)
def test_fuzz_mutated_legacy_torch_never_crashes(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_LEGACY)
    for pos, value in edits:
        data[pos % len(data)] = value
    result = scan_bytes(bytes(data[: max(1, len(data) - cut)]), "fuzz.pt")
    assert "MLT-GEN-004" not in rules(result), result.findings


_LEGACY = legacy_bytes({"w": torch.arange(8, dtype=torch.float32), "b": torch.ones(3)})


# --------------------------------------------------------------------------------------------
# The oldest torch.save format: a tar whose members interleave pickles and raw bytes.

_EVIL_PICKLE = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."


def _legacy_tar(
    *, views: bytes | None = None, tensor_args: bytes | None = None, extra_pickle: bytes = b""
) -> bytes:
    import io as _io
    import struct as _struct
    import tarfile

    import torch

    storages = pickle.dumps(1, protocol=2)
    storages += pickle.dumps(("0", "cpu", torch.FloatStorage), protocol=2)
    storages += _struct.pack("<q", 2) + _struct.pack("<2f", 1.0, 2.0)
    storages += views if views is not None else pickle.dumps([], protocol=2)
    tensors = pickle.dumps(1, protocol=2)
    tensors += (
        tensor_args
        if tensor_args is not None
        else pickle.dumps(("t0", "0", None), protocol=2)  # the type is not used
    )
    tensors += _struct.pack("<iI", 1, 0) + _struct.pack("<q", 2) + _struct.pack("<q", 1)
    tensors += _struct.pack("<q", 0)
    buf = _io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        members = [
            ("sys_info", pickle.dumps({"protocol_version": 1001}, protocol=2)),
            ("storages", storages),
            ("tensors", tensors),
            ("pickle", pickle.dumps({"answer": 42}, protocol=2)),
        ]
        if extra_pickle:
            members.append(("pickle", extra_pickle))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, _io.BytesIO(data))
    return buf.getvalue()


def test_legacy_tar_layout_is_what_torch_loads(tmp_path: Path) -> None:
    import torch

    raw = _legacy_tar()
    path = tmp_path / "old.pt"  # torch reads the tar format only from a real file
    path.write_bytes(raw)
    # mltrust: ignore[MLT-CODE-002] torch itself is the oracle for a benign file the test built
    assert torch.load(path, weights_only=False) == {"answer": 42}
    assert not [f for f in scan_bytes(raw, "old.pt").findings if f.severity >= Severity.MEDIUM]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"views": _EVIL_PICKLE},  # the storage-views pickle after the raw storage bytes
        {"tensor_args": _EVIL_PICKLE},  # a per-tensor pickle after the count
        {"extra_pickle": _EVIL_PICKLE},  # a second "pickle" member: tarfile loads the last
    ],
    ids=["storage-views", "tensor-args", "duplicate-pickle-member"],
)
def test_legacy_tar_payload_after_raw_bytes_is_found(kwargs: dict[str, bytes]) -> None:
    findings = scan_bytes(_legacy_tar(**kwargs), "old.pt").findings
    assert [f for f in findings if f.severity is Severity.CRITICAL], findings
