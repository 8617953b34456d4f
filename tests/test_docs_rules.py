"""docs/rules.md is what the rule registry says, not a copy that drifts from it."""

from __future__ import annotations

from pathlib import Path

from mltrust.cli._main import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "rules.md"


def test_rules_page_matches_the_registry(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["rules", "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert DOC.read_text(encoding="utf-8").endswith(table), (
        "docs/rules.md is out of date: regenerate it with "
        "`.venv/bin/python -m mltrust rules --format markdown` (scripts/gen_docs.py does it)"
    )
