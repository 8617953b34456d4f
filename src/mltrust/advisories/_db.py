"""An offline OSV advisory database kept in SQLite.

``AdvisoryDB.import_osv(source, target)`` reads a folder or zip of OSV JSON/YAML documents (for
example a snapshot of the PyPA advisory database) into a new SQLite file, then swaps it into
place atomically. Lookups are by PEP 503 normalized package name (indexed).

Decisions:

- An import that yields **no advisory** (an empty folder, a zip of something else, documents
  in another schema) is refused with :class:`InputError` and the previous database is kept:
  an emptied database must never make a gate pass. A document counts as an OSV advisory when
  it is a mapping with a string ``id`` and an ``affected`` list; an import whose advisories
  name no affected package at all is refused the same way.
- **Withdrawn** advisories (OSV ``withdrawn`` set) are not imported, so they never match; they
  are counted in :attr:`ImportStats.withdrawn`.
- The database records when it was imported and the newest ``modified`` time of its
  advisories (``data_as_of``); ``mltrust check`` fails the advisory control when the data is
  older than a configurable age.
- :func:`download` fetches the OSV zip from a URL the user gives (``mltrust db import URL``):
  the only network call in this package, bounded in size, never made implicitly.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import sqlite3
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from mltrust.advisories._cvss import cvss3_base_score, severity_from_score
from mltrust.advisories._versions import (
    is_affected,
    max_known_version,
    normalize_name,
    parse_version,
)
from mltrust.advisories._yaml import load_untrusted_yaml
from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError, InputError

__all__ = [
    "Advisory",
    "AdvisoryDB",
    "ImportStats",
    "Match",
    "data_time",
    "default_db_path",
    "download",
]

log = logging.getLogger("mltrust.advisories")

_SCHEMA_VERSION = "2"
_SUFFIXES = (".json", ".yaml", ".yml")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    summary TEXT NOT NULL,
    aliases TEXT NOT NULL,
    severity TEXT NOT NULL,
    score REAL,
    vector TEXT,
    published TEXT,
    modified TEXT
);
CREATE TABLE affected (
    package TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    advisory_id TEXT NOT NULL REFERENCES advisories(id),
    ranges TEXT NOT NULL,
    versions TEXT NOT NULL,
    fixed TEXT NOT NULL
);
CREATE INDEX affected_package ON affected (ecosystem, package);
"""


def default_db_path() -> Path:
    """``$MLTRUST_ADVISORY_DB``, else ``$XDG_DATA_HOME/mltrust/advisories.db``."""
    env = os.environ.get("MLTRUST_ADVISORY_DB")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mltrust" / "advisories.db"


def data_time(info: Mapping[str, Any]) -> _dt.datetime | None:
    """How recent the data of a database is (its :meth:`AdvisoryDB.info`): when its newest
    advisory was modified, else when it was imported; None when neither is known."""
    for key in ("data_as_of", "imported_at"):
        text = str(info.get(key, "") or "")
        if not text:
            continue
        try:
            when = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            continue
        return when if when.tzinfo is not None else when.replace(tzinfo=_dt.UTC)
    return None


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    summary: str
    aliases: tuple[str, ...]
    #: ``critical|high|medium|low|info`` from a CVSS vector or the database, else ``unknown``.
    severity: str
    score: float | None
    vector: str | None
    fixed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    package: str
    version: str
    advisory: Advisory

    def to_dict(self) -> dict[str, Any]:
        a = self.advisory
        return {
            "id": a.id,
            "package": self.package,
            "version": self.version,
            "aliases": list(a.aliases),
            "cve": [x for x in a.aliases if x.startswith("CVE-")],
            "severity": a.severity,
            "score": a.score if a.score is not None else -1.0,
            "vector": a.vector or "",
            "fixed": list(a.fixed),
            "summary": a.summary,
        }


@dataclass(frozen=True, slots=True)
class ImportStats:
    files: int
    advisories: int
    affected: int
    skipped: int
    seconds: float
    withdrawn: int = 0


def _severity(doc: Mapping[str, Any]) -> tuple[str, float | None, str | None]:
    best: tuple[str, float | None, str | None] = ("unknown", None, None)
    entries = doc.get("severity")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        vector = _scalar(entry.get("score"))
        score = cvss3_base_score(vector)
        if score is not None and (best[1] is None or score > best[1]):
            best = (severity_from_score(score), score, vector)
    if best[1] is not None:
        return best
    specific = doc.get("database_specific")
    if isinstance(specific, Mapping):
        text = _scalar(specific.get("severity")).lower()
        mapped = {"moderate": "medium", "important": "high"}.get(text, text)
        if mapped in ("critical", "high", "medium", "low"):
            return (mapped, None, None)
    return best


def _parse(name: str, data: bytes) -> Any:
    if name.endswith(".json"):
        return json.loads(data)
    return load_untrusted_yaml(data)


def _documents(source: Path) -> Iterator[tuple[str, bytes | None]]:
    """``(name, bytes)`` for each candidate file; ``bytes`` is None for one that is too big."""
    if source.is_dir():
        for folder, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for fname in sorted(files):
                if not fname.lower().endswith(_SUFFIXES):
                    continue
                path = Path(folder) / fname
                try:
                    if path.stat().st_size > DEFAULT_LIMITS.max_advisory_document_bytes:
                        yield str(path), None
                        continue
                    yield str(path), path.read_bytes()
                except OSError as exc:
                    log.warning("cannot read %s: %s", path, exc.strerror)
                    yield str(path), None
        return
    if zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            if len(infos) > DEFAULT_LIMITS.max_advisory_zip_members:
                raise InputError(
                    f"{source}: more than {DEFAULT_LIMITS.max_advisory_zip_members} members"
                )
            for info in infos:
                if info.is_dir() or not info.filename.lower().endswith(_SUFFIXES):
                    continue
                if info.file_size > DEFAULT_LIMITS.max_advisory_document_bytes:
                    yield info.filename, None
                    continue
                with zf.open(info) as fh:
                    data = fh.read(DEFAULT_LIMITS.max_advisory_document_bytes + 1)
                yield (
                    info.filename,
                    (data if len(data) <= DEFAULT_LIMITS.max_advisory_document_bytes else None),
                )
        return
    if source.is_file() and source.name.lower().endswith(_SUFFIXES):
        yield str(source), source.read_bytes()
        return
    raise ConfigError(f"{source} is not a folder, a zip archive or an OSV JSON/YAML file")


class AdvisoryDB:
    """A read-only view of an imported advisory database."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._cache: dict[str, list[tuple[Advisory, list[Any], list[str]]]] = {}

    @classmethod
    def open(cls, path: str | Path | None = None) -> AdvisoryDB:
        target = Path(path) if path is not None else default_db_path()
        if not target.is_file():
            raise ConfigError(
                f"no advisory database at {target}",
                hint="import one with `mltrust db import PATH` (a folder or zip of OSV files)",
            )
        try:
            conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True, check_same_thread=False)
            version = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{target} is not an mltrust advisory database: {exc}") from None
        if version is None or version[0] != _SCHEMA_VERSION:
            conn.close()
            raise ConfigError(
                f"{target} has an unsupported schema", hint="re-import it with `mltrust db import`"
            )
        return cls(target, conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> AdvisoryDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> dict[str, Any]:
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        (advisories,) = self._conn.execute("SELECT count(*) FROM advisories").fetchone()
        (packages,) = self._conn.execute("SELECT count(DISTINCT package) FROM affected").fetchone()
        return {
            "path": str(self.path),
            "source": meta.get("source", ""),
            "imported_at": meta.get("imported_at", ""),
            "data_as_of": meta.get("data_as_of", ""),
            "advisories": int(advisories),
            "packages": int(packages),
        }

    def _entries(self, package: str, ecosystem: str) -> list[tuple[Advisory, list[Any], list[str]]]:
        key = f"{ecosystem}\0{package}"
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        rows = self._conn.execute(
            "SELECT a.id, a.summary, a.aliases, a.severity, a.score, a.vector, f.fixed, "
            "f.ranges, f.versions FROM affected f JOIN advisories a ON a.id = f.advisory_id "
            "WHERE f.ecosystem = ? AND f.package = ? ORDER BY a.id",
            (ecosystem, package),
        ).fetchall()
        out = []
        for aid, summary, aliases, severity, score, vector, fixed, ranges, versions in rows:
            adv = Advisory(
                aid,
                summary,
                tuple(json.loads(aliases)),
                severity,
                score,
                vector,
                tuple(json.loads(fixed)),
            )
            out.append((adv, json.loads(ranges), json.loads(versions)))
        self._cache[key] = out
        return out

    def allowed_affected(
        self, name: str, specifier: str, *, ecosystem: str = "PyPI", limit: int = 20
    ) -> list[tuple[Advisory, list[str]]]:
        """For a range requirement: each advisory with the versions it names (its explicit
        list and range bounds) that ``specifier`` allows and that are affected. Versions an
        advisory does not name are not guessed."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            spec = SpecifierSet(specifier)
        except InvalidSpecifier:
            return []
        out = []
        for adv, ranges, versions in self._entries(normalize_name(name), ecosystem):
            candidates = set(versions)
            for rng in ranges:
                for event in rng.get("events", []):
                    for key in ("introduced", "last_affected"):
                        value = event.get(key)
                        if value and value != "0":
                            candidates.add(value)
            allowed = []
            for v in candidates:
                pv = parse_version(v)
                if (
                    pv is not None
                    and spec.contains(pv, prereleases=True)
                    and is_affected(v, ranges, versions)
                ):
                    allowed.append(pv)
            if allowed:
                out.append((adv, [str(v) for v in sorted(allowed)[-limit:]]))
        return out

    def matches(self, name: str, version: str, *, ecosystem: str = "PyPI") -> list[Match]:
        """Advisories affecting ``name`` at ``version`` (PEP 440 comparison); records that
        name each other as aliases are one match (the first id, with every alias)."""
        package = normalize_name(name)
        found: dict[str, Match] = {}
        #: every id and alias of a matched advisory -> the id it was reported under
        known: dict[str, str] = {}
        for adv, ranges, versions in self._entries(package, ecosystem):
            if adv.id in found or not is_affected(version, ranges, versions):
                continue
            names = {adv.id, *adv.aliases}
            first = next((known[n] for n in sorted(names) if n in known), None)
            if first is not None:
                # The same vulnerability under another id (OSV lists PYSEC-, GHSA- and CVE-
                # records of one issue): one finding, every name kept for waivers and reports.
                kept = found[first].advisory
                merged = tuple(sorted(set(kept.aliases) | (names - {kept.id})))
                found[first] = Match(package, version, replace(kept, aliases=merged))
                for n in names:
                    known.setdefault(n, first)
                continue
            found[adv.id] = Match(package, version, adv)
            for n in names:
                known.setdefault(n, adv.id)
        return list(found.values())

    def known_versions(self, name: str, *, ecosystem: str = "PyPI") -> list[str]:
        """Every version of ``name`` that any advisory names (explicit lists and range
        events, ``introduced: 0`` aside), in ascending PEP 440 order: the releases the
        database can say anything about."""
        seen: dict[Any, str] = {}
        for _adv, ranges, versions in self._entries(normalize_name(name), ecosystem):
            texts = list(versions)
            for rng in ranges:
                for event in rng.get("events") or []:
                    if not isinstance(event, Mapping):
                        continue
                    for key in ("introduced", "fixed", "last_affected"):
                        if key in event and str(event[key]) != "0":
                            texts.append(str(event[key]))
            for text in texts:
                pv = parse_version(text)
                if pv is not None:
                    seen.setdefault(pv, str(pv))
        return [seen[v] for v in sorted(seen)]

    def latest_known(self, name: str, *, ecosystem: str = "PyPI") -> str | None:
        """The highest version any advisory mentions: a lower bound of the latest release."""
        from packaging.version import Version

        best: Version | None = None
        for _adv, ranges, versions in self._entries(normalize_name(name), ecosystem):
            text = max_known_version(ranges, versions)
            if text is not None:
                v = Version(text)
                if best is None or v > best:
                    best = v
        return str(best) if best is not None else None

    @staticmethod
    def import_osv(source: str | Path, target: str | Path | None = None) -> ImportStats:
        """Import every OSV document under ``source`` into a fresh database at ``target``.

        The new database is written next to ``target`` and renamed over it only when complete,
        so an interrupted import leaves the previous database intact.
        """
        import time

        started = time.perf_counter()
        src = Path(source)
        if not src.exists():
            raise ConfigError(f"no such file or folder: {src}")
        dest = Path(target) if target is not None else default_db_path()
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
        files = advisories = affected = skipped = withdrawn = 0
        newest = ""
        try:
            conn = sqlite3.connect(tmp)
            try:
                conn.execute("PRAGMA journal_mode=OFF")
                conn.execute("PRAGMA synchronous=OFF")
                conn.executescript(_SCHEMA)
                adv_rows: list[tuple[Any, ...]] = []
                aff_rows: list[tuple[Any, ...]] = []
                for name, data in _documents(src):
                    files += 1
                    if data is None:
                        skipped += 1
                        continue
                    try:
                        doc = _parse(name.lower(), data)
                    except (ValueError, yaml.YAMLError, RecursionError) as exc:
                        log.warning("skipping %s: not valid OSV JSON/YAML (%s)", name, exc)
                        skipped += 1
                        continue
                    if isinstance(doc, Mapping) and doc.get("withdrawn"):
                        withdrawn += 1
                        continue
                    rows = _rows(doc)
                    if rows is None:
                        skipped += 1
                        continue
                    newest = max(newest, rows[0][7] or "")
                    adv_rows.append(rows[0])
                    aff_rows.extend(rows[1])
                conn.executemany(
                    "INSERT OR REPLACE INTO advisories VALUES (?,?,?,?,?,?,?,?)", adv_rows
                )
                conn.executemany("INSERT INTO affected VALUES (?,?,?,?,?,?)", aff_rows)
                advisories, affected = len({r[0] for r in adv_rows}), len(aff_rows)
                if advisories == 0 or affected == 0:
                    raise InputError(
                        f"{src} holds no OSV advisories ({files} files read, {skipped} not "
                        f"OSV, {withdrawn} withdrawn); the existing database was kept",
                        hint="import the OSV PyPI zip or a PyPA advisory-database snapshot",
                    )
                now = _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [
                        ("schema", _SCHEMA_VERSION),
                        ("source", str(src)),
                        ("imported_at", now),
                        ("data_as_of", newest),
                    ],
                )
                conn.commit()
            finally:
                conn.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return ImportStats(
            files, advisories, affected, skipped, time.perf_counter() - started, withdrawn
        )


def _rows(doc: Any) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]] | None:
    """The database rows of one OSV document, or None when it is not an advisory."""
    if (
        not isinstance(doc, Mapping)
        or not isinstance(doc.get("id"), str)
        or not isinstance(doc.get("affected"), list)
    ):
        return None
    aid = doc["id"]
    summary = (_scalar(doc.get("summary")) or _scalar(doc.get("details"))).strip()
    if len(summary) > 300:
        summary = summary[:297].rstrip() + "..."
    raw_aliases = doc.get("aliases")
    aliases = (
        [a for a in raw_aliases if isinstance(a, str)] if isinstance(raw_aliases, list) else []
    )
    severity, score, vector = _severity(doc)
    affected_rows = []
    raw_affected = doc.get("affected")
    for entry in raw_affected if isinstance(raw_affected, list) else []:
        if not isinstance(entry, Mapping):
            continue
        pkg = entry.get("package")
        if not isinstance(pkg, Mapping) or not isinstance(pkg.get("name"), str):
            continue
        raw_ranges = entry.get("ranges")
        ranges = _clean_ranges(
            [r for r in raw_ranges if isinstance(r, Mapping)]
            if isinstance(raw_ranges, list)
            else []
        )
        raw_versions = entry.get("versions")
        versions = [
            _scalar(v)
            for v in (raw_versions if isinstance(raw_versions, list) else [])
            if _scalar(v)
        ]
        fixed = [
            e["fixed"]
            for r in ranges
            if r["type"].upper() in ("ECOSYSTEM", "SEMVER")
            for e in r["events"]
            if e.get("fixed")
        ]
        affected_rows.append(
            (
                normalize_name(pkg["name"]),
                (_scalar(pkg.get("ecosystem")) or "PyPI").split(":")[0],
                aid,
                json.dumps(ranges),
                json.dumps(versions),
                json.dumps(fixed),
            )
        )
    published = _iso(doc.get("published")) or None
    modified = _iso(doc.get("modified")) or None
    adv = (aid, summary, json.dumps(aliases), severity, score, vector, published, modified)
    return adv, affected_rows


_EVENT_KEYS = ("introduced", "fixed", "last_affected", "limit")


def _iso(value: Any) -> str:
    """An OSV timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` text (YAML may have parsed it already)."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        return str(value.replace(microsecond=0).isoformat()) + "Z"
    return _scalar(value)


def download(
    url: str, target: Path, *, max_bytes: int = DEFAULT_LIMITS.max_advisory_download_bytes
) -> Path:
    """Fetch ``url`` (http or https, given explicitly by the user) into ``target``.

    This is the only network call of the advisory package. The body is bounded by
    ``max_bytes``; redirects are followed by urllib only to http(s).
    """
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    if urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"not an http(s) URL: {url}")

    class _HttpOnly(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            if urlsplit(newurl).scheme not in ("http", "https"):
                raise InputError(f"{url}: redirected to a non-http(s) URL; refused")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    opener = urllib.request.build_opener(_HttpOnly)
    request = urllib.request.Request(url, headers={"User-Agent": "mltrust"})  # noqa: S310 - scheme checked above
    total = 0
    try:
        with opener.open(request, timeout=60) as response, target.open("wb") as out:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                if total > max_bytes:
                    raise InputError(f"{url}: larger than {max_bytes} bytes; download stopped")
                out.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise InputError(f"cannot download {url}: {getattr(exc, 'reason', exc)}") from None
    return target


def _scalar(value: Any) -> str:
    """``value`` as text when it is a scalar, else ``""``.

    Never ``str()`` a container from untrusted YAML: anchors and aliases make a small document
    describe an exponentially large tree (a "billion laughs"), which ``str`` would expand.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, _dt.date)) and not isinstance(value, bool):
        return str(value)
    return ""


def _clean_ranges(ranges: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Only what matching reads: range types and scalar event values (bounded output)."""
    out: list[dict[str, Any]] = []
    for rng in ranges[:1000]:
        events = rng.get("events")
        clean_events = []
        for event in events[:10_000] if isinstance(events, list) else []:
            if not isinstance(event, Mapping):
                continue
            kept = {k: _scalar(event[k]) for k in _EVENT_KEYS if k in event and _scalar(event[k])}
            if kept:
                clean_events.append(kept)
        out.append({"type": _scalar(rng.get("type")), "events": clean_events})
    return out
