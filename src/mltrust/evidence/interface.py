"""The collector plug-in interface.

A collector examines a subject (a project folder, a model folder or a model file) and returns a
:class:`Collected`: the in-toto predicate it attests, the section it contributes to the policy
evidence document, and findings for reports. To add a collector: write a module with a
:class:`Collector` subclass and add one line to ``_COLLECTORS`` in ``_registry.py``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mltrust.config import ScanConfig
from mltrust.findings import Finding, Severity

__all__ = [
    "STATEMENT_TYPE",
    "CollectContext",
    "Collected",
    "Collector",
    "severity_counts",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

#: Folders never walked: VCS data, environments, caches and mltrust's own evidence.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        "node_modules",
        ".mltrust",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".ipynb_checkpoints",
        ".bench",
        "site-packages",
    }
)
#: Most files considered in one subject (a guard against pointing at a whole disk).
MAX_FILES = 200_000


def severity_counts(severities: Any) -> dict[str, int]:
    """``{"info": n, ..., "critical": n}`` with every severity present (CEL needs the keys)."""
    out = {s.value: 0 for s in Severity}
    for s in severities:
        key = s.value if isinstance(s, Severity) else str(s)
        if key in out:
            out[key] += 1
    return out


@dataclass
class CollectContext:
    """What the collectors of one ``check`` share: the subject, the options and caches."""

    path: Path
    keys: tuple[Path, ...] = ()
    advisory_db: Path | None = None
    image_report: Path | None = None
    environment: bool = False
    scan_config: ScanConfig = field(default_factory=ScanConfig)
    #: Results one collector leaves for a later one (the BOM reads the scan's facts).
    shared: dict[str, Any] = field(default_factory=dict)
    _files: list[tuple[str, Path]] | None = field(default=None, repr=False)
    _digests: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_file(self) -> bool:
        return self.path.is_file()

    @property
    def root(self) -> Path:
        """The folder the subject lives in (the path itself for a folder)."""
        return self.path if self.path.is_dir() else self.path.parent

    def files(self) -> list[tuple[str, Path]]:
        """``(relative posix path, path)`` of every regular file of the subject, sorted."""
        if self._files is None:
            self._files = _walk(self.path)
        return self._files

    def record_sha256(self, rel: str, digest: str) -> None:
        """Remember a digest computed elsewhere (the scanner hashes the bytes it scanned)."""
        self._digests.setdefault(rel, digest)

    def sha256(self, rel: str, path: Path) -> str:
        from mltrust.digest import sha256_file

        digest = self._digests.get(rel)
        if digest is None:
            digest = sha256_file(path)
            self._digests[rel] = digest
        return digest


def _walk(path: Path) -> list[tuple[str, Path]]:
    if path.is_file():
        return [(path.name, path)]
    out: list[tuple[str, Path]] = []
    stack = [path]
    while stack and len(out) < MAX_FILES:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS:
                    stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                p = Path(entry.path)
                out.append((p.relative_to(path).as_posix(), p))
    out.sort()
    return out


@dataclass(frozen=True, slots=True)
class Collected:
    """What one collector established."""

    collector: str
    predicate_type: str
    #: The in-toto predicate (JSON-serialisable).
    predicate: Mapping[str, Any]
    #: This collector's part of the evidence document the policy reads.
    section: Mapping[str, Any]
    findings: tuple[Finding, ...] = ()
    seconds: float = 0.0


class Collector(ABC):
    """One kind of evidence."""

    #: Name of the section in the evidence document (``scan``, ``deps``...).
    name: ClassVar[str]
    predicate_type: ClassVar[str]

    def applies(self, ctx: CollectContext) -> bool:
        """Whether this collector has anything to examine for ``ctx``."""
        return True

    @abstractmethod
    def absent(self) -> dict[str, Any]:
        """The section when the collector did not apply: same keys, ``present: false``."""

    @abstractmethod
    def collect(self, ctx: CollectContext) -> Collected:
        """Examine the subject. Untrusted content problems become findings, not exceptions."""
