"""SARIF 2.1.0 output that GitHub code scanning accepts.

Rules come from the registry (:func:`mltrust.findings.all_rules`), each with a
``security-severity`` score so GitHub ranks alerts. Binary locations are given as the file with
``startLine`` 1 (GitHub needs a region) plus the byte offset and archive members as properties.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from mltrust.findings import Finding, Rule, Severity, all_rules

__all__ = ["SARIF_SCHEMA", "sarif_log"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_INFO_URI = "https://github.com/mltrust/mltrust"

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


class _HasFindings(Protocol):
    @property
    def findings(self) -> tuple[Finding, ...]: ...


def _rule_entry(rule: Rule) -> dict[str, Any]:
    tags = ["security", *rule.tags]
    if rule.cwe is not None:
        tags.append(f"external/cwe/cwe-{rule.cwe}")
    tags.extend(f"external/atlas/{t}" for t in rule.atlas)
    text = rule.summary
    if rule.remediation:
        text += f"\n\nRemediation: {rule.remediation}"
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.name.replace("-", " ")},
        "fullDescription": {"text": rule.summary},
        "help": {"text": text},
        "defaultConfiguration": {"level": _LEVEL[rule.default_severity]},
        "properties": {
            "security-severity": rule.default_severity.security_severity,
            "precision": "high",
            "tags": tags,
        },
    }


def _uri(path: str) -> str:
    return path.replace("\\", "/").removeprefix("./")


def _result(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    loc = f.location
    message = f.message
    if loc.members:
        message += f" (in {'!'.join(loc.members)})"
    props: dict[str, Any] = {
        "severity": f.severity.value,
        "confidence": f.confidence.value,
        "security-severity": f.severity.security_severity,
    }
    if loc.members:
        props["members"] = list(loc.members)
    if loc.offset is not None:
        props["byteOffset"] = loc.offset
    if loc.index is not None:
        props["index"] = loc.index
    if f.atlas:
        props["atlas"] = list(f.atlas)
    out: dict[str, Any] = {
        "ruleId": f.rule_id,
        "level": _LEVEL[f.severity],
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(loc.path)},
                    "region": {"startLine": 1},
                }
            }
        ],
        "partialFingerprints": {
            "mltrustFinding/v1": f"{f.rule_id}:{_uri(loc.path)}:{'!'.join(loc.members)}:"
            f"{loc.offset}:{loc.index}"
        },
        "properties": props,
    }
    if f.rule_id in index:
        out["ruleIndex"] = index[f.rule_id]
    return out


def sarif_log(results: Iterable[_HasFindings], version: str) -> dict[str, Any]:
    """A SARIF log with one run holding every finding of ``results``."""
    rules = all_rules()
    index = {r.id: i for i, r in enumerate(rules)}
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
                        "rules": [_rule_entry(r) for r in rules],
                    }
                },
                "results": [_result(f, index) for r in results for f in r.findings],
                "columnKind": "utf16CodeUnits",
            }
        ],
    }
