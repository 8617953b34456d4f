"""Collector: dependency vulnerabilities (offline OSV database), unpinned and drifting
requirements, and requirements behind the newest version the database knows."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from mltrust.advisories import AdvisoryDB, default_db_path, parse_version
from mltrust.errors import ConfigError
from mltrust.evidence import _rules
from mltrust.evidence._depsources import (
    Dependency,
    DependencyFileError,
    Drift,
    environment_dependencies,
    parse_lock,
    parse_pyproject,
    parse_requirements,
)
from mltrust.evidence.interface import CollectContext, Collected, Collector
from mltrust.findings import Finding, Location, Severity

__all__ = ["DependencyCollector", "dependency_files"]

log = logging.getLogger("mltrust.evidence")

PREDICATE_TYPE = "https://mltrust.dev/dependencies/v1"
_REQUIREMENTS = re.compile(r"^requirements([-_.][\w.-]*)?\.(txt|in)$|^constraints\.txt$", re.I)
_LOCKS = ("poetry.lock", "uv.lock")
_SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")


def dependency_files(ctx: CollectContext) -> list[tuple[str, Path]]:
    """Dependency declarations of the project (top level, ``requirements/`` and one level down)."""
    if ctx.is_file:
        return []
    out = []
    for rel, path in ctx.files():
        parts = rel.split("/")
        if len(parts) > 2 or (
            len(parts) == 2
            and parts[0] not in ("requirements", "deps")
            and not _REQUIREMENTS.match(parts[1])
        ):
            continue
        name = parts[-1]
        in_folder = len(parts) == 2 and name.endswith((".txt", ".in"))
        if (
            in_folder
            or _REQUIREMENTS.match(name)
            or name in _LOCKS
            or (name == "pyproject.toml" and len(parts) == 1)
        ):
            out.append((rel, path))
    return out


def _severity_of(text: str) -> Severity:
    return Severity(text) if text in {s.value for s in Severity} else Severity.HIGH


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
            "errors": [],
            "db": {"present": False, "path": "", "advisories": 0, "imported_at": ""},
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        findings: list[Finding] = []
        errors: list[str] = []
        files = dependency_files(ctx)
        has_lock = any(Path(rel).name in _LOCKS for rel, _ in files)
        deps: list[Dependency] = []
        direct_unpinned: list[Dependency] = []
        for rel, path in files:
            name = Path(rel).name
            try:
                if name in _LOCKS:
                    deps.extend(parse_lock(path, rel))
                elif name == "pyproject.toml":
                    parsed = parse_pyproject(path, rel)
                    deps.extend(d for d in parsed if d.pinned)
                    if not has_lock:
                        direct_unpinned.extend(d for d in parsed if not d.pinned)
                else:
                    parsed = parse_requirements(path, rel, root=ctx.root)
                    deps.extend(d for d in parsed if d.pinned)
                    direct_unpinned.extend(d for d in parsed if not d.pinned)
            except DependencyFileError as exc:
                errors.append(str(exc))
                findings.append(Finding.of(_rules.DEP_UNREADABLE, str(exc), Location(rel)))
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
        section["unpinned"] = [
            {"package": d.name, "specifier": d.specifier, "source": d.source, "line": d.line}
            for d in direct_unpinned
        ]
        for d in direct_unpinned:
            findings.append(
                Finding.of(
                    _rules.DEP_UNPINNED,
                    f"{d.name}{d.specifier} is not pinned to one version",
                    Location(d.source, detail=f"line {d.line}" if d.line else None),
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
            section["db"] = {
                "present": False,
                "path": str(db_path),
                "advisories": 0,
                "imported_at": "",
            }
        else:
            with db:
                info = db.info()
                section["db"] = {
                    "present": True,
                    "path": str(db_path),
                    "advisories": info["advisories"],
                    "imported_at": info["imported_at"],
                }
                self._match(db, deps, section, findings)
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
                        )
                    )
        counts = dict.fromkeys(_SEVERITIES, 0)
        for v in vulns:
            counts[v["severity"] if v["severity"] in counts else "unknown"] += 1
        section["vulnerabilities"] = vulns
        section["vulnerabilities_by_severity"] = counts
        section["outdated"] = outdated
