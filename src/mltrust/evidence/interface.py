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

from mltrust.config import DEFAULT_LIMITS, ScanConfig
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

#: Folder names whose content is normally third-party or tool data, not the project's own code:
#: code, secret, dependency-file and license analysis does not descend into them unless git
#: tracks what they hold (see :meth:`CollectContext.analysis_files`). A folder is also pruned
#: as a virtual environment, whatever its name, on structural proof only: its ``pyvenv.cfg``
#: has a ``home`` key and it holds ``lib/python*/site-packages/`` or ``Lib/site-packages/``
#: files. The model scan is never pruned (a payload under ``node_modules/`` is still scanned).
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

#: Version-control stores at the subject's root: repository metadata, which git (and hg, svn)
#: cannot track, so their content is not counted as unanalysed project content -- but only
#: when the folder is structurally such a store (:func:`_is_vcs_store`): otherwise it is
#: ordinary content of the subject (code can import from it) and counts like any pruned folder.
_VCS_STORES = frozenset({".git", ".hg", ".svn"})
#: Bytes read from a pruned file to tell text (which the secret search would read) from binary.
_TEXT_PROBE = 8192


def fingerprint(
    rule_id: str, path: str, line: int = 0, cell: int = -1, key: str = "", *, content: str = ""
) -> str:
    """The stable identity of one finding: rule, relative path, line, notebook cell and what
    makes it distinct on that line (an advisory and package, else the message), and for a
    code or secret finding ``content``, the digest of the line's text (whitespace removed):
    rewriting the line gives a new fingerprint, so a waiver by fingerprint covers only the
    code that was reviewed. Waivers (``fingerprint:``) and SARIF ``partialFingerprints`` use
    it, so two advisories on one requirement line are two findings."""
    import hashlib

    text = f"{rule_id}\0{path}\0{line}\0{cell}\0{key}"
    if content:
        text += f"\0{content}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def finding_fingerprint(f: Finding) -> str:
    """:func:`fingerprint` of a collector's :class:`Finding` (see the collectors' rows): the
    ``fingerprint`` a collector computed with the line's content (code and secret findings),
    else the one made of rule, path, line, cell and key."""
    extra = dict(f.extra)
    if extra.get("fingerprint"):
        return str(extra["fingerprint"])
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
    #: Scan configuration files the subject holds and that were not used (``scan``
    #: evidence lists them as ``ignored_config``): the subject never configures its own scan.
    ignored_scan_config: tuple[str, ...] = ()
    #: Results one collector leaves for a later one (the BOM reads the scan's facts).
    shared: dict[str, Any] = field(default_factory=dict)
    #: Worker processes for the model scan and bandit (1: in this process).
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
    #: ``(rel, path, pruned root, tracked)`` of every file under a pruned folder.
    _in_pruned: list[tuple[str, Path, str, bool]] | None = field(default=None, repr=False)
    _tracked: tuple[frozenset[str] | None] | None = field(default=None, repr=False)
    _tracked_heads: frozenset[str] | None = field(default=None, repr=False)
    _git_ignored: str = field(default="", repr=False)
    _links: tuple[dict[str, str], list[dict[str, str]]] | None = field(default=None, repr=False)
    _unanalysed: tuple[list[dict[str, str]], list[dict[str, str]]] | None = field(
        default=None, repr=False
    )
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

    def tracked(self) -> frozenset[str] | None:
        """The paths git tracks (``.git/index`` at the subject's root, parsed, never run);
        None when the subject is not a git work tree, or its index cannot be read or is not
        plausibly the repository's real one (:func:`._gitindex.read_tracked`; the reason is
        :meth:`git_index_ignored`)."""
        if self._tracked is None:
            from mltrust.evidence._gitindex import read_tracked

            if self.is_file:
                self._tracked, self._git_ignored = (None,), ""
            else:
                files = [rel for rel, _ in self.files()]
                seen = {*files, *(s.rel for s in self.skipped())}
                folders = {
                    "/".join(parts[:i])
                    for rel in seen
                    for parts in (rel.split("/"),)
                    for i in range(1, len(parts))
                }
                has_files = any(rel.split("/", 1)[0] != ".git" for rel in files)
                tracked, why = read_tracked(
                    self.root, lambda rel: rel in seen or rel in folders, has_files
                )
                self._tracked, self._git_ignored = (tracked,), why
        return self._tracked[0]

    def git_index_ignored(self) -> str:
        """Why git metadata at the subject's root was not used as evidence of what is
        tracked ("" when it was used, or when there is none)."""
        self.tracked()
        return self._git_ignored

    def is_tracked(self, rel: str) -> bool:
        """Whether git tracks ``rel``: the path itself is in the index, or a folder above it
        is (a submodule's gitlink: the submodule's files ship with the checkout)."""
        tracked = self.tracked()
        if not tracked:
            return False
        if rel in tracked:
            return True
        if self._tracked_heads is None:
            self._tracked_heads = frozenset(t.split("/", 1)[0] for t in tracked)
        i = rel.find("/")
        if i == -1 or rel[:i] not in self._tracked_heads:
            return False  # no tracked path starts in this top folder
        while i != -1:
            if rel[:i] in tracked:
                return True
            i = rel.find("/", i + 1)
        return False

    def _pruned_files(self) -> list[tuple[str, Path, str, bool]]:
        """``(rel, path, pruned root, tracked)`` of every file under a pruned folder."""
        if self._in_pruned is None:
            roots = self._pruned_roots()
            out = []
            if roots:
                for rel, p in self.files():
                    root = _root_of(rel, roots)
                    if root is not None:
                        out.append((rel, p, root, self.is_tracked(rel)))
            self._in_pruned = out
        return self._in_pruned

    def analysis_files(self) -> list[tuple[str, Path]]:
        """The files of the project's own code and configuration, sorted.

        That is :meth:`files` minus those under a pruned folder (:data:`ANALYSIS_PRUNE`,
        proven virtual environments), except that a file git tracks is always kept, whatever
        folder it is in (tracked content is what ships). A link whose name makes it a code,
        notebook or dependency file and that resolves to a regular file of the subject is
        added under the link's name with the target's path (:meth:`link_aliases`), so the
        target is analysed as what the link's name says. Pruned content that holds something
        analysable is listed by :meth:`unanalysed`.
        """
        if self._analysis is None:
            from mltrust.evidence._attestations import is_evidence_file

            # Evidence files (``.mltrust/*.json``) stay in: the repository wrote them too, so
            # the secret search reads them (they are JSON, never analysed as code).
            hidden = {
                rel
                for rel, _, _, tracked in self._pruned_files()
                if not tracked and not is_evidence_file(rel)
            }
            out = [(rel, p) for rel, p in self.files() if rel not in hidden]
            paths = dict(self.files())
            out.extend((link, paths[target]) for link, target in self.link_aliases().items())
            self._analysis = sorted(out)
        return self._analysis

    def link_aliases(self) -> dict[str, str]:
        """``{link: target}`` (relative paths) for every link analysed as its target: a link
        outside a pruned folder (or tracked by git) whose name makes it a code, notebook or
        dependency file, resolved inside the subject to a regular file the walk listed."""
        return self._resolve_links()[0]

    def unanalysed(self) -> list[dict[str, str]]:
        """``{path, reason}`` of content that analysis did not examine and that nothing
        vouches for: a pruned folder holding analysable files (code, dependency files, any
        text) when git's index cannot say they are untracked, and a link named like a code
        or dependency file whose target is outside the subject, missing or not a regular
        file. The default profile fails on these (control ``analysis-complete``)."""
        return self._unanalysed_rows()[0]

    def untracked_unanalysed(self) -> list[dict[str, str]]:
        """``{path, reason}`` of pruned folders holding analysable files that git's index
        says are untracked (a local ``.venv``, caches): not part of what the commit ships."""
        return self._unanalysed_rows()[1]

    def not_evaluated(self) -> list[str]:
        """One line per folder or entry that code/secret/dependency analysis did not examine,
        and why (pruned folders, links, special files, unreadable folders, the file cap)."""
        roots = self._pruned_roots()
        out = []
        kept: dict[str, int] = {}
        for _, _, root, tracked in self._pruned_files():
            if tracked:
                kept[root] = kept.get(root, 0) + 1
        for root, why in sorted(roots.items()):
            n = kept.get(root, 0)
            out.append(f"{root}/: {why}" + (f" ({n} git-tracked files analysed)" if n else ""))
        aliases = self.link_aliases()
        # Links inside a pruned folder (node_modules/.bin...) are covered by its line; every
        # other skip (and every unreadable folder or cap, wherever it is) is listed.
        for s in self.skipped():
            if (
                s.reason is SkipReason.SYMLINK
                and _under(s.rel, roots)
                and not self.is_tracked(s.rel)
            ):
                continue
            line = f"{s.rel}: {s.reason.value}: {s.detail}"
            if s.rel in aliases:
                line += f"; its target {aliases[s.rel]} is analysed under this name"
            out.append(line)
        return out

    def _pruned_roots(self) -> dict[str, str]:
        if self._pruned is None:
            roots: dict[str, str] = {}
            if not self.is_file:
                files = [rel for rel, _ in self.files()]
                for rel in files:
                    parts = rel.split("/")
                    for i, part in enumerate(parts[:-1]):
                        if part in ANALYSIS_PRUNE:
                            roots.setdefault(
                                "/".join(parts[: i + 1]), "third-party or tool folder not analysed"
                            )
                            break
                for venv in _proven_venvs(self.path, files):
                    roots.setdefault(venv, "virtual environment not analysed")
            # Keep only the outermost roots.
            kept: dict[str, str] = {}
            for root in sorted(roots):
                if not _under(root + "/x", kept):
                    kept[root] = roots[root]
            self._pruned = kept
        return self._pruned

    def _resolve_links(self) -> tuple[dict[str, str], list[dict[str, str]]]:
        if self._links is None:
            from mltrust.evidence._classify import named_for_analysis

            aliases: dict[str, str] = {}
            problems: list[dict[str, str]] = []
            if not self.is_file:
                roots = self._pruned_roots()
                links = {s.rel: s.target for s in self.skipped() if s.reason is SkipReason.SYMLINK}
                named = [
                    link
                    for link in sorted(links)
                    if (not _under(link, roots) or self.is_tracked(link))
                    and named_for_analysis(link)
                ]
                files = {rel for rel, _ in self.files()} if named else set()
                folders = {
                    "/".join(rel.split("/")[:i])
                    for rel in (*files, *(s.rel for s in self.skipped() if named))
                    for i in range(1, rel.count("/") + 1)
                }
                for link in named:
                    target = _resolve_link(link, links, files, folders, self._root_prefixes())
                    if target is None:
                        problems.append(
                            {
                                "path": link,
                                "reason": f"link to {links[link] or '?'!r} named like a code or "
                                "dependency file leaves the subject, dangles or does not reach a "
                                "regular file; what it runs was not analysed",
                            }
                        )
                    else:
                        aliases[link] = target
            self._links = (aliases, problems)
        return self._links

    def _root_prefixes(self) -> tuple[str, ...]:
        """The subject's absolute path spellings (an absolute link into it stays inside)."""
        import os

        out = {os.path.abspath(self.path), os.path.realpath(self.path)}
        return tuple(sorted(p.rstrip("/") for p in out))

    def _unanalysed_rows(self) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        if self._unanalysed is None:
            tracked = self.tracked()
            failing: list[dict[str, str]] = []
            untracked: list[dict[str, str]] = []
            roots = self._pruned_roots()
            by_root: dict[str, list[tuple[str, Path]]] = {r: [] for r in roots}
            for rel, p, root, is_tracked in self._pruned_files():
                if not is_tracked:  # a tracked file is analysed
                    by_root[root].append((rel, p))
            for root, why in sorted(roots.items()):
                if root in _VCS_STORES and _is_vcs_store(self.root, root):
                    continue
                example = _first_analysable(by_root[root])
                if example is None:
                    continue
                if tracked is None:
                    ignored = self.git_index_ignored()
                    failing.append(
                        {
                            "path": root + "/",
                            "reason": f"{why}, and it holds analysable content ({example}); "
                            "no git index says it is untracked"
                            + (f" (the git metadata was not used: {ignored})" if ignored else ""),
                        }
                    )
                else:
                    untracked.append(
                        {
                            "path": root + "/",
                            "reason": f"{why}; untracked content ({example}) is not analysed",
                        }
                    )
            failing.extend(self._unchecked_bytecode(by_root))
            failing.extend(self._resolve_links()[1])
            self._unanalysed = (failing, untracked)
        return self._unanalysed

    @staticmethod
    def _unchecked_bytecode(by_root: dict[str, list[tuple[str, Path]]]) -> list[dict[str, str]]:
        """Untracked bytecode in a project's own ``__pycache__`` folders that Python would
        import without looking at its source: unchecked hash-based ``.pyc`` files (PEP 552).
        A timestamp-based or checked-hash cache that git does not track is a normal local
        cache and is only recorded (:meth:`untracked_unanalysed`); committed bytecode is
        always a file not analysed (the code collector, :func:`._classify.compiled_kind`)."""
        from mltrust.evidence._classify import compiled_kind, pyc_unchecked

        out = []
        for root, files in sorted(by_root.items()):
            if root.rsplit("/", 1)[-1] != "__pycache__":
                continue  # caches inside a virtual environment or node_modules: not the project's
            for rel, p in files:
                if compiled_kind(rel) == "bytecode" and pyc_unchecked(p):
                    out.append(
                        {
                            "path": rel,
                            "reason": "unchecked hash-based bytecode (PEP 552): Python imports "
                            "it without checking the source beside it, and what it runs cannot "
                            "be analysed",
                        }
                    )
        return out

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


def _is_vcs_store(root: Path, name: str) -> bool:
    """Whether ``root/name`` (``.git``, ``.hg`` or ``.svn``) is structurally a repository
    store: ``.git`` with a ``HEAD`` file and an ``objects/`` folder, ``.hg`` with a
    ``requires`` file or a ``store/`` folder, ``.svn`` with a ``wc.db`` working-copy
    database. Links are never followed."""
    import os
    import stat

    def kind(rel: str) -> int:
        try:
            return os.lstat(root / name / rel).st_mode
        except OSError:
            return 0

    if name == ".git":
        return stat.S_ISREG(kind("HEAD")) and stat.S_ISDIR(kind("objects"))
    if name == ".hg":
        return stat.S_ISREG(kind("requires")) or stat.S_ISDIR(kind("store"))
    if name == ".svn":
        return stat.S_ISREG(kind("wc.db"))
    return False


def _root_of(rel: str, roots: Mapping[str, str]) -> str | None:
    """The (outermost) one of ``roots`` that ``rel`` lies under, or None."""
    i = rel.find("/")
    while i != -1:
        if rel[:i] in roots:
            return rel[:i]
        i = rel.find("/", i + 1)
    return None


def _under(rel: str, roots: Mapping[str, str] | set[str]) -> bool:
    """Whether ``rel`` lies under one of ``roots`` (relative folder paths)."""
    parts = rel.split("/")
    return any("/".join(parts[:i]) in roots for i in range(1, len(parts)))


def walk_problems(skipped: tuple[Skipped, ...]) -> list[Skipped]:
    """The skipped entries that mean content was not examined and must fail closed (an
    unreadable folder, a special file, the file cap). Symbolic links are reported but are
    not problems here: the walk never follows them, a target inside the subject is scanned
    on its own, and a link named like code or a dependency file is resolved by
    :meth:`CollectContext.link_aliases` (analysed as its target, or listed by
    :meth:`CollectContext.unanalysed` when its target is outside the subject or missing)."""
    return [s for s in skipped if s.reason is not SkipReason.SYMLINK]


def _proven_venvs(root: Path, files: list[str]) -> list[str]:
    """Folders (relative) that are virtual environments by structure: ``pyvenv.cfg`` with a
    ``home`` key, and files under ``lib/python*/site-packages/`` or ``Lib/site-packages/``.
    The subject's own root is never one (it is what the user asked to check)."""
    candidates = {rel[: -len("/pyvenv.cfg")] for rel in files if rel.endswith("/pyvenv.cfg")}
    if not candidates:
        return []
    import bisect

    ordered = sorted(files)
    with_packages: set[str] = set()
    for folder in candidates:
        for prefix in (folder + "/lib/python", folder + "/Lib/site-packages/"):
            i = bisect.bisect_left(ordered, prefix)
            while i < len(ordered) and ordered[i].startswith(prefix):
                rest = ordered[i][len(folder) + 1 :].split("/")
                if rest[0] == "Lib" or (len(rest) >= 4 and rest[2] == "site-packages"):
                    with_packages.add(folder)
                    break
                i += 1
    return sorted(c for c in with_packages if _has_home(root / c / "pyvenv.cfg"))


def _has_home(cfg: Path) -> bool:
    """Whether a ``pyvenv.cfg`` parses as ``key = value`` lines with a non-empty ``home``."""
    from mltrust.errors import Error
    from mltrust.files import read_bounded

    try:
        text = read_bounded(cfg, DEFAULT_LIMITS.max_pyvenv_cfg_bytes, what="pyvenv.cfg").decode(
            "utf-8"
        )
    except (Error, UnicodeDecodeError):
        return False
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip().lower() == "home" and value.strip():
            return True
    return False


def _first_analysable(files: list[tuple[str, Path]]) -> str | None:
    """The first of ``files`` that analysis would read: a code, notebook or dependency file
    by name, or a non-empty file with no NUL in its first bytes (text the secret search
    reads), or one that cannot be read (unknown counts as analysable). Evidence statements
    in ``.mltrust/`` are not counted: the evidence collector reads and verifies each one."""
    import os

    from mltrust.errors import Error
    from mltrust.evidence._attestations import is_evidence_file
    from mltrust.evidence._classify import named_for_analysis
    from mltrust.files import open_regular

    for rel, path in files:
        if named_for_analysis(rel):
            return rel
        if is_evidence_file(rel):
            continue
        try:
            fd = open_regular(path)
        except Error:
            return rel
        try:
            head = os.read(fd, _TEXT_PROBE)
        except OSError:
            return rel
        finally:
            os.close(fd)
        if head and b"\x00" not in head:
            return rel
    return None


def _resolve_link(
    link: str,
    links: Mapping[str, str],
    files: set[str],
    folders: set[str],
    root_prefixes: tuple[str, ...],
) -> str | None:
    """The relative path of the regular file ``link`` reaches inside the subject, resolving
    one component at a time with what the walk saw (links are followed through ``links``,
    ``..`` only leaves a folder the walk listed), or None when it leaves the subject,
    dangles, loops, or ends on something that is not a listed regular file."""
    parts = link.split("/")[:-1]
    pending = _target_parts(links[link], root_prefixes)
    if pending is None:
        return None
    if pending and pending[0] == "/":
        parts, pending = [], pending[1:]
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not parts or "/".join(parts) not in folders:
                return None
            parts.pop()
            continue
        here = "/".join([*parts, part])
        if here in links:
            hops += 1
            more = _target_parts(links[here], root_prefixes)
            if hops > DEFAULT_LIMITS.max_subject_link_hops or more is None:
                return None
            if more and more[0] == "/":
                parts, more = [], more[1:]
            pending = more + pending
            continue
        parts.append(part)
    final = "/".join(parts)
    return final if final in files else None


def _target_parts(target: str, root_prefixes: tuple[str, ...]) -> list[str] | None:
    """A link target as components; an absolute one inside the subject becomes ``["/", ...]``
    (relative to the subject's root); one outside it, or an unreadable one, is None."""
    if not target or "\0" in target:
        return None
    if not target.startswith("/"):
        return target.split("/")
    for prefix in root_prefixes:
        if target == prefix or target.startswith(prefix + "/"):
            return ["/", *target[len(prefix) :].split("/")]
    return None


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
