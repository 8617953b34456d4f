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
