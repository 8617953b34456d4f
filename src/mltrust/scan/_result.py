"""Results of a scan: one :class:`FileResult` per file, gathered in a :class:`ScanReport`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from mltrust.findings import Finding, Severity

__all__ = ["FileResult", "FileStatus", "ScanReport"]


class FileStatus(enum.StrEnum):
    #: Every byte the format gives meaning to was examined.
    SCANNED = "scanned"
    #: The format was not recognised: nothing was checked (never read as "clean").
    NOT_SCANNED = "not-scanned"
    #: The file could not be read at all.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FileResult:
    """What the scan of one top-level file found: its status, formats and findings."""

    path: str
    size: int
    status: FileStatus
    formats: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    seconds: float = 0.0
    sha256: str | None = None
    reason: str | None = None
    facts: tuple[tuple[str, Any], ...] = ()

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None, key=lambda s: s.rank)

    def fails(self, threshold: Severity) -> bool:
        return any(f.severity >= threshold for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "size": self.size,
            "status": self.status.value,
            "formats": list(self.formats),
            "findings": [f.to_dict() for f in self.findings],
            "seconds": round(self.seconds, 6),
        }
        if self.sha256:
            out["sha256"] = self.sha256
        if self.reason:
            out["reason"] = self.reason
        if self.facts:
            out["facts"] = dict(self.facts)
        return out


@dataclass(frozen=True, slots=True)
class ScanReport:
    """The results of one scan: every file's result and the threshold that fails it."""

    files: tuple[FileResult, ...]
    fail_on: Severity = Severity.MEDIUM
    seconds: float = 0.0
    tool_version: str = field(default="")

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.files for f in r.findings]

    @property
    def failed(self) -> bool:
        """True when some finding is at or above ``fail_on``."""
        return any(r.fails(self.fail_on) for r in self.files)

    @property
    def errored(self) -> bool:
        """True when some file could not be read."""
        return any(r.status is FileStatus.ERROR for r in self.files)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": {"name": "mltrust", "version": self.tool_version},
            "fail_on": self.fail_on.value,
            "verdict": "fail" if self.failed else ("error" if self.errored else "pass"),
            "summary": {
                "files": len(self.files),
                "scanned": sum(1 for r in self.files if r.status is FileStatus.SCANNED),
                "not_scanned": sum(1 for r in self.files if r.status is FileStatus.NOT_SCANNED),
                "errors": sum(1 for r in self.files if r.status is FileStatus.ERROR),
                "findings": self.counts(),
                "seconds": round(self.seconds, 6),
            },
            "files": [r.to_dict() for r in self.files],
        }
