"""The scan engine: walk paths, map files, detect formats by content, dispatch to scanners."""

from __future__ import annotations

import logging
import mmap
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from mltrust.config import ScanConfig
from mltrust.errors import ConfigError, InputError, LimitExceeded
from mltrust.findings import Finding, Location
from mltrust.scan import _rules
from mltrust.scan._context import ScanContext
from mltrust.scan._registry import claimed_by_suffix, detect
from mltrust.scan._result import FileResult, FileStatus, ScanReport

__all__ = ["iter_files", "scan_buffer", "scan_bytes", "scan_file", "scan_paths"]

log = logging.getLogger("mltrust.scan")

#: Files below this size are read into memory; larger ones are memory-mapped.
_MMAP_THRESHOLD = 1 << 20
#: Read size after the first read of a small file (which asks for its whole size).
_READ_STEP = 1 << 16


def scan_buffer(
    view: memoryview,
    ctx: ScanContext,
    loc: Location,
    name: str,
    *,
    nested: bool = False,
    raw_data_ok: bool = False,
) -> list[str]:
    """Detect the formats of ``view`` and run every matching scanner on it."""
    scanners = detect(view, name, raw=nested and raw_data_ok)
    if not scanners and nested and raw_data_ok:
        return []
    if not scanners:
        ctx.report(
            _rules.UNKNOWN_FORMAT,
            f"content of {len(view)} bytes matches no known model format; not scanned",
            loc,
        )
        return []
    claimed = claimed_by_suffix(name)
    if (
        claimed is not None
        and not claimed.can_execute_code
        and claimed not in scanners
        and any(s.can_execute_code for s in scanners)
    ):
        ctx.report(
            _rules.DISGUISED_FORMAT,
            f"named like {claimed.name} but the content is {scanners[0].name}",
            loc,
        )
    names = []
    for scanner in scanners:
        names.append(scanner.name)
        prefix = "!".join(loc.members)
        ctx.formats.append(f"{prefix}:{scanner.name}" if prefix else scanner.name)
        try:
            ctx.check_deadline()
            scanner.scan(view, ctx, loc)
        except LimitExceeded as exc:
            ctx.report(_rules.LIMIT_EXHAUSTED, f"{scanner.name}: {exc}", loc)
        except InputError as exc:
            ctx.report(_rules.MALFORMED, f"{scanner.name}: {exc}", loc)
        except RecursionError:
            ctx.report(_rules.LIMIT_EXHAUSTED, f"{scanner.name}: nesting too deep to analyse", loc)
        except MemoryError:
            ctx.report(_rules.LIMIT_EXHAUSTED, f"{scanner.name}: out of memory while scanning", loc)
        except Exception as exc:
            log.exception("scanner %s failed on %s", scanner.name, loc)
            ctx.report(
                _rules.SCANNER_ERROR,
                f"{scanner.name} scanner failed: {type(exc).__name__}: {exc}",
                loc,
            )
    return names


def _finish(
    path: str, size: int, ctx: ScanContext, started: float, sha256: str | None
) -> FileResult:
    formats = tuple(ctx.formats)
    status = FileStatus.SCANNED if formats else FileStatus.NOT_SCANNED
    reason = None if formats else "no known model format recognised in the content"
    found = ctx.findings
    findings = tuple(found) if len(found) < 2 else tuple(_dedupe(found))
    return FileResult(
        path=path,
        size=size,
        status=status,
        formats=formats,
        findings=findings,
        seconds=time.perf_counter() - started,
        sha256=sha256,
        reason=reason,
        facts=tuple(sorted(ctx.facts.items())),
    )


def _dedupe(findings: Iterable[Finding]) -> Iterator[Finding]:
    seen: set[Finding] = set()
    for f in findings:
        if f not in seen:
            seen.add(f)
            yield f


def _new_context(config: ScanConfig) -> ScanContext:
    seconds = config.limits.max_seconds_per_file
    deadline = time.monotonic() + seconds if seconds else None
    return ScanContext(config=config, deadline=deadline)


def scan_bytes(
    data: bytes | bytearray | memoryview, name: str = "<bytes>", config: ScanConfig | None = None
) -> FileResult:
    """Scan an in-memory buffer as if it were a file called ``name``."""
    config = config or ScanConfig()
    started = time.perf_counter()
    ctx = _new_context(config)
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    scan_buffer(view, ctx, Location(name), os.path.basename(name))
    sha = None
    if config.digest:
        import hashlib

        sha = hashlib.sha256(view).hexdigest()
    return _finish(name, len(view), ctx, started, sha)


def scan_file(path: str | Path, config: ScanConfig | None = None) -> FileResult:
    """Scan one file. Read errors give a result with status ``error``, never an exception."""
    config = config or ScanConfig()
    spath = str(path)
    started = time.perf_counter()
    try:
        fd = os.open(spath, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        return _unreadable(spath, 0, exc, started)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _unreadable(spath, 0, OSError(0, "not a regular file"), started)
        size = st.st_size
        ctx = _new_context(config)
        if size > config.limits.max_file_bytes:
            ctx.report(
                _rules.LIMIT_EXHAUSTED,
                f"file of {size} bytes exceeds max_file_bytes={config.limits.max_file_bytes}",
                Location(spath),
            )
            return _finish(spath, size, ctx, started, None)
        mapped: mmap.mmap | None = None
        if size >= _MMAP_THRESHOLD:
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            view = memoryview(mapped)
        else:
            chunks = []
            # os.read allocates the full request up front (a 1 MiB request costs ~20 us even
            # for a tiny file), so ask for what fstat announced, then small steps to the end.
            want = size + 1
            while True:
                chunk = os.read(fd, want)
                if not chunk:
                    break
                chunks.append(chunk)
                want = _READ_STEP
            view = memoryview(b"".join(chunks))
        try:
            scan_buffer(view, ctx, Location(spath), os.path.basename(spath))
            sha = None
            if config.digest:
                from mltrust.digest import sha256_bytes

                sha = sha256_bytes(view)
        finally:
            view.release()
            if mapped is not None:
                try:
                    mapped.close()
                except BufferError:  # a scanner kept a slice alive; the GC will unmap it
                    log.debug("mapping of %s still referenced; left to the GC", spath)
        return _finish(spath, size, ctx, started, sha)
    except OSError as exc:
        return _unreadable(spath, 0, exc, started)
    finally:
        os.close(fd)


def _unreadable(path: str, size: int, exc: OSError, started: float) -> FileResult:
    reason = exc.strerror or str(exc)
    finding = Finding.of(_rules.UNREADABLE, f"cannot read: {reason}", Location(path))
    return FileResult(
        path=path,
        size=size,
        status=FileStatus.ERROR,
        findings=(finding,),
        seconds=time.perf_counter() - started,
        reason=reason,
    )


def iter_files(paths: Iterable[str | Path]) -> Iterator[tuple[str, Finding | None]]:
    """Expand ``paths`` into files, walking folders in sorted order without following links.

    Yields ``(path, None)`` for each file to scan and ``(path, finding)`` for each symbolic link
    skipped inside a folder. A path given explicitly is followed even if it is a link. Raises
    :class:`ConfigError` for a path that does not exist.
    """
    for p in paths:
        path = Path(p)
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"no such file or folder: {path}")
        if path.is_dir():
            yield from _walk(path)
        else:
            yield str(path), None


def _walk(root: Path) -> Iterator[tuple[str, Finding | None]]:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield (
                str(folder),
                Finding.of(
                    _rules.UNREADABLE, f"cannot list folder: {exc.strerror}", Location(str(folder))
                ),
            )
            continue
        subdirs = []
        for entry in entries:
            if entry.is_symlink():
                target = os.readlink(entry.path)
                yield (
                    entry.path,
                    Finding.of(
                        _rules.SYMLINK,
                        f"symbolic link to {target!r} not followed",
                        Location(entry.path),
                    ),
                )
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield entry.path, None
        stack.extend(reversed(subdirs))


def _skipped_result(path: str, skipped: Finding) -> FileResult:
    status = FileStatus.NOT_SCANNED if skipped.rule_id == _rules.SYMLINK.id else FileStatus.ERROR
    return FileResult(path=path, size=0, status=status, findings=(skipped,), reason=skipped.message)


#: Files handed to a worker process at a time when ``jobs`` > 1 (amortises inter-process calls).
_CHUNK = 32


def _scan_chunk(paths: list[str], config: ScanConfig) -> list[FileResult]:
    return [scan_file(p, config) for p in paths]


def scan_paths(
    paths: Iterable[str | Path],
    config: ScanConfig | None = None,
    *,
    on_file: Callable[[str, FileResult], None] | None = None,
    jobs: int = 1,
) -> ScanReport:
    """Scan files and folders (recursively) and return one report.

    ``jobs`` > 1 spreads files over that many worker processes (results keep the walk order);
    the default scans everything in this process. Workers only parse bytes, exactly as the
    single-process path does.
    """
    from mltrust import __version__

    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, not {jobs}")
    config = config or ScanConfig()
    started = time.perf_counter()
    entries = list(iter_files(paths))
    todo = [p for p, skipped in entries if skipped is None]
    scanned: dict[str, FileResult] = {}
    if jobs > 1 and len(todo) > _CHUNK:
        scanned = _scan_parallel(todo, config, jobs, on_file)
    results: list[FileResult] = []
    for path, skipped in entries:
        if skipped is not None:
            result = _skipped_result(path, skipped)
        elif path in scanned:
            results.append(scanned[path])
            continue
        else:
            result = scan_file(path, config)
        results.append(result)
        if on_file is not None:
            on_file(path, result)
    return ScanReport(
        files=tuple(results),
        fail_on=config.fail_on,
        seconds=time.perf_counter() - started,
        tool_version=__version__,
    )


def _scan_parallel(
    todo: list[str],
    config: ScanConfig,
    jobs: int,
    on_file: Callable[[str, FileResult], None] | None,
) -> dict[str, FileResult]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    # fork shares the already-imported scanners with the workers (start-up in milliseconds).
    mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunks = [todo[i : i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    out: dict[str, FileResult] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp) as pool:
        for chunk_results in pool.map(_scan_chunk, chunks, [config] * len(chunks)):
            for result in chunk_results:
                out[result.path] = result
                if on_file is not None:
                    on_file(result.path, result)
    return out
