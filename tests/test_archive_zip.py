"""Zip scanner: attacks and edge cases built from raw bytes."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pytest

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan._result import FileResult


def npy_bytes(arr: np.ndarray | None = None) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.arange(4, dtype="<i4") if arr is None else arr)
    return buf.getvalue()


@dataclass
class M:
    name: str
    data: bytes
    method: int = 0
    flags: int = 0
    local_name: str | None = None
    crc: int | None = None


def build_zip(
    members: list[M], *, prefix: bytes = b"", comment: bytes = b"", zip64: bool = False
) -> bytes:
    """A zip built by hand, so every field can be wrong on purpose."""
    out = bytearray(prefix)
    central = bytearray()
    for m in members:
        payload = m.data
        if m.method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            payload = c.compress(m.data) + c.flush()
        crc = zlib.crc32(m.data) if m.crc is None else m.crc
        lname = (m.local_name if m.local_name is not None else m.name).encode()
        cname = m.name.encode()
        offset = len(out)
        out += struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            m.flags,
            m.method,
            0,
            0,
            crc,
            len(payload),
            len(m.data),
            len(lname),
            0,
        )
        out += lname + payload
        extra = b""
        off_field = offset
        if zip64:
            extra = struct.pack("<HHQ", 1, 8, offset)
            off_field = 0xFFFFFFFF
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            20,
            20,
            m.flags,
            m.method,
            0,
            0,
            crc,
            len(payload),
            len(m.data),
            len(cname),
            len(extra),
            0,
            0,
            0,
            0,
            off_field,
        )
        central += cname + extra
    cd_offset = len(out)
    out += central
    if zip64:
        rec = len(out)
        out += struct.pack(
            "<4sQHHIIQQQQ",
            b"PK\x06\x06",
            44,
            45,
            45,
            0,
            0,
            len(members),
            len(members),
            len(central),
            cd_offset,
        )
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, rec, 1)
        out += struct.pack(
            "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)
        )
    else:
        out += struct.pack(
            "<4sHHHHIIH",
            b"PK\x05\x06",
            0,
            0,
            len(members),
            len(members),
            len(central),
            cd_offset,
            len(comment),
        )
    out += comment
    return bytes(out)


def rules(result: FileResult) -> set[str]:
    return {f.rule_id for f in result.findings}


def severities(result: FileResult, rule: str) -> set[Severity]:
    return {f.severity for f in result.findings if f.rule_id == rule}


def test_clean_zip_of_npy_members_is_clean() -> None:
    data = build_zip([M("a.npy", npy_bytes()), M("b.npy", npy_bytes(), method=8)])
    result = scan_bytes(data, "x.npz")
    assert not result.fails(Severity.MEDIUM), result.findings
    assert "a.npy:numpy" in result.formats and "b.npy:numpy" in result.formats


def test_numpy_savez_compressed_is_clean() -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.zeros((100, 100)), b=np.arange(7))
    result = scan_bytes(buf.getvalue(), "x.npz")
    assert not result.fails(Severity.MEDIUM), result.findings
    assert result.formats[0] == "zip"


def test_local_central_name_mismatch_bypass() -> None:
    data = build_zip([M("weights.npy", npy_bytes(), local_name="evil.pkl")])
    result = scan_bytes(data, "x.zip")
    assert severities(result, "MLT-ARC-002") == {Severity.HIGH}


def test_path_traversal_member_name() -> None:
    for name in ("../../etc/cron.d/x", "/etc/passwd", "a/../../b", "C:\\evil"):
        result = scan_bytes(build_zip([M(name, npy_bytes())]), "x.zip")
        assert severities(result, "MLT-ARC-001") == {Severity.HIGH}, name


def test_duplicate_member_names_shadowing() -> None:
    data = build_zip([M("data.npy", npy_bytes()), M("data.npy", npy_bytes())])
    assert "MLT-ARC-003" in rules(scan_bytes(data, "x.zip"))


def test_bad_crc_reported_but_member_still_scanned() -> None:
    data = build_zip([M("a.npy", npy_bytes() + b"extra-trailing", crc=0x1234)])
    result = scan_bytes(data, "x.zip")
    assert "MLT-ARC-005" in rules(result)
    assert "MLT-NPY-004" in rules(result)  # the member was still sniffed and scanned


def test_encrypted_flag_member_not_scannable() -> None:
    data = build_zip([M("a.npy", npy_bytes(), flags=1)])
    result = scan_bytes(data, "x.zip")
    assert "MLT-ARC-006" in rules(result)
    assert result.fails(Severity.MEDIUM)


def test_unusual_flag_bits_reported() -> None:
    data = build_zip([M("a.npy", npy_bytes(), flags=0x2000)])
    assert "MLT-ARC-007" in rules(scan_bytes(data, "x.zip"))


def test_overlapping_members_quoted_bomb() -> None:
    data = bytearray(build_zip([M("a.npy", npy_bytes()), M("b.npy", npy_bytes())]))
    # Point the second central entry at the first local header.
    second = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, second + 42, 0)
    result = scan_bytes(bytes(data), "x.zip")
    assert "MLT-ARC-004" in rules(result)


def test_deflate_bomb_ratio() -> None:
    blob = b"\x00" * (48 << 20)
    data = build_zip([M("a.bin", blob, method=8)])
    result = scan_bytes(data, "x.zip")
    assert severities(result, "MLT-ARC-010") == {Severity.HIGH}


def test_deflate_member_over_member_limit() -> None:
    cfg = ScanConfig(limits=Limits(max_member_bytes=1 << 16))
    data = build_zip([M("a.npy", npy_bytes(np.zeros(100_000)), method=8)])
    result = scan_bytes(data, "x.zip", config=cfg)
    assert "MLT-ARC-010" in rules(result)


def test_total_decompressed_budget() -> None:
    cfg = ScanConfig(limits=Limits(max_decompressed_bytes=100_000))
    member = npy_bytes(np.zeros(10_000))
    data = build_zip([M(f"m{i}.npy", member, method=8) for i in range(3)])
    result = scan_bytes(data, "x.zip", config=cfg)
    assert "MLT-ARC-010" in rules(result)


def test_truncated_zip() -> None:
    data = build_zip([M("a.npy", npy_bytes(np.zeros(1000)))])
    cut = data[:200] + data[-60:]
    result = scan_bytes(cut, "x.zip")
    assert result.fails(Severity.MEDIUM)


def test_zip64_end_records_are_read() -> None:
    data = build_zip([M("a.npy", npy_bytes()), M("b.npy", npy_bytes())], zip64=True)
    result = scan_bytes(data, "x.zip")
    assert "a.npy:numpy" in result.formats and "b.npy:numpy" in result.formats
    assert not result.fails(Severity.MEDIUM), result.findings


def test_zipfile_force_zip64_member() -> None:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, zf.open("a.npy", "w", force_zip64=True) as fh:
        fh.write(npy_bytes())
    result = scan_bytes(buf.getvalue(), "x.zip")
    assert "a.npy:numpy" in result.formats
    assert not result.fails(Severity.MEDIUM), result.findings


def test_polyglot_unknown_prefix_is_sniffed() -> None:
    data = build_zip([M("a.npy", npy_bytes())], prefix=b"#!/bin/sh\necho hi\n" * 4)
    result = scan_bytes(data, "x.zip")
    assert "MLT-ARC-008" in rules(result)
    assert any("[prefix]" in f.location.members for f in result.findings)


def test_polyglot_npy_prefix_before_zip() -> None:
    # The whole file is also a .npy: the prefix is scanned once, by the npy scanner.
    prefix = npy_bytes()
    data = build_zip([M("a.npy", npy_bytes())], prefix=prefix)
    result = scan_bytes(data, "x.npy")
    assert "MLT-ARC-008" in rules(result)
    assert "numpy" in result.formats and "zip" in result.formats


def test_comment_and_trailing_data() -> None:
    data = build_zip([M("a.npy", npy_bytes())], comment=b"hello")
    assert "MLT-ARC-009" in rules(scan_bytes(data, "x.zip"))
    trailing = data + b"junk after the end"
    assert "MLT-ARC-016" in rules(scan_bytes(trailing, "x.zip"))


def test_hidden_local_entry_not_in_central_directory() -> None:
    hidden = build_zip([M("evil.npy", npy_bytes() + b"smuggled")])
    hidden_local = hidden[: hidden.find(b"PK\x01\x02")]
    visible = build_zip([M("a.npy", npy_bytes())])
    cd = visible.find(b"PK\x01\x02")
    # Shift the central directory behind the smuggled local entry.
    body = visible[:cd] + hidden_local
    rest = bytearray(visible[cd:])
    eocd = rest.rfind(b"PK\x05\x06")
    struct.pack_into("<I", rest, eocd + 16, len(body))
    result = scan_bytes(bytes(body + rest), "x.zip")
    assert severities(result, "MLT-ARC-016") >= {Severity.HIGH}
    # The smuggled member was read the way a streaming reader reads it, and scanned.
    assert "evil.npy:numpy" in result.formats
    assert "MLT-NPY-004" in rules(result)


def test_zip_without_central_directory_read_from_local_headers() -> None:
    data = build_zip([M("a.npy", npy_bytes()), M("b.npy", npy_bytes() + b"junk", method=8)])
    local_only = data[: data.find(b"PK\x01\x02")]
    result = scan_bytes(local_only, "x.zip")
    assert "MLT-ARC-015" in rules(result)
    assert "a.npy:numpy" in result.formats and "b.npy:numpy" in result.formats
    assert "MLT-NPY-004" in rules(result)


def test_streamed_zip_with_data_descriptors_truncated() -> None:
    import zipfile

    class Unseekable(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.buf += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("a.npy", "b.npy", "c.npy"):
            with zf.open(name, "w") as fh:
                fh.write(npy_bytes())
    data = bytes(sink.buf)
    whole = scan_bytes(data, "x.zip")
    assert whole.formats.count("zip") == 1
    assert not whole.fails(Severity.MEDIUM), whole.findings
    cut = data[: data.find(b"PK\x01\x02")]
    result = scan_bytes(cut, "x.zip")
    assert {"a.npy:numpy", "b.npy:numpy", "c.npy:numpy"} <= set(result.formats)


def test_member_count_limit() -> None:
    cfg = ScanConfig(limits=Limits(max_archive_members=3))
    data = build_zip([M(f"m{i}.npy", npy_bytes()) for i in range(6)])
    result = scan_bytes(data, "x.zip", config=cfg)
    assert "MLT-ARC-011" in rules(result)


def test_deep_nesting_beyond_limit() -> None:
    cfg = ScanConfig(limits=Limits(max_archive_depth=3))
    inner = npy_bytes()
    for i in range(6):
        inner = build_zip([M(f"level{i}.zip", inner)])
    result = scan_bytes(inner, "x.zip", config=cfg)
    assert "MLT-GEN-003" in rules(result)


def test_unknown_member_content_is_not_clean() -> None:
    result = scan_bytes(build_zip([M("readme.bin", b"\x01\x02\x03 nothing")]), "x.zip")
    assert "MLT-GEN-001" in rules(result)


def test_torchscript_code_calling_os() -> None:
    code = b"def forward(self, x):\n    __import__('os').system('id')\n    return x\n"
    data = build_zip([M("archive/code/__torch__.py", code), M("archive/version", b"3\n")])
    result = scan_bytes(data, "m.pt")
    assert severities(result, "MLT-PT-001") == {Severity.HIGH}


def test_torchscript_ordinary_code_is_clean() -> None:
    code = b"def forward(self, x: Tensor) -> Tensor:\n    return torch.ops.aten.relu(x)\n"
    data = build_zip([M("archive/code/__torch__.py", code), M("archive/version", b"3\n")])
    result = scan_bytes(data, "m.pt")
    assert not result.fails(Severity.MEDIUM), result.findings


def test_raw_storages_are_raw() -> None:
    storage = np.arange(1000, dtype="<f4").tobytes()
    data = build_zip(
        [
            M("model/data/0", storage),
            M("model/byteorder", b"little"),
            M("model/.data/serialization_id", b"1234567890"),
        ]
    )
    result = scan_bytes(data, "m.pt")
    assert "MLT-GEN-001" not in rules(result)
    # The same bytes outside the storage folder are unknown content.
    other = scan_bytes(build_zip([M("model/other/0", storage)]), "m.pt")
    assert "MLT-GEN-001" in rules(other)


def test_unsupported_method_is_not_scanned() -> None:
    data = build_zip([M("a.npy", npy_bytes(), method=99)])
    assert "MLT-ARC-012" in rules(scan_bytes(data, "x.zip"))


def test_parallel_crc_matches_zlib(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mltrust.scan.formats import zip as zipmod

    monkeypatch.setattr(zipmod, "_PARALLEL_MIN", 1000)
    monkeypatch.setattr(zipmod, "_CRC_CHUNK", 777)
    blob = bytes(range(256)) * 40 + b"tail"
    with ThreadPoolExecutor(2) as pool:
        for lo, hi in ((0, len(blob)), (5, len(blob) - 3), (100, 2100)):
            got = zipmod.stored_crc(memoryview(blob), lo, hi, pool)
            assert got == zlib.crc32(blob[lo:hi])


def test_bad_crc_found_on_the_threaded_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from mltrust.scan.formats import zip as zipmod

    monkeypatch.setattr(zipmod, "_PARALLEL_MIN", 512)
    big = npy_bytes(np.zeros(200))
    data = build_zip([M("a.npy", big), M("b.npy", npy_bytes(), crc=7), M("c.npy", big, crc=9)])
    result = scan_bytes(data, "x.zip")
    bad = {f.location.members[-1] for f in result.findings if f.rule_id == "MLT-ARC-005"}
    assert bad == {"b.npy", "c.npy"}


def test_raw_storage_crc_budget_is_deterministic() -> None:
    config = ScanConfig(limits=Limits(max_zip_raw_crc_bytes=5000))  # as [scan.limits] sets it
    storage = np.arange(1000, dtype="<f4").tobytes()  # 4000 bytes each
    members = [M("model/data.pkl", b"\x80\x02K\x01."), M("model/data/0", storage, crc=1)]
    members += [M("model/data/1", storage, crc=2), M("model/code/x.bin", storage, crc=3)]
    result = scan_bytes(build_zip(members), "m.pt", config)
    bad = {f.location.members[-1] for f in result.findings if f.rule_id == "MLT-ARC-005"}
    # The first storage fits the budget, the second does not; other members always verified.
    assert bad == {"model/data/0", "model/code/x.bin"}
    assert dict(result.facts)["zip_crc_unverified_members"] == 1


def test_data_between_central_directory_and_end_record() -> None:
    data = build_zip([M("a.npy", npy_bytes())])
    eocd = data.rfind(b"PK\x05\x06")
    smuggled = data[:eocd] + npy_bytes() + b"junk" + data[eocd:]
    result = scan_bytes(smuggled, "x.zip")
    assert "MLT-ARC-016" in rules(result)
    assert any(f.startswith("[gap@") and f.endswith(":numpy") for f in result.formats)


def test_local_central_method_mismatch() -> None:
    data = bytearray(build_zip([M("a.npy", npy_bytes())]))
    struct.pack_into("<H", data, 8, 8)  # local header claims deflate, central says stored
    result = scan_bytes(bytes(data), "x.zip")
    assert "MLT-ARC-017" in rules(result)
    assert "a.npy:numpy" in result.formats  # read as the central directory says, like miniz
