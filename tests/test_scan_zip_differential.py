"""Zips that real readers read differently, and member names that hide content: every reader's
view is scanned, every member is sniffed by content whatever its name.

Attacks from red-team round scan3 (findings 01 and 07), rebuilt here from raw bytes:

* central-directory offset differential: Python's ``zipfile`` (``numpy.load``, Keras, joblib)
  reads the central directory at ``end record - directory size`` (its "concat" adjustment for
  prepended data), PyTorch's reader (miniz) at the absolute offset the end record gives. A file
  can hold one directory for each;
* a member named like TorchScript source (``<top>/code/<x>.py``) or a PyTorch pickle was only
  checked by its name; an object array under that name in an ``.npz`` runs when numpy loads it.

The oracles are the real readers: :mod:`zipfile` and ``torch._C.PyTorchFileReader``. For each
crafted archive the names (and, where the reader can read them, the bytes) each reader serves
must be among what the scanner dispatched.
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mltrust.cli import EXIT_FINDINGS, main
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan._result import FileResult
from mltrust.scan.formats.zip import ZipScanner

_DISAGREE = "MLT-ARC-018"
BENIGN_PICKLE = pickle.dumps({"weight": [1.0, 2.0]}, protocol=2)


# -- raw zip pieces ------------------------------------------------------------------------------


def _local(name: str, data: bytes, *, flags: int = 0) -> bytes:
    n = name.encode()
    return (
        struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            flags,
            0,
            0,
            0,
            zlib.crc32(data),
            len(data),
            len(data),
            len(n),
            0,
        )
        + n
        + data
    )


def _central(name: str, data: bytes, offset: int, *, comment: bytes = b"") -> bytes:
    n = name.encode()
    return (
        struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            20,
            20,
            0,
            0,
            0,
            0,
            zlib.crc32(data),
            len(data),
            len(data),
            len(n),
            0,
            len(comment),
            0,
            0,
            0,
            offset,
        )
        + n
        + comment
    )


def _eocd(count: int, cd_size: int, cd_offset: int, comment: bytes = b"") -> bytes:
    return (
        struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, len(comment)
        )
        + comment
    )


def _rec64(count: int, size: int, off: int) -> bytes:
    return struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, off)


def _locator(rec_off: int) -> bytes:
    return struct.pack("<4sIQI", b"PK\x06\x07", 0, rec_off, 1)


_EOCD_ZIP64 = struct.pack(
    "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0
)


def plain_zip(members: list[tuple[str, bytes]], *, base: int = 0) -> bytes:
    """A stored zip whose recorded offsets start at ``base`` (0: ordinary)."""
    body = b""
    cd = b""
    for name, data in members:
        cd += _central(name, data, base + len(body))
        body += _local(name, data)
    return body + cd + _eocd(len(members), len(cd), base + len(body))


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def npy_object_protocol2(arr: np.ndarray) -> bytes:
    """An object-array .npy whose pickle is protocol 2 (``__builtin__`` names, as the red team
    wrote it so that no text pattern matches)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    return buf.getvalue() + pickle.dumps(arr, protocol=2)


class _Marker:
    """Writes ``path`` when unpickled: proof that a real loader ran the payload."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        code = f"import pathlib; pathlib.Path({str(self.path)!r}).write_text('ran')"
        # mltrust: ignore[MLT-CODE-013] the payload the attack file carries; the test never calls it
        return (exec, (code,))


def marker_array(path: Path) -> np.ndarray:
    arr = np.empty(1, dtype=object)
    arr[0] = _Marker(path)
    return arr


# -- the attacks -------------------------------------------------------------------------------


def two_directories(hidden_name: str, hidden_data: bytes, cover: str = "archive/data/0") -> bytes:
    """Red-team finding 01. The absolute offset in the end record points at a directory that
    lists only ``cover`` (a raw tensor storage); ``end record - directory size`` -- where
    zipfile reads -- starts one entry earlier, at a directory entry hidden in the tail of the
    cover's data that lists ``hidden_name``, whose local header also hides in the cover's data.
    """
    junk = b"\x00" * 16
    hidden_local = _local(hidden_name, hidden_data)
    b1_len = 46 + len(hidden_name)
    a1_len = 46 + len(cover)
    cover_header = 30 + len(cover)
    hidden_pos = cover_header + len(junk)
    concat = -b1_len  # zipfile: actual position - recorded offset
    b1 = _central(hidden_name, hidden_data, hidden_pos - concat)
    cover_data = junk + hidden_local + b1
    cover_local = _local(cover, cover_data)
    cd_offset = len(cover_local)
    a1 = _central(cover, cover_data, 0)
    return cover_local + a1 + _eocd(1, b1_len + a1_len, cd_offset)


def _sys_argv_loader(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _loud(result: FileResult) -> list[str]:
    return [
        f"{f.rule_id} {f.severity} {f.message}"
        for f in result.findings
        if f.severity >= Severity.MEDIUM
    ]


def _assert_flagged_by_cli(path: Path) -> None:
    assert main(["scan", str(path)]) == EXIT_FINDINGS


def test_central_directory_offset_differential_numpy_runs_hidden_member(tmp_path: Path) -> None:
    marker = tmp_path / "ran-01.txt"
    raw = two_directories("w.npy", npy(marker_array(marker)))
    path = tmp_path / "evil.npz"
    path.write_bytes(raw)

    result = scan_bytes(raw, "evil.npz")
    assert not marker.exists()
    rules = {f.rule_id for f in result.findings}
    assert _DISAGREE in rules, result.findings
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings
    _assert_flagged_by_cli(path)
    assert not marker.exists()

    # The real loader: numpy (zipfile) reads the other directory and runs the pickle.
    code = "import sys, numpy; numpy.load(sys.argv[1], allow_pickle=True)['w']"
    _sys_argv_loader(code, path)
    assert marker.read_text() == "ran"


def test_torchscript_code_name_hides_npy_object_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran-07.txt"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("weights.npy", npy(np.arange(4.0)))
        zf.writestr("model/code/meta.py", npy_object_protocol2(marker_array(marker)))
    raw = out.getvalue()
    path = tmp_path / "evil.npz"
    path.write_bytes(raw)

    result = scan_bytes(raw, "evil.npz")
    assert not marker.exists()
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings
    _assert_flagged_by_cli(path)

    code = "import sys, numpy; dict(numpy.load(sys.argv[1], allow_pickle=True))"
    _sys_argv_loader(code, path)
    assert marker.read_text() == "ran"


def test_torch_pickle_name_hides_npy_object_pickle(tmp_path: Path) -> None:
    # The same class of bypass through the other name shortcut: ``<top>/data.pkl`` was scanned
    # only as a raw pickle stream; numpy reads the member as the .npy it is.
    marker = tmp_path / "ran-pkl.txt"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/data.pkl", npy_object_protocol2(marker_array(marker)))
    raw = out.getvalue()
    path = tmp_path / "evil.npz"
    path.write_bytes(raw)

    result = scan_bytes(raw, "evil.npz")
    assert not marker.exists()
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings

    code = "import sys, numpy; numpy.load(sys.argv[1], allow_pickle=True)['archive/data.pkl']"
    _sys_argv_loader(code, path)
    assert marker.read_text() == "ran"


def test_torchscript_code_name_hides_nested_zip(canary: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/code/__torch__/m.py", inner.getvalue())
    result = scan_bytes(out.getvalue(), "model.pt")
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings


def test_torchscript_code_still_checked_as_code() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/code/__torch__/m.py", "def forward(self):\n  os.system('id')\n")
    result = scan_bytes(out.getvalue(), "model.pt")
    assert "MLT-PT-001" in {f.rule_id for f in result.findings}


def test_eocd_at_the_edge_of_zipfiles_search_window(tmp_path: Path) -> None:
    # zipfile searches the last 65,558 bytes for the end record; a zip followed by 65,536 bytes
    # puts it exactly there. The scanner searched 65,557 bytes and did not see a zip at all.
    marker = tmp_path / "ran-window.txt"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("w.npy", npy(marker_array(marker)))
    raw = out.getvalue() + b"\x00" * 65536
    path = tmp_path / "evil.npz"
    path.write_bytes(raw)

    result = scan_bytes(raw, "evil.npz")
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings
    code = "import sys, numpy; numpy.load(sys.argv[1], allow_pickle=True)['w']"
    _sys_argv_loader(code, path)
    assert marker.read_text() == "ran"


# -- the differential oracle: zipfile and PyTorch's reader against what was scanned -------------


def _zip64_locator_split() -> bytes:
    """Two directories; the zip64 locator points at the record of A, the zip64 record just
    before the locator (zipfile's) describes B."""
    view_a = [("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")]
    view_b = [("archive/extra.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")]
    body = b""
    cds = []
    for view in (view_a, view_b):
        cd = b""
        for name, data in view:
            cd += _central(name, data, len(body))
            body += _local(name, data)
        cds.append(cd)
    cd_a_off = len(body)
    rec_a = _rec64(2, len(cds[0]), cd_a_off)
    cd_b_off = cd_a_off + len(cds[0]) + len(rec_a)
    rec_b = _rec64(2, len(cds[1]), cd_b_off)
    loc = _locator(cd_a_off + len(cds[0]))
    return body + cds[0] + rec_a + cds[1] + rec_b + loc + _EOCD_ZIP64


def _zip64_locator_in_directory_comment() -> bytes:
    """The locator is the comment of the last entry of directory B, which the 32-bit end
    record describes; the locator points at a zip64 record describing directory A. zipfile
    finds no zip64 record before the locator and reads B; PyTorch's reader follows the
    locator to A."""
    view_a = [("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")]
    view_b = [("archive/other.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")]
    body = b""
    offs: list[list[int]] = [[], []]
    for k, view in enumerate((view_a, view_b)):
        for name, data in view:
            offs[k].append(len(body))
            body += _local(name, data)
    cd_a = b"".join(_central(n, d, o) for (n, d), o in zip(view_a, offs[0], strict=True))
    cd_a_off = len(body)
    rec_a_off = cd_a_off + len(cd_a)
    rec_a = _rec64(2, len(cd_a), cd_a_off)
    cd_b_off = rec_a_off + len(rec_a)
    loc = _locator(rec_a_off)
    cd_b = _central(view_b[0][0], view_b[0][1], offs[1][0]) + _central(
        view_b[1][0], view_b[1][1], offs[1][1], comment=loc
    )
    end = _eocd(2, len(cd_b), cd_b_off)
    return body + cd_a + rec_a + cd_b + end


def _zip64_locator_to_empty_record_in_prefix() -> bytes:
    """The file starts with a zip64 end record of an empty archive, which the locator points
    at (PyTorch's reader: no members); the zip64 record just before the locator, which zipfile
    reads, describes the real directory."""
    members = [("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")]
    prefix = _rec64(0, 0, 0) + b"\x00" * 8
    body = b""
    cd = b""
    for name, data in members:
        cd += _central(name, data, len(prefix) + len(body))
        body += _local(name, data)
    cd_off = len(prefix) + len(body)
    rec = _rec64(len(members), len(cd), cd_off)
    return prefix + body + cd + rec + _locator(0) + _EOCD_ZIP64


def _data_descriptors() -> bytes:
    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: object) -> int:
            data = bytes(b)  # type: ignore[call-overload]
            self.buf += data
            return len(data)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        with zf.open("archive/data.pkl", "w") as f:
            f.write(BENIGN_PICKLE)
        with zf.open("archive/version", "w") as f:
            f.write(b"3\n")
    return bytes(sink.buf)


def _comment_with_fake_eocd() -> bytes:
    """The real end record's comment ends with a second directory and a second end record
    (no comment: the last 22 bytes of the file), which every reader picks."""
    body = b""
    real = [("archive/data.pkl", BENIGN_PICKLE)]
    fake = [("archive/data.pkl", pickle.dumps([1, 2], protocol=2)), ("archive/version", b"3\n")]
    offs = []
    for name, data in real + fake:
        offs.append(len(body))
        body += _local(name, data)
    cd_real = _central(real[0][0], real[0][1], offs[0])
    cd_off = len(body)
    fake_cd = b"".join(_central(n, d, o) for (n, d), o in zip(fake, offs[1:], strict=True))
    fake_cd_off = cd_off + len(cd_real) + 22
    comment = fake_cd + _eocd(2, len(fake_cd), fake_cd_off)
    return body + cd_real + _eocd(1, len(cd_real), cd_off, comment)


def _eocd_in_miniz_window_only() -> bytes:
    # zipfile searches 65,558 bytes from the end, PyTorch's reader (4 KiB blocks) up to 69,584
    # (with gaps: at some distances it finds the record and then refuses the archive).
    return plain_zip([("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")]) + (
        b"\x00" * 69560
    )


CASES: dict[str, Callable[[], bytes]] = {
    "prepended-data-relative-offsets": lambda: (
        b"JUNK" * 64 + plain_zip([("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")])
    ),
    "prepended-data-absolute-offsets": lambda: (
        b"JUNK" * 64
        + plain_zip([("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")], base=256)
    ),
    "two-directories": lambda: two_directories("w.npy", npy(np.arange(3.0))),
    "two-directories-torch-names": lambda: two_directories("archive/data.pkl", BENIGN_PICKLE),
    "zip64-locator-split": _zip64_locator_split,
    "zip64-locator-in-directory-comment": _zip64_locator_in_directory_comment,
    "zip64-locator-to-empty-record-in-prefix": _zip64_locator_to_empty_record_in_prefix,
    "data-descriptors": _data_descriptors,
    "duplicate-names": lambda: plain_zip(
        [("archive/data.pkl", BENIGN_PICKLE), ("archive/data.pkl", pickle.dumps([3], protocol=2))]
    ),
    "comment-with-fake-eocd": _comment_with_fake_eocd,
    "eocd-at-zipfile-window-edge": lambda: (
        plain_zip([("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")])
        + b"\x00" * 65536
    ),
    "prepended-data-and-eocd-at-zipfile-window-edge": lambda: (
        b"JUNK" * 4
        + plain_zip([("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")])
        + b"\x00" * 65536
    ),
    "eocd-in-miniz-window-only": _eocd_in_miniz_window_only,
    "short-eocd-signature-at-the-end": lambda: (
        plain_zip([("archive/data.pkl", BENIGN_PICKLE), ("archive/version", b"3\n")])
        + b"PK\x05\x06\x00\x00"
    ),
}

#: Cases whose readers (or whose records) disagree: the disagreement itself is reported.
DISAGREEING = {
    "two-directories",
    "two-directories-torch-names",
    "zip64-locator-split",
    "zip64-locator-in-directory-comment",
    "zip64-locator-to-empty-record-in-prefix",
}


_ZIPFILE_ERRORS = (
    zipfile.BadZipFile,
    ValueError,
    OSError,
    EOFError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    struct.error,
    IndexError,
    OverflowError,
)


def zipfile_view(raw: bytes) -> dict[str, bytes | None] | None:
    """Names zipfile lists, with the bytes it reads for each (None where reading fails)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except _ZIPFILE_ERRORS:
        return None
    out: dict[str, bytes | None] = {}
    with zf:
        for info in zf.infolist():
            try:
                out[info.filename] = zf.read(info)
            except _ZIPFILE_ERRORS:
                out.setdefault(info.filename, None)
    return out


def torch_view(raw: bytes) -> dict[str, bytes | None] | None:
    """Records PyTorch's reader lists (without the top folder), with the bytes it reads."""
    try:
        import torch
    except ImportError:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = torch._C.PyTorchFileReader(io.BytesIO(raw))
            names = reader.get_all_records()
        except (RuntimeError, ValueError):
            return None
        out: dict[str, bytes | None] = {}
        for name in names:
            try:
                out[name] = bytes(reader.get_record(name))
            except (RuntimeError, ValueError):
                out[name] = None
        return out


_DISPATCH = ZipScanner._dispatch


def scanned_members(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, bytes]], FileResult]:
    """Scan ``raw`` and return every (name, content) the zip scanner dispatched."""
    seen: list[tuple[str, bytes]] = []
    original = _DISPATCH

    def spy(self, content, ctx, mloc, name, lname):  # type: ignore[no-untyped-def]
        seen.append((name, bytes(content)))
        if lname != name:
            seen.append((lname, bytes(content)))
        return original(self, content, ctx, mloc, name, lname)

    monkeypatch.setattr(ZipScanner, "_dispatch", spy)
    result = scan_bytes(raw, "model.pt")
    return seen, result


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
def test_every_reader_view_is_scanned(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = CASES[case]()
    zf_view = zipfile_view(raw)
    pt_view = torch_view(raw)
    assert zf_view is not None or pt_view is not None, f"no real reader opens {case}"
    seen, result = scanned_members(raw, monkeypatch)
    names = {n for n, _ in seen}
    pairs = set(seen)
    for name, content in (zf_view or {}).items():
        assert name in names, (case, "zipfile", name, sorted(names))
        if content:  # the empty content is not dispatched
            assert (name, content) in pairs, (case, "zipfile bytes", name)
    for record, content in (pt_view or {}).items():
        matches = [n for n in names if n == record or n.endswith("/" + record)]
        assert matches, (case, "torch", record, sorted(names))
        if content:
            assert any((n, content) in pairs for n in matches), (case, "torch bytes", record)
    if case in DISAGREEING:
        assert _DISAGREE in {f.rule_id for f in result.findings}, (case, result.findings)


# -- benign archives stay without medium findings --------------------------------------------


def _benign_torch_save() -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}, buf)
    return buf.getvalue()


def _benign_savez() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.arange(10), b=np.ones((3, 3)))
    return buf.getvalue()


def _benign_savez_compressed() -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(10), b=np.ones((3, 3)))
    return buf.getvalue()


def _benign_keras_like() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", '{"keras_version": "3.3.3", "date_saved": "2024-05-01"}')
        zf.writestr(
            "config.json",
            '{"module": "keras", "class_name": "Sequential", "config": {"name": "seq", '
            '"layers": []}, "registered_name": null}',
        )
        zf.writestr("model.weights.h5", b"")
    return buf.getvalue()


BENIGN: dict[str, Callable[[], bytes]] = {
    "torch.save": _benign_torch_save,
    "np.savez": _benign_savez,
    "np.savez_compressed": _benign_savez_compressed,
    "keras-like": _benign_keras_like,
}


@pytest.mark.parametrize("case", BENIGN, ids=BENIGN.keys())
def test_benign_archives_have_no_medium_finding(case: str) -> None:
    result = scan_bytes(BENIGN[case](), "model.bin")
    assert not _loud(result), _loud(result)


def test_mutated_archives_zipfile_view_is_always_scanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random byte changes to the crafted archives: whatever zipfile still reads, the scanner
    dispatched (the same bytes, or more of them with a medium finding saying why: a stored
    member whose two sizes differ, a stream that decodes past its declared size)."""
    import random

    rng = random.Random(20261203)
    bases = [build() for build in CASES.values()]
    bases = [b for b in bases if len(b) < 5000]
    checked = 0
    for _ in range(600):
        raw = bytearray(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(raw))
            raw[pos] = rng.choice([0, 0xFF, rng.randrange(256), raw[pos] ^ 0x20])
        data = bytes(raw)
        view = zipfile_view(data)
        if not view:
            continue
        checked += 1
        seen, result = scanned_members(data, monkeypatch)
        pairs = set(seen)
        loud = any(f.severity >= Severity.MEDIUM for f in result.findings)
        for name, content in view.items():
            if not content or (name, content) in pairs:
                continue
            longer = [c for n, c in seen if n == name and c.startswith(content)]
            assert longer and loud, (name, data.hex(), result.findings)
    assert checked > 300
