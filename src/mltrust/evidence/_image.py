"""Collector: container image vulnerabilities from a Trivy or Grype JSON report."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import InputError
from mltrust.evidence import _rules
from mltrust.evidence.interface import CollectContext, Collected, Collector
from mltrust.findings import Finding, Location, Severity

__all__ = ["ImageReportCollector", "parse_image_report"]

PREDICATE_TYPE = "https://mltrust.dev/image-vulnerabilities/v1"
_SEVERITIES = ("critical", "high", "medium", "low", "info", "unknown")
_MAP = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "info",
    "info": "info",
    "unknown": "unknown",
}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _sev(text: Any) -> str:
    return _MAP.get(str(text or "unknown").lower(), "unknown")


def parse_image_report(data: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """``(tool, image, vulnerabilities)`` from a parsed Trivy or Grype JSON report."""
    if not isinstance(data, Mapping):
        raise InputError("image report: not a JSON object")
    vulns: list[dict[str, Any]] = []
    if "Results" in data or "ArtifactName" in data:  # Trivy
        image = str(data.get("ArtifactName", ""))
        for result in _list(data.get("Results")):
            if not isinstance(result, Mapping):
                continue
            target = str(result.get("Target", ""))
            for v in _list(result.get("Vulnerabilities")):
                if not isinstance(v, Mapping) or "VulnerabilityID" not in v:
                    continue
                fixed = str(v.get("FixedVersion") or "")
                vulns.append(
                    {
                        "id": str(v["VulnerabilityID"]),
                        "package": str(v.get("PkgName", "")),
                        "version": str(v.get("InstalledVersion", "")),
                        "fixed": [x.strip() for x in fixed.split(",") if x.strip()],
                        "severity": _sev(v.get("Severity")),
                        "target": target,
                    }
                )
        return "trivy", image, vulns
    if "matches" in data:  # Grype
        source = data.get("source")
        spec = source.get("target") if isinstance(source, Mapping) else None
        image = str(spec.get("userInput", "")) if isinstance(spec, Mapping) else ""
        for m in _list(data.get("matches")):
            if not isinstance(m, Mapping):
                continue
            vuln = m.get("vulnerability") or {}
            art = m.get("artifact") or {}
            if not isinstance(vuln, Mapping) or not isinstance(art, Mapping) or "id" not in vuln:
                continue
            fix = vuln.get("fix") or {}
            vulns.append(
                {
                    "id": str(vuln["id"]),
                    "package": str(art.get("name", "")),
                    "version": str(art.get("version", "")),
                    "fixed": [str(x) for x in _list(fix.get("versions")) if isinstance(x, str)]
                    if isinstance(fix, Mapping)
                    else [],
                    "severity": _sev(vuln.get("severity")),
                    "target": str(art.get("type", "")),
                }
            )
        return "grype", image, vulns
    raise InputError("image report: neither a Trivy (Results) nor a Grype (matches) JSON report")


class ImageReportCollector(Collector):
    name = "image"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        return ctx.image_report is not None

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "tool": "",
            "image": "",
            "vulnerabilities": [],
            "vulnerabilities_by_severity": dict.fromkeys(_SEVERITIES, 0),
            "fixable": 0,
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        report = ctx.image_report
        if report is None:
            raise InputError("no image report given")
        path = Path(report)
        try:
            if path.stat().st_size > DEFAULT_LIMITS.max_image_report_bytes:
                raise InputError(
                    f"{path}: image report larger than "
                    f"{DEFAULT_LIMITS.max_image_report_bytes} bytes"
                )
            data = json.loads(path.read_bytes())
        except RecursionError:
            raise InputError(f"image report {path} is nested too deeply") from None
        except OSError as exc:
            raise InputError(f"cannot read image report {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise InputError(f"image report {path} is not valid JSON: {exc}") from None
        tool, image, vulns = parse_image_report(data)
        counts = dict.fromkeys(_SEVERITIES, 0)
        findings = []
        for v in vulns:
            counts[v["severity"]] += 1
            sev = Severity(v["severity"]) if v["severity"] != "unknown" else Severity.HIGH
            fixed = ", ".join(v["fixed"]) or "no fix known"
            findings.append(
                Finding.of(
                    _rules.DEP_IMAGE_VULN,
                    f"{v['package']} {v['version']}: {v['id']} ({v['severity']}; {fixed})",
                    Location(path.name, detail=v["target"] or None),
                    severity=sev,
                )
            )
        section = {
            "present": True,
            "tool": tool,
            "image": image,
            "vulnerabilities": vulns,
            "vulnerabilities_by_severity": counts,
            "fixable": sum(1 for v in vulns if v["fixed"]),
        }
        return Collected(
            self.name,
            self.predicate_type,
            section,
            section,
            tuple(findings),
            time.perf_counter() - started,
        )
