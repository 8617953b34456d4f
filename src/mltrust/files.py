"""The one place mltrust touches a folder it does not trust: walk it, open its files, read them.

Every subsystem (scan, check and its collectors, sign/verify, serve admission, the safe loader)
lists folders with :func:`walk` and opens files with :func:`open_regular`/:func:`read_bounded`,
so that what one part of mltrust sees in a folder is what every other part sees. Two walkers that
disagree let a payload hide from the gate; that is why there is exactly one.

Decisions, stated once:

- **Links are never followed inside a walk.** A symbolic link is reported as
  :attr:`SkipReason.SYMLINK`, never descended into or read; whether that fails the caller's job
  (a signer refuses, a scanner reports "not scanned") is the caller's decision, made on the
  report, not on silence.
- **Only regular files are read.** FIFOs, sockets and device nodes are reported as
  :attr:`SkipReason.SPECIAL`; opening one would block (a FIFO) or never end (``/dev/zero``).
- **Nothing is skipped silently.** Unreadable folders, pruned folders, names that cannot be
  represented, and files beyond the count cap are all in :attr:`Listing.skipped`, and a capped
  walk sets :attr:`Listing.truncated`.
- **Reads are bounded.** :func:`read_bounded` opens with ``O_NOFOLLOW | O_NONBLOCK``, checks the
  descriptor is a regular file with ``fstat`` (so a file swapped for a FIFO between listing and
  opening is still refused), and stops one byte past the bound instead of trusting ``st_size``.
- **Files inside a folder are opened relative to it.** :func:`open_under` opens a relative path
  one component at a time from a descriptor of the root folder, each with ``O_NOFOLLOW``, so a
  folder swapped for a link to ``~/.ssh`` *after* the walk is refused instead of read through
  (``open_regular`` only refuses a link as the last component).
- The walk order is deterministic: a folder's files in name order, then its sub-folders in name
  order, depth first.
"""

from __future__ import annotations

import enum
import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import InputError, LimitExceeded

__all__ = [
    "DEFAULT_MAX_FILES",
    "Entry",
    "Listing",
    "SkipReason",
    "Skipped",
    "iter_walk",
    "open_folder",
    "open_regular",
    "open_under",
    "read_bounded",
    "walk",
]

#: Files listed in one walk before it stops (reported as truncated, never silently): the
#: default Limits.max_model_files.
DEFAULT_MAX_FILES = DEFAULT_LIMITS.max_model_files


class SkipReason(enum.StrEnum):
    """Why an entry of a folder was not handed to the caller as a file."""

    #: A symbolic link (never followed inside a folder).
    SYMLINK = "symlink"
    #: Not a regular file or folder: FIFO, socket, device node.
    SPECIAL = "special"
    #: The folder or file could not be listed or examined.
    UNREADABLE = "unreadable"
    #: A folder the caller asked not to descend into.
    PRUNED = "pruned"
    #: The file count cap was reached; this and everything after it was not listed.
    CAP = "cap"


@dataclass(frozen=True, slots=True)
class Entry:
    """A regular file found by :func:`walk`."""

    #: Path relative to the walked root, POSIX separators (the file's own name for a file root).
    rel: str
    #: Path as given to the OS (root joined with the relative path).
    path: str
    #: Size from ``lstat`` at listing time (the content may change later; readers re-check).
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry that was not handed over as a file, and why."""

    rel: str
    path: str
    reason: SkipReason
    detail: str
    #: For :attr:`SkipReason.SYMLINK`: the link's target as stored (``""`` if unreadable).
    target: str = ""


@dataclass(frozen=True, slots=True)
class Listing:
    """Everything :func:`walk` saw under one root."""

    root: str
    files: tuple[Entry, ...]
    skipped: tuple[Skipped, ...]
    #: True when the file count cap stopped the walk early.
    truncated: bool


def _describe_special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def iter_walk(
    root: str | os.PathLike[str],
    *,
    prune: Collection[str] = (),
    max_files: int = DEFAULT_MAX_FILES,
) -> Iterator[Entry | Skipped]:
    """Yield every file and every skipped entry under ``root``, in walk order.

    ``root`` itself may be a file (yielded as one :class:`Entry` named after it) or a folder.
    A ``root`` that is a symbolic link is followed (the user named it explicitly); links inside
    are not. Folder names in ``prune`` are not descended into and are yielded as
    :attr:`SkipReason.PRUNED`. Raises :class:`InputError` when ``root`` does not exist.
    """
    top = os.fspath(root)
    try:
        st = os.stat(top)
    except FileNotFoundError:
        raise InputError(f"no such file or folder: {top}") from None
    except OSError as exc:
        raise InputError(f"cannot read {top}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        name = Path(top).name
        if stat.S_ISREG(st.st_mode):
            yield Entry(name, top, st.st_size, st.st_mtime_ns, st.st_ino)
        else:
            yield Skipped(name, top, SkipReason.SPECIAL, _describe_special(st.st_mode))
        return
    count = 0
    stack: list[tuple[str, str]] = [(top, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield Skipped(
                prefix.rstrip("/") or ".",
                folder,
                SkipReason.UNREADABLE,
                f"cannot list folder: {exc.strerror or exc}",
            )
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            rel = prefix + entry.name
            try:
                est = entry.stat(follow_symlinks=False)
            except OSError as exc:
                yield Skipped(rel, entry.path, SkipReason.UNREADABLE, exc.strerror or str(exc))
                continue
            mode = est.st_mode
            if stat.S_ISLNK(mode):
                try:
                    target = os.readlink(entry.path)
                except OSError:
                    target = ""
                yield Skipped(
                    rel,
                    entry.path,
                    SkipReason.SYMLINK,
                    f"symbolic link to {target or '?'!r} not followed",
                    target,
                )
            elif stat.S_ISDIR(mode):
                if entry.name in prune:
                    yield Skipped(rel, entry.path, SkipReason.PRUNED, "folder not descended into")
                else:
                    subdirs.append((entry.path, rel + "/"))
            elif stat.S_ISREG(mode):
                if count >= max_files:
                    yield Skipped(
                        rel,
                        entry.path,
                        SkipReason.CAP,
                        f"file count cap of {max_files} reached; the rest was not listed",
                    )
                    return
                count += 1
                yield Entry(rel, entry.path, est.st_size, est.st_mtime_ns, est.st_ino)
            else:
                yield Skipped(rel, entry.path, SkipReason.SPECIAL, _describe_special(mode))
        stack.extend(reversed(subdirs))


def walk(
    root: str | os.PathLike[str],
    *,
    prune: Collection[str] = (),
    max_files: int = DEFAULT_MAX_FILES,
) -> Listing:
    """Collect :func:`iter_walk` into a :class:`Listing`."""
    files: list[Entry] = []
    skipped: list[Skipped] = []
    truncated = False
    for item in iter_walk(root, prune=prune, max_files=max_files):
        if isinstance(item, Entry):
            files.append(item)
        else:
            skipped.append(item)
            truncated = truncated or item.reason is SkipReason.CAP
    return Listing(os.fspath(root), tuple(files), tuple(skipped), truncated)


def loader_folder(path: str) -> str:
    """The folder a loader given ``path`` resolves names beside the file against (joblib's
    legacy companion files, modules on a loader's ``sys.path``): the folder part of the path
    as given, made absolute but not normalised. The OS resolves ``link/..`` physically, where
    ``os.path.abspath`` drops it lexically and names another folder (red team rtbenign)."""
    return os.path.join(os.getcwd(), os.path.dirname(path))


def open_regular(path: str | os.PathLike[str], *, follow_links: bool = False) -> int:
    """Open ``path`` read-only and return the descriptor, refusing anything but a regular file.

    The open never blocks (``O_NONBLOCK``: a FIFO is refused instead of waiting for a writer)
    and, unless ``follow_links``, never follows a final symbolic link (``O_NOFOLLOW``). The type
    check is made on the opened descriptor, so a swap between a check and the open cannot pass.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    spath = os.fspath(path)
    try:
        fd = os.open(spath, flags)
    except OSError as exc:
        if not follow_links and os.path.islink(spath):
            raise InputError(f"{spath} is a symbolic link; refusing to follow it") from None
        raise InputError(f"cannot open {spath}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise InputError(f"cannot examine {spath}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise InputError(f"{spath} is {_describe_special(st.st_mode)}, not a regular file")
    return fd


_DIR_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NONBLOCK", 0)
)


def open_folder(path: str | os.PathLike[str], *, follow_links: bool = False) -> int:
    """Open the folder ``path`` and return a descriptor for :func:`open_under`.

    Unless ``follow_links``, ``path`` itself must not be a symbolic link (``O_NOFOLLOW``).
    """
    spath = os.fspath(path)
    flags = _DIR_FLAGS | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    try:
        return os.open(spath, flags)
    except OSError as exc:
        if not follow_links and os.path.islink(spath):
            raise InputError(f"{spath} is a symbolic link; refusing to follow it") from None
        raise InputError(f"cannot open folder {spath}: {exc.strerror or exc}") from None


def open_under(root_fd: int, rel: str, *, display: str | None = None) -> int:
    """Open the regular file ``rel`` (relative, POSIX separators) below the folder ``root_fd``
    and return the descriptor; no component may be a symbolic link, ``..`` or empty.

    Each folder on the way is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one
    above it (``openat``), so what is opened is the file the walk saw below ``root_fd``, not
    whatever a concurrent rename or link points to now. ``display`` names the file in errors.
    """
    shown = display or rel
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InputError(f"{shown}: not a plain relative path")
    if os.open not in os.supports_dir_fd:  # pragma: no cover - every POSIX system has openat
        raise InputError(f"{shown}: this platform cannot open files relative to a folder")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    opened: list[int] = []
    try:
        current = root_fd
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = (
                os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
                if last
                else _DIR_FLAGS
            ) | nofollow
            try:
                fd = os.open(part, flags, dir_fd=current)
            except OSError as exc:
                where = "/".join(parts[: i + 1])
                try:
                    is_link = stat.S_ISLNK(os.lstat(part, dir_fd=current).st_mode)
                except OSError:
                    is_link = False
                if is_link:
                    raise InputError(
                        f"{shown}: {where} is a symbolic link; refusing to follow it"
                    ) from None
                raise InputError(f"cannot open {shown}: {exc.strerror or exc}") from None
            opened.append(fd)
            current = fd
        fd = opened.pop()
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise InputError(f"cannot examine {shown}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise InputError(f"{shown} is {_describe_special(st.st_mode)}, not a regular file")
        return fd
    finally:
        for fd in opened:
            os.close(fd)


def read_bounded(
    path: str | os.PathLike[str],
    max_bytes: int,
    *,
    what: str = "file",
    follow_links: bool = False,
) -> bytes:
    """Read a whole regular file of at most ``max_bytes`` bytes, safely (see :func:`open_regular`).

    Raises :class:`LimitExceeded` for a larger file (checked on the bytes actually read, not on
    ``st_size``) and :class:`InputError` for links, special files and read errors.
    """
    fd = open_regular(path, follow_links=follow_links)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise LimitExceeded(
                    f"{what} {os.fspath(path)} is larger than {max_bytes} bytes; not read"
                )
    except OSError as exc:
        raise InputError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)
