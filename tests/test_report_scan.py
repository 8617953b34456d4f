"""`mltrust scan` output formats: SARIF 2.1.0 that validates, JSON, text; atomic --output."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from mltrust.cli import EXIT_CLEAN, EXIT_FINDINGS, main

SCHEMA = (
    Path(__file__).resolve().parent.parent.parent / "shared/data/schemas/sarif-schema-2.1.0.json"
)
_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."


@pytest.fixture
def models(tmp_path: Path) -> Path:
    (tmp_path / "evil.pkl").write_bytes(_SYSTEM)
    (tmp_path / "good.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=5))
    return tmp_path


def test_scan_sarif_validates_and_ranks_by_security_severity(models: Path, tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    if not SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SCHEMA}")
    out = tmp_path / "scan.sarif"
    assert main(["scan", str(models), "--format", "sarif", "--output", str(out)]) == EXIT_FINDINGS
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    run = doc["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert all("security-severity" in r["properties"] for r in rules)
    results = run["results"]
    assert results and all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results
    )
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
    assert any(
        r["level"] == "error"
        and "evil.pkl" in r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in results
    )


def test_scan_json_has_summary_and_one_record_per_file(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(models), "--format", "json"]) == EXIT_FINDINGS
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "fail"
    assert doc["summary"]["files"] == 2 and doc["summary"]["findings"]["critical"] >= 1
    by_name = {Path(f["path"]).name: f for f in doc["files"]}
    assert by_name["good.pkl"]["findings"] == [] and by_name["good.pkl"]["status"] == "scanned"


def test_clean_scan_exits_zero_and_says_pass(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(models / "good.pkl")]) == EXIT_CLEAN
    assert "PASS" in capsys.readouterr().out


def test_unknown_format_is_reported_not_scanned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blob = tmp_path / "weights.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    assert main(["scan", str(blob), "--format", "json"]) == EXIT_CLEAN
    record = json.loads(capsys.readouterr().out)["files"][0]
    assert record["status"] == "not-scanned" and record["findings"][0]["rule_id"] == "MLT-GEN-001"


def _rich_line(markup: str) -> str:
    """What rich writes for one line of markup, as the text output's console is set up."""
    import io

    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, force_terminal=False, no_color=True, width=120, highlight=False).print(markup)
    return buf.getvalue()


@pytest.mark.parametrize("fail_on", ["medium", "info", "critical"])
def test_clean_text_output_without_rich_is_what_rich_writes(
    models: Path, fail_on: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clean scan's one line is written without importing rich, byte for byte the same."""
    assert main(["scan", str(models / "good.pkl"), "--fail-on", fail_on]) == EXIT_CLEAN
    out = capsys.readouterr().out
    verdict, rest = out.rstrip("\n").split(" ", 1)
    assert verdict == "PASS"
    assert out == _rich_line(f"[bold green]PASS[/] {rest}")


@pytest.mark.parametrize(("name", "exit_code"), [("good.pkl", 0), ("evil.pkl", 1)])
def test_scan_in_a_fresh_process_does_not_import_rich(
    models: Path, name: str, exit_code: int
) -> None:
    """Neither a clean scan nor one with a findings table imports rich (~30% of the process)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom mltrust.cli._main import main\n"
        f"code = main(['scan', {str(models / name)!r}])\n"
        "print(code, 'rich' in sys.modules, 'concurrent.futures' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == f"{exit_code} False False"
    if exit_code:
        assert "MLT-PKL-001" in proc.stdout and "┏" in proc.stdout


def test_scanned_text_in_findings_is_not_read_as_rich_markup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A global named ``system[/x]`` made rich raise a MarkupError instead of printing."""
    evil = tmp_path / "markup[red].pkl"
    evil.write_bytes(b"cos\nsystem[/x]\n)R.")
    assert main(["scan", str(evil)]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "system[/x]" in out and "markup[red].pkl" in out and "FAIL" in out
