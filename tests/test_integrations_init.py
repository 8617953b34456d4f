"""`mltrust init`: the scaffold is complete, never clobbers, and passes its own gate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _check_helpers import REPO, subset_db
from mltrust.cli import main
from mltrust.integrations._scaffold import FILES


def _init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["init", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_writes_every_file_and_keeps_existing_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "README.md").write_text("my own readme\n")
    code, out, err = _init(capsys, str(root), "--yes", "--model", "churn")
    assert code == 0, err
    for rel in FILES:
        assert (root / rel).is_file(), rel
    assert (root / "README.md").read_text() == "my own readme\n"
    assert "kept  README.md" in err
    assert "models/churn" in (root / "Makefile").read_text()
    code, out, err = _init(capsys, str(root), "--yes")
    assert code == 0
    assert "0 files written" in out
    code, out, err = _init(capsys, str(root), "--yes", "--force")
    assert code == 0
    assert (root / "README.md").read_text() != "my own readme\n"


@pytest.mark.parametrize("bad", ["../escape", "a/b", "-rf", "x" * 65, "$(id)"])
def test_init_refuses_hostile_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    code, _, err = _init(capsys, str(tmp_path / "p"), "--yes", "--model", bad)
    assert code == 2
    assert "name" in err
    assert not (tmp_path / "p" / "train.py").exists()


def test_init_does_not_follow_a_planted_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (root / "Makefile").symlink_to(victim)
    code, _, _ = _init(capsys, str(root), "--yes", "--force")
    assert code == 0
    assert victim.read_text() == "precious\n"


def test_gitignore_keeps_keys_and_env_files_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    assert _init(capsys, str(root), "--yes")[0] == 0
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, timeout=60)
    ignored = ["keys/release.key", ".env", ".env.production", "model.pkl", ".mltrust/evidence.db"]
    kept = ["keys/release.pub", "train.py", "models/model/model.onnx"]
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *ignored, *kept],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sorted(proc.stdout.split()) == sorted(ignored)


def test_workflow_template_is_the_published_example() -> None:
    template = (
        REPO / "src" / "mltrust" / "integrations" / "templates" / "init" / "workflow.yml.tmpl"
    )
    assert template.read_text() == (REPO / "examples" / "github" / "mltrust.yml").read_text()


def test_scaffold_trains_a_safe_servable_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("skl2onnx")
    from mltrust.scan import scan_paths
    from mltrust.serve._settings import load_model_settings

    root = tmp_path / "proj"
    assert _init(capsys, str(root), "--yes", "--model", "iris")[0] == 0
    proc = subprocess.run(
        [sys.executable, "train.py"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    model_dir = root / "models" / "iris"
    report = scan_paths([model_dir])
    assert not report.failed and not report.errored
    settings = load_model_settings(model_dir)
    assert settings.runtime == "onnx"
    assert settings.name == "iris"


def test_scaffold_passes_its_own_gate_out_of_the_box(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "proj"
    assert _init(capsys, str(root), "--yes")[0] == 0
    db = subset_db(tmp_path, ("numpy", "scikit-learn"))
    code = main(
        ["check", str(root), "--db", str(db), "--db-max-age", "0", "--no-store", "-f", "json"]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
