"""`pip install mltrust` without extras: --help, scan, keys, sign and verify work, and
`mltrust --help` imports no command module."""

from __future__ import annotations

import ast
import os
import pickle
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


_EVERY_HELP = """
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import minimal_install
minimal_install.block_extras()
import click
from mltrust.cli._main import COMMANDS, cli, main

def walk(command, path):
    yield path
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), [*path, name])

def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()

ctx = click.Context(cli)
paths = [p for name in COMMANDS for p in walk(cli.get_command(ctx, name), [name])]
failed = {" ".join(p): run([*p, "--help"]) for p in paths}
rc, out, err = run(["rules", "--format", "json"])
print(json.dumps({
    "helps": len(paths),
    "failed": {k: v for k, v in failed.items() if v[0] != 0 or "Traceback" in v[2]},
    "rules": [rc, len(json.loads(out)) if rc == 0 else err],
    "modules": sorted(m for m in sys.modules if m.startswith("mltrust.")),
}))
"""


def test_minimal_install_every_help_and_the_rule_catalogue() -> None:
    """Every command's and subcommand's --help, and `rules` (all of them, the same catalogue as a
    full install), run with every optional extra unimportable."""
    import json

    from mltrust.findings import all_rules

    proc = subprocess.run(
        [sys.executable, "-c", _EVERY_HELP, str(MINIMAL.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["helps"] > len(COMMANDS)  # the groups' subcommands were walked too
    assert result["failed"] == {}
    assert result["rules"] == [0, len(all_rules())]
    # every module that defines rules was imported by `rules` (none silently skipped)
    src = Path(__file__).parents[1] / "src"
    definers = {
        ".".join(p.relative_to(src).with_suffix("").parts)
        for p in (src / "mltrust").rglob("*.py")
        if "define_rule(" in p.read_text(encoding="utf-8") and p.name != "findings.py"
    }
    assert definers and definers <= set(result["modules"])


@pytest.mark.parametrize("package", ["mltrust.robust", "mltrust.monitor"])
def test_lazy_package_exports_every_public_name(package: str) -> None:
    import importlib

    module = importlib.import_module(package)
    module_of = {name: m for m, names in module._EXPORTS.items() for name in names}
    assert set(module_of) == set(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is getattr(importlib.import_module(module_of[name]), name)
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError):
        module.no_such_name


_SMALL_SCAN = """
import sys
from mltrust.cli._main import main
from mltrust.scan._registry import _FORMATS
rc = main(["scan", sys.argv[1]])
print()
print(rc)
print(sorted(m for m in sys.modules))
print(sorted({spec.partition(":")[0] for spec in _FORMATS}))
"""


def test_scan_of_a_small_pickle_loads_what_it_needs_and_every_sniffer(tmp_path: Path) -> None:
    """Start-up cost (issue 10): a piped scan of one small pickle loads every format scanner
    (each sniffs every file: detection is unchanged) but not the analysis a pickle never reaches
    (Keras, Hydra, chat templates, HDF5 trees, protobuf text), nor rich or shutil for its
    one-line report."""
    small = tmp_path / "model.pkl"
    small.write_bytes(pickle.dumps({"weights": [0.5] * 64, "bias": 0.1}, protocol=4))
    proc = subprocess.run(
        [sys.executable, "-c", _SMALL_SCAN, str(small)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *_, rc, loaded, formats = proc.stdout.strip().splitlines()
    modules = set(ast.literal_eval(loaded))
    assert rc == "0", proc.stdout + proc.stderr
    assert set(ast.literal_eval(formats)) <= modules
    deferred = {
        "mltrust.scan.formats.keras",
        "mltrust.scan.formats._hydra_targets",
        "mltrust.scan.formats._jinja",
        "mltrust.scan.formats._hdf5_tree",
        "mltrust.scan.formats._hdf5_heap",
        "mltrust.scan.formats._pbtext",
        "mltrust.scan.formats._onnxtxt",
        "rich",
        "shutil",
    }
    assert modules & deferred == set()


def test_run_collects_less_often_and_not_at_exit() -> None:
    """The console entry point makes start-up collect less often, not never, and leaves the
    objects alive at exit to the operating system (frozen) instead of collecting them."""
    code = (
        "import gc, sys\nfrom mltrust.cli import _main\n"
        "sys.argv = ['mltrust', '--version']\n"
        "try:\n    _main.run()\nexcept SystemExit:\n    pass\n"
        "print(gc.isenabled(), gc.get_threshold()[0] == _main._GC_THRESHOLD,"
        " gc.get_freeze_count() > 0)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip().splitlines()[-1] == "True True True"
