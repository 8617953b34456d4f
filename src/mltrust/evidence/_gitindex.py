"""Which files git tracks, read from ``.git/index`` as bytes (git itself is never run).

Running ``git`` inside a project under review would execute that project's configuration
(``core.fsmonitor``, hooks, filters); parsing the index file is enough to tell a secret that
is committed from one that only sits, untracked or ignored, in the working tree. Index
versions 2, 3 and 4 (path prefix compression) with SHA-1 object names are read; anything
else or a damaged index gives ``None`` ("unknown"). A linked worktree or a submodule checkout,
where ``.git`` is a small file ``gitdir: PATH``, has its index at ``PATH/index``.

The index is written by the repository under check, so it is evidence of "untracked" only
when it is plausibly that repository's real index (:func:`read_tracked`):

- its trailing checksum is the SHA-1 of its content (or all zeros: ``index.skipHash``);
- ``HEAD`` names a commit (directly, through a loose ref or ``packed-refs``) whose object is
  in the object store: a loose object that inflates to a ``commit`` header, or an entry of a
  pack index (``objects/pack/*.idx``, also through ``objects/info/alternates``);
- every entry names something the work tree holds (a file, a link, or the folder of a
  submodule's gitlink), except entries marked skip-worktree (sparse checkout), and an index
  with no entries is not accepted for a tree that holds files;
- a ``.git`` file's ``gitdir:`` is never followed into the subject itself (a linked worktree's
  or a submodule's git folder lies outside it).

Otherwise the index is ignored, with the reason, and the subject is treated as having no git
metadata: pruned folders with analysable content fail ``analysis-complete``. These checks are
cheap consistency checks, not proof (a determined forger can build a whole object store), but
they turn "drop 12 bytes into .git/index" into "ship a consistent repository whose index
lists every shipped file", which is what a real checkout is.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import Error
from mltrust.files import open_regular, read_bounded

__all__ = ["parse_entries", "parse_index", "read_tracked", "tracked_paths"]

_FIXED = 62  # stat data (40) + SHA-1 (20) + flags (2)
_SHA1 = re.compile(r"[0-9a-f]{40}")
_GITLINK = 0o160000
_SKIP_WORKTREE = 0x4000  # extended flags (index v3+)


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
    """Paths (POSIX, relative to ``root``) in the subject's git index, without the
    plausibility checks of :func:`read_tracked` (kept for callers that only parse)."""
    located = _locate(root)
    if isinstance(located, str):
        return None
    try:
        data = read_bounded(
            located[0] / "index", DEFAULT_LIMITS.max_git_index_bytes, what="git index"
        )
    except Error:
        return None
    return parse_index(data)


def read_tracked(
    root: Path, present: Callable[[str], bool], has_files: bool
) -> tuple[frozenset[str] | None, str]:
    """``(tracked paths, "")`` when ``root``'s git index is plausibly the real one (see the
    module docstring), else ``(None, why it is not used)``; ``why`` is ``""`` when there is no
    git metadata at all. ``present(rel)`` says whether the work tree holds ``rel`` (a file,
    a link or a folder, as the walk saw it); ``has_files`` whether the tree holds any file
    outside ``.git``."""
    located = _locate(root)
    if isinstance(located, str):
        return None, located
    gitdir, common = located
    try:
        data = read_bounded(gitdir / "index", DEFAULT_LIMITS.max_git_index_bytes, what="git index")
    except Error as exc:
        return None, f"git index not readable: {exc}"
    try:
        entries = _parse(data)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        entries = None
    if entries is None:
        return None, "git index is damaged or of an unsupported version"
    # SHA-1 is git's own integrity trailer here (a consistency check, not a security proof).
    if len(data) < 32 or (
        data[-20:] != hashlib.sha1(data[:-20], usedforsecurity=False).digest()
        and data[-20:] != b"\0" * 20
    ):
        return None, "git index checksum does not match its content"
    if not entries and has_files:
        return None, "git index lists no file although the tree holds files"
    head = _head_commit(gitdir, common)
    if head is None:
        return None, "git HEAD does not name a commit present in the object store"
    for name, mode, ext_flags in entries:
        if ext_flags & _SKIP_WORKTREE:
            continue
        if not present(name):
            what = "submodule folder" if mode == _GITLINK else "file"
            return None, f"git index lists {name!r}, a {what} the work tree does not hold"
    return frozenset(name for name, _, _ in entries), ""


def _locate(root: Path) -> tuple[Path, Path] | str:
    """``(git folder, common git folder)`` of ``root``, or why there is none to use."""
    dotgit = root / ".git"
    if dotgit.is_symlink():
        return "the .git entry is a symbolic link"
    if dotgit.is_dir():
        gitdir = dotgit
    elif dotgit.is_file():
        try:
            text = read_bounded(
                dotgit, DEFAULT_LIMITS.max_git_gitfile_bytes, what="git file"
            ).decode("utf-8")
        except (Error, UnicodeDecodeError):
            return "the .git file is not readable"
        first = text.splitlines()[0] if text.strip() else ""
        target = first[len("gitdir:") :].strip() if first.startswith("gitdir:") else ""
        if not target or "\0" in target:
            return "the .git file does not name a git folder"
        gitdir = root / target
        real_root = os.path.realpath(root)
        real = os.path.realpath(gitdir)
        if real == real_root or real.startswith(real_root.rstrip("/") + "/"):
            return "the .git file points inside the subject, not to a repository outside it"
    else:
        return ""
    common = gitdir
    try:
        rel = read_bounded(
            gitdir / "commondir", DEFAULT_LIMITS.max_git_gitfile_bytes, what="git commondir"
        )
        text = rel.decode("utf-8").strip()
        if text and "\0" not in text:
            common = gitdir / text
    except (Error, UnicodeDecodeError):
        pass
    return gitdir, common


def _read_small(path: Path, limit: int = DEFAULT_LIMITS.max_git_ref_bytes) -> str | None:
    try:
        return read_bounded(path, limit, what="git file").decode("utf-8")
    except (Error, UnicodeDecodeError):
        return None


def _head_commit(gitdir: Path, common: Path) -> str | None:
    """The commit ``HEAD`` names when its object is in the store, else None."""
    head = _read_small(gitdir / "HEAD")
    if head is None:
        return None
    head = head.strip()
    sha: str | None = None
    if head.startswith("ref:"):
        ref = head[4:].strip()
        parts = ref.split("/")
        if not ref.startswith("refs/") or any(p in ("", ".", "..") for p in parts):
            return None
        for folder in (gitdir, common):
            text = _read_small(folder.joinpath(*parts))
            if text is not None and _SHA1.fullmatch(text.strip()):
                sha = text.strip()
                break
        if sha is None:
            packed = (
                _read_small(common / "packed-refs", DEFAULT_LIMITS.max_git_packed_refs_bytes) or ""
            )
            for line in packed.splitlines():
                value, _, name = line.partition(" ")
                if name.strip() == ref and _SHA1.fullmatch(value):
                    sha = value
                    break
    elif _SHA1.fullmatch(head):
        sha = head
    if sha is None:
        return None
    stores = [common / "objects"]
    alternates = _read_small(common / "objects" / "info" / "alternates") or ""
    for line in alternates.splitlines()[: DEFAULT_LIMITS.max_git_alternates]:
        line = line.strip()
        if line and not line.startswith("#") and "\0" not in line:
            stores.append((common / "objects" / line) if not line.startswith("/") else Path(line))
    return sha if any(_has_commit(store, sha) for store in stores) else None


def _has_commit(objects: Path, sha: str) -> bool:
    try:
        data = read_bounded(
            objects / sha[:2] / sha[2:],
            DEFAULT_LIMITS.max_git_loose_object_bytes,
            what="git object",
        )
    except Error:
        data = None
    if data is not None:
        try:
            return zlib.decompressobj().decompress(data, 16).startswith(b"commit ")
        except zlib.error:
            return False
    try:
        packs = sorted(p for p in os.listdir(objects / "pack") if p.endswith(".idx"))
    except OSError:
        return False
    raw = bytes.fromhex(sha)
    return any(
        _idx_has(objects / "pack" / name, raw) for name in packs[: DEFAULT_LIMITS.max_git_packs]
    )


def _idx_has(path: Path, raw: bytes) -> bool:
    """Whether the pack index (version 2, or the original version 1) at ``path`` lists
    the object ``raw`` (binary search through the fan-out table, reading only a few bytes)."""
    try:
        fd = open_regular(path)
    except Error:
        return False
    try:
        head = os.pread(fd, 8, 0)
        if head[:4] == b"\xfftOc":
            if struct.unpack(">I", head[4:8])[0] != 2:
                return False
            fanout, names, stride, skip = 8, 8 + 1024, 20, 0
        else:
            fanout, names, stride, skip = 0, 1024, 24, 4
        first = raw[0]
        lo = struct.unpack(">I", os.pread(fd, 4, fanout + 4 * (first - 1)))[0] if first else 0
        hi = struct.unpack(">I", os.pread(fd, 4, fanout + 4 * first))[0]
        while lo < hi:
            mid = (lo + hi) // 2
            name = os.pread(fd, 20, names + mid * stride + skip)
            if len(name) != 20:
                return False
            if name == raw:
                return True
            if name < raw:
                lo = mid + 1
            else:
                hi = mid
        return False
    except (OSError, struct.error):
        return False
    finally:
        os.close(fd)


def parse_index(data: bytes) -> frozenset[str] | None:
    """The paths of a git index held in ``data``; ``None`` for anything not understood."""
    entries = parse_entries(data)
    return None if entries is None else frozenset(name for name, _, _ in entries)


def parse_entries(data: bytes) -> list[tuple[str, int, int]] | None:
    """``(path, mode, extended flags)`` of each entry of a git index; None when not understood."""
    try:
        return _parse(data)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        return None


def _parse(data: bytes) -> list[tuple[str, int, int]] | None:
    if len(data) < 12 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3, 4):
        return None
    pos = 12
    out: list[tuple[str, int, int]] = []
    previous = b""
    for _ in range(count):
        start = pos
        (mode,) = struct.unpack(">I", data[pos + 24 : pos + 28])
        (flags,) = struct.unpack(">H", data[pos + 60 : pos + 62])
        pos += _FIXED
        ext = 0
        if version >= 3 and flags & 0x4000:
            (ext,) = struct.unpack(">H", data[pos : pos + 2])
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
        out.append((name.decode("utf-8"), mode, ext))
    return out
