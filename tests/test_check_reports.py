"""Reports GitHub and CI can use: JUnit in the junit-10.xsd dialect, SARIF URIs relative to
the project for absolute paths, dependency findings on their requirement line, setup errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from _check_helpers import MALICIOUS_PICKLE, notebook
from mltrust.cli._main import main

# The facts of junit-10.xsd (jenkinsci/xunit-plugin), the dialect pytest also writes:
# allowed attributes, required attributes and allowed children of each element.
_ATTRS = {
    "testsuites": ({"name", "time", "tests", "failures", "errors"}, set()),
    "testsuite": (
        {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp"}
        | {"hostname", "id", "package", "file", "log", "url"},
        {"name", "tests", "failures", "errors"},
    ),
    "testcase": ({"name", "time", "classname", "group"}, {"name"}),
    "properties": (set(), set()),
    "property": ({"name", "value"}, {"name", "value"}),
    "failure": ({"type", "message"}, set()),
    "error": ({"type", "message"}, set()),
    "skipped": ({"type", "message"}, set()),
    "system-out": (set(), set()),
    "system-err": (set(), set()),
}
_CHILDREN = {
    "testsuites": {"testsuite"},
    "testsuite": {"testsuite", "properties", "testcase", "system-out", "system-err"},
    "testcase": {"skipped", "error", "failure", "system-out", "system-err"},
    "properties": {"property"},
}
_TIME = re.compile(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?$")


def _validate_junit10(el: ET.Element) -> None:
    allowed, required = _ATTRS[el.tag]
    assert set(el.attrib) <= allowed, (el.tag, set(el.attrib) - allowed)
    assert required <= set(el.attrib), (el.tag, required - set(el.attrib))
    if el.tag in ("testsuites", "testsuite") and "time" in el.attrib:
        assert _TIME.match(el.attrib["time"]), el.attrib["time"]
    for child in el:
        assert child.tag in _CHILDREN.get(el.tag, set()), (el.tag, child.tag)
        _validate_junit10(child)


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    (root / "requirements.txt").write_text("flask>=2\n")
    (root / "nb.ipynb").write_text(notebook(["import sys\nvalue = eval(sys.argv[1])\n"]))
    return root


def test_junit_is_valid_junit10(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = _project(tmp_path / "p")
    code = main(["check", str(project), "-f", "junit", "--no-store"])
    out, _ = capsys.readouterr()
    assert code == 1
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    _validate_junit10(root)


def test_sarif_uris_relative_for_absolute_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(tmp_path / "repo" / "svc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd, prefix in ((tmp_path / "repo", "svc/"), (elsewhere, "")):
        monkeypatch.chdir(cwd)
        main(["check", str(project.resolve()), "-f", "sarif", "--no-store"])
        sarif = json.loads(capsys.readouterr()[0])
        uris = {
            loc["physicalLocation"]["artifactLocation"]["uri"]
            for r in sarif["runs"][0]["results"]
            for loc in r["locations"]
        }
        assert f"{prefix}model.pkl" in uris
        assert not any(u.startswith("/") or str(tmp_path) in u for u in uris), uris
        nb = [
            r
            for r in sarif["runs"][0]["results"]
            if r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            == f"{prefix}nb.ipynb"
        ]
        assert nb and nb[0]["properties"]["notebookCell"] == 1
        assert nb[0]["locations"][0]["physicalLocation"]["region"]["startLine"] == 2


def test_model_signed_not_applicable_without_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.py").write_text("print('hi')\n")
    main(["check", str(tmp_path), "-f", "json", "--no-store"])
    report = json.loads(capsys.readouterr()[0])
    signed = next(c for c in report["controls"] if c["id"] == "model-signed")
    assert signed["status"] == "skip"
