"""The pre-commit hooks, run by pre-commit itself on a temporary git repository.

pre-commit installs `language: python` hooks by building this repository into a fresh virtual
environment, which needs the package index; tests run without network, so the test keeps every
field of each hook from `.pre-commit-hooks.yaml` (entry, file filters, stages, pass_filenames)
and only swaps `language: python` for `language: system` with the entry resolved to this
environment's `mltrust`. What pre-commit decides (which staged files reach the hook, when the
hook runs, what its exit code does to the commit) is pre-commit's own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _check_helpers import MALICIOUS_PICKLE, REPO

BIN = Path(sys.executable).parent


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    local = []
    for hook in hooks:
        assert hook["language"] == "python"
        entry = hook["entry"]
        assert entry.startswith("mltrust ")
        local.append({**hook, "language": "system", "entry": f"{BIN / 'mltrust'}{entry[7:]}"})
    root = tmp_path / "project"
    root.mkdir()
    _git(root, "init", "-q")
    (root / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": local}]})
    )
    _git(root, "add", ".pre-commit-config.yaml")
    return root


def _pre_commit(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(repo.parent / "pc-home"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    return subprocess.run(
        [str(BIN / "pre-commit"), "run", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_scan_hook_blocks_a_staged_payload_even_when_renamed(repo: Path) -> None:
    (repo / "notes.txt").write_bytes(MALICIOUS_PICKLE)  # a pickle disguised as text
    _git(repo, "add", "notes.txt")
    proc = _pre_commit(repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "notes.txt" in proc.stdout


def test_scan_hook_passes_clean_staged_files(repo: Path) -> None:
    import pickle

    (repo / "model.pkl").write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    (repo / "train.py").write_text("print('hello')\n")
    _git(repo, "add", "model.pkl", "train.py")
    proc = _pre_commit(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mltrust scan" in proc.stdout


def test_scan_hook_ignores_unstaged_files(repo: Path) -> None:
    (repo / "clean.txt").write_text("just text\n")
    (repo / "payload.pkl").write_bytes(MALICIOUS_PICKLE)  # present but not staged
    _git(repo, "add", "clean.txt")
    proc = _pre_commit(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_hook_runs_only_on_demand(repo: Path) -> None:
    (repo / "payload.pkl").write_bytes(MALICIOUS_PICKLE)
    _git(repo, "add", "payload.pkl")
    normal = _pre_commit(repo, "mltrust-check")
    assert "No hook with id `mltrust-check` in stage `pre-commit`" in normal.stdout
    manual = _pre_commit(repo, "mltrust-check", "--hook-stage", "manual")
    assert manual.returncode == 1, manual.stdout + manual.stderr
    assert "mltrust check" in manual.stdout
