"""SARIF 2.1.0 for ``mltrust check``: one result per control that did not pass, plus every
finding the collectors made (with line numbers for code findings)."""

from __future__ import annotations

import posixpath
from typing import Any

from mltrust.findings import Finding, Severity, all_rules
from mltrust.policy import ControlResult, ControlStatus
from mltrust.report._check import CheckReport
from mltrust.report._sarif import SARIF_SCHEMA, _rule_entry

__all__ = ["check_sarif"]

_INFO_URI = "https://github.com/mltrust/mltrust"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_SCORE = {s.value: s.security_severity for s in Severity}


def _uri(base: str, rel: str) -> str:
    """A relative URI for ``rel`` (relative to the checked path ``base``).

    A relative ``base`` (``models/iris``) is kept as a prefix so that URIs are relative to
    the folder the check ran in (the repository root in CI). An absolute ``base`` is made
    relative to the current folder when it lies inside it, else dropped: SARIF consumers
    such as GitHub code scanning need repository-relative URIs, never machine paths. A URL
    ``base`` (``check --target``: a live endpoint) is the URI itself.
    """
    import os

    if "://" in base:
        return base if rel in ("", ".") else base.rstrip("/") + "/" + rel.lstrip("/")
    path = rel.replace("\\", "/")
    prefix = base.replace("\\", "/")
    if os.path.isabs(base):
        try:
            inside = os.path.relpath(os.path.realpath(base), os.path.realpath(os.getcwd()))
        except ValueError:  # another drive on Windows
            inside = ".."
        prefix = "" if inside.startswith("..") else inside.replace("\\", "/")
    if prefix not in ("", "."):
        path = posixpath.normpath(posixpath.join(prefix, path))
    return path.removeprefix("./") or "."


def _control_rule(r: ControlResult) -> dict[str, Any]:
    c = r.control
    tags = ["security", "policy"]
    for framework, ids in c.tags.items():
        tags.extend(f"external/{framework}/{i}" for i in ids)
    help_text = c.title + (f"\n\nRemediation: {c.remediation}" if c.remediation else "")
    kind = "CEL" if c.check is not None else "probe"
    help_text += f"\n\nCheck ({kind}): {c.check_source}"
    return {
        "id": c.id,
        "name": c.id,
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": c.description or c.title},
        "help": {"text": help_text},
        "defaultConfiguration": {
            "level": "warning" if c.enforcement.value == "warn" else _LEVEL[c.severity]
        },
        "properties": {"security-severity": _SCORE[c.severity], "tags": tags, "impact": c.impact},
    }


def _control_result(r: ControlResult, index: int, subject_uri: str) -> dict[str, Any]:
    level = {
        ControlStatus.FAIL: _LEVEL[r.control.severity],
        ControlStatus.ERROR: "error",
        ControlStatus.WARN: "warning",
        ControlStatus.WAIVED: _LEVEL[r.control.severity],
    }.get(r.status, "none")
    text = f"{r.control.id} {r.status.value}: {r.control.title} ({r.message})"
    if r.details:
        text += "\n" + "\n".join(f"- {d}" for d in r.details)
    out: dict[str, Any] = {
        "ruleId": r.control.id,
        "ruleIndex": index,
        "level": level,
        "kind": "fail",
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": subject_uri},
                    "region": {"startLine": 1},
                }
            }
        ],
        "partialFingerprints": {"mltrustControl/v1": f"{r.control.id}:{subject_uri}"},
        "properties": {"status": r.status.value, "details": list(r.details)},
    }
    if r.waiver is not None:
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{r.waiver.justification} (until {r.waiver.expires})",
            }
        ]
    return out


def _finding_result(
    f: Finding, index: dict[str, int], base: str, waived: Any = None
) -> dict[str, Any]:
    from mltrust.evidence import finding_fingerprint

    extra = dict(f.extra)
    line = int(extra.get("line", "0") or 0)
    uri = _uri(base, f.location.path)
    props: dict[str, Any] = {
        "severity": f.severity.value,
        "confidence": f.confidence.value,
        "security-severity": f.severity.security_severity,
    }
    if f.location.detail:
        props["detail"] = f.location.detail
    if "cell" in extra:
        props["notebookCell"] = int(extra["cell"])
    if f.location.members:
        props["members"] = list(f.location.members)
    if f.location.offset is not None:
        props["byteOffset"] = f.location.offset
    out: dict[str, Any] = {
        "ruleId": f.rule_id,
        "level": _LEVEL[f.severity.value],
        "message": {"text": f.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": max(line, 1)},
                }
            }
        ],
        "partialFingerprints": {"mltrustFinding/v2": finding_fingerprint(f)},
        "properties": props,
    }
    waiver = (waived or {}).get(out["partialFingerprints"]["mltrustFinding/v2"])
    if waiver is not None:
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"{waiver.justification} (until {waiver.expires})",
            }
        ]
    if f.rule_id in index:
        out["ruleIndex"] = index[f.rule_id]
    return out


def _engine_results(
    report: CheckReport, index: dict[str, int], subject_uri: str
) -> list[dict[str, Any]]:
    """Engine-level findings: failed collectors and expired waivers."""
    from mltrust.findings import Location
    from mltrust.policy import _rules as policy_rules

    verdict = report.verdict
    findings = [
        Finding.of(
            policy_rules.COLLECTOR_ERROR,
            f"collector {e['collector']} failed: {e['message']}",
            Location(subject_uri),
        )
        for e in verdict.collector_errors
    ]
    findings.extend(
        Finding.of(
            policy_rules.WAIVER_EXPIRED,
            f"waiver for {w.describe()} expired on {w.expires.isoformat()} ({w.justification})",
            Location(subject_uri),
        )
        for w in verdict.expired_waivers
    )
    return [_finding_result(f, index, ".") for f in findings]


def check_sarif(report: CheckReport) -> dict[str, Any]:
    verdict = report.verdict
    subject_uri = _uri(report.base, ".") if report.base not in ("", ".") else "."
    controls = list(verdict.results)
    control_ids = {r.control.id for r in controls}
    # A custom profile may reuse a rule ID as a control ID; SARIF rule IDs must stay unique.
    registry = [r for r in all_rules() if r.id not in control_ids]
    rules = [_control_rule(r) for r in controls] + [_rule_entry(r) for r in registry]
    finding_index = {r.control.id: i for i, r in enumerate(controls)}
    finding_index.update({r.id: len(controls) + i for i, r in enumerate(registry)})
    results = [
        _control_result(r, i, subject_uri)
        for i, r in enumerate(controls)
        if r.status not in (ControlStatus.PASS, ControlStatus.SKIP)
    ]
    results.extend(
        _finding_result(f, finding_index, report.base, verdict.waived_findings)
        for f in report.findings
    )
    results.extend(_engine_results(report, finding_index, subject_uri))
    version = report.tool_version or "0"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mltrust",
                        "version": version,
                        "semanticVersion": version,
                        "informationUri": _INFO_URI,
                        "rules": rules,
                    }
                },
                "automationDetails": {"id": f"mltrust-check/{verdict.profile.name}/"},
                "results": results,
                "columnKind": "utf16CodeUnits",
                "properties": {
                    "verdict": verdict.status.value,
                    "profile": verdict.profile.name,
                    "subject": dict(verdict.subject),
                },
            }
        ],
    }
