"""The documentation site builds offline, and the README shows the two commands CI relies on."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_offline_and_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "threat-model" / "index.html").is_file()
    assert (tmp_path / "site" / "commands" / "scan" / "index.html").is_file()


def test_every_command_page_holds_real_output() -> None:
    for page in sorted((ROOT / "docs" / "commands").glob("*.md")):
        text = page.read_text()
        assert "$ mltrust " in text and "# exit code" in text, page.name


def test_readme_and_ci_agree_on_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "make test" in readme and "make demo" in readme
    assert shutil.which("make") is not None


def test_api_reference_is_generated_from_the_code() -> None:
    """docs/api.md lists every exported name with its real signature (scripts/api_reference.py)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "api_reference.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_top_level_verbs_are_the_typed_functions() -> None:
    """`mltrust.load/sign/verify/evaluate` are the subpackages' own functions (full signatures),
    imported on first use; `mltrust.scan` stays callable after its package is imported."""
    import mltrust
    from mltrust.attest import sign, verify
    from mltrust.policy import evaluate
    from mltrust.safeload import load

    assert (mltrust.load, mltrust.sign, mltrust.verify, mltrust.evaluate) == (
        load,
        sign,
        verify,
        evaluate,
    )
    assert callable(mltrust.scan)
    with pytest.raises(AttributeError):
        _ = mltrust.no_such_verb
