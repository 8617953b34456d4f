"""State of one scan of one top-level file: findings, budgets, recursion into nested content."""

from __future__ import annotations

import mmap
import os
import stat
import time
from dataclasses import dataclass, field

from mltrust import _logs
from mltrust.config import ScanConfig
from mltrust.errors import InputError, LimitExceeded
from mltrust.findings import Confidence, Finding, Location, Rule, Severity
from mltrust.scan import _rules

__all__ = ["ScanContext"]


@dataclass
class ScanContext:
    """Collects findings for one top-level file and enforces its budgets.

    Scanners call :meth:`report` (or :meth:`add`) for each finding and :meth:`scan_nested` for
    content embedded in what they scan (archive members, inner streams). The decompression budget
    and the deadline are shared by everything nested under the same top-level file.
    """

    config: ScanConfig
    findings: list[Finding] = field(default_factory=list)
    #: Formats detected, outermost first, as ``member-path:format`` strings for nested ones.
    formats: list[str] = field(default_factory=list)
    depth: int = 0
    decompressed_bytes: int = 0
    deadline: float | None = None
    #: Free-form facts scanners record about the file (tensor counts, pickle imports...),
    #: reported in JSON output.
    facts: dict[str, object] = field(default_factory=dict)
    #: The folder of the top-level file when it is a file on disk (set by ``scan_file``), the
    #: folder a loader resolves the names of companion files against; None for a buffer.
    folder: str | None = None
    #: Companion files :meth:`scan_beside` has looked at: name -> whether it scanned one.
    beside: dict[str, bool] = field(default_factory=dict)
    #: Locations of decodings of the whole top-level file (:meth:`whole_file_member`), told
    #: apart by identity: an archive member can have the same member path.
    whole_file: list[Location] = field(default_factory=list)

    @property
    def limits(self):  # type: ignore[no-untyped-def]
        return self.config.limits

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def report(
        self,
        rule: Rule,
        message: str,
        loc: Location,
        *,
        severity: Severity | None = None,
        confidence: Confidence = Confidence.HIGH,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Record a finding of ``rule`` at ``loc``."""
        self.findings.append(
            Finding.of(rule, message, loc, severity=severity, confidence=confidence, extra=extra)
        )

    def check_deadline(self) -> None:
        """Raise :class:`LimitExceeded` once the per-file time budget is spent."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise LimitExceeded(
                f"time limit of {self.config.limits.max_seconds_per_file:g}s per file reached"
            )

    def charge_decompressed(self, nbytes: int) -> None:
        """Count ``nbytes`` of decompressed output against the per-file budget."""
        self.decompressed_bytes += nbytes
        if self.decompressed_bytes > self.config.limits.max_decompressed_bytes:
            raise LimitExceeded(
                "decompressed output exceeds the limit of "
                f"{self.config.limits.max_decompressed_bytes} bytes (possible decompression bomb)"
            )

    def scan_nested(
        self,
        data: memoryview | bytes,
        loc: Location,
        name: str,
        *,
        raw_data_ok: bool = False,
        exclude: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Sniff and scan content nested in the current file (an archive member, say).

        Returns the names of the formats found. Depth beyond ``max_archive_depth`` is reported as
        an exhausted limit, never silently skipped. ``raw_data_ok`` marks content the container
        format defines as plain bytes (PyTorch tensor storages, joblib array buffers): if it
        matches no format it is recorded as raw data instead of reported as unknown.
        ``exclude`` names formats the caller has already scanned the content as.
        """
        from mltrust.scan._engine import scan_buffer

        if self.depth + 1 > self.config.limits.max_archive_depth:
            self.report(
                _rules.LIMIT_EXHAUSTED,
                f"nesting deeper than {self.config.limits.max_archive_depth} levels; "
                "inner content not scanned",
                loc,
            )
            return []
        self.depth += 1
        try:
            view = data if isinstance(data, memoryview) else memoryview(data)
            return scan_buffer(
                view, self, loc, name, nested=True, raw_data_ok=raw_data_ok, exclude=exclude
            )
        finally:
            self.depth -= 1

    def whole_file_member(self, loc: Location, name: str) -> Location:
        """The member ``name`` of ``loc`` for a decoding of all of the content at ``loc``
        (``compressed.py``'s ``[gzip]``..., the joblib Z-file of ``formats/pickle.py``).

        A loader given the top-level file's path reads what is inside such a decoding with
        that path, so names in there resolve against the file's folder (:meth:`scan_beside`).
        This is recorded by who decodes, not read off member names: an archive member may be
        named ``zfile`` or ``[gzip]`` (red team rtbenign), and is not the file a loader opened.
        """
        inner = loc.member(name)
        if self._is_whole_file(loc):
            self.whole_file.append(inner)
        return inner

    def _is_whole_file(self, loc: Location) -> bool:
        return not loc.members or any(loc is whole for whole in self.whole_file)

    def scan_beside(self, name: str, loc: Location) -> bool:
        """Scan the companion file ``name`` in the top-level file's folder, by content, as
        content nested at ``loc``; return whether it was scanned (its findings are this
        file's, under a ``[companion NAME]`` member).

        Only a plain name (no path separator, not ``.``/``..``) in a file on disk, named by
        content a loader reads with that file's path (the file itself or a whole-file decoding
        of it) is looked up; the companion must be a regular file, not a link, within
        ``max_file_bytes``, and some format must be recognised in it. Anything else returns
        False, for the caller to report: a name this scan cannot vouch for. Each name is
        looked at once per top-level file.
        """
        if (
            self.folder is None
            or not name
            or name in (".", "..")
            or any(c in name for c in "/\\\x00")
            or not self._is_whole_file(loc)
        ):
            return False
        done = self.beside.get(name)
        if done is not None:
            return done
        self.beside[name] = False  # while it is scanned: a loop of names is not vouched for
        scanned = self._read_beside(os.path.join(self.folder, name), name, loc)
        self.beside[name] = scanned
        return scanned

    def _read_beside(self, path: str, name: str, loc: Location) -> bool:
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return False  # missing, a link, unreadable
        limit = self.config.limits.max_file_bytes
        try:
            st = os.fstat(fd)
            regular = stat.S_ISREG(st.st_mode) and 0 < st.st_size <= limit
            mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if regular else None
        except (OSError, ValueError):
            mapped = None
        finally:
            os.close(fd)
        if mapped is None:
            return False
        view = memoryview(mapped)
        try:
            found = self.scan_nested(view, loc.member(f"[companion {name}]"), name)
        finally:
            view.release()
            try:
                mapped.close()
            except BufferError:  # a scanner kept a slice alive; the GC will unmap it
                _logs.logger("mltrust.scan").debug(
                    "mapping of %s still referenced; left to the GC", path
                )
        return bool(found)


def malformed(ctx: ScanContext, loc: Location, exc: InputError) -> None:
    """Report a malformed-input finding for ``exc``."""
    ctx.report(_rules.MALFORMED, str(exc), loc)
