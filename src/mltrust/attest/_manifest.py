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
import hashlib
import mmap
import os
import stat
import struct
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from mltrust.errors import ConfigError, Error, InputError

if TYPE_CHECKING:
    from mltrust.executors import Executor

__all__ = [
    "DEFAULT_IGNORES",
    "GIT_IGNORES",
    "HASH_ALGORITHMS",
    "FileEntry",
    "HashProgress",
    "Manifest",
    "SymlinkError",
    "build_manifest",
    "expand_ignore",
    "hash_jobs",
]

#: Paths model-signing always ignores when verifying.
GIT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
#: Paths ignored in every folder manifest we sign (recorded in the signed payload).
DEFAULT_IGNORES: tuple[str, ...] = (*GIT_IGNORES, ".mltrust")
HASH_ALGORITHMS: tuple[str, ...] = ("sha256", "blake3")
#: Bytes read per system call by each hashing thread: small enough that the block just read
#: is still in the core's L2 cache when it is hashed, large enough to amortise the syscall.
BLOCK = 256 * 1024
_ROOT_TAG = b"mltrust-manifest-v1\0"

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
        h = hashlib.sha256(_ROOT_TAG)
        for f in self.files:
            h.update(_lp(f.name.encode("utf-8")))
            h.update(struct.pack(">Q", f.size))
            h.update(_lp(f.algorithm.encode("ascii")))
            h.update(struct.pack(">I", len(f.digests)))
            for d in f.digests:
                h.update(_lp(bytes.fromhex(d)))
        return h.hexdigest()

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
    """model-signing's order: by path components, so ``a/b`` sorts before ``a.b``."""
    return PurePosixPath(name).parts


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


_GLOB_CHARS = frozenset("*?[")


def expand_ignore(root: str | Path, entries: Iterable[str]) -> list[str]:
    """Turn ignore patterns into the concrete relative paths they match under ``root``.

    Entries without ``*``, ``?`` or ``[`` are kept as they are (a path prefix). A pattern is
    matched with :func:`fnmatch.fnmatchcase` against every relative path (``*`` also matches
    ``/``), without following symlinks. Signing records the *expanded* paths, so verifiers
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
    import fnmatch

    matched: list[str] = []
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries_here = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list {folder}: {exc.strerror or exc}") from exc
        for entry in entries_here:
            rel = f"{prefix}{entry.name}"
            if any(fnmatch.fnmatchcase(rel, p) for p in patterns):
                matched.append(rel)
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, rel + "/"))
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


def is_ignored(rel: str, ignore: Sequence[str]) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in ignore)


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


def _list_files(
    root: Path, ignore: Sequence[str], allow_symlinks: bool
) -> list[tuple[str, str, os.stat_result]]:
    """(relative name, absolute path, stat) of every regular file under root, not ignored."""
    real_root = os.path.realpath(root)
    found: list[tuple[str, str, os.stat_result]] = []
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise InputError(f"cannot list {folder}: {exc.strerror or exc}") from exc
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            if is_ignored(rel, ignore):
                continue
            if "\n" in rel or "\0" in rel:
                raise InputError(f"file name with a control character: {rel!r}")
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError as exc:
                raise InputError(f"cannot stat {entry.path}: {exc.strerror or exc}") from exc
            if stat.S_ISLNK(st.st_mode):
                if not allow_symlinks:
                    raise SymlinkError(
                        f"symbolic link in model: {rel}",
                        hint="symlinks are refused; replace the link with the file it points to",
                    )
                target = os.path.realpath(entry.path)
                if os.path.commonpath([real_root, target]) != real_root:
                    raise SymlinkError(f"symbolic link points outside the model: {rel}")
                try:
                    st = os.stat(target)
                except OSError as exc:
                    raise InputError(f"broken symbolic link: {rel}") from exc
                if stat.S_ISDIR(st.st_mode):
                    raise InputError(f"symbolic link to a folder: {rel}")
                if stat.S_ISREG(st.st_mode):
                    found.append((rel, target, st))
                    continue
                raise InputError(f"symbolic link to a special file: {rel}")
            if stat.S_ISDIR(st.st_mode):
                stack.append((entry.path, rel + "/"))
            elif stat.S_ISREG(st.st_mode):
                found.append((rel, entry.path, st))
            else:
                raise InputError(f"not a regular file: {rel}")
    found.sort(key=lambda item: sort_key(item[0]))
    return found


_HUGE = 2 * 1024 * 1024


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

    def hash_range(self, job: _Job, expect_size: int) -> str:
        view = self._buffer()
        h = self._new()()
        try:
            fd = os.open(job.path, _fd_flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise SymlinkError(f"symbolic link in model: {job.name}") from exc
            raise InputError(f"cannot open {job.name}: {exc.strerror or exc}") from exc
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"not a regular file: {job.name}")
            if st.st_size != expect_size:
                raise InputError(f"file changed size while hashing: {job.name}")
            if job.start == 0 and hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            pos = job.start
            while pos < job.end:
                want = min(self._block, job.end - pos)
                n = os.preadv(fd, [view[:want]], pos)
                if n <= 0:
                    raise InputError(f"file shrank while hashing: {job.name}")
                h.update(view[:n])  # type: ignore[attr-defined]
                if self._progress is not None:
                    self._progress.advance(n)
                pos += n
        finally:
            os.close(fd)
        digest: str = h.hexdigest()  # type: ignore[attr-defined]
        return digest

    def run(self, jobs: list[tuple[_Job, int]]) -> list[str]:
        if not jobs:
            return []
        # Largest first keeps both cores busy to the end (LPT scheduling).
        order = sorted(range(len(jobs)), key=lambda i: jobs[i][0].end - jobs[i][0].start)
        order.reverse()
        results: list[str] = [""] * len(jobs)
        workers = max(1, min(self._threads, len(jobs)))
        if workers == 1:
            for i in order:
                results[i] = self.hash_range(*jobs[i])
            return results
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mltrust-hash") as pool:
            futures = {i: pool.submit(self.hash_range, *jobs[i]) for i in order}
            for i, fut in futures.items():
                results[i] = fut.result()
        return results


#: One unit of hashing work as an executor sees it: a byte range and the size the file had.
HashJob = tuple[_Job, int]
#: Batches sent to an executor: at most this many ranges, or this many bytes (a big file alone).
_BATCH_JOBS = 64
_BATCH_BYTES = 512 * 1024 * 1024


def hash_jobs(hash_algorithm: str, jobs: Sequence[HashJob]) -> list[str]:
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
) -> list[str]:
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
    executor: Executor | None = None,
) -> Manifest:
    """Hash a model folder (or one file) into a :class:`Manifest`.

    ``ignore`` holds relative paths (a file or a folder, matched by path prefix); the defaults
    (``.git``, ``.mltrust``, ...) are added unless ``default_ignores`` is false. ``reuse`` is
    the manifest of a previously *verified* signature: a file whose size, inode, mtime_ns and
    ctime_ns are unchanged keeps its recorded digests instead of being re-read (``--reuse``).
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
    if stat.S_ISREG(st.st_mode):
        listing = [(root.name, str(root), st)]
        norm_ignore: tuple[str, ...] = ()
        single = True
    elif stat.S_ISDIR(st.st_mode):
        norm_ignore = normalize_ignore([*(DEFAULT_IGNORES if default_ignores else ()), *ignore])
        listing = _list_files(root, norm_ignore, allow_symlinks)
        single = False
    else:
        raise InputError(f"not a regular file or folder: {root}")

    previous: Mapping[str, FileEntry] = {}
    if reuse is not None and reuse.files and reuse.files[0].algorithm == algorithm:
        previous = reuse.by_name()

    jobs: list[tuple[_Job, int]] = []
    plan: list[tuple[str, os.stat_result, FileEntry | None, int]] = []
    for rel, abspath, fst in listing:
        old = previous.get(rel)
        if (
            old is not None
            and old.size == fst.st_size
            and old.mtime_ns == fst.st_mtime_ns
            and old.ctime_ns == fst.st_ctime_ns
            and old.ino == fst.st_ino
            and old.mtime_ns != 0
        ):
            plan.append((rel, fst, old, -1))
            continue
        first = len(jobs)
        for start, end in _shard_ranges(fst.st_size, shard_size):
            jobs.append((_Job(abspath, rel, start, end), fst.st_size))
        plan.append((rel, fst, None, first))

    if progress is not None:
        progress.start(sum(job.end - job.start for job, _size in jobs))
    if executor is None:
        digests = _Hasher(hash_algorithm, _threads(), BLOCK, progress).run(jobs)
    else:
        digests = _hash_on(executor, hash_algorithm, jobs, progress)
    files: list[FileEntry] = []
    for rel, fst, old, first in plan:
        if old is not None:
            files.append(old)
            continue
        count = len(_shard_ranges(fst.st_size, shard_size))
        files.append(
            FileEntry(
                name=rel,
                size=fst.st_size,
                algorithm=algorithm,
                digests=tuple(digests[first : first + count]),
                mtime_ns=fst.st_mtime_ns,
                ctime_ns=fst.st_ctime_ns,
                ino=fst.st_ino,
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
