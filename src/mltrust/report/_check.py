"""Output formats of ``mltrust check``: one function per format, dispatched through one table."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, assert_never

from mltrust.findings import Finding
from mltrust.policy import Verdict

__all__ = ["CheckFormat", "CheckReport", "render_check"]


class CheckFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a report renders: the verdict, the evidence it was decided on, the findings."""

    verdict: Verdict
    document: Mapping[str, Any] = field(default_factory=dict)
    findings: Sequence[Finding] = ()
    #: How the checked path was given (``.``, ``models/iris``): prefix of SARIF URIs.
    base: str = "."
    tool_version: str = ""
    #: Ids of the statements and verdict stored in the evidence store, when stored.
    stored: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = self.verdict.to_dict()
        out["tool"] = {"name": "mltrust", "version": self.tool_version}
        out["evidence"] = dict(self.document)
        from mltrust.evidence import finding_fingerprint

        # The fingerprint is the one SARIF, waivers and `mltrust report pr` match findings by.
        out["findings"] = [
            {**f.to_dict(), "fingerprint": finding_fingerprint(f)} for f in self.findings
        ]
        if self.stored:
            out["stored"] = dict(self.stored)
        return out


def render_check(report: CheckReport, fmt: CheckFormat, *, color: bool = False) -> str:
    """Render a check report in the chosen format."""
    if fmt is CheckFormat.TEXT:
        from mltrust.report._check_text import check_text

        return check_text(report, color=color)
    if fmt is CheckFormat.JSON:
        return json.dumps(report.to_dict(), indent=2, default=str) + "\n"
    if fmt is CheckFormat.SARIF:
        from mltrust.report._check_sarif import check_sarif

        return json.dumps(check_sarif(report), indent=2) + "\n"
    if fmt is CheckFormat.JUNIT:
        from mltrust.report._junit import check_junit

        return check_junit(report)
    if fmt is CheckFormat.MARKDOWN:
        from mltrust.report._markdown import check_markdown

        return check_markdown(report)
    if fmt is CheckFormat.HTML:
        from mltrust.report._html import check_html

        return check_html(report)
    assert_never(fmt)
