"""JUnit XML for ``mltrust check``: one test case per control (CI systems render it natively).

The output follows the ``junit-10.xsd`` dialect (the Jenkins xUnit plugin's schema, which
pytest and most CI systems follow): ``testsuites`` carries only ``name``, ``time``,
``tests``, ``failures`` and ``errors``; ``testsuite`` requires ``name``, ``tests``,
``failures`` and ``errors``; a ``testcase`` holds ``skipped``/``error``/``failure``/
``system-out``/``system-err`` and has ``name``, ``classname`` and ``time``; times are plain
decimal seconds.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from mltrust.policy import ControlStatus
from mltrust.report._check import CheckReport

__all__ = ["check_junit"]


def _clean(text: str) -> str:
    """Text without characters XML 1.0 cannot carry."""
    return "".join(
        ch
        for ch in text
        if ch in "\t\n\r"
        or (0x20 <= ord(ch) <= 0xD7FF)
        or (0xE000 <= ord(ch) <= 0xFFFD)
        or 0x10000 <= ord(ch) <= 0x10FFFF
    )


def check_junit(report: CheckReport) -> str:
    verdict = report.verdict
    counts = verdict.counts()
    tests = len(verdict.results) + len(verdict.collector_errors)
    failures = counts["fail"]
    errors = counts["error"] + len(verdict.collector_errors)
    skipped = counts["skip"] + counts["waived"]
    seconds = f"{verdict.seconds:.6f}"
    root = ET.Element(
        "testsuites",
        name="mltrust check",
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        time=seconds,
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=_clean(f"mltrust.{verdict.profile.name}"),
        tests=str(tests),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=seconds,
        timestamp=verdict.evaluated_at.replace("+00:00", ""),
        hostname="localhost",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("verdict", verdict.status.value),
        ("profile", verdict.profile.name),
        ("subject", str(verdict.subject.get("name", ""))),
        ("subject.digest", str(verdict.subject.get("digest", ""))),
    ):
        ET.SubElement(props, "property", name=key, value=_clean(value))
    for r in verdict.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_clean(f"mltrust.{verdict.profile.name}"),
            name=_clean(f"{r.control.id}: {r.control.title}"),
            time=f"{r.micros / 1e6:.6f}",
        )
        body = _clean("\n".join(r.details))
        if r.status is ControlStatus.FAIL:
            el = ET.SubElement(case, "failure", message=_clean(r.message), type=r.control.severity)
            el.text = body or r.message
        elif r.status is ControlStatus.ERROR:
            el = ET.SubElement(case, "error", message=_clean(r.message), type="evaluation-error")
            el.text = body or r.message
        elif r.status is ControlStatus.SKIP or r.status is ControlStatus.WAIVED:
            ET.SubElement(case, "skipped", message=_clean(r.message))
        elif r.status is ControlStatus.WARN:
            out = ET.SubElement(case, "system-out")
            out.text = _clean(f"WARNING: {r.control.title}\n{body}")
        if r.expired_waiver is not None:
            err = ET.SubElement(case, "system-err")
            err.text = f"waiver expired on {r.expired_waiver.expires.isoformat()}"
    for e in verdict.collector_errors:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=_clean(f"mltrust.{verdict.profile.name}.collectors"),
            name=_clean(f"collector {e['collector']}"),
            time="0",
        )
        el = ET.SubElement(case, "error", message=_clean(e["message"]), type="collector-error")
        el.text = _clean(e["message"])
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
