"""Manifests: per-file (or per-shard) digests of a model folder or file, and root digests.

Two root digests are computed from one manifest:

* :attr:`Manifest.root_digest` (mltrust's, binds names): SHA-256 over a length-prefixed
  encoding of every file record, in manifest order::

      b"mltrust-manifest-v1\\0"
      for each file:  lp(name_utf8) || u64(size) || lp(algorithm) || u32(n) || lp(d1) .. lp(dn)

  where ``lp(x) = u32(len(x)) || x`` (big-endian), ``algorithm`` is ``sha256``, ``blake3`` or
  ``<alg>-sharded-<shard_size>``, and ``d1..dn`` are the raw digests (one per file, or one per
  shard in offset order). The encoding is unambiguous, so renaming a file, moving bytes between
  files or changing the hash settings changes the root digest.
* :attr:`Manifest.compat_digest`: the OpenSSF model-signing subject digest, SHA-256 over the
  concatenated raw digests in manifest order. It does not bind names (a rename keeps it); we
  emit it only so that ``model_signing verify`` accepts our bundles.

Order: files sorted by their POSIX path components (``a/b`` before ``a.b``), shards by offset;
this is the order ``model_signing`` uses, so both tools list resources identically.

Listing uses :func:`mltrust.files.iter_walk`, the one walker every part of mltrust uses, so
the signer sees exactly what the scanner sees. On its report the signer decides: a symbolic
link is refused (:class:`SymlinkError`) unless ``allow_symlinks`` and it stays inside the
folder; a FIFO, socket or device, an unreadable folder or the file-count cap
(``Limits.max_model_files``) is an error, never a silent skip.

Files changed while hashing are refused (sign and verify alike). Each file is hashed from
one opened descriptor; its ``fstat`` must match the listing (inode, size, mtime_ns) before the
first byte is read, and after the last byte the descriptor's ``fstat`` (size, mtime_ns,
ctime_ns) and the path's ``lstat`` (inode, size, mtime_ns) must still match. So a same-size
edit, an append, a truncation or an atomic rename over the file during hashing fails instead of
yielding a digest of bytes that are no longer on disk. Not detected: a write that leaves every
one of those fields equal (within the file system's timestamp granularity, a few ms at most,
by a writer able to reset mtime; ctime cannot be reset without root).

Hashing runs on a thread pool (one thread per core). Each thread reads with ``os.preadv`` into
its own preallocated buffer and feeds ``hashlib``/``blake3``; both release the GIL, so the
work spreads over the cores with memory bounded by ``threads x BLOCK``.

With an ``executor`` (``sign --ray``) the listing and the manifest are still made here; only
the byte ranges are hashed elsewhere, in batches of paths and offsets, by :func:`hash_jobs`
(the same :class:`_Hasher` code on one thread, so each task holds one ``BLOCK`` buffer). The
digests come back as hex strings, so the manifest, and the signature over it, are the local
ones exactly.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import hashlib
import mmap
import os
import stat
import struct
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from mltrust.config import Limits
from mltrust.errors import ConfigError, Error, InputError, LimitExceeded
from mltrust.files import Entry, SkipReason, iter_walk

if TYPE_CHECKING:
    from mltrust.executors import Executor

__all__ = [
    "ATTESTATION_KINDS",
    "ATTESTATION_PREDICATES",
    "DEFAULT_IGNORES",
    "GIT_IGNORES",
    "HASH_ALGORITHMS",
    "MLTRUST_FILES",
    "OWN_FILES",
    "FileChangedError",
    "FileEntry",
    "HashProgress",
    "Manifest",
    "StreamDigest",
    "SymlinkError",
    "build_manifest",
    "digest_bytes",
    "expand_ignore",
    "hash_jobs",
]

#: Paths model-signing ignores by default when signing and verifying (it records them in the
#: signed ``ignore_paths``, and so do we, so that both tools agree on a git checkout).
GIT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
#: Kinds of attestation mltrust writes beside a model (``attest scan|provenance|tuning``).
ATTESTATION_KINDS: tuple[str, ...] = ("scan", "provenance", "tuning")
#: The predicate type each kind of attestation bundle must hold (``<kind>.bundle.json``).
ATTESTATION_PREDICATES: dict[str, str] = {
    "scan": "https://mltrust.dev/scan/v1",
    "provenance": "https://slsa.dev/provenance/v1",
    "tuning": "https://mltrust.dev/tuning/v1",
}
#: The exact files mltrust itself writes inside a model folder after signing it: attestation
#: bundles and the default evidence store. Only these are left out of a folder's manifest by
#: every signer and verifier; any other file under ``.mltrust/`` is part of the model.
MLTRUST_FILES: tuple[str, ...] = (
    *(f".mltrust/attestations/{kind}.bundle.json" for kind in ATTESTATION_KINDS),
    ".mltrust/evidence.db",
    ".mltrust/evidence.db-journal",
    ".mltrust/evidence.db-wal",
    ".mltrust/evidence.db-shm",
)
#: Names only ever ignored as an exact regular file (never as a folder prefix): mltrust's own
#: files and the default signature file name.
OWN_FILES: frozenset[str] = frozenset((*MLTRUST_FILES, "model.sig"))
#: Paths ignored in every folder manifest we sign (recorded in the signed payload).
DEFAULT_IGNORES: tuple[str, ...] = (*GIT_IGNORES, *MLTRUST_FILES)
HASH_ALGORITHMS: tuple[str, ...] = ("sha256", "blake3")
#: Bytes read per system call by each hashing thread: small enough that the block just read
#: is still in the core's L2 cache when it is hashed, large enough to amortise the syscall.
BLOCK = 256 * 1024
_ROOT_TAG = b"mltrust-manifest-v1\0"
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_LIMITS = Limits()

_fd_flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class SymlinkError(InputError):
    """A symbolic link was found where none is allowed (or it leaves the model folder)."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a manifest.

    ``digests`` holds one hex digest for a whole file, or one per shard (offset order).
    ``mtime_ns``, ``ctime_ns`` and ``ino`` are stat hints for ``--reuse`` only; they are not
    part of equality.
    """

    name: str
    size: int
    algorithm: str
    digests: tuple[str, ...]
    mtime_ns: int = field(default=0, compare=False)
    ctime_ns: int = field(default=0, compare=False)
    ino: int = field(default=0, compare=False)
    #: Whether anyone may execute the file (the one mode bit git keeps, so it survives a
    #: clone or copy); None when a signature did not record it (model_signing's).
    executable: bool | None = field(default=None, compare=False)

    @property
    def digest(self) -> str:
        """The file's digest (for sharded files: a hash of the shard digests, for display)."""
        if len(self.digests) == 1:
            return self.digests[0]
        return hashlib.sha256(b"".join(bytes.fromhex(d) for d in self.digests)).hexdigest()


@dataclass(frozen=True, slots=True)
class Manifest:
    """The digests of a model folder (or one file) and the settings used to compute them."""

    name: str
    hash_algorithm: str
    files: tuple[FileEntry, ...]
    ignore: tuple[str, ...] = ()
    shard_size: int | None = None
    allow_symlinks: bool = False
    single_file: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def root_digest(self) -> str:
        """mltrust's root digest (hex SHA-256): binds names, sizes and contents."""
        u32, u64 = _U32.pack, _U64.pack
        algorithms: dict[str, bytes] = {}
        parts: list[bytes] = [_ROOT_TAG]
        add = parts.append
        for f in self.files:
            name = f.name.encode("utf-8")
            alg = algorithms.get(f.algorithm)
            if alg is None:
                alg = algorithms[f.algorithm] = _lp(f.algorithm.encode("ascii"))
            add(u32(len(name)))
            add(name)
            add(u64(f.size))
            add(alg)
            add(u32(len(f.digests)))
            for d in f.digests:
                raw = bytes.fromhex(d)
                add(u32(len(raw)))
                add(raw)
        return hashlib.sha256(b"".join(parts)).hexdigest()

    @property
    def compat_digest(self) -> str:
        """model-signing's subject digest: SHA-256 of the raw digests only (no names)."""
        h = hashlib.sha256()
        for _name, _alg, digest in self.resources():
            h.update(bytes.fromhex(digest))
        return h.hexdigest()

    def resources(self) -> list[tuple[str, str, str]]:
        """(resource name, algorithm, hex digest) in model-signing's order and naming."""
        out: list[tuple[str, str, str]] = []
        for f in self.files:
            name = "." if self.single_file else f.name
            if self.shard_size is None:
                out.append((name, f.algorithm, f.digests[0]))
            else:
                for i, d in enumerate(self.digests_ranges(f)):
                    out.append((f"{name}:{d[0]}:{d[1]}", f.algorithm, f.digests[i]))
        return out

    def digests_ranges(self, f: FileEntry) -> list[tuple[int, int]]:
        return _shard_ranges(f.size, self.shard_size)

    def serialization(self) -> dict[str, object]:
        """The model-signing ``serialization`` block describing how to recompute this manifest."""
        out: dict[str, object] = {
            "method": "files" if self.shard_size is None else "shards",
            "hash_type": self.hash_algorithm,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.shard_size is not None:
            out["shard_size"] = self.shard_size
        if self.ignore:
            out["ignore_paths"] = list(self.ignore)
        return out

    def by_name(self) -> dict[str, FileEntry]:
        return {f.name: f for f in self.files}


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def sort_key(name: str) -> tuple[str, ...]:
    """model-signing's order: by path components, so ``a/b`` sorts before ``a.b``.

    Names here are normalised relative POSIX paths (no ``//``, ``.`` or trailing ``/``), for
    which splitting on ``/`` gives ``PurePosixPath(name).parts`` at a fraction of the cost.
    """
    return tuple(name.split("/"))


def algorithm_name(hash_algorithm: str, shard_size: int | None) -> str:
    if shard_size is None:
        return hash_algorithm
    return f"{hash_algorithm}-sharded-{shard_size}"


def _shard_ranges(size: int, shard_size: int | None) -> list[tuple[int, int]]:
    if shard_size is None:
        return [(0, size)]
    if size == 0:
        return [(0, 0)]
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]


def digest_bytes(data: bytes | memoryview, hash_algorithm: str, shard_size: int | None) -> str:
    """The digest a manifest records for a file holding ``data`` (:attr:`FileEntry.digest`):
    the hex digest of the bytes, or for sharded manifests the SHA-256 of the shard digests."""
    if hash_algorithm not in HASH_ALGORITHMS:
        raise ConfigError(f"unknown hash algorithm {hash_algorithm!r}")
    view = memoryview(data).cast("B")

    def one(part: memoryview) -> str:
        if hash_algorithm == "sha256":
            return hashlib.sha256(part).hexdigest()
        import blake3

        out: str = blake3.blake3(part).hexdigest()
        return out

    digests = [one(view[a:b]) for a, b in _shard_ranges(len(view), shard_size)]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()


class StreamDigest:
    """:func:`digest_bytes` computed over bytes fed in pieces (``update``), for a file that is
    read once, e.g. while it is uploaded, so the bytes sent are the bytes checked."""

    def __init__(self, hash_algorithm: str, shard_size: int | None) -> None:
        if hash_algorithm not in HASH_ALGORITHMS:
            raise ConfigError(f"unknown hash algorithm {hash_algorithm!r}")
        if shard_size is not None and shard_size <= 0:
            raise ConfigError("the shard size must be positive")
        self._algorithm = hash_algorithm
        self._shard = shard_size
        self._shards: list[bytes] = []
        self._current = self._new()
        self._filled = 0

    def _new(self) -> Any:
        if self._algorithm == "sha256":
            return hashlib.sha256()
        import blake3

        return blake3.blake3()

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            if self._shard is not None and self._filled == self._shard:
                self._shards.append(self._current.digest())
                self._current, self._filled = self._new(), 0
            take = len(view) if self._shard is None else min(len(view), self._shard - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]

    def hexdigest(self) -> str:
        digests = [*self._shards, self._current.digest()]
        if len(digests) == 1:
            out: str = self._current.hexdigest()
            return out
        return hashlib.sha256(b"".join(digests)).hexdigest()


_GLOB_CHARS = frozenset("*?[")


def expand_ignore(root: str | Path, entries: Iterable[str]) -> list[str]:
    """Turn ignore patterns into the concrete relative paths they match under ``root``.

    Entries without ``*``, ``?`` or ``[`` are kept as they are (a path prefix). A pattern is
    matched with :func:`fnmatch.fnmatchcase` against every relative path (``*`` also matches
    ``/``) and every folder above it, on the listing of :func:`mltrust.files.iter_walk` (links
    not followed). Signing records the *expanded* paths, so verifiers
    (model-signing included) need no glob support, and a file created later that matches the
    pattern is reported as added instead of being silently ignored.
    """
    plain: list[str] = []
    patterns: list[str] = []
    for raw in entries:
        text = str(raw).replace("\\", "/").strip()
        (patterns if _GLOB_CHARS & set(text) else plain).append(text)
    if not patterns or not Path(root).is_dir():
        return plain
    matched: set[str] = set()
    for item in iter_walk(root):
        parts = item.rel.split("/")
        # A pattern names the shortest matching path: a folder it matches covers its files.
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if any(fnmatch.fnmatchcase(prefix, p) for p in patterns):
                matched.add(prefix)
                break
    return plain + sorted(matched)


def normalize_ignore(entries: Iterable[str]) -> tuple[str, ...]:
    """Validate ignore entries: relative POSIX paths inside the root, no ``..``, deduplicated."""
    out: list[str] = []
    for raw in entries:
        text = str(raw).replace("\\", "/").strip()
        while text.startswith("./"):
            text = text[2:]
        text = text.rstrip("/")
        if not text or text == ".":
            raise ConfigError(f"ignore entry {raw!r} would ignore the whole model")
        parts = PurePosixPath(text).parts
        if text.startswith("/") or ".." in parts:
            raise ConfigError(f"ignore entry {raw!r} must be a relative path inside the model")
        norm = "/".join(parts)
        if norm not in out:
            out.append(norm)
    return tuple(sorted(out))


def is_ignored(rel: str, ignore: Collection[str]) -> bool:
    """Whether ``rel`` or a folder above it is in ``ignore`` (pass a set for speed)."""
    if rel in ignore:
        return True
    i = rel.find("/")
    while i != -1:
        if rel[:i] in ignore:
            return True
        i = rel.find("/", i + 1)
    return False


class HashProgress(Protocol):
    """Receives hashing progress; ``advance`` is called from the hashing threads."""

    def start(self, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


@dataclass(frozen=True, slots=True)
class _Job:
    path: str
    name: str
    start: int
    end: int
    #: What the listing saw: the opened file must still be this one, unchanged.
    size: int
    mtime_ns: int
    ino: int


@dataclass(frozen=True, slots=True)
class _Listed:
    rel: str
    path: str
    size: int
    mtime_ns: int
    ino: int


class FileChangedError(InputError):
    """A file changed (content, size, times or identity) while it was being hashed."""


def _list_files(
    root: Path,
    ignore: Sequence[str],
    allow_symlinks: bool,
    max_files: int,
    exact: Collection[str] = (),
) -> list[_Listed]:
    """Every regular file under root that is not ignored, from the one walker's report.

    Two kinds of ignore entry: a user's ``--ignore`` entry names a file or a folder (matched
    by path prefix); mltrust's own files (:data:`MLTRUST_FILES`, ``model.sig``, and the
    ``exact`` names a caller adds: the signature and state files it writes) are left out only
    when the entry at exactly that relative path is a *regular file*. A folder, link or FIFO
    with one of those names, and anything under it, is listed like any other entry (an extra
    file, or an error), so a name mltrust reserves cannot hide content.
    """
    real_root = os.path.realpath(root)
    found: list[_Listed] = []
    ignored = frozenset(ignore)
    exact_names = frozenset(exact) | (ignored & OWN_FILES)
    prefixes = ignored - exact_names
    for item in iter_walk(root, max_files=max_files):
        rel = item.rel
        # The entry type is checked before an exact name is honoured.
        if rel in exact_names and isinstance(item, Entry):
            continue
        if prefixes and is_ignored(rel, prefixes):
            continue
        if "\n" in rel or "\0" in rel:
            raise InputError(f"file name with a control character: {rel!r}")
        if isinstance(item, Entry):
            found.append(_Listed(rel, item.path, item.size, item.mtime_ns, item.inode))
            continue
        reason = item.reason
        if reason is SkipReason.SYMLINK:
            found.append(_resolve_link(rel, item.path, real_root, allow_symlinks))
        elif reason is SkipReason.CAP:
            raise LimitExceeded(
                f"more than {max_files} files in {root}; nothing was signed or verified",
                hint="raise Limits.max_model_files, or sign a smaller folder",
            )
        elif reason is SkipReason.SPECIAL:
            raise InputError(f"not a regular file: {rel} ({item.detail})")
        else:
            raise InputError(f"cannot read {rel}: {item.detail}")
    found.sort(key=lambda f: sort_key(f.rel))
    return found


def _resolve_link(rel: str, path: str, real_root: str, allow_symlinks: bool) -> _Listed:
    if not allow_symlinks:
        raise SymlinkError(
            f"symbolic link in model: {rel}",
            hint="symlinks are refused; replace the link with the file it points to",
        )
    target = os.path.realpath(path)
    if os.path.commonpath([real_root, target]) != real_root:
        raise SymlinkError(f"symbolic link points outside the model: {rel}")
    try:
        st = os.stat(target, follow_symlinks=False)
    except OSError as exc:
        raise InputError(f"broken symbolic link: {rel}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"symbolic link to a folder: {rel}")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"symbolic link to a special file: {rel}")
    return _Listed(rel, target, st.st_size, st.st_mtime_ns, st.st_ino)


def _ctime_ns(path: str) -> int:
    try:
        return os.stat(path, follow_symlinks=False).st_ctime_ns
    except OSError:
        return -1


_HUGE = 2 * 1024 * 1024
#: Files smaller than this are read in one or two calls; read-ahead advice would only add a
#: system call per file.
_FADVISE_MIN = 1024 * 1024
#: Jobs of at most this many bytes are handed to the thread pool in batches of
#: :data:`_BATCH`: one task per small file would cost more in scheduling than in hashing.
_SMALL_JOB = 256 * 1024
_BATCH = 64


def _read_buffer(size: int) -> memoryview:
    """A writable buffer of ``size`` bytes for ``preadv``, backed by a transparent huge page
    when the kernel allows it (``MADV_HUGEPAGE``). Copying from the page cache into, and
    hashing from, a huge-page buffer costs about a third less CPU than a 4 KiB-page one (TLB
    misses), measured on the benchmark machine. Falls back to a plain ``bytearray``.
    """
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or size > _HUGE:
        return memoryview(bytearray(size))
    try:
        region = mmap.mmap(-1, 2 * _HUGE)
        region.madvise(advice)
        anchor = ctypes.c_char.from_buffer(region)
        address = ctypes.addressof(anchor)
        del anchor
    except (OSError, ValueError, TypeError):
        return memoryview(bytearray(size))
    offset = (-address) % _HUGE  # the 2 MiB-aligned start inside the region
    return memoryview(region)[offset : offset + size]


class _Hasher:
    """Hashes byte ranges of files on a thread pool; one preallocated buffer per thread."""

    def __init__(
        self,
        hash_algorithm: str,
        threads: int,
        block: int,
        progress: HashProgress | None = None,
    ) -> None:
        self._progress = progress
        self._alg = hash_algorithm
        self._block = block
        self._threads = threads
        self._local = threading.local()

    def _new(self) -> Callable[[], object]:
        if self._alg == "sha256":
            return hashlib.sha256
        import blake3

        return lambda: blake3.blake3(max_threads=1)

    def _buffer(self) -> memoryview:
        view: memoryview | None = getattr(self._local, "view", None)
        if view is None:
            view = _read_buffer(self._block)
            self._local.view = view
        return view

    def hash_range(self, job: _Job) -> tuple[str, int, bool]:
        """Hash ``job``'s byte range from one descriptor; (hex digest, ctime_ns, executable).

        Raises :class:`FileChangedError` when the file is not the one listed, or changed
        while it was read (see the module docstring).
        """
        view = self._buffer()
        h = self._new()()
        try:
            fd = os.open(job.path, _fd_flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SymlinkError(f"symbolic link in model: {job.name}") from exc
            raise InputError(f"cannot open {job.name}: {exc.strerror or exc}") from exc
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise InputError(f"not a regular file: {job.name}")
            if (before.st_ino, before.st_size, before.st_mtime_ns) != (
                job.ino,
                job.size,
                job.mtime_ns,
            ):
                raise FileChangedError(f"file changed after it was listed: {job.name}")
            if job.start == 0 and job.size >= _FADVISE_MIN and hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            pos = job.start
            while pos < job.end:
                want = min(self._block, job.end - pos)
                n = os.preadv(fd, [view[:want]], pos)
                if n <= 0:
                    raise FileChangedError(f"file shrank while hashing: {job.name}")
                h.update(view[:n])  # type: ignore[attr-defined]
                if self._progress is not None:
                    self._progress.advance(n)
                pos += n
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns, after.st_ctime_ns) != (
                before.st_size,
                before.st_mtime_ns,
                before.st_ctime_ns,
            ):
                raise FileChangedError(f"file changed while hashing: {job.name}")
        except OSError as exc:
            raise InputError(f"cannot read {job.name}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)
        try:
            now = os.stat(job.path, follow_symlinks=False)
        except OSError as exc:
            raise FileChangedError(f"file removed or renamed while hashing: {job.name}") from exc
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (job.ino, job.size, job.mtime_ns):
            raise FileChangedError(f"file replaced or changed while hashing: {job.name}")
        digest: str = h.hexdigest()  # type: ignore[attr-defined]
        return digest, before.st_ctime_ns, bool(before.st_mode & 0o111)

    def run(self, jobs: list[_Job]) -> list[tuple[str, int, bool]]:
        if not jobs:
            return []
        # Largest first keeps both cores busy to the end (LPT scheduling).
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].end - jobs[i].start)
        order.reverse()
        results: list[tuple[str, int, bool]] = [("", 0, False)] * len(jobs)
        workers = max(1, min(self._threads, len(jobs)))
        if workers == 1:
            for i in order:
                results[i] = self.hash_range(jobs[i])
            return results
        batches: list[list[int]] = []
        small: list[int] = []
        for i in order:
            if jobs[i].end - jobs[i].start > _SMALL_JOB:
                batches.append([i])
            else:
                small.append(i)
                if len(small) == _BATCH:
                    batches.append(small)
                    small = []
        if small:
            batches.append(small)

        def work(batch: list[int]) -> None:
            for i in batch:
                results[i] = self.hash_range(jobs[i])

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mltrust-hash") as pool:
            for fut in [pool.submit(work, b) for b in batches]:
                fut.result()
        return results


#: One unit of hashing work as an executor sees it: a byte range of a file as it was listed.
HashJob = _Job
#: Batches sent to an executor: at most this many ranges, or this many bytes (a big file alone).
_BATCH_JOBS = 64
_BATCH_BYTES = 512 * 1024 * 1024


def hash_jobs(hash_algorithm: str, jobs: Sequence[HashJob]) -> list[tuple[str, int, bool]]:
    """Hash ``jobs`` in this process on one thread: what a remote executor's task runs."""
    return _Hasher(hash_algorithm, 1, BLOCK).run(list(jobs))


def _span(job: object) -> int:
    """Bytes in one job (a ``_Job``, or a tuple whose first item is one)."""
    inner = job[0] if isinstance(job, tuple) else job
    if not isinstance(inner, _Job):
        raise TypeError(f"not a hashing job: {type(inner).__name__}")
    return inner.end - inner.start


def _batches(jobs: Sequence[object]) -> list[list[int]]:
    out: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, job in enumerate(jobs):
        n = _span(job)
        if current and (len(current) >= _BATCH_JOBS or size + n > _BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(i)
        size += n
    if current:
        out.append(current)
    return out


def _hash_on(
    executor: Executor,
    hash_algorithm: str,
    jobs: list[HashJob],
    progress: HashProgress | None,
) -> list[tuple[str, int, bool]]:
    """Hash ``jobs`` in batches on ``executor``; results in ``jobs`` order, each exactly what
    :meth:`_Hasher.run` gives locally. A batch that fails re-raises its task's mltrust error,
    or raises an :class:`InputError`: nothing is signed."""
    from functools import partial

    from mltrust.executors import Failed

    batches = _batches(jobs)
    work = partial(hash_jobs, hash_algorithm)
    results: list[Any] = [None] * len(jobs)
    items = [[jobs[i] for i in batch] for batch in batches]
    for index, outcome in executor.map_unordered(work, items):
        if isinstance(outcome, Failed):
            if isinstance(outcome.error, Error):
                raise outcome.error
            raise InputError(f"hashing on {executor.name} failed: {outcome.message}")
        batch = batches[index]
        if len(outcome) != len(batch):
            raise InputError(f"hashing on {executor.name} returned {len(outcome)} results")
        for i, result in zip(batch, outcome, strict=True):
            results[i] = result
        if progress is not None:
            progress.advance(sum(_span(jobs[i]) for i in batch))
    if any(r is None for r in results):
        raise InputError(f"hashing on {executor.name} left ranges without a digest")
    return results


def _threads() -> int:
    """Hashing threads: ``MLTRUST_HASH_THREADS``, else two per usable core (at most 16).

    Two per core, not one, evens out files of unequal sizes (five equal files on two cores
    finish in 2.5 file-times instead of 3) and costs nothing measurable when the cores are
    idle; memory stays bounded at one 2 MiB buffer per thread.
    """
    env = os.environ.get("MLTRUST_HASH_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError as exc:
            raise ConfigError(f"MLTRUST_HASH_THREADS must be an integer, not {env!r}") from exc
    count = os.process_cpu_count() if hasattr(os, "process_cpu_count") else None
    if count is None:
        try:
            count = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            count = os.cpu_count() or 1
    return max(1, min(2 * count, 16))


def build_manifest(
    path: str | Path,
    *,
    hash_algorithm: str = "sha256",
    ignore: Sequence[str] = (),
    reuse: Manifest | None = None,
    shard_size: int | None = None,
    allow_symlinks: bool = False,
    name: str | None = None,
    default_ignores: bool = True,
    progress: HashProgress | None = None,
    limits: Limits | None = None,
    executor: Executor | None = None,
    exact_ignore: Sequence[str] = (),
) -> Manifest:
    """Hash a model folder (or one file) into a :class:`Manifest`.

    ``ignore`` holds relative paths (a file or a folder, matched by path prefix); the defaults
    (``.git*`` and the exact files mltrust writes, :data:`DEFAULT_IGNORES`) are added unless
    ``default_ignores`` is false. Entries of :data:`OWN_FILES` and of ``exact_ignore`` (the
    caller's own signature/state files; not recorded in the manifest) match only a regular
    file at exactly that path, never a folder, link or special file.
    ``reuse`` is the manifest of a previously *verified* signature: a file whose size, inode,
    mtime_ns and ctime_ns are unchanged keeps its recorded digests instead of being re-read
    (``--reuse``).
    ``progress`` is told the bytes to hash, then each block hashed (from the hashing threads).
    ``executor`` hashes the byte ranges elsewhere (``sign --ray``); the listing stays here.
    """
    if hash_algorithm not in HASH_ALGORITHMS:
        raise ConfigError(
            f"unknown hash algorithm {hash_algorithm!r}; choose one of {', '.join(HASH_ALGORITHMS)}"
        )
    if hash_algorithm == "blake3":
        try:
            import blake3  # noqa: F401
        except ImportError as exc:
            raise ConfigError("BLAKE3 needs the blake3 package (pip install blake3)") from exc
    if shard_size is not None and shard_size <= 0:
        raise ConfigError(f"shard size must be positive, not {shard_size}")
    root = Path(path)
    try:
        st = os.stat(root, follow_symlinks=False)
    except FileNotFoundError as exc:
        raise InputError(f"no such file or folder: {root}") from exc
    except OSError as exc:
        raise InputError(f"cannot read {root}: {exc.strerror or exc}") from exc
    if stat.S_ISLNK(st.st_mode):
        raise SymlinkError(f"refusing to sign or verify through a symbolic link: {root}")
    algorithm = algorithm_name(hash_algorithm, shard_size)
    model_name = name or root.resolve().name or "model"
    listing: list[_Listed]
    if stat.S_ISREG(st.st_mode):
        listing = [_Listed(root.name, str(root), st.st_size, st.st_mtime_ns, st.st_ino)]
        norm_ignore: tuple[str, ...] = ()
        single = True
    elif stat.S_ISDIR(st.st_mode):
        norm_ignore = normalize_ignore([*(DEFAULT_IGNORES if default_ignores else ()), *ignore])
        max_files = (limits or _LIMITS).max_model_files
        exact = normalize_ignore(exact_ignore) if exact_ignore else ()
        listing = _list_files(root, norm_ignore, allow_symlinks, max_files, exact)
        single = False
    else:
        raise InputError(f"not a regular file or folder: {root}")
    # Names are recorded as UTF-8: a name the file system holds as other bytes (shown by
    # Python as lone surrogates) cannot be signed faithfully, so it is refused by name.
    for text in (model_name, *(item.rel for item in listing)):
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(
                    f"file name is not valid UTF-8: {os.fsencode(text)!r}",
                    hint="rename it, or leave it out with --ignore",
                ) from None

    previous: Mapping[str, FileEntry] = {}
    if reuse is not None and reuse.files and reuse.files[0].algorithm == algorithm:
        previous = reuse.by_name()

    jobs: list[_Job] = []
    plan: list[tuple[_Listed, FileEntry | None, int, int]] = []
    for item in listing:
        old = previous.get(item.rel) if previous else None
        if (
            old is not None
            and old.size == item.size
            and old.mtime_ns == item.mtime_ns
            and old.ino == item.ino
            and old.mtime_ns != 0
            and old.ctime_ns == _ctime_ns(item.path)
        ):
            plan.append((item, old, -1, 0))
            continue
        first = len(jobs)
        if shard_size is None:
            jobs.append(_Job(item.path, item.rel, 0, item.size, item.size, item.mtime_ns, item.ino))
        else:
            for start, end in _shard_ranges(item.size, shard_size):
                jobs.append(
                    _Job(item.path, item.rel, start, end, item.size, item.mtime_ns, item.ino)
                )
        plan.append((item, None, first, len(jobs) - first))

    if progress is not None:
        progress.start(sum(job.end - job.start for job in jobs))
    if executor is None:
        results = _Hasher(hash_algorithm, _threads(), BLOCK, progress).run(jobs)
    else:
        results = _hash_on(executor, hash_algorithm, jobs, progress)
    files: list[FileEntry] = []
    for item, old, first, count in plan:
        if old is not None:
            files.append(old)
            continue
        digest, ctime_ns, executable = results[first]
        digests = (digest,) if count == 1 else tuple(r[0] for r in results[first : first + count])
        files.append(
            FileEntry(
                name=item.rel,
                size=item.size,
                algorithm=algorithm,
                digests=digests,
                mtime_ns=item.mtime_ns,
                ctime_ns=ctime_ns,
                ino=item.ino,
                executable=executable,
            )
        )
    return Manifest(
        name=model_name,
        hash_algorithm=hash_algorithm,
        files=tuple(files),
        ignore=norm_ignore,
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        single_file=single,
    )
