"""`pip install mltrust` without extras: --help, scan, keys, sign and verify work, and
`mltrust --help` imports no command module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from mltrust.cli._main import COMMANDS, SUMMARIES, cli

MINIMAL = Path(__file__).parent / "_support" / "minimal_install.py"
EVIL = b"\x80\x02cposix\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."


def _minimal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # mltrust: ignore[MLT-CODE-014] throwaway passphrase of keys the test generates
    env = {**os.environ, "MLTRUST_PASSPHRASE": "startup-test", "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, str(MINIMAL), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_every_command_has_its_summary_in_the_table() -> None:
    ctx = click.Context(cli)
    assert set(SUMMARIES) == set(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert SUMMARIES[name] == command.get_short_help_str(limit=80), name


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\nfrom mltrust.cli._main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('mltrust.cli._') "
        "and m not in ('mltrust.cli._main',)))\n"
        "print('numpy' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    *_, modules, numpy = proc.stdout.strip().splitlines()
    assert modules == "[]"
    assert numpy == "False"


def test_minimal_install_help(tmp_path: Path) -> None:
    proc = _minimal("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "scan" in proc.stdout and "verify" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_minimal_install_scan_finds_a_payload(tmp_path: Path) -> None:
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    proc = _minimal("scan", str(tmp_path / "evil.pkl"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "critical" in proc.stdout


def test_minimal_install_keys_sign_verify(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 1024)
    keys = tmp_path / "keys" / "release"
    assert _minimal("keys", "generate", "--out", str(keys), cwd=tmp_path).returncode == 0
    proc = _minimal("sign", str(model), "--key", f"{keys}.key", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _minimal("verify", str(model), "--key", f"{keys}.pub", "--name", "model", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (model / "weights.bin").write_bytes(b"\x01" * 1024)
    proc = _minimal("verify", str(model), "--key", f"{keys}.pub", "--name", "model", cwd=tmp_path)
    assert proc.returncode == 1


@pytest.mark.parametrize("command", ["serve", "robustness", "monitor", "check"])
def test_minimal_install_names_the_missing_extra(tmp_path: Path, command: str) -> None:
    proc = _minimal(command, "--help", cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 2), proc.stderr
    if proc.returncode == 2:
        assert "pip install" in proc.stderr, proc.stderr
