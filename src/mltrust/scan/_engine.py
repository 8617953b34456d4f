"""The scan engine: walk paths, map files, detect formats by content, dispatch to scanners."""

from __future__ import annotations

import functools
import mmap
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from mltrust import _logs
from mltrust.config import ScanConfig
from mltrust.errors import ConfigError, InputError, LimitExceeded
from mltrust.files import loader_folder
from mltrust.findings import Finding, Location, Severity
from mltrust.scan import _rules
from mltrust.scan._context import ScanContext
from mltrust.scan._registry import claimed_by_suffix, detect
from mltrust.scan._result import FileResult, FileStatus, ScanReport

if TYPE_CHECKING:
    from mltrust.executors import Executor
    from mltrust.scan.interface import FormatScanner

__all__ = ["iter_files", "scan_buffer", "scan_bytes", "scan_file", "scan_paths"]


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
    exclude: frozenset[str] = frozenset(),
) -> list[str]:
    """Detect the formats of ``view`` and run every matching scanner on it, except those named
    in ``exclude`` (formats the caller has already scanned ``view`` as)."""
    scanners = [s for s in detect(view, name, raw=nested and raw_data_ok) if s.name not in exclude]
    if not scanners and nested and raw_data_ok:
        return []
    claimed = claimed_by_suffix(name)
    if not scanners:
        if _named_config(name, claimed) and bytes(view[:65536]).strip():
            # Loaders read a config by the path they are given: a ``.yaml`` nothing here reads
            # as one is content not checked, not an unknown model format (red-team finding).
            ctx.report(
                _rules.UNKNOWN_FORMAT,
                f"named like a JSON/YAML config but not read as one ({len(view)} bytes); "
                "not scanned",
                loc,
                severity=Severity.MEDIUM,
            )
            return []
        if claimed is not None and _named_model(name, claimed) and len(view):
            # Loaders of these formats open a file by the name they are given and read what
            # their own parser accepts, which may be more than this sniffer recognises (a
            # leading unknown protobuf field, JSON whitespace before a header...): content
            # named like one of them is not checked, not unknown (red-team finding).
            ctx.report(
                _rules.UNKNOWN_FORMAT,
                f"named like a {claimed.name!r} model but not read as one ({len(view)} bytes); "
                "not scanned",
                loc,
                severity=Severity.MEDIUM,
            )
            return []
        ctx.report(
            _rules.UNKNOWN_FORMAT,
            f"content of {len(view)} bytes matches no known model format; not scanned",
            loc,
        )
        return []
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
        except Exception as exc:  # noqa: BLE001 (logged with its traceback, reported as a finding)
            _logs.logger("mltrust.scan").exception("scanner %s failed on %s", scanner.name, loc)
            ctx.report(
                _rules.SCANNER_ERROR,
                f"{scanner.name} scanner failed: {type(exc).__name__}: {exc}",
                loc,
            )
    return names


#: Suffixes of the configs loaders read by path (``.jinja`` is claimed by content).
_CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


#: Model formats whose loaders pick the file by its name: unrecognised content named like one
#: of them is reported at medium (fail closed), not as an unknown format.
_NAMED_MODEL_FORMATS = frozenset({"onnx", "ort", "tensorflow", "gguf", "safetensors", "hdf5"})


def _named_model(name: str, claimed: FormatScanner) -> bool:
    """Whether unrecognised content named ``name`` is a model a loader would open by name.

    ``.pb`` is every protobuf's suffix (ONNX's own test tensors are ``input_0.pb``, and no
    loader runs them): of those, only TensorFlow's ``saved_model.pb``, which
    ``tf.saved_model.load`` opens by that name, fails closed; other ``.pb`` files stay low."""
    if claimed.name not in _NAMED_MODEL_FORMATS:
        return False
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return not base.endswith(".pb") or base == "saved_model.pb"


def _named_config(name: str, claimed: FormatScanner | None) -> bool:
    return (
        claimed is not None and claimed.name == "config" and name.lower().endswith(_CONFIG_SUFFIXES)
    )


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
        fd = os.open(
            spath, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as exc:
        return _unreadable(spath, 0, exc, started)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _unreadable(spath, 0, OSError(0, "not a regular file"), started)
        size = st.st_size
        ctx = _new_context(config)
        ctx.folder = loader_folder(spath)
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
                    _logs.logger("mltrust.scan").debug(
                        "mapping of %s still referenced; left to the GC", spath
                    )
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
    """Expand ``paths`` into files with the one walker, :func:`mltrust.files.iter_walk`.

    Yields ``(path, None)`` for each file to scan and ``(path, finding)`` for each entry that
    was not scanned (a FIFO or device node, an unreadable folder, the file-count cap, a link
    that does not lead to a regular file): nothing under a folder is passed over without a
    finding. A path given explicitly is followed even if it is a link.

    A symbolic link inside a folder that leads to a regular file is scanned as that file, since
    every loader follows it (a Hugging Face cache snapshot is nothing but links into
    ``../../blobs``); it is read through the link, wherever the target lies. The walker itself
    does not descend through links, so a link to a folder, a dangling link or a loop is not
    scanned and fails (MLT-GEN-007, medium). Raises :class:`ConfigError` for a path that does
    not exist.
    """
    from mltrust.errors import InputError
    from mltrust.files import Entry, SkipReason, iter_walk

    for p in paths:
        path = Path(p)
        if not path.exists() and not path.is_symlink():
            raise ConfigError(f"no such file or folder: {path}")
        if not path.is_dir():
            # An explicit file: scan_file opens it and reports what it is (even a FIFO).
            yield str(path), None
            continue
        try:
            for item in iter_walk(path):
                if isinstance(item, Entry):
                    yield item.path, None
                    continue
                if item.reason is SkipReason.SYMLINK and _leads_to_regular_file(item.path):
                    yield item.path, None
                    continue
                rule = {
                    SkipReason.SYMLINK: _rules.SYMLINK,
                    SkipReason.CAP: _rules.LIMIT_EXHAUSTED,
                }.get(item.reason, _rules.UNREADABLE)
                yield item.path, Finding.of(rule, item.detail, Location(item.path))
        except InputError as exc:
            raise ConfigError(str(exc)) from None


def _leads_to_regular_file(path: str) -> bool:
    """Whether the link at ``path`` resolves (through any chain of links) to a regular file."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):  # dangling, a loop, too long, a NUL in the name
        return False


def _skipped_result(path: str, skipped: Finding) -> FileResult:
    status = FileStatus.NOT_SCANNED if skipped.rule_id == _rules.SYMLINK.id else FileStatus.ERROR
    return FileResult(path=path, size=0, status=status, findings=(skipped,), reason=skipped.message)


#: Files handed to a worker at a time (amortises inter-process calls and Ray task overhead).
_CHUNK = 32


def _scan_chunk(paths: list[str], config: ScanConfig) -> list[FileResult]:
    return [scan_file(p, config) for p in paths]


def scan_paths(
    paths: Iterable[str | Path],
    config: ScanConfig | None = None,
    *,
    on_file: Callable[[str, FileResult], None] | None = None,
    jobs: int = 1,
    executor: Executor | None = None,
) -> ScanReport:
    """Scan files and folders (recursively) and return one report.

    ``jobs`` > 1 spreads files over that many worker processes; ``executor`` (for example a
    :class:`~mltrust.executors._ray.RayExecutor`) runs them wherever it runs batches instead.
    Either way the file list is this walk's, batches are lists of paths that the workers read
    themselves with the same :func:`scan_file`, and results keep the walk order, so the report
    is the one a single-process scan gives (timings apart). A batch that fails after the
    executor's retries gives an error result for each of its files (fail closed).
    """
    from mltrust import __version__

    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, not {jobs}")
    config = config or ScanConfig()
    started = time.perf_counter()
    entries = list(iter_files(paths))
    todo = [p for p, skipped in entries if skipped is None]
    scanned: dict[str, FileResult] = {}
    if executor is None and jobs > 1 and len(todo) > _CHUNK:
        from mltrust.executors import ProcessExecutor

        executor = ProcessExecutor(jobs)
    if executor is not None:
        scanned = _scan_on(executor, todo, config, on_file)
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


def _scan_on(
    executor: Executor,
    todo: list[str],
    config: ScanConfig,
    on_file: Callable[[str, FileResult], None] | None,
) -> dict[str, FileResult]:
    from mltrust.executors import Failed

    chunks = [todo[i : i + _CHUNK] for i in range(0, len(todo), _CHUNK)]
    out: dict[str, FileResult] = {}
    work = functools.partial(_scan_chunk, config=config)
    for index, outcome in executor.map_unordered(work, chunks):
        if isinstance(outcome, Failed):
            _logs.logger("mltrust.scan").error(
                "%s batch of %d files failed: %s", executor.name, len(chunks[index]), outcome
            )
            chunk_results = [_lost_result(p, outcome.message) for p in chunks[index]]
        else:
            chunk_results = outcome
        for result in chunk_results:
            out[result.path] = result
            if on_file is not None:
                on_file(result.path, result)
    return out


def _lost_result(path: str, message: str) -> FileResult:
    finding = Finding.of(_rules.SCANNER_ERROR, f"not scanned: {message}", Location(path))
    return FileResult(
        path=path, size=0, status=FileStatus.ERROR, findings=(finding,), reason=message
    )
