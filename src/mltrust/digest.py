"""Hashing helpers shared by the scanner, the signer and the evidence store.

:func:`sha256_file` opens with :func:`mltrust.files.open_regular` (never blocks, refuses
FIFOs, sockets and devices, so ``/dev/zero`` cannot make it run forever) and hashes from that
one descriptor. Like the signer, it refuses a file that changed while it was read (size,
mtime_ns or ctime_ns of the descriptor differ before and after).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from mltrust.errors import InputError
from mltrust.files import open_regular

__all__ = ["CHUNK", "sha256_bytes", "sha256_file"]

#: Read size for streaming hashes: large enough to amortise syscalls, small enough for cache.
CHUNK = 4 * 1024 * 1024


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, *, chunk: int = CHUNK, follow_links: bool = True) -> str:
    """Hex SHA-256 of a regular file, streamed with a bounded buffer (``hashlib`` releases
    the GIL). ``follow_links`` is for a path the user named; pass False for a file found in
    a folder mltrust does not trust. Raises :class:`~mltrust.errors.InputError` for anything
    but a regular file, a read error, or a file that changed while it was hashed."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    fd = open_regular(path, follow_links=follow_links)
    try:
        before = os.fstat(fd)
        while True:
            n = os.readv(fd, [buf])
            if not n:
                break
            h.update(view[:n])
        after = os.fstat(fd)
    except OSError as exc:
        raise InputError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if (before.st_size, before.st_mtime_ns, before.st_ctime_ns) != (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
    ):
        raise InputError(f"{os.fspath(path)} changed while it was hashed")
    return h.hexdigest()
