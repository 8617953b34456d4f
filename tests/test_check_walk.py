"""Attacks on what ``mltrust check`` walks: a payload must not hide from the gate behind a
folder name, the file cap, or a file name; every prune and skip is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _check_helpers import MALICIOUS_PICKLE
from mltrust.evidence import CollectContext, collect_evidence
from mltrust.policy import ControlStatus, VerdictStatus, evaluate, load_profile
from mltrust.scan import scan_paths


def _check(root: Path, **kw: object):  # type: ignore[no-untyped-def]
    bundle = collect_evidence(CollectContext(root, **kw))  # type: ignore[arg-type]
    return bundle, evaluate(bundle.document, load_profile("default"))


def _failed(verdict) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.control.id for r in verdict.by_status(ControlStatus.FAIL)}


@pytest.mark.parametrize(
    "folder",
    [
        "env",
        "venv",
        ".venv",
        "lib/python3.11/site-packages/pkg",
        "node_modules/x",
        ".git",
        ".git/objects/aa",
        "__pycache__",
        ".mltrust",
        ".tox/py",
        "a/b/c/d/e/f",
    ],
)
def test_attack_payload_hidden_in_pruned_folder_fails_like_scan(
    tmp_path: Path, folder: str
) -> None:
    project = tmp_path / "proj"
    (project / folder).mkdir(parents=True)
    (project / folder / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    (project / "app.py").write_text("print('hello')\n")
    # The oracle: plain `mltrust scan` fails on this tree.
    assert scan_paths([project]).failed
    bundle, verdict = _check(project)
    paths = {f["path"] for f in bundle.document["scan"]["findings"]}
    assert f"{folder}/model.pkl" in paths
    assert verdict.status is VerdictStatus.FAIL
    assert "model-scan-clean" in _failed(verdict)


def test_attack_payload_in_virtualenv_named_anything(tmp_path: Path) -> None:
    venv = tmp_path / "tools"
    (venv / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (venv / "lib" / "python3.11" / "site-packages" / "six.py").write_text("x = 1\n")
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "weights").write_bytes(MALICIOUS_PICKLE)
    bundle, verdict = _check(tmp_path)
    assert "tools/lib/weights" in {f["path"] for f in bundle.document["scan"]["findings"]}
    assert "model-scan-clean" in _failed(verdict)
    # Code analysis does not descend into the virtual environment, and says so.
    assert any(
        line.startswith("tools/: virtual environment")
        for line in bundle.document["subject"]["not_evaluated"]
    )


def test_attack_payload_past_the_file_cap_fails_closed(tmp_path: Path) -> None:
    for i in range(5):
        (tmp_path / f"a{i}.txt").write_text("x\n")
    (tmp_path / "zz.pkl").write_bytes(MALICIOUS_PICKLE)  # listed after the cap
    bundle, verdict = _check(tmp_path, max_files=3)
    scan = bundle.document["scan"]
    assert scan["errors"] >= 1
    assert any(f["rule_id"] == "MLT-GEN-003" for f in scan["findings"])
    assert any("cap" in line for line in bundle.document["subject"]["not_evaluated"])
    assert verdict.status is VerdictStatus.FAIL
    assert "model-scanned" in _failed(verdict)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder")
def test_attack_unreadable_folder_fails_closed(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    locked.chmod(0)
    try:
        bundle, verdict = _check(tmp_path)
    finally:
        locked.chmod(0o755)
    assert bundle.document["scan"]["errors"] == 1
    assert "model-scanned" in _failed(verdict)


def test_attack_fifo_in_project_is_reported_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model.pkl")
    bundle, verdict = _check(tmp_path)  # must not block on the FIFO
    assert bundle.document["scan"]["errors"] == 1
    assert "model-scanned" in _failed(verdict)


def test_payload_named_like_source_is_found_by_content(tmp_path: Path) -> None:
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "index.js").write_bytes(MALICIOUS_PICKLE)
    bundle, verdict = _check(tmp_path)
    assert "node_modules/index.js" in {f["path"] for f in bundle.document["scan"]["findings"]}
    assert "model-scan-clean" in _failed(verdict)


def test_symlink_is_reported_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    project = tmp_path / "p"
    project.mkdir()
    (project / "m.pkl").symlink_to(outside / "model.pkl")
    bundle, _ = _check(project)
    assert bundle.document["scan"]["links_not_followed"] == ["m.pkl"]
    assert any(
        line.startswith("m.pkl: symlink") for line in bundle.document["subject"]["not_evaluated"]
    )


def test_source_files_are_not_model_content(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import os\n")
    (tmp_path / "README.md").write_text("# hello\n")
    bundle, verdict = _check(tmp_path)
    assert bundle.document["scan"]["present"] is False
    assert "model-scanned" not in _failed(verdict)


def test_git_objects_are_scanned_quietly_and_are_not_models(tmp_path: Path) -> None:
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed (it writes the objects this test needs)")
    (tmp_path / "app.py").write_text("print('hello')\n")
    for args in (
        ["init", "-q"],
        ["add", "app.py"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run([git, *args], cwd=tmp_path, check=True, capture_output=True)
    bundle, verdict = _check(tmp_path)
    scan = bundle.document["scan"]
    assert scan["models"] == 0
    assert not [f for f in scan["findings"] if f["path"].startswith(".git/objects/")]
    signed = next(r for r in verdict.results if r.control.id == "model-signed")
    assert signed.status is ControlStatus.SKIP


def test_config_notes_below_medium_are_not_report_noise(tmp_path: Path) -> None:
    (tmp_path / "tool.py").write_text('"""Docs."""\n\nimport os\nprint(os.sep)\n')
    (tmp_path / "cfg.yaml").write_text("a: 1\nb: !!python/object/apply:os.system ['id']\n")
    bundle, verdict = _check(tmp_path)
    findings = bundle.document["scan"]["findings"]
    assert all(f["severity"] not in ("low", "info") for f in findings)
    assert any(f["path"] == "cfg.yaml" for f in findings)  # medium and above always kept
    assert "model-scan-clean" in _failed(verdict)
