"""Hashing helpers shared by the scanner, the signer and the evidence store."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["CHUNK", "sha256_bytes", "sha256_file"]

#: Read size for streaming hashes: large enough to amortise syscalls, small enough for cache.
CHUNK = 4 * 1024 * 1024


def sha256_bytes(data: bytes | bytearray | memoryview) -> str:
    """Hex SHA-256 of an in-memory buffer."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, *, chunk: int = CHUNK) -> str:
    """Hex SHA-256 of a file, streamed with a bounded buffer (``hashlib`` releases the GIL)."""
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()
