"""Which files git tracks, read from ``.git/index`` as bytes (git itself is never run).

Running ``git`` inside a project under review would execute that project's configuration
(``core.fsmonitor``, hooks, filters); parsing the index file is enough to tell a secret that
is committed from one that only sits, untracked or ignored, in the working tree. Index
versions 2, 3 and 4 (path prefix compression) with SHA-1 object names are read; anything
else or a damaged index gives ``None`` ("unknown"). A linked worktree or a submodule checkout,
where ``.git`` is a small file ``gitdir: PATH``, has its index at ``PATH/index``.
"""

from __future__ import annotations

import struct
from pathlib import Path

from mltrust.errors import Error
from mltrust.files import read_bounded

__all__ = ["parse_index", "tracked_paths"]

_MAX_INDEX_BYTES = 256 * 1024 * 1024
_MAX_GITFILE_BYTES = 4096
_FIXED = 62  # stat data (40) + SHA-1 (20) + flags (2)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    c = data[pos]
    pos += 1
    value = c & 0x7F
    while c & 0x80:
        value += 1
        c = data[pos]
        pos += 1
        value = (value << 7) + (c & 0x7F)
    return value, pos


def tracked_paths(root: Path) -> frozenset[str] | None:
    """Paths (POSIX, relative to ``root``) in ``root/.git/index`` (or the index a ``.git``
    file names), or None when unknown."""
    index = root / ".git" / "index"
    try:
        data = read_bounded(index, _MAX_INDEX_BYTES, what="git index")
    except Error:
        linked = _linked_index(root)
        if linked is None:
            return None
        try:
            data = read_bounded(linked, _MAX_INDEX_BYTES, what="git index")
        except Error:
            return None
    return parse_index(data)


def _linked_index(root: Path) -> Path | None:
    """``PATH/index`` for a ``.git`` file reading ``gitdir: PATH`` (relative to ``root``
    when not absolute); None when ``.git`` is not such a file."""
    try:
        text = read_bounded(root / ".git", _MAX_GITFILE_BYTES, what="git file").decode("utf-8")
    except (Error, UnicodeDecodeError):
        return None
    first = text.splitlines()[0] if text.strip() else ""
    if not first.startswith("gitdir:"):
        return None
    gitdir = first[len("gitdir:") :].strip()
    if not gitdir or "\0" in gitdir:
        return None
    return (root / gitdir) / "index"


def parse_index(data: bytes) -> frozenset[str] | None:
    """The paths of a git index held in ``data``; ``None`` for anything not understood."""
    try:
        return _parse(data)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        return None


def _parse(data: bytes) -> frozenset[str] | None:
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3, 4):
        return None
    pos = 12
    out: list[str] = []
    previous = b""
    for _ in range(count):
        start = pos
        (flags,) = struct.unpack(">H", data[pos + 60 : pos + 62])
        pos += _FIXED
        if version >= 3 and flags & 0x4000:
            pos += 2
        if version == 4:
            strip, pos = _varint(data, pos)
            end = data.index(b"\0", pos)
            if strip > len(previous):
                return None
            name = previous[: len(previous) - strip] + data[pos:end]
            pos = end + 1
        else:
            end = data.index(b"\0", pos)
            name = data[pos:end]
            pos = start + ((end - start) // 8 + 1) * 8
        previous = name
        out.append(name.decode("utf-8"))
    return frozenset(out)
