"""The collector plug-in interface.

A collector examines a subject (a project folder, a model folder or a model file) and returns a
:class:`Collected`: the in-toto predicate it attests, the section it contributes to the policy
evidence document, and findings for reports. To add a collector: write a module with a
:class:`Collector` subclass and add one line to ``_COLLECTORS`` in ``_registry.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mltrust.config import ScanConfig
from mltrust.files import DEFAULT_MAX_FILES, Listing, Skipped, SkipReason, walk
from mltrust.findings import Finding, Severity

__all__ = [
    "ANALYSIS_PRUNE",
    "STATEMENT_TYPE",
    "CollectContext",
    "Collected",
    "Collector",
    "finding_fingerprint",
    "fingerprint",
    "severity_counts",
    "walk_problems",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"

#: Folder names whose content is third-party or tool data, not the project's own code: code,
#: secret, dependency-file and license analysis does not descend into them, and every such
#: folder is listed in :meth:`CollectContext.not_evaluated`. The model scan is never pruned
#: (a payload under ``node_modules/`` is still scanned). A folder holding ``pyvenv.cfg`` (a
#: virtual environment) is pruned the same way, whatever it is called; a folder merely named
#: ``env/`` or ``venv/`` is project content and is analysed.
ANALYSIS_PRUNE = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "site-packages",
        "dist-packages",
        ".mltrust",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
    }
)


def fingerprint(rule_id: str, path: str, line: int = 0, cell: int = -1, key: str = "") -> str:
    """The stable identity of one finding: rule, relative path, line, notebook cell and what
    makes it distinct on that line (an advisory and package, else the message). Waivers
    (``fingerprint:``) and SARIF ``partialFingerprints`` use it, so two advisories on one
    requirement line are two findings."""
    import hashlib

    text = f"{rule_id}\0{path}\0{line}\0{cell}\0{key}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def finding_fingerprint(f: Finding) -> str:
    """:func:`fingerprint` of a collector's :class:`Finding` (see the collectors' rows)."""
    extra = dict(f.extra)
    extra.pop("git", None)
    if "advisory" in extra:
        key = f"{extra['advisory']}/{extra.get('package', '')}"
    else:
        key = f.message
    return fingerprint(
        f.rule_id,
        f.location.path,
        int(extra.get("line", "0") or 0),
        int(extra.get("cell", "-1") or -1),
        key,
    )


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
    #: Oldest advisory data (days since its newest advisory was modified) accepted as current.
    advisory_max_age_days: float = 30.0
    image_report: Path | None = None
    environment: bool = False
    scan_config: ScanConfig = field(default_factory=ScanConfig)
    #: Results one collector leaves for a later one (the BOM reads the scan's facts).
    shared: dict[str, Any] = field(default_factory=dict)
    #: Worker processes for the model scan (1: in this process).
    jobs: int = 1
    #: Whether the project's inline suppression comments suppress its code
    #: findings (the profile's ``code.inline_suppressions``): off by default, because they are
    #: written by the project under check.
    inline_suppressions: bool = False
    #: Most files one walk lists; beyond it the walk is truncated and the check fails closed.
    max_files: int = DEFAULT_MAX_FILES
    _listing: Listing | None = field(default=None, repr=False)
    _files: list[tuple[str, Path]] | None = field(default=None, repr=False)
    _analysis: list[tuple[str, Path]] | None = field(default=None, repr=False)
    _pruned: dict[str, str] | None = field(default=None, repr=False)
    _digests: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def is_file(self) -> bool:
        return self.path.is_file()

    @property
    def root(self) -> Path:
        """The folder the subject lives in (the path itself for a folder)."""
        return self.path if self.path.is_dir() else self.path.parent

    def listing(self) -> Listing:
        """The one walk of the subject (:func:`mltrust.files.walk`), made once and shared."""
        if self._listing is None:
            self._listing = walk(self.path, max_files=self.max_files)
        return self._listing

    def files(self) -> list[tuple[str, Path]]:
        """``(relative posix path, path)`` of every regular file of the subject, sorted.

        Nothing is pruned here: this is what the model scan examines. Entries the walk could
        not hand over (links, special files, unreadable folders, the file cap) are in
        :meth:`skipped`.
        """
        if self._files is None:
            self._files = sorted((e.rel, Path(e.path)) for e in self.listing().files)
        return self._files

    def skipped(self) -> tuple[Skipped, ...]:
        """What the walk reported and did not hand over as a file (never dropped silently)."""
        return self.listing().skipped

    def analysis_files(self) -> list[tuple[str, Path]]:
        """The files of the project's own code and configuration: :meth:`files` minus those
        under a pruned folder (:data:`ANALYSIS_PRUNE`, virtual environments). Every pruned
        folder is listed by :meth:`not_evaluated`."""
        if self._analysis is None:
            roots = self._pruned_roots()
            self._analysis = [(rel, p) for rel, p in self.files() if not _under(rel, roots)]
        return self._analysis

    def not_evaluated(self) -> list[str]:
        """One line per folder or entry that code/secret/dependency analysis did not examine,
        and why (pruned folders, links, special files, unreadable folders, the file cap)."""
        roots = self._pruned_roots()
        out = [f"{root}/: {why}" for root, why in sorted(roots.items())]
        # Links inside a pruned folder (node_modules/.bin...) are covered by its line; every
        # other skip (and every unreadable folder or cap, wherever it is) is listed.
        out.extend(
            f"{s.rel}: {s.reason.value}: {s.detail}"
            for s in self.skipped()
            if not (s.reason is SkipReason.SYMLINK and _under(s.rel, roots))
        )
        return out

    def _pruned_roots(self) -> dict[str, str]:
        if self._pruned is None:
            roots: dict[str, str] = {}
            if not self.is_file:
                for rel, _ in self.files():
                    parts = rel.split("/")
                    for i, part in enumerate(parts[:-1]):
                        if part in ANALYSIS_PRUNE:
                            roots.setdefault(
                                "/".join(parts[: i + 1]), "third-party or tool folder not analysed"
                            )
                            break
                    if parts[-1] == "pyvenv.cfg" and len(parts) > 1:
                        roots.setdefault("/".join(parts[:-1]), "virtual environment not analysed")
            # Keep only the outermost roots.
            ordered = sorted(roots)
            kept: dict[str, str] = {}
            for root in ordered:
                if not _under(root + "/x", kept):
                    kept[root] = roots[root]
            self._pruned = kept
        return self._pruned

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


def _under(rel: str, roots: Mapping[str, str] | set[str]) -> bool:
    """Whether ``rel`` lies under one of ``roots`` (relative folder paths)."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in roots for i in range(1, len(parts)))


def walk_problems(skipped: tuple[Skipped, ...]) -> list[Skipped]:
    """The skipped entries that mean content was not examined and must fail closed (an
    unreadable folder, a special file, the file cap). Symbolic links are reported but are
    not problems: the walk never follows them, and a target inside the subject is examined
    on its own."""
    return [s for s in skipped if s.reason is not SkipReason.SYMLINK]


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
