"""Red-team findings (scan4): joblib / pickle stream desynchronisation.

Every attack builds its file under tmp_path, checks with the real loader in a subprocess that
a harmless payload (``touch <marker>``) runs, then that the scan reports it medium or worse.
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes

joblib = pytest.importorskip("joblib")
np = pytest.importorskip("numpy")


def _u(s: str) -> bytes:  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def _touch(marker: Path) -> bytes:
    """Protocol-0 text that pops the value below it and calls posix.system(touch marker)."""
    return b"0cposix\nsystem\n(V" + f"touch {marker}".encode() + b"\ntR."


def _wrapper(dtype: str, shape: int, elsize: int, flags: int, mmap: bool = False) -> bytes:
    state = (
        b"}("
        + _u("subclass") + _u("numpy") + _u("ndarray") + b"\x93"
        + _u("shape") + b"K" + bytes([shape]) + b"\x85"
        + _u("order") + _u("C")
        + _u("dtype") + _u("numpy") + _u("dtype") + b"\x93" + _u(dtype) + b"\x89\x88\x87R"
        + b"(K\x03" + _u("|") + b"NNNJ" + struct.pack("<i", elsize)
        + b"J\xff\xff\xff\xffK" + bytes([flags]) + b"tb"
        + _u("allow_mmap") + (b"\x88" if mmap else b"\x89")
        + b"u"
    )  # fmt: skip
    return _u("joblib.numpy_pickle") + _u("NumpyArrayWrapper") + b"\x93)\x81" + state + b"b"


def _run(code: str, path: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, capture_output=True, timeout=120
    )


def _worst(path: Path) -> Severity | None:
    findings = scan_bytes(path.read_bytes(), path.name).findings
    return max((f.severity for f in findings), default=None)


def _template(tmp_path: Path, array: object) -> bytearray:
    p = tmp_path / "tmpl.joblib"
    joblib.dump(array, p)
    data = bytearray(p.read_bytes())
    p.unlink()
    return data


JOBLIB_LOAD = "import sys, joblib; joblib.load(sys.argv[1])"
JOBLIB_MMAP = "import sys, joblib; joblib.load(sys.argv[1], mmap_mode='r')"
PICKLE_LOAD = "import sys, pickle; pickle.load(open(sys.argv[1], 'rb'))"


def test_frame_past_wrapper_build_runs_code_after_the_array_data(tmp_path: Path) -> None:
    """joblib reads the array data after the FRAME's end, then runs the rest of the frame."""
    marker = tmp_path / "marker"
    n = 250
    x = _touch(marker)
    assert len(x) < n
    frame = _wrapper("u1", n, -1, 0) + x
    data = b"\x00" * (n - len(x)) + b"." + b"\xff" * (len(x) - 1)
    path = tmp_path / "evil.joblib"
    path.write_bytes(b"\x80\x04\x95" + struct.pack("<Q", len(frame)) + frame + data)
    _run(JOBLIB_LOAD, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM


def test_object_array_inner_frame_past_stop_resumes_at_frame_end(tmp_path: Path) -> None:
    """The C unpickler leaves the file at the inner pickle's frame end, not after its STOP."""
    marker = tmp_path / "marker"
    head = _wrapper("O8", 1, -1, 63)
    outer = b"\x80\x04\x95" + struct.pack("<Q", len(head)) + head
    p = pickle.dumps(np.array([None], dtype=object), protocol=4)
    body = p[11:] + b"."
    inner = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body
    path = tmp_path / "evil.joblib"
    path.write_bytes(outer + inner + _touch(marker))
    _run(JOBLIB_LOAD, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM


def _replace_region(tmp_path: Path, body: bytes, k: int = 400) -> bytes:
    """A joblib uint8 array whose region after the wrapper BUILD is ``body``; its first byte is
    also joblib's pad length, so joblib.load still reads a k-byte array and the final STOP."""
    d = _template(tmp_path, np.full(k, 0x41, np.uint8))
    j = d.index(b"K\x10ub") + 4  # the pad length byte after the wrapper's BUILD
    size = 1 + body[0] + k
    assert len(body) <= size
    return bytes(d[:j]) + body + b"\x00" * (size - len(body)) + b"."


def test_hidden_region_starting_mid_stream_with_pop(tmp_path: Path) -> None:
    """pickle.load reaches the raw region mid-stream: POP is a valid first opcode there."""
    marker = tmp_path / "marker"
    path = tmp_path / "evil.joblib"
    path.write_bytes(_replace_region(tmp_path, _touch(marker)))
    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on a dump the test wrote
    assert joblib.load(path).shape == (400,)
    _run(PICKLE_LOAD, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM


def test_hidden_region_calling_allowlisted_nested_loader(tmp_path: Path) -> None:
    """In the pickle.load view, bytes given to torch.storage._load_from_bytes are scanned."""
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    cmd = f"touch {marker}".encode()
    inner = b"\x80\x02cposix\nsystem\nX" + struct.pack("<I", len(cmd)) + cmd + b"\x85R."
    hidden = (
        b"N"
        + b"ctorch.storage\n_load_from_bytes\n"
        + b"B" + struct.pack("<I", len(inner)) + inner + b"\x85R."
    )  # fmt: skip
    path = tmp_path / "evil.joblib"
    path.write_bytes(_replace_region(tmp_path, hidden))
    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on a dump the test wrote
    assert joblib.load(path).shape == (400,)
    _run(PICKLE_LOAD, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM


def test_hidden_region_past_the_analysis_limits_is_not_silent(tmp_path: Path) -> None:
    """What the pickle.load view cannot analyse (too many MARKs) is reported, not dropped."""
    marker = tmp_path / "marker"
    hidden = b"(" * 20000 + _touch(marker)[1:]
    path = tmp_path / "evil.joblib"
    path.write_bytes(_replace_region(tmp_path, hidden, k=30000))
    _run(PICKLE_LOAD, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM


def test_dtype_state_element_size_zero_desyncs_mmap_load(tmp_path: Path) -> None:
    """numpy honours a stored element size of 0 for V8: mmap_mode maps 0 bytes."""
    marker = tmp_path / "marker"
    n = 16
    d = _template(tmp_path, np.zeros(n, "V8"))
    k = d.index(b"NNNK\x08K\x01K\x00t")
    d[k + 4] = 0
    j = d.index(b"K\x10ub") + 4
    at = j + 1 + d[j]
    payload = _touch(marker)
    d[at : at + 8 * n] = payload + b"\x00" * (8 * n - len(payload))
    path = tmp_path / "evil.joblib"
    path.write_bytes(bytes(d))
    _run(JOBLIB_MMAP, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM


# ------------------------------------------------------------------------ benign regression
_DTYPES = ["u1", "i2", "i4", "i8", "f2", "f4", "f8", "c16", "?", "S5", "U3", "V4", "M8[s]"]


@pytest.mark.parametrize("compress", [0, ("gzip", 3), ("xz", 3), ("bz2", 3), ("lz4", 3)])
def test_benign_joblib_dumps_have_no_medium_findings(tmp_path: Path, compress: object) -> None:
    if compress and compress[0] == "lz4":  # type: ignore[index]
        pytest.importorskip("lz4")
    rng = np.random.default_rng(0)
    value = {
        "arrays": [rng.integers(0, 255, 1000).astype(dt) for dt in _DTYPES],
        "object": np.array([None, "a", 1.5, [1, 2]], dtype=object),
        "structured": np.zeros(7, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", "S3")]),
        "random": rng.random((50, 50)),
        "empty": np.zeros(0),
    }
    path = tmp_path / "ok.joblib"
    joblib.dump(value, path, compress=compress)
    worst = _worst(path)
    assert worst is None or worst < Severity.MEDIUM, scan_bytes(path.read_bytes(), "ok.joblib")


def test_benign_sklearn_estimator_has_no_medium_findings(tmp_path: Path) -> None:
    sklearn = pytest.importorskip("sklearn.ensemble")
    rng = np.random.default_rng(1)
    x, y = rng.random((200, 5)), rng.integers(0, 2, 200)
    model = sklearn.RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    worst = _worst(path)
    assert worst is None or worst < Severity.MEDIUM
    # mltrust: ignore[MLT-CODE-001] the real loader as oracle, on a dump the test wrote
    assert joblib.load(path, mmap_mode="r") is not None


def test_benign_pickle_of_bytesio_round_trip() -> None:
    buf = io.BytesIO()
    joblib.dump(np.arange(10), buf)
    worst = max((f.severity for f in scan_bytes(buf.getvalue(), "x.joblib").findings), default=None)
    assert worst is None or worst < Severity.MEDIUM


def test_legacy_ndarraywrapper_sibling_file_is_at_least_medium(tmp_path: Path) -> None:
    """joblib.load runs np.load(sibling, allow_pickle=True) on a file the scan was not given."""
    marker = tmp_path / "marker"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": (1,)}
    )
    (tmp_path / "model.joblib_01.npy").write_bytes(header.getvalue() + _touch(marker)[1:])
    data = (
        b"\x80\x04" + _u("joblib.numpy_pickle_compat") + _u("NDArrayWrapper") + b"\x93)\x81}("
        + _u("filename") + _u("model.joblib_01.npy")
        + _u("subclass") + _u("numpy") + _u("ndarray") + b"\x93"
        + _u("allow_mmap") + b"\x89ub."
    )  # fmt: skip
    path = tmp_path / "model.joblib"
    path.write_bytes(data)
    _run(JOBLIB_LOAD, path)
    assert marker.exists()
    worst = _worst(path)
    assert worst is not None and worst >= Severity.MEDIUM
