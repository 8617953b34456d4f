"""Tar and compressed-stream scanners: attacks and edge cases built from raw bytes."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import time
import zlib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from test_archive_zip import M, build_zip, npy_bytes, rules, severities


def build_tar(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for info, data in entries:
            info.size = len(data) if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
            tf.addfile(info, io.BytesIO(data) if info.size else None)
    return buf.getvalue()


def reg(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_clean_tar_members_sniffed() -> None:
    data = build_tar([(reg("a.npy"), npy_bytes()), (reg("dir/b.npy"), npy_bytes())])
    result = scan_bytes(data, "x.tar")
    assert "a.npy:numpy" in result.formats and "dir/b.npy:numpy" in result.formats
    assert not result.fails(Severity.MEDIUM), result.findings


def test_tar_path_traversal() -> None:
    data = build_tar([(reg("../../evil.npy"), npy_bytes())])
    assert severities(scan_bytes(data, "x.tar"), "MLT-ARC-001") == {Severity.HIGH}


def test_tar_symlink_escape() -> None:
    data = build_tar([(link("innocent", "../../../etc/passwd", tarfile.SYMTYPE), b"")])
    assert severities(scan_bytes(data, "x.tar"), "MLT-ARC-013") == {Severity.HIGH}
    data = build_tar([(link("innocent", "/etc/shadow", tarfile.SYMTYPE), b"")])
    assert "MLT-ARC-013" in rules(scan_bytes(data, "x.tar"))


def test_tar_symlink_inside_is_fine() -> None:
    data = build_tar([(reg("a/b.npy"), npy_bytes()), (link("a/c", "b.npy", tarfile.SYMTYPE), b"")])
    assert "MLT-ARC-013" not in rules(scan_bytes(data, "x.tar"))


def test_tar_hardlink_escape() -> None:
    data = build_tar([(link("h", "../outside", tarfile.LNKTYPE), b"")])
    assert "MLT-ARC-013" in rules(scan_bytes(data, "x.tar"))


def test_tar_device_file() -> None:
    info = tarfile.TarInfo("dev/sda")
    info.type = tarfile.BLKTYPE
    data = build_tar([(info, b"")])
    assert "MLT-ARC-014" in rules(scan_bytes(data, "x.tar"))


def test_tar_long_names_gnu() -> None:
    name = "d/" * 80 + "weights.npy"
    data = build_tar([(reg(name), npy_bytes())])
    result = scan_bytes(data, "x.tar")
    assert f"{name}:numpy" in result.formats


def test_tar_pax_path_traversal() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("x" * 120 + "/../../../../../../../../../../etc/evil")
        payload = npy_bytes()
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    assert "MLT-ARC-001" in rules(scan_bytes(buf.getvalue(), "x.tar"))


def test_tar_bad_checksum() -> None:
    data = bytearray(build_tar([(reg("a.npy"), npy_bytes()), (reg("b.npy"), npy_bytes())]))
    second = data.find(b"b.npy")
    data[second + 1] ^= 0xFF
    assert "MLT-ARC-005" in rules(scan_bytes(bytes(data), "x.tar"))


def test_tar_truncated_member() -> None:
    data = build_tar([(reg("a.npy"), npy_bytes(np.zeros(1000)))])
    result = scan_bytes(data[:1500], "x.tar")
    assert "MLT-ARC-015" in rules(result)


def test_tar_member_count_limit() -> None:
    cfg = ScanConfig(limits=Limits(max_archive_members=5))
    data = build_tar([(reg(f"m{i}.npy"), npy_bytes()) for i in range(8)])
    assert "MLT-ARC-011" in rules(scan_bytes(data, "x.tar", config=cfg))


def test_tar_trailing_data_after_end() -> None:
    data = build_tar([(reg("a.npy"), npy_bytes())]) + npy_bytes()
    result = scan_bytes(data, "x.tar")
    assert "MLT-ARC-016" in rules(result)


def test_zip_in_tar_gz_nested() -> None:
    inner_zip = build_zip([M("w.npy", npy_bytes()), M("../escape.npy", npy_bytes())])
    tgz = gzip.compress(build_tar([(reg("model.zip"), inner_zip)]))
    result = scan_bytes(tgz, "bundle.tar.gz")
    assert "MLT-ARC-001" in rules(result)
    assert any(f.endswith(":zip") for f in result.formats)


def test_all_compressions_roundtrip_clean() -> None:
    payload = npy_bytes(np.arange(1000))
    for name, blob in (
        ("a.npy.gz", gzip.compress(payload)),
        ("a.npy.bz2", bz2.compress(payload)),
        ("a.npy.xz", lzma.compress(payload)),
        ("a.npy.lzma", lzma.compress(payload, format=lzma.FORMAT_ALONE)),
        ("a.npy.z", zlib.compress(payload)),
    ):
        result = scan_bytes(blob, name)
        assert any(f.endswith(":numpy") for f in result.formats), (name, result.formats)
        assert not result.fails(Severity.MEDIUM), (name, result.findings)


def test_concatenated_gzip_members() -> None:
    payload = npy_bytes(np.arange(10))
    blob = gzip.compress(payload[:50]) + gzip.compress(payload[50:])
    result = scan_bytes(blob, "a.npy.gz")
    assert not result.fails(Severity.MEDIUM), result.findings


def test_truncated_gzip_still_scans_prefix() -> None:
    payload = npy_bytes(np.arange(100_000)) + b"tail"
    blob = gzip.compress(payload)
    result = scan_bytes(blob[: len(blob) // 2], "a.npy.gz")
    assert "MLT-ARC-015" in rules(result)
    assert any(f.endswith(":numpy") for f in result.formats)


def test_gzip_bomb_ratio() -> None:
    blob = gzip.compress(b"\x00" * (48 << 20), 9)
    result = scan_bytes(blob, "bomb.gz")
    assert severities(result, "MLT-ARC-010") == {Severity.HIGH}


def test_gzip_member_cap() -> None:
    cfg = ScanConfig(limits=Limits(max_member_bytes=10_000))
    blob = gzip.compress(npy_bytes(np.zeros(10_000)))
    assert "MLT-ARC-010" in rules(scan_bytes(blob, "a.gz", config=cfg))


def test_garbage_after_gzip_stream() -> None:
    blob = gzip.compress(npy_bytes()) + b"not gzip, something else"
    assert "MLT-ARC-016" in rules(scan_bytes(blob, "a.gz"))


def test_lz4_frame_never_clean() -> None:
    blob = b"\x04\x22\x4d\x18" + b"\x64\x40\xa7" + b"\x00" * 40
    result = scan_bytes(blob, "a.lz4")
    assert result.fails(Severity.MEDIUM)


_BASES = {
    "zip": build_zip([M("a.npy", npy_bytes()), M("b.npy", npy_bytes(), method=8)]),
    "tar": build_tar([(reg("a.npy"), npy_bytes())]),
    "gzip": gzip.compress(npy_bytes()),
    "bz2": bz2.compress(npy_bytes()),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(sorted(_BASES)),
    edits=st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, 4096),
)
def test_fuzz_mutated_archives_never_crash(
    base: str, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_BASES[base])
    for pos, value in edits:
        data[pos % len(data)] = value
    data = data[: max(1, len(data) - cut % len(data))]
    started = time.monotonic()
    result = scan_bytes(bytes(data), "fuzz.bin")
    assert time.monotonic() - started < 5
    assert "MLT-GEN-004" not in rules(result), result.findings


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=0, max_size=2048))
def test_fuzz_random_bytes_with_archive_magic(tail: bytes) -> None:
    for magic in (b"PK\x03\x04", b"\x1f\x8b\x08", b"BZh9", b"\xfd7zXZ\x00", b"\x93NUMPY"):
        result = scan_bytes(magic + tail, "fuzz.bin")
        assert "MLT-GEN-004" not in rules(result), result.findings
