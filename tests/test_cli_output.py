"""Terminal output: ``--quiet`` and the report width (``COLUMNS``)."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

from mltrust.cli._main import main


def _payload(tmp_path: Path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR." + pickle.dumps({"w": [1.0] * 3}))
    return path


def test_quiet_prints_nothing_and_keeps_the_exit_code(tmp_path, capsys) -> None:
    bad = _payload(tmp_path)
    assert main(["scan", str(bad)]) == 1
    assert capsys.readouterr().out
    out = tmp_path / "r.json"
    assert main(["-q", "scan", str(bad), "-f", "json", "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert json.loads(out.read_text())["verdict"] == "fail"  # files asked for are still written
    assert sys.stdout is not None and not sys.stdout.closed  # the real stdout is back


def test_quiet_still_reports_errors(tmp_path, capsys) -> None:
    assert main(["-q", "scan", str(tmp_path / "missing.pkl")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "error" in captured.err.lower()


def test_quiet_and_verbose_contradict(capsys) -> None:
    assert main(["-q", "-v", "rules"]) == 2
    assert "contradict" in capsys.readouterr().err


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_text_report_follows_columns(tmp_path, capsys, monkeypatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["scan", str(_payload(tmp_path))]) == 1
    lines = capsys.readouterr().out.splitlines()
    widest = max(len(line) for line in lines)
    assert widest <= columns
    if columns <= 120:
        assert widest > columns - 10  # the table uses the width it is given


def test_shell_completion_lists_commands_and_options(monkeypatch, capsys) -> None:
    """The documented completion hook (docs/getting-started.md) answers without running."""
    monkeypatch.setenv("_MLTRUST_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "mltrust scan --fa")
    monkeypatch.setenv("COMP_CWORD", "2")
    from mltrust.cli._main import cli

    with pytest.raises(SystemExit) as done:
        cli.main(args=[], prog_name="mltrust")
    assert done.value.code == 0
    assert "plain,--fail-on" in capsys.readouterr().out.splitlines()
