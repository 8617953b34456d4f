"""Archives that real readers read differently: every reader's view is scanned, and the
disagreement itself is a high finding.

Each archive is built from raw bytes. The oracle is the real readers: PyTorch's own zip reader
(``torch._C.PyTorchFileReader``, what ``torch.load`` uses), Python's ``zipfile`` (numpy's
``np.load`` on ``.npz``, Keras) and ``np.load``. For each case the test asks every reader for
the member it would load and compares: when they differ, the scan must report a high
"readers disagree" (or duplicate / name-mismatch) finding *and* have scanned the payload that
any of the readers would load.
"""

from __future__ import annotations

import io
import pickle
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable

import numpy as np
import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes

torch = pytest.importorskip("torch")

EVIL = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
BENIGN = pickle.dumps({"weight": [1.0, 2.0]}, protocol=2)
_DISAGREE = {"MLT-ARC-018", "MLT-ARC-003", "MLT-ARC-002"}


# -- a raw zip writer (stored members, every field under the test's control) -----------------


def _local(name: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(data)
    head = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0
    )
    return head + name + data


def _central(name: bytes, data: bytes, offset: int) -> bytes:
    crc = zlib.crc32(data)
    head = struct.pack(
        "<4sHHHHHHIIIHHHHHII",
        *(
            b"PK\x01\x02",
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            len(data),
            len(data),
            len(name),
            0,
            0,
            0,
            0,
            0,
            offset,
        ),
    )
    return head + name


def _eocd(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def build(
    members: list[tuple[bytes, bytes]], *, local_names: dict[int, bytes] | None = None
) -> bytes:
    """A stored zip; ``local_names`` gives a member a different name in its local header."""
    body = b""
    cd = b""
    for i, (name, data) in enumerate(members):
        offset = len(body)
        body += _local((local_names or {}).get(i, name), data)
        cd += _central(name, data, offset)
    return body + cd + _eocd(len(members), len(cd), len(body))


def build_zip64_split(
    view_a: list[tuple[bytes, bytes]], view_b: list[tuple[bytes, bytes]]
) -> bytes:
    """Two central directories; the zip64 locator points at the record of A, the zip64 record
    just before the locator describes B."""
    body = b""
    cds = []
    for view in (view_a, view_b):
        cd = b""
        for name, data in view:
            cd += _central(name, data, len(body))
            body += _local(name, data)
        cds.append(cd)
    cd_a_off = len(body)

    def rec64(count: int, size: int, off: int) -> bytes:
        return struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, off)

    rec_a = rec64(len(view_a), len(cds[0]), cd_a_off)
    cd_b_off = cd_a_off + len(cds[0]) + len(rec_a)
    rec_b = rec64(len(view_b), len(cds[1]), cd_b_off)
    rec_a_off = cd_a_off + len(cds[0])
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, rec_a_off, 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    # zipfile reads the zip64 record just before the locator (B) and expects its directory
    # right before it; PyTorch's reader follows the locator (A).
    return body + cds[0] + rec_a + cds[1] + rec_b + locator + end


# -- the real readers --------------------------------------------------------------------------


def torch_loads(raw: bytes, record: str = "data.pkl") -> bytes | None:
    """What torch.load would unpickle as ``record`` (None if its reader refuses)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = torch._C.PyTorchFileReader(io.BytesIO(raw))
            return bytes(reader.get_record(record))
        except RuntimeError:
            return None


def zipfile_loads(raw: bytes, name: str) -> bytes | None:
    """What zipfile (numpy, Keras) would read as ``name`` (None if it refuses)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            return zf.read(name)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return None


CASES: dict[str, Callable[[], bytes]] = {
    "case-variant-record": lambda: build(
        [(b"archive/DATA.PKL", EVIL), (b"archive/data.pkl", BENIGN), (b"archive/version", b"3\n")]
    ),
    "duplicate-first-evil": lambda: build(
        [(b"archive/data.pkl", EVIL), (b"archive/data.pkl", BENIGN), (b"archive/version", b"3\n")]
    ),
    "duplicate-last-evil": lambda: build(
        [(b"archive/data.pkl", BENIGN), (b"archive/data.pkl", EVIL), (b"archive/version", b"3\n")]
    ),
    "local-central-name-mismatch": lambda: build(
        [(b"archive/data.pkl", EVIL), (b"archive/version", b"3\n")],
        local_names={0: b"archive/notes.txt"},
    ),
    "zip64-locator-split": lambda: build_zip64_split(
        [(b"archive/data.pkl", BENIGN), (b"archive/version", b"3\n")],
        [(b"archive/data.pkl", EVIL), (b"archive/version", b"3\n")],
    ),
}


@pytest.mark.parametrize("case", CASES, ids=CASES.keys())
def test_every_reader_view_is_scanned_and_disagreement_is_high(case: str) -> None:
    raw = CASES[case]()
    views = {
        "torch": torch_loads(raw),
        "zipfile": zipfile_loads(raw, "archive/data.pkl"),
    }
    loaded = {v for v in views.values() if v is not None}
    assert loaded, f"no real reader loads {case}: the case proves nothing"
    result = scan_bytes(raw, "model.pt")
    rules = {f.rule_id for f in result.findings}
    if len(set(views.values())) > 1:
        assert rules & _DISAGREE, (case, views, result.findings)
    if EVIL in loaded:
        crit = [f for f in result.findings if f.severity is Severity.CRITICAL]
        assert crit, (case, result.findings)


def test_npz_duplicate_member_numpy_loads_the_last() -> None:
    safe = io.BytesIO()
    np.save(safe, np.arange(3.0))
    evil_arr = np.array([os_system_gadget()], dtype=object)
    evil = io.BytesIO()
    np.save(evil, evil_arr, allow_pickle=True)
    raw = build([(b"x.npy", safe.getvalue()), (b"x.npy", evil.getvalue())])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with (
            np.load(io.BytesIO(raw), allow_pickle=False) as npz,
            pytest.raises(ValueError, match="allow_pickle"),
        ):
            npz["x"]  # numpy reads the last duplicate: the object array
    result = scan_bytes(raw, "arrays.npz")
    rules = {f.rule_id for f in result.findings}
    assert rules & _DISAGREE
    assert max(f.severity for f in result.findings) >= Severity.HIGH


class _Gadget:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def os_system_gadget() -> object:
    return _Gadget()


# -- legacy torch files whose magic number is written in another integer encoding -------------

_MAGIC = 0x1950A86A20F9469CFC6C


@pytest.mark.parametrize(
    "magic_pickle",
    [
        b"\x80\x02\x8a\x0a" + _MAGIC.to_bytes(10, "little") + b".",  # what torch writes
        b"\x8b\x0a\x00\x00\x00" + _MAGIC.to_bytes(10, "little") + b".",  # LONG4, no PROTO
        b"I" + str(_MAGIC).encode() + b"\n.",  # protocol 0 INT
        b"L" + hex(_MAGIC).encode() + b"L\n.",  # protocol 0 LONG, hex
        b"\x80\x04\x95\x0e\x00\x00\x00\x00\x00\x00\x00\x8a\x0a"
        + _MAGIC.to_bytes(10, "little")
        + b"\x94.",  # FRAME and MEMOIZE
    ],
)
def test_legacy_torch_magic_in_any_integer_encoding(magic_pickle: bytes, tmp_path: object) -> None:
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buf, _use_new_zipfile_serialization=False)
    original = buf.getvalue()
    first_stop = original.index(b".") + 1
    # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
    assert pickle.loads(original[:first_stop]) == _MAGIC
    # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
    assert pickle.loads(magic_pickle) == _MAGIC  # the loader compares values, not bytes
    patched = magic_pickle + original[first_stop:]
    result = scan_bytes(patched, "model.bin")
    assert "pytorch-legacy" in result.formats, result.formats
    # and a payload in the object pickle is found whatever the magic looks like
    assert not [f for f in result.findings if f.severity >= Severity.MEDIUM], result.findings


# -- mutated archives: whatever a real reader can still load, the scan has seen ----------------


def _readable_payloads(raw: bytes) -> set[str]:
    """Which readers load the EVIL bytes from ``raw`` under any member name."""
    found = set()
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            for info in zf.infolist():
                try:
                    if zf.read(info) == EVIL:
                        found.add("zipfile")
                except (
                    zipfile.BadZipFile,
                    ValueError,
                    OSError,
                    EOFError,
                    zlib.error,
                    NotImplementedError,
                    RuntimeError,
                ):
                    continue
    except (
        zipfile.BadZipFile,
        ValueError,
        OSError,
        EOFError,
        IndexError,
        struct.error,
        NotImplementedError,
        RuntimeError,
    ):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reader = torch._C.PyTorchFileReader(io.BytesIO(raw))
            for name in reader.get_all_records():
                if bytes(reader.get_record(name)) == EVIL:
                    found.add("torch")
        except (RuntimeError, ValueError):  # refused, or a name that is not UTF-8
            pass
    return found


def test_mutated_archives_every_loadable_payload_is_found() -> None:
    import random

    base = build(
        [(b"archive/data.pkl", BENIGN), (b"archive/extra.pkl", EVIL), (b"archive/version", b"3\n")]
    )
    structure = 0  # headers, names, sizes, directory and end record alike
    rng = random.Random(1203)
    checked = 0
    for _ in range(1500):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(structure, len(raw))
            raw[pos] = rng.choice([0, 0xFF, rng.randrange(256), raw[pos] ^ 0x20])
        data = bytes(raw)
        if not _readable_payloads(data):
            continue
        checked += 1
        result = scan_bytes(data, "model.pt")
        crit = [f for f in result.findings if f.severity is Severity.CRITICAL]
        assert crit, (data[structure:].hex(), result.findings)
    assert checked > 200


def test_stored_nested_zip_as_last_member_is_not_a_disagreement() -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("a.txt", "hello")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("config.json", '{"a": 1}')
        zf.writestr("nested.zip", inner.getvalue())  # its end record lies in the outer tail
    findings = scan_bytes(outer.getvalue(), "bundle.zip").findings
    assert not [f for f in findings if f.severity >= Severity.MEDIUM], findings
