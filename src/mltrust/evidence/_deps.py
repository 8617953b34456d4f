"""Collector: dependency vulnerabilities (offline OSV database), unpinned and drifting
requirements, and requirements behind the newest version the database knows."""

from __future__ import annotations

import datetime as _dt
import logging
import time
from pathlib import Path
from typing import Any

from mltrust.advisories import AdvisoryDB, data_time, default_db_path, parse_version
from mltrust.errors import ConfigError
from mltrust.evidence import _rules
from mltrust.evidence._depsources import (
    Dependency,
    Drift,
    Problem,
    Unverifiable,
    dependency_kind,
    environment_dependencies,
    read_dependency_file,
    source_kind,
)
from mltrust.evidence.interface import CollectContext, Collected, Collector, fingerprint
from mltrust.findings import Finding, Location, Severity

__all__ = ["DependencyCollector", "dependency_files", "dependency_sources"]

log = logging.getLogger("mltrust.evidence")

PREDICATE_TYPE = "https://mltrust.dev/dependencies/v1"
_SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
#: Advisory severities that fail ``no-vulnerable-dependencies`` (unscored ones count as high).
_BLOCKING = frozenset({"critical", "high", "unknown"})


def dependency_files(ctx: CollectContext) -> list[tuple[str, Path]]:
    """Every dependency declaration of the project, at any depth (see
    :func:`dependency_kind` and :func:`source_kind`); third-party folders (virtual
    environments, ``node_modules``) are left out and listed in ``not_evaluated``."""
    return [(rel, path) for rel, path, _ in dependency_sources(ctx)]


def dependency_sources(ctx: CollectContext) -> list[tuple[str, Path, str]]:
    """:func:`dependency_files` with each file's kind (:func:`source_kind`)."""
    if ctx.is_file:
        return []
    cached = ctx.shared.get("dependency_sources")
    if cached is None:
        cached = [
            (rel, path, kind)
            for rel, path in ctx.analysis_files()
            if (kind := source_kind(rel, path)) is not None
        ]
        ctx.shared["dependency_sources"] = cached
    return list(cached)


def _db_section(info: dict[str, Any] | None, path: str, max_age_days: float) -> dict[str, Any]:
    """What the policy reads about the advisory database: whether it is there, holds
    advisories, and how old its data is (``age_days``: since its newest advisory was
    modified, or since the import when that is unknown; -1 when unknown)."""
    out: dict[str, Any] = {
        "present": info is not None,
        "path": path,
        "advisories": 0,
        "imported_at": "",
        "data_as_of": "",
        "age_days": -1.0,
        "max_age_days": float(max_age_days),
        "stale": True,
        "problem": "",
    }
    if info is None:
        return out
    out["advisories"] = int(info.get("advisories", 0))
    out["imported_at"] = str(info.get("imported_at", ""))
    out["data_as_of"] = str(info.get("data_as_of", ""))
    when = data_time(out)
    if when is not None:
        age = (_dt.datetime.now(_dt.UTC) - when).total_seconds() / 86400
        out["age_days"] = round(max(age, 0.0), 2)
        out["stale"] = max_age_days > 0 and age > max_age_days
    if out["advisories"] == 0:
        out["problem"] = "the database holds no advisories"
    elif out["stale"]:
        out["problem"] = (
            f"advisory data is {out['age_days']:.0f} days old (older than {max_age_days:g})"
        )
    return out


def _severity_of(text: str) -> Severity:
    return Severity(text) if text in {s.value for s in Severity} else Severity.HIGH


def _readable_specifier(text: str) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return False
    return True


class DependencyCollector(Collector):
    name = "deps"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        return ctx.environment or bool(dependency_files(ctx))

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "sources": [],
            "packages": 0,
            "pinned": 0,
            "vulnerabilities": [],
            "vulnerabilities_by_severity": dict.fromkeys(_SEVERITIES, 0),
            "unpinned": [],
            "drifting": [],
            "outdated": [],
            "unpinned_vulnerable": [],
            "unverifiable": [],
            "problems": [],
            "errors": [],
            "not_evaluated": [],
            "db": _db_section(None, "", 0.0),
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        findings: list[Finding] = []
        errors: list[str] = []
        sources = dependency_sources(ctx)
        files = [(rel, path) for rel, path, _ in sources]
        deps: list[Dependency] = []
        direct_unpinned: list[Dependency] = []
        problems: list[Problem] = []
        unverifiable: list[Unverifiable] = []
        locked_folders = {
            str(Path(rel).parent)
            for rel, _ in files
            if dependency_kind(rel) in ("lock", "pipfile-lock", "pylock", "requirements-lock")
        }
        for rel, path, kind in sources:
            parsed = read_dependency_file(path, rel, root=ctx.root, kind=kind)
            problems.extend(parsed.problems)
            unverifiable.extend(parsed.unverifiable)
            deps.extend(d for d in parsed.deps if d.pinned)
            if parsed.lock:
                continue
            if kind in ("pyproject", "pipfile") and str(Path(rel).parent) in locked_folders:
                continue  # a lock beside it pins what this file ranges over
            for d in parsed.deps:
                if d.pinned:
                    continue
                if _readable_specifier(d.specifier):
                    direct_unpinned.append(d)
                else:  # an unread range is never "any version" (it would be judged clean)
                    unverifiable.append(
                        Unverifiable(
                            d.source,
                            d.line,
                            f"{d.name} {d.specifier}",
                            "a version constraint that could not be read; what it allows "
                            "is unknown",
                        )
                    )
        for problem in problems:
            errors.append(str(problem))
            findings.append(
                Finding.of(
                    _rules.DEP_UNREADABLE,
                    problem.message,
                    Location(
                        problem.source, detail=f"line {problem.line}" if problem.line else None
                    ),
                    extra={"line": str(problem.line)},
                )
            )
        drift: list[Drift] = []
        if ctx.environment:
            env_deps, drift = environment_dependencies()
            deps.extend(env_deps)
        ctx.shared["dependencies"] = deps
        ctx.shared["unpinned_dependencies"] = direct_unpinned  # the BOM lists them too

        section = self.absent()
        section["present"] = True
        section["sources"] = [rel for rel, _ in files] + (
            ["environment"] if ctx.environment else []
        )
        section["packages"] = len({d.name for d in deps} | {d.name for d in direct_unpinned})
        section["pinned"] = len({d.name for d in deps})
        section["errors"] = errors
        section["not_evaluated"] = ctx.not_evaluated()
        section["unpinned"] = [
            {
                "package": d.name,
                "specifier": d.specifier,
                "source": d.source,
                "line": d.line,
                "rule_id": _rules.DEP_UNPINNED.id,
                "fingerprint": fingerprint(
                    _rules.DEP_UNPINNED.id,
                    d.source,
                    d.line,
                    key=f"{d.name}{d.specifier} is not pinned to one version",
                ),
            }
            for d in direct_unpinned
        ]
        section["problems"] = [
            {
                "source": p.source,
                "line": p.line,
                "message": p.message,
                "rule_id": _rules.DEP_UNREADABLE.id,
                "fingerprint": fingerprint(
                    _rules.DEP_UNREADABLE.id, p.source, p.line, key=p.message
                ),
            }
            for p in problems
        ]
        section["unverifiable"] = [
            {
                "source": u.source,
                "line": u.line,
                "requirement": u.requirement,
                "reason": u.reason,
                "rule_id": _rules.DEP_UNVERIFIABLE.id,
                "fingerprint": fingerprint(
                    _rules.DEP_UNVERIFIABLE.id, u.source, u.line, key=u.requirement
                ),
            }
            for u in unverifiable
        ]
        for u in unverifiable:
            findings.append(
                Finding.of(
                    _rules.DEP_UNVERIFIABLE,
                    f"{u.requirement}: {u.reason}",
                    Location(u.source, detail=f"line {u.line}" if u.line else None),
                    extra={"line": str(u.line)},
                )
            )
        for d in direct_unpinned:
            findings.append(
                Finding.of(
                    _rules.DEP_UNPINNED,
                    f"{d.name}{d.specifier} is not pinned to one version",
                    Location(d.source, detail=f"line {d.line}" if d.line else None),
                    extra={"line": str(d.line)},
                )
            )
        for x in drift:
            findings.append(
                Finding.of(
                    _rules.DEP_DRIFT,
                    f"{x.required_by} requires {x.requirement}, a range that can resolve "
                    "differently on the next install",
                    Location("environment", detail=x.required_by),
                )
            )
        section["drifting"] = [
            {"package": x.package, "requirement": x.requirement, "required_by": x.required_by}
            for x in drift
        ]
        db_path = ctx.advisory_db or default_db_path()
        try:
            db = AdvisoryDB.open(db_path)
        except ConfigError as exc:
            log.info("advisory database unavailable: %s", exc)
            section["db"] = _db_section(None, str(db_path), ctx.advisory_max_age_days)
            section["db"]["problem"] = str(exc)
        else:
            with db:
                info = db.info()
                section["db"] = _db_section(info, str(db_path), ctx.advisory_max_age_days)
                self._match(db, deps, section, findings)
                self._ranges(db, direct_unpinned, section, findings)
        predicate = dict(section)
        predicate["dependencies"] = [
            {"name": d.name, "version": d.version, "source": d.source} for d in deps
        ]
        return Collected(
            self.name,
            self.predicate_type,
            predicate,
            section,
            tuple(findings),
            time.perf_counter() - started,
        )

    @staticmethod
    def _range_verdict(
        db: AdvisoryDB, d: Dependency, cache: dict[tuple[str, str], set[str]]
    ) -> tuple[str, str, set[str]]:
        """``(reason, newest allowed known version, ids of the blocking advisories that
        affect it)`` for a range requirement; reason is ``every-allowed-version-affected``,
        ``newest-allowed-version-affected`` (both fail the vulnerability control) or
        ``fixed-version-allowed`` (a warning: the resolver can pick a fixed release).

        Only versions some advisory names are considered (the database does not know the
        others); the newest is chosen as pip would (pre-releases only when the specifier
        asks for them or nothing else matches)."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            spec = SpecifierSet(d.specifier)
        except InvalidSpecifier:  # the collector reports these unverifiable before this
            return "every-allowed-version-affected", "", set()
        allowed = list(spec.filter(db.known_versions(d.name)))
        if not allowed:
            return "fixed-version-allowed", "", set()

        def blocking(version: str) -> set[str]:
            key = (d.name, version)
            if key not in cache:
                cache[key] = {
                    m.advisory.id
                    for m in db.matches(d.name, version)
                    if m.advisory.severity in _BLOCKING or m.advisory.severity not in _SEVERITIES
                }
            return cache[key]

        newest = allowed[-1]
        ids = blocking(newest)
        if not ids:
            return "fixed-version-allowed", newest, set()
        if all(blocking(v) for v in allowed[:-1]):
            return "every-allowed-version-affected", newest, ids
        return "newest-allowed-version-affected", newest, ids

    @classmethod
    def _ranges(
        cls,
        db: AdvisoryDB,
        unpinned: list[Dependency],
        section: dict[str, Any],
        findings: list[Finding],
    ) -> None:
        rows: list[dict[str, Any]] = []
        cache: dict[tuple[str, str], set[str]] = {}
        for d in unpinned:
            affected = db.allowed_affected(d.name, d.specifier)
            if not affected:
                continue
            reason, newest, blocking_ids = cls._range_verdict(db, d, cache)
            for adv, versions in affected:
                shown = ", ".join(versions[-5:]) + (" ..." if len(versions) > 5 else "")
                fixed = ", ".join(adv.fixed) or "none known"
                blocks = adv.id in blocking_ids
                verdict = (
                    (
                        "every allowed version known to the advisory database is affected"
                        if reason == "every-allowed-version-affected"
                        else f"the newest allowed version, {newest}, is affected"
                    )
                    if blocks
                    else "a fixed version is allowed"
                    if reason == "fixed-version-allowed"
                    else f"{newest} is affected by another advisory"
                )
                rows.append(
                    {
                        "package": d.name,
                        "specifier": d.specifier,
                        "source": d.source,
                        "line": d.line,
                        "id": adv.id,
                        "aliases": list(adv.aliases),
                        "severity": adv.severity,
                        "versions": versions,
                        "fixed": list(adv.fixed),
                        "blocking": blocks,
                        "reason": reason if blocks else "fixed-version-allowed",
                        "newest_allowed": newest,
                        "verdict": verdict,
                        "rule_id": _rules.DEP_RANGE_VULNERABLE.id,
                        "fingerprint": fingerprint(
                            _rules.DEP_RANGE_VULNERABLE.id,
                            d.source,
                            d.line,
                            key=f"{adv.id}/{d.name}",
                        ),
                    }
                )
                findings.append(
                    Finding.of(
                        _rules.DEP_RANGE_VULNERABLE,
                        f"{d.name}{d.specifier or ' (any version)'} allows {shown}, affected by "
                        f"{adv.id} (severity {adv.severity}; fixed in {fixed}); {verdict}",
                        Location(d.source, detail=f"line {d.line}" if d.line else None),
                        severity=_severity_of(adv.severity) if blocks else None,
                        extra={"line": str(d.line), "advisory": adv.id, "package": d.name},
                    )
                )
        section["unpinned_vulnerable"] = rows

    @staticmethod
    def _match(
        db: AdvisoryDB, deps: list[Dependency], section: dict[str, Any], findings: list[Finding]
    ) -> None:
        seen: set[tuple[str, str]] = set()
        vulns: list[dict[str, Any]] = []
        outdated: list[dict[str, Any]] = []
        for d in deps:
            if d.version is None or (d.name, d.version) in seen:
                continue
            seen.add((d.name, d.version))
            for m in db.matches(d.name, d.version):
                entry = m.to_dict()
                entry["source"] = d.source
                entry["line"] = d.line
                entry["rule_id"] = _rules.DEP_VULNERABLE.id
                entry["fingerprint"] = fingerprint(
                    _rules.DEP_VULNERABLE.id, d.source, d.line, key=f"{m.advisory.id}/{d.name}"
                )
                cves = ", ".join(entry["cve"])
                entry["title"] = (
                    f"{d.name}=={d.version}: {m.advisory.id}"
                    + (f" ({cves})" if cves else "")
                    + f", severity {m.advisory.severity}, fixed in "
                    + (", ".join(m.advisory.fixed) or "no known version")
                )
                vulns.append(entry)
                ids = ", ".join([m.advisory.id, *entry["cve"]])
                fixed = ", ".join(m.advisory.fixed) or "none known"
                findings.append(
                    Finding.of(
                        _rules.DEP_VULNERABLE,
                        f"{d.name}=={d.version} is affected by {ids} "
                        f"(severity {m.advisory.severity}; fixed in {fixed})",
                        Location(d.source, detail=f"line {d.line}" if d.line else None),
                        severity=_severity_of(m.advisory.severity),
                        extra={"line": str(d.line), "advisory": m.advisory.id, "package": d.name},
                    )
                )
            latest = db.latest_known(d.name)
            current, newest = parse_version(d.version), parse_version(latest or "")
            if current is not None and newest is not None and newest > current:
                behind = newest.release[0] - current.release[0]
                outdated.append(
                    {
                        "package": d.name,
                        "version": d.version,
                        "latest_known": str(newest),
                        "major_behind": behind,
                        "source": d.source,
                    }
                )
                if behind >= 1:
                    findings.append(
                        Finding.of(
                            _rules.DEP_OUTDATED,
                            f"{d.name}=={d.version} is {behind} major version(s) behind "
                            f"{newest} (at least; from the advisory database)",
                            Location(d.source, detail=f"line {d.line}" if d.line else None),
                            extra={"line": str(d.line)},
                        )
                    )
        counts = dict.fromkeys(_SEVERITIES, 0)
        for v in vulns:
            counts[v["severity"] if v["severity"] in counts else "unknown"] += 1
        section["vulnerabilities"] = vulns
        section["vulnerabilities_by_severity"] = counts
        section["outdated"] = outdated
