"""Decompression must not make a scan hold the decompressed bytes in memory.

A few megabytes of gzip (or a zip-deflate member) that expand about 150-fold stay under the
ratio limit and expand to hundreds of megabytes; nested inside a tar inside a zip they are
decoded level by level. Peak resident memory of a scanning subprocess is measured with
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` and must stay far below the expanded size.
"""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

_MiB = 1 << 20
#: Expanded size of the test streams, and the bound on the scanning process's peak RSS.
_EXPANDED = 512 * _MiB
_RSS_BOUND = 256 * _MiB


def _low_entropy_block(size: int) -> bytes:
    """Bytes that deflate about 150-fold (below the ratio limit of 200)."""
    rng = random.Random(7)
    block = bytearray(size)
    for i in range(0, size, 640):
        block[i] = rng.randrange(256)
    return bytes(block)


def _raw_deflate(total: int) -> tuple[bytes, int, int, int]:
    """One raw deflate stream of a pickle head and ``total`` low-entropy bytes: the stream,
    the expanded size, its CRC-32 and its Adler-32."""
    chunk = _low_entropy_block(8 * _MiB)
    count = total // len(chunk)
    # A pickle of one BINBYTES8 value (as joblib and numpy write large buffers), then STOP.
    head = b"\x80\x04\x8e" + struct.pack("<Q", count * len(chunk))
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    parts = [comp.compress(head)]
    crc = zlib.crc32(head)
    adler = zlib.adler32(head)
    for _ in range(count):
        parts.append(comp.compress(chunk))
        crc = zlib.crc32(chunk, crc)
        adler = zlib.adler32(chunk, adler)
    parts.append(comp.compress(b"."))
    crc = zlib.crc32(b".", crc)
    adler = zlib.adler32(b".", adler)
    parts.append(comp.flush())
    size = len(head) + count * len(chunk) + 1
    return b"".join(parts), size, crc, adler


_WRAPPER = """
import resource, subprocess, sys
scan = (
    "import sys; from mltrust.scan import scan_file; r = scan_file(sys.argv[1]); "
    "assert any(f.endswith('pickle') for f in r.formats), r.formats"
)
subprocess.run([sys.executable, "-c", scan, sys.argv[1]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss_of_scan(path: Path) -> int:
    """Peak RSS (bytes) of a fresh process scanning ``path``, measured by its parent (a fresh
    wrapper process: RUSAGE_CHILDREN is a maximum over every child ever waited for)."""
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.strip().splitlines()[-1]) * 1024


@pytest.fixture(scope="module")
def deflated() -> tuple[bytes, int, int, int]:
    return _raw_deflate(_EXPANDED)


@pytest.fixture(scope="module")
def gzip_bomb(deflated: tuple[bytes, int, int, int]) -> bytes:
    body, size, crc, _ = deflated
    assert size / len(body) < 200  # below the ratio limit: decoded in full
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + struct.pack("<II", crc, size)


def test_high_ratio_gzip_is_not_held_in_memory(gzip_bomb: bytes, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib.gz"
    path.write_bytes(gzip_bomb)
    assert len(gzip_bomb) < 8 * _MiB
    assert _peak_rss_of_scan(path) < _RSS_BOUND


def test_gzip_inside_tar_inside_zip_is_not_held_in_memory(gzip_bomb: bytes, tmp_path: Path) -> None:
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w") as tf:
        info = tarfile.TarInfo("model.pkl.gz")
        info.size = len(gzip_bomb)
        tf.addfile(info, io.BytesIO(gzip_bomb))
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("inner.tar", tar_buf.getvalue())
    assert _peak_rss_of_scan(path) < _RSS_BOUND


def test_legacy_joblib_zfile_is_not_held_in_memory(
    deflated: tuple[bytes, int, int, int], tmp_path: Path
) -> None:
    body, size, _, adler = deflated
    length = f"{2**64:#x}"  # joblib pads the hex length to the width of its maximum
    header = b"ZF" + f"{size:#x}".ljust(len(length)).encode()
    path = tmp_path / "model.pkl.z"
    path.write_bytes(header + b"\x78\x9c" + body + struct.pack(">I", adler))
    assert _peak_rss_of_scan(path) < _RSS_BOUND


def test_high_ratio_zip_deflate_member_is_not_held_in_memory(
    deflated: tuple[bytes, int, int, int], tmp_path: Path
) -> None:
    body, size, _, _ = deflated
    path = tmp_path / "model.zip"
    raw = _zip_with_member("payload.pkl", body, size)
    path.write_bytes(raw)
    assert len(raw) < 8 * _MiB
    assert _peak_rss_of_scan(path) < _RSS_BOUND


def _zip_with_member(name: str, deflated: bytes, usize: int) -> bytes:
    """A zip holding one deflated member (written by hand: no 768 MiB buffer needed)."""
    n = name.encode()
    csize = len(deflated)
    local = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, csize, usize, len(n), 0)
    cen = struct.pack(
        "<4sHHHHHHIIIHHHHHII",
        *(b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, csize, usize, len(n), 0, 0, 0, 0, 0, 0),
    )
    body = local + n + deflated
    cd = cen + n
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), len(body), 0)
    return body + cd + eocd
