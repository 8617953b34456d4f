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
    assert scan["models"] == 0, [(f["path"], f["rule_id"], f["message"]) for f in scan["findings"]]
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


# --- Content hidden from code analysis by a folder name, a missing suffix, or a link ---------

#: Code that fails `no-dangerous-code` (unsafe deserialisation) wherever it is analysed.
UNSAFE = "import pickle\n\n\ndef load(b):\n    return pickle.loads(b)\n"


def _status(verdict, control: str) -> ControlStatus:  # type: ignore[no-untyped-def]
    return next(r.status for r in verdict.results if r.control.id == control)


def _dangerous(bundle) -> set[str]:  # type: ignore[no-untyped-def]
    return {f["path"] for f in bundle.document["code"]["dangerous"]}


def _git(root: Path, *args: str) -> None:
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed (it writes the index this test needs)")
    subprocess.run([git, *args], cwd=root, check=True, capture_output=True)


def _commit(root: Path) -> None:
    """Commit what is staged: the index counts as evidence only in a repository whose HEAD
    names a commit (see mltrust.evidence._gitindex)."""
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")


def _venv(folder: Path) -> None:
    """A real virtual environment's shape: pyvenv.cfg with home, and site-packages."""
    packages = folder / "lib" / "python3.11" / "site-packages"
    packages.mkdir(parents=True)
    (packages / "six.py").write_text("X = 1\n")
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.9\n")


def test_attack_empty_pyvenv_cfg_does_not_hide_code(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "pyvenv.cfg").write_text("")
    (tmp_path / "app" / "loader.py").write_text(UNSAFE)
    bundle, verdict = _check(tmp_path)
    assert "app/loader.py" in _dangerous(bundle)
    assert "no-dangerous-code" in _failed(verdict)


def test_attack_pyvenv_cfg_without_site_packages_does_not_hide_code(tmp_path: Path) -> None:
    (tmp_path / "app" / "lib").mkdir(parents=True)
    (tmp_path / "app" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "app" / "lib" / "loader.py").write_text(UNSAFE)
    bundle, verdict = _check(tmp_path)
    assert "app/lib/loader.py" in _dangerous(bundle)
    assert "no-dangerous-code" in _failed(verdict)


def test_attack_fake_venv_shape_fails_closed_without_git(tmp_path: Path) -> None:
    _venv(tmp_path / "app")
    (tmp_path / "app" / "loader.py").write_text(UNSAFE)
    bundle, verdict = _check(tmp_path)
    assert "app/loader.py" not in _dangerous(bundle)  # pruned: a venv by structure...
    rows = bundle.document["subject"]["unanalysed"]
    assert [r["path"] for r in rows] == ["app/"]  # ...so the gate is told, and fails
    assert "analysis-complete" in _failed(verdict)


@pytest.mark.parametrize(
    "folder",
    [".mltrust", "site-packages", "node_modules", ".tox", "__pycache__", ".pytest_cache", "a/.nox"],
)
def test_attack_code_in_tool_folder_fails_closed_without_git(tmp_path: Path, folder: str) -> None:
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "loader.py").write_text(UNSAFE)
    (tmp_path / "app.py").write_text("print('hello')\n")
    bundle, verdict = _check(tmp_path)
    assert [r["path"] for r in bundle.document["subject"]["unanalysed"]] == [folder + "/"]
    assert verdict.status is VerdictStatus.FAIL
    assert "analysis-complete" in _failed(verdict)


def test_untracked_bytecode_cache_in_git_checkout_is_not_unanalysed_content(
    tmp_path: Path,
) -> None:
    # A timestamp-based cache git does not track is a normal local cache. Without a git
    # index nothing says it is not shipped: see tests/test_check_redteam2_code.py.
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\xa7\r\r\n\x00\x00\x00\x00")
    (tmp_path / "app.py").write_text("print('hello')\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "app.py")
    _commit(tmp_path)  # an index counts once HEAD names a commit
    bundle, verdict = _check(tmp_path)
    assert bundle.document["subject"]["unanalysed"] == []
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS


@pytest.mark.parametrize("folder", ["app", "node_modules/x", ".mltrust", "site-packages", ".tox"])
def test_attack_git_tracked_code_in_pruned_folder_is_analysed(tmp_path: Path, folder: str) -> None:
    (tmp_path / folder).mkdir(parents=True)
    if folder == "app":
        _venv(tmp_path / "app")  # even a folder with a venv's full shape
    (tmp_path / folder / "loader.py").write_text(UNSAFE)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-f", f"{folder}/loader.py")
    _commit(tmp_path)
    bundle, verdict = _check(tmp_path)
    assert f"{folder}/loader.py" in _dangerous(bundle)
    assert "no-dangerous-code" in _failed(verdict)


def test_untracked_venv_in_git_checkout_does_not_fail_the_gate(tmp_path: Path) -> None:
    _venv(tmp_path / ".venv")
    (tmp_path / ".venv" / "lib" / "python3.11" / "site-packages" / "bad.py").write_text(UNSAFE)
    (tmp_path / ".mypy_cache").mkdir()
    (tmp_path / ".mypy_cache" / "x.json").write_text("{}")
    (tmp_path / "app.py").write_text("print('hello')\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "app.py")
    _commit(tmp_path)
    bundle, verdict = _check(tmp_path)
    subject = bundle.document["subject"]
    assert subject["git_index"] is True
    assert subject["unanalysed"] == []
    assert [r["path"] for r in subject["unanalysed_untracked"]] == [".mypy_cache/", ".venv/"]
    assert not _dangerous(bundle)
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS
    assert any(line.startswith(".venv/: virtual environment") for line in subject["not_evaluated"])


@pytest.mark.parametrize(
    "shebang",
    [
        "#!/usr/bin/env python3",
        "#!/usr/bin/python",
        "#! /usr/bin/python3.11",
        "#!/usr/local/bin/python3.11 -S",
        "#!/usr/bin/env -S python -u",
        "#!/usr/bin/env -S PYTHONPATH=. python3",
        "#!/usr/bin/env -u HOME python3",
        "#!/usr/bin/pypy3",
        "#!/usr/bin/env -S uv run --script",
        "\ufeff#!/usr/bin/env python3\r",
    ],
)
def test_attack_extensionless_python_script_is_analysed(tmp_path: Path, shebang: str) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "run-job").write_text(shebang + "\n" + UNSAFE)
    bundle, verdict = _check(tmp_path)
    assert "bin/run-job" in _dangerous(bundle)
    assert "no-dangerous-code" in _failed(verdict)


@pytest.mark.parametrize("head", ["#!/bin/sh", "#!/usr/bin/env bash", "# python notes", ""])
def test_other_scripts_are_not_parsed_as_python(tmp_path: Path, head: str) -> None:
    (tmp_path / "run").write_text(head + "\necho {% python %}\n")
    bundle, _ = _check(tmp_path)
    assert bundle.document["code"]["not_analysed"] == []


def test_attack_zip_application_behind_python_shebang_is_not_clean(tmp_path: Path) -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("__main__.py", UNSAFE)
    (tmp_path / "tool").write_bytes(b"#!/usr/bin/env python3\n" + buf.getvalue())
    (tmp_path / "app.py").write_bytes(buf.getvalue())  # python app.py runs a zip too
    bundle, verdict = _check(tmp_path)
    assert sorted(bundle.document["code"]["not_analysed"]) == ["app.py", "tool"]
    assert "no-dangerous-code" in _failed(verdict)


def test_attack_py_symlink_to_text_file_is_analysed_as_code(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(UNSAFE)
    (tmp_path / "evil.py").symlink_to("notes.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "chain.py").symlink_to("../evil.py")  # a chain of links
    bundle, verdict = _check(tmp_path)
    assert {"evil.py", "sub/chain.py"} <= _dangerous(bundle)
    assert "no-dangerous-code" in _failed(verdict)
    assert bundle.document["subject"]["unanalysed"] == []
    # The target's own text is searched for secrets once, under its own name.
    assert any("analysed under this name" in x for x in bundle.document["subject"]["not_evaluated"])


def test_attack_requirements_symlink_is_read_as_requirements(tmp_path: Path) -> None:
    (tmp_path / "deps.cfg").write_text("flask>=1.0\n")
    (tmp_path / "requirements.txt").symlink_to("deps.cfg")
    bundle, _ = _check(tmp_path, advisory_db=tmp_path / "none.db")
    assert "requirements.txt" in bundle.document["deps"]["sources"]


@pytest.mark.parametrize(
    "target",
    [
        "../outside.py",  # leaves the subject
        "missing.py",  # dangles
        "self.py",  # loops
        "d/../notes.txt",  # '..' after a linked folder is not undone lexically
        "/etc/hostname",  # absolute, outside
    ],
)
def test_attack_py_symlink_out_of_subject_fails_closed(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.py").write_text(UNSAFE)
    (tmp_path / "elsewhere").mkdir()
    project = tmp_path / "p"
    project.mkdir()
    (project / "notes.txt").write_text("print(1)\n")
    (project / "d").symlink_to(tmp_path / "elsewhere")
    (project / "self.py").symlink_to("self.py") if target == "self.py" else None
    if target != "self.py":
        (project / "evil.py").symlink_to(target)
    name = "self.py" if target == "self.py" else "evil.py"
    bundle, verdict = _check(project)
    assert [r["path"] for r in bundle.document["subject"]["unanalysed"]] == [name]
    assert "analysis-complete" in _failed(verdict)


def test_absolute_py_symlink_inside_subject_is_analysed(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text(UNSAFE)
    (tmp_path / "evil.py").symlink_to(tmp_path / "notes.txt")
    bundle, verdict = _check(tmp_path)
    assert "evil.py" in _dangerous(bundle)
    assert bundle.document["subject"]["unanalysed"] == []
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS


def test_attack_submodule_named_like_tool_folder_is_analysed(tmp_path: Path) -> None:
    # A submodule's files are not in the superproject's index, only its gitlink is: they
    # ship with a recursive checkout, so they count as tracked.
    (tmp_path / "site-packages" / "lib").mkdir(parents=True)
    (tmp_path / "site-packages" / "lib" / "loader.py").write_text(UNSAFE)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},site-packages/lib")
    _commit(tmp_path)
    bundle, verdict = _check(tmp_path)
    assert "site-packages/lib/loader.py" in _dangerous(bundle)
    assert "no-dangerous-code" in _failed(verdict)


def test_mltrust_evidence_files_are_not_unanalysed_content(tmp_path: Path) -> None:
    # What `mltrust attest` and `check` write beside a model, in a folder without git.
    (tmp_path / ".mltrust" / "attestations").mkdir(parents=True)
    (tmp_path / ".mltrust" / "attestations" / "scan.bundle.json").write_text('{"a": 1}')
    (tmp_path / ".mltrust" / "rob.json").write_text('{"a": 1}')
    (tmp_path / ".mltrust" / "evidence.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 84)
    (tmp_path / "app.py").write_text("print('hello')\n")
    bundle, verdict = _check(tmp_path)
    assert bundle.document["subject"]["unanalysed"] == []
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS
    # Code or other text in .mltrust/ still counts.
    (tmp_path / ".mltrust" / "run.py").write_text(UNSAFE)
    bundle, verdict = _check(tmp_path)
    assert [r["path"] for r in bundle.document["subject"]["unanalysed"]] == [".mltrust/"]
    assert "analysis-complete" in _failed(verdict)


def test_untracked_venv_in_linked_worktree_does_not_fail_the_gate(tmp_path: Path) -> None:
    main = tmp_path / "main"
    main.mkdir()
    (main / "app.py").write_text("print('hello')\n")
    _git(main, "init", "-q")
    _git(main, "add", "app.py")
    _git(main, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    _git(main, "worktree", "add", "-q", str(tmp_path / "wt"))
    wt = tmp_path / "wt"
    assert (wt / ".git").is_file()
    _venv(wt / ".venv")
    bundle, verdict = _check(wt)
    assert bundle.document["subject"]["git_index"] is True
    assert [r["path"] for r in bundle.document["subject"]["unanalysed_untracked"]] == [".venv/"]
    assert _status(verdict, "analysis-complete") is ControlStatus.PASS
