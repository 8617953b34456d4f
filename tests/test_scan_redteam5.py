"""Red-team findings (scan5): readers of one file that the scanner did not all follow.

Every attack file is built here from raw bytes; the real loader (pickle.load, joblib.load or
torch.load(weights_only=False), in a subprocess) first proves that a harmless payload
(``touch <marker>``) runs, then the scan must report the file medium or worse.
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes

np = pytest.importorskip("numpy")

MAGIC = 0x1950A86A20F9469CFC6C


def _u(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _long1(n: int) -> bytes:
    b = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def _touch(marker: Path) -> bytes:
    """Protocol-0 text that calls posix.system(touch marker) (built at run time)."""
    return b"cposix\nsy" + b"stem\n(V" + f"touch {marker}".encode() + b"\ntR."


def _dtype(code: str, flags: int) -> bytes:
    return (
        _u("numpy") + _u("dtype") + b"\x93" + _u(code) + b"\x89\x88\x87R"
        + b"(K\x03" + _u("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb"
    )  # fmt: skip


def _wrapper(code: str, flags: int, shape: int, aligned: bool) -> bytes:
    """A NumpyArrayWrapper built and BUILt as joblib writes it (no memo)."""
    return (
        _u("joblib.numpy_pickle") + _u("NumpyArrayWrapper") + b"\x93)\x81}("
        + _u("subclass") + _u("numpy") + _u("ndarray") + b"\x93"
        + _u("shape") + b"J" + struct.pack("<i", shape) + b"\x85" + _u("order") + _u("C")
        + _u("dtype") + _dtype(code, flags) + _u("allow_mmap") + b"\x89"
        + (_u("numpy_array_alignment_bytes") + b"K\x10" if aligned else b"")
        + b"ub"
    )  # fmt: skip


def _load_runs(code: str, path: Path, marker: Path) -> bool:
    subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, capture_output=True, timeout=180
    )
    return marker.exists()


def _worst(data: bytes, name: str) -> Severity | None:
    return max((f.severity for f in scan_bytes(data, name).findings), default=None)


PICKLE_LOAD = "import sys, pickle; pickle.load(open(sys.argv[1], 'rb'))"
JOBLIB_LOAD = "import sys, joblib; joblib.load(sys.argv[1])"
# mltrust: ignore[MLT-CODE-002] torch is the oracle: it loads the test's own attack file
TORCH_BYTESIO = "import io, sys, torch; torch.load(io.BytesIO(open(sys.argv[1], 'rb').read()), weights_only=False)"  # noqa: E501
# mltrust: ignore[MLT-CODE-002] torch is the oracle: it loads the test's own attack file
TORCH_PATH = "import sys, torch; torch.load(sys.argv[1], weights_only=False)"


# ---------------------------------------------------------------- 01: object array, shared memo
_SYSTEM = ("posix", "sy" + "stem")


def _objarray_shared_memo(marker: Path, target: tuple[str, str] = _SYSTEM) -> bytes:
    """joblib reads the object array's pickle with a fresh memo (builtins.str); pickle.load
    reads it as more opcodes of the outer stream, whose memo holds 'posix', 'system' at 0, 1."""
    outer = b"\x80\x04(" + _u(target[0]) + b"\x94" + _u(target[1]) + b"\x94"
    real = pickle.dumps(np.array(["x", 1], dtype=object), protocol=2)[2:]  # explicit BINPUTs
    inner = (
        b"\x80\x02" + _u("builtins") + b"\x94" + _u("str") + b"\x94" + b"00"
        + b"h\x00h\x01\x93" + _u(f"touch {marker}") + b"\x85R0" + real
    )  # fmt: skip
    return outer + _wrapper("O8", 63, 1, True) + inner + b"l."


def test_object_array_pickle_read_with_the_outer_memo_by_pickle_load(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    marker = tmp_path / "marker"
    path = tmp_path / "evil.joblib"
    path.write_bytes(_objarray_shared_memo(marker))
    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on the test's own file
    assert joblib.load(path)[:2] == ["posix", "system"]  # joblib's view: nothing runs
    assert not marker.exists()
    assert _load_runs(PICKLE_LOAD, path, marker)
    worst = _worst(path.read_bytes(), path.name)
    assert worst is not None and worst >= Severity.HIGH


def test_object_array_in_npy_pickle_shares_the_memo_too(tmp_path: Path) -> None:
    """numpy.load(allow_pickle=True) reads an object array's pickle with pickle.load."""
    marker = tmp_path / "marker"
    body = _objarray_shared_memo(marker)
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body
    worst = _worst(data, "evil.npy")
    assert worst is not None and worst >= Severity.HIGH


def test_npy_pickle_is_read_only_as_numpy_reads_it() -> None:
    """numpy.load has no joblib view: an import outside the allowlist that only pickle.load's
    reading of an embedded joblib object array reaches is reported like any other."""
    body = _objarray_shared_memo(Path("/nonexistent"), ("plistlib", "loads"))
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += b" " * (63 - len(header) % 64) + b"\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body
    findings = scan_bytes(data, "evil.npy").findings
    assert any("plistlib" in f.message and f.severity >= Severity.MEDIUM for f in findings)


def test_real_joblib_object_arrays_stay_clean(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    values = [
        np.array([1, "a", None, (1, 2)], dtype=object),
        np.array([(1, "x")], dtype=[("a", "i4"), ("o", "O")]),
        np.array([np.arange(3), {"k": np.ones(2)}], dtype=object),
    ]
    for protocol in (None, 2, 3, 4, 5):
        path = tmp_path / f"ok{protocol}.joblib"
        joblib.dump({"a": values, "b": [values, "s"]}, path, protocol=protocol)
        worst = _worst(path.read_bytes(), path.name)
        assert worst is None or worst < Severity.MEDIUM, protocol


def test_many_object_arrays_under_a_large_memo_stay_within_budget(tmp_path: Path) -> None:
    """pickle.load's view of each object array starts from the outer memo: it is shared, not
    copied per array (a DataFrame-like dump with thousands of object columns)."""
    joblib = pytest.importorskip("joblib")
    value: dict[str, object] = {
        f"k{i}": np.array([f"s{i}", i, None], dtype=object) for i in range(3000)
    }
    value.update({f"x{i}": f"str{i}" for i in range(20000)})
    path = tmp_path / "many.joblib"
    joblib.dump(value, path)
    worst = _worst(path.read_bytes(), path.name)
    assert worst is None or worst < Severity.MEDIUM


# ---------------------------------------------------------------- 02: legacy torch + joblib
def _legacy_torch_joblib_polyglot(marker: Path) -> bytes:
    """pickle.load's first value is torch's legacy magic; joblib.load skips k bytes of 'array
    data' after the wrapper's BUILD and goes on unpickling inside the storage bytes."""
    rest = b"0" + _long1(MAGIC) + b"." + b"M\xe9\x03." + b"}." + b"N." + b"](X\x01\x00\x00\x000e."
    storage = b"\x00" * 16 + b"0" + _touch(marker) + b"\x00" * 15
    k = len(rest) + 8 + 16
    head = b"\x80\x04" + _wrapper("u1", 0, k, False)
    return head + rest + struct.pack("<q", len(storage)) + storage


def test_legacy_torch_file_read_by_joblib_load(tmp_path: Path) -> None:
    pytest.importorskip("joblib")
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    path.write_bytes(_legacy_torch_joblib_polyglot(marker))
    assert _load_runs(JOBLIB_LOAD, path, marker)
    worst = _worst(path.read_bytes(), path.name)
    assert worst is not None and worst >= Severity.HIGH


# ---------------------------------------------------------------- 04: no-peek legacy reading
class _Count:
    """An 8-byte storage count running to the end of the file (filled in by _assemble)."""


_VALUE = {1: _long1(MAGIC), 2: b"M\xe9\x03", 3: b"}", 4: b"N", 5: b"](X\x01\x00\x00\x000e"}
_Parts = list[bytes | _Count]


def _flat(parts: _Parts) -> bytes:
    return b"".join(p if isinstance(p, bytes) else b"\x00" * 8 for p in parts)


def _leaf(k: int, bad: bytes | None = None) -> _Parts:
    out: _Parts = [_VALUE[i] + b"." for i in range(k, 5)]
    if bad:
        return [*out, bad, _Count()]
    keys = _VALUE[5] + b"."
    # keys in a FRAME whose tail is a count, another count after it: two clean readings
    return [*out, b"\x80\x04\x95" + struct.pack("<Q", len(keys) + 8) + keys, _Count(), _Count()]


def _node(k: int, alt: _Parts, peek: _Parts) -> _Parts:
    """Pickle k in a FRAME whose tail opens pickle k+1: peek readers swallow ``alt`` as bytes,
    no-peek readers resume at the frame end, i.e. at ``alt``."""
    body = _VALUE[k] + b".(B" + struct.pack("<I", len(_flat(alt)))
    return [
        b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body,
        *alt,
        b"1" + _VALUE[k + 1] + b".",
        *peek,
    ]


def _node4(alt: _Parts) -> _Parts:
    body: _Parts = [_VALUE[4] + b".", _VALUE[5] + b".", _Count()]
    return [b"\x80\x04\x95" + struct.pack("<Q", len(_flat(body))), *body, *alt]


def _filler(k: int) -> _Parts:
    if k == 5:
        return _leaf(5)
    if k == 4:
        return _node4(_leaf(5))
    return _node(k, _filler(k + 1), _filler(k + 2))


def _assemble(parts: _Parts) -> bytes:
    total = len(_flat(parts))
    out = bytearray()
    for p in parts:
        out += struct.pack("<q", total - (len(out) + 8)) if isinstance(p, _Count) else p
    return bytes(out)


def test_legacy_torch_bytesio_reading_deeper_than_the_walk_cap(tmp_path: Path) -> None:
    """torch.load(BytesIO) resumes every pickle at its frame end; mixed readings (which no
    reader makes) filled the scanner's walk budget before that one was walked."""
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    chain = _node(
        1, _node(2, _node(3, _node4(_leaf(5, _touch(marker))), _filler(5)), _filler(4)), _filler(3)
    )
    path = tmp_path / "evil.pt"
    path.write_bytes(_assemble(chain))
    assert _load_runs(TORCH_BYTESIO, path, marker)
    worst = _worst(path.read_bytes(), path.name)
    assert worst is not None and worst >= Severity.HIGH


# ---------------------------------------------------------------- 05: legacy tar views pickle
def test_legacy_tar_views_pickle_after_an_ambiguous_storage(tmp_path: Path) -> None:
    """Entry args as a list: the element size is not narrowed, several candidate positions
    follow the storage; a benign candidate must not stand for the real one."""
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    c = 16
    raw = bytearray(2 * c)
    raw[0:2] = raw[c : c + 2] = b"N."  # what a width-1 reading would find
    storages = (
        b"K\x01." + b"](" + _u("0") + _u("cpu") + b"ctorch\nHalfStorage\ne."
        + struct.pack("<q", c) + bytes(raw) + _touch(marker)
    )  # fmt: skip
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("storages")
        info.size = len(storages)
        tar.addfile(info, io.BytesIO(storages))
    path = tmp_path / "evil.tar"
    path.write_bytes(out.getvalue())
    assert _load_runs(TORCH_PATH, path, marker)
    worst = _worst(path.read_bytes(), path.name)
    assert worst is not None and worst >= Severity.HIGH


# ---------------------------------------------------------------- 03: false positive
def test_protocol0_pickle_of_a_large_array_is_not_malformed() -> None:
    """Python 2's default protocol 0 writes array data as one text line of several MiB."""
    data = pickle.dumps(np.random.default_rng(0).random(300_000), protocol=0)
    # mltrust: ignore[MLT-CODE-001] round-trip of the test's own benign pickle
    assert pickle.loads(data).shape == (300_000,)
    findings = scan_bytes(data, "big.pkl").findings
    assert not [f for f in findings if f.severity >= Severity.MEDIUM], findings


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_legacy_tar_pickle_member_is_read_as_torch_reads_it() -> None:
    """torch unpickles the ``pickle`` member with pickle.Unpickler (no joblib array reads): an
    import outside the allowlist that only that reading reaches is reported like any other."""
    body = _objarray_shared_memo(Path("/nonexistent"), ("plistlib", "loads"))
    data = _tar([("storages", b"K\x00.]."), ("tensors", b"K\x00."), ("pickle", body)])
    findings = scan_bytes(data, "model.tar").findings
    assert any("plistlib" in f.message and f.severity >= Severity.MEDIUM for f in findings)


def test_legacy_torch_with_a_long_magic_pickle_read_from_bytesio(tmp_path: Path) -> None:
    """A magic-number pickle longer than the legacy sniffer looks makes the file a plain
    pickle to the scanner: its concatenated streams must be read both ways too (torch.load of
    a BytesIO resumes each load at the end of the FRAME holding the STOP)."""
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    v1 = b"B" + struct.pack("<I", 5000) + bytes(5000) + b"0" + _long1(MAGIC)
    keys = _VALUE[5] + b"."
    alt = b"M\xe9\x03." + b"}." + _touch(marker) + keys  # what the no-peek reader loads
    body = v1 + b".(B" + struct.pack("<I", len(alt) + 8)
    head = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
    chain: _Parts = [head, alt, _Count(), b"1M\xe9\x03.", b"}.N." + keys, _Count(), bytes(16)]
    path = tmp_path / "evil.pt"
    path.write_bytes(_assemble(chain))
    assert _load_runs(TORCH_BYTESIO, path, marker)
    worst = _worst(path.read_bytes(), path.name)
    assert worst is not None and worst >= Severity.HIGH


# ---------------------------------------------------------------- public advisories (replays)
def test_cve_2025_10156_torch_zip_member_with_a_bad_crc(tmp_path: Path) -> None:
    """JFrog's PickleScan bypass: a data.pkl whose CRC is wrong made zipfile-based scanners
    give up, while PyTorch's reader (miniz built without CRC checks) loads it."""
    import zipfile
    import zlib

    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    cmd = f"touch {marker}".encode()
    payload = b"\x80\x02cposix\nsy" + b"stem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")
        z.writestr("archive/byteorder", "little")
    good = struct.pack("<I", zlib.crc32(payload))
    data = buf.getvalue().replace(good, struct.pack("<I", zlib.crc32(payload) ^ 0xFFFFFFFF))
    path = tmp_path / "evil.pt"
    path.write_bytes(data)
    assert _load_runs(TORCH_PATH, path, marker)
    worst = _worst(data, path.name)
    assert worst is Severity.CRITICAL


@pytest.mark.parametrize("name", ["model.bin", "weights.data", "model", "x.safetensors.tmp"])
def test_cve_2025_10155_pickle_under_any_file_name(name: str) -> None:
    """JFrog's PickleScan bypass: a pickle under a name the scanner did not treat as a pickle
    (torch.load reads any name). Formats are recognised by content here."""
    cmd = b"touch /nonexistent"
    payload = b"\x80\x02cposix\nsy" + b"stem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    assert _worst(payload, name) is Severity.CRITICAL


@pytest.mark.parametrize(
    "data",
    [
        b"\x28\xb5\x2f\xfd\x04\x00\x51\x00\x00" + b"\x80\x04N." * 4,  # a zstd frame
        b"\x50\x2a\x4d\x18\x04\x00\x00\x00abcd\x28\xb5\x2f\xfd",  # skippable frame first
    ],
)
def test_zstd_frames_are_not_scanned_and_say_so_at_medium(data: bytes) -> None:
    """pandas.read_pickle infers zstd from a ".zst" name; no zstd decoder here, so the content
    is reported as not scanned (medium), never passed as unrecognised bytes."""
    for name in ("model.pkl.zst", "model.bin"):
        report = scan_bytes(data, name)
        assert any(f.rule_id == "MLT-ARC-012" for f in report.findings), report.findings
        assert report.fails(Severity.MEDIUM)
