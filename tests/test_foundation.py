"""The foundation: CLI conventions, config validation, rule registry, network guard."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import mltrust
from mltrust.cli import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, main
from mltrust.config import Limits, ScanConfig, load_scan_config
from mltrust.errors import ConfigError
from mltrust.findings import Finding, Location, Severity, all_rules


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_CLEAN
    assert mltrust.__version__ in capsys.readouterr().out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    from mltrust.cli._main import COMMANDS

    for name in COMMANDS:  # every listed command must exist and document itself
        assert main([name, "--help"]) == EXIT_CLEAN, name
        assert "Usage:" in capsys.readouterr().out


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == EXIT_ERROR
    assert "No such command" in capsys.readouterr().err


def test_missing_path_is_processing_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scan", str(tmp_path / "absent.pkl")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: no such file")
    assert "Traceback" not in err


def test_exit_code_constants() -> None:
    assert (EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR) == (0, 1, 2)


def test_module_entry_point_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mltrust", "--version"], capture_output=True, text=True, check=True
    )
    assert mltrust.__version__ in out.stdout


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError):
        Limits(max_archive_depth=0)
    with pytest.raises(ConfigError):
        Limits().replace(no_such_limit=3)
    with pytest.raises(ConfigError):
        Limits(max_file_bytes=-1)


def test_config_file_round_trip(tmp_path: Path) -> None:
    cfg = tmp_path / "mltrust.toml"
    cfg.write_text(
        '[scan]\nfail_on = "high"\nallow_globals = ["mypkg.models:Net"]\n'
        "[scan.limits]\nmax_archive_depth = 2\n"
    )
    config = load_scan_config(cfg)
    assert config.fail_on is Severity.HIGH
    assert "mypkg.models:Net" in config.allow_globals
    assert config.limits.max_archive_depth == 2


@pytest.mark.parametrize(
    "text",
    [
        '[scan]\nfail_on = "severe"\n',
        '[scan]\nallow_globals = ["nocolon"]\n',
        "[scan]\nunknown_key = 1\n",
        '[scan.limits]\nmax_archive_depth = "deep"\n',
        "not toml at all [",
    ],
)
def test_bad_config_is_config_error(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "mltrust.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError):
        load_scan_config(cfg)


@pytest.mark.parametrize(
    "table",
    [
        '[tool.mltrust.scan]\nfail_on = "high"\n',
        '[tool."mltrust".scan]\nfail_on = "high"\n',
        "[tool.'mltrust'.scan]\nfail_on = 'high'\n",
        '[tool]\n"ml\\u0074rust" = { scan = { fail_on = "high" } }\n',  # an escaped key
        '[tool]\n"ml\\U00000074rust".scan.fail_on = "high"\n',
    ],
)
def test_pyproject_table_is_found_in_every_spelling(tmp_path: Path, table: str) -> None:
    """The pre-check that spares parsing most pyproject.toml files misses no spelling TOML has."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n' + table)
    import tomllib

    assert tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["mltrust"]  # oracle
    assert load_scan_config(search_from=tmp_path).fail_on is Severity.HIGH


def test_pyproject_without_a_table_is_not_parsed(tmp_path: Path) -> None:
    """A project's own pyproject.toml that names no mltrust table cannot configure a scan, so
    it is not parsed: not even invalid TOML in it stops the scan (a parent's mltrust.toml is
    still found)."""
    (tmp_path / "mltrust.toml").write_text('[scan]\nfail_on = "low"\n')
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project\nname = 'not toml'\n")
    assert load_scan_config(search_from=project).fail_on is Severity.LOW
    (project / "pyproject.toml").write_text("[project\nname = 'mltrust-plugin'\n")
    with pytest.raises(ConfigError):  # it might hold one: parsed, and its error reported
        load_scan_config(search_from=project)


def test_scan_config_is_frozen() -> None:
    config = ScanConfig()
    with pytest.raises(AttributeError):
        config.fail_on = Severity.LOW  # type: ignore[misc]


def test_severity_order_and_parse() -> None:
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW > Severity.INFO
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(ConfigError):
        Severity.parse("nope")


def test_rules_have_unique_stable_ids_and_docs() -> None:
    rules = all_rules()
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids))
    for r in rules:
        assert r.id.startswith("MLT-"), r.id
        assert r.summary and r.name


def test_rules_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == EXIT_CLEAN
    data = json.loads(capsys.readouterr().out)
    assert {"MLT-GEN-001", "MLT-GEN-002"} <= {r["id"] for r in data}


def test_findings_hash_by_value() -> None:
    a = Finding("MLT-X", Severity.LOW, "m", Location("f", ("a",), 3))
    b = Finding("MLT-X", Severity.LOW, "m", Location("f", ("a",), 3))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


def test_network_guard_blocks_outside_addresses() -> None:
    s = socket.socket()
    try:
        with pytest.raises(RuntimeError, match="never touch the network"):
            s.connect(("192.0.2.1", 80))  # TEST-NET-1: documentation range
    finally:
        s.close()
