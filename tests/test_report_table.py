"""The text table of `mltrust scan` (report/_table.py), drawn without rich.

rich is the oracle for the layout: the same rows laid out by rich's ``Table`` (all columns
folding) and printed lines must come out the same. The attack tests feed finding text that
quotes a hostile file: nothing may reach the terminal as a control or escape sequence, no text
may be lost, no line may overflow the width or break the box.
"""

from __future__ import annotations

import io
import random
import re
import unicodedata
from pathlib import Path

import pytest

from mltrust.findings import Finding, Location, Severity
from mltrust.report._table import Styled, cell_width, lines, table, visible
from mltrust.report._text import scan_text
from mltrust.scan._result import FileResult, FileStatus, ScanReport

HEADERS = ["severity", "rule", "location", "message"]
TITLE = "mltrust scan findings"
_SGR = re.compile(r"\x1b\[[0-9;]*m")


def _cells(text: str) -> int:
    """Display cells, from unicodedata alone (not the code under test)."""
    total = 0
    for char in text:
        if unicodedata.category(char) in ("Mn", "Me"):
            continue
        total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total


def _rich_table(rows: list[list[str]], width: int) -> str:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, no_color=True, width=width, highlight=False)
    t = Table(title=TITLE)
    for header in HEADERS:
        t.add_column(header, overflow="fold")
    for row in rows:
        t.add_row(*[escape(c) for c in row])
    console.print(t)
    return buf.getvalue()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _rich_line(markup: str, width: int) -> str:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, force_terminal=False, no_color=True, width=width, highlight=False).print(
        markup
    )
    return buf.getvalue()


def _rich_paragraph(markup: str, plain: str, width: int) -> str:
    """rich's lines of ``markup`` (which reads ``plain``) with our one change: lines after the
    first are the rest wrapped by rich two cells narrower and indented two spaces (so quoted
    text cannot start a line of its own)."""
    full = _rich_line(markup, width).splitlines()
    if len(full) == 1:
        return full[0] + "\n"
    rest = plain[len(full[0]) :].lstrip(" ")
    more = _rich_line(_escape(rest), max(width - 2, 1)).splitlines()
    return "\n".join([full[0], *("  " + line for line in more)]) + "\n"


_WORDS = [
    "a",
    "os.system",
    "REDUCE",
    "calls",
    "x" * 50,
    "日本語テキスト",
    "(shell",
    "command)",
    "é",
    "evil.pkl@29#7",
    "",
    "  ",
]


def _random_rows(rng: random.Random) -> list[list[str]]:
    return [
        [
            rng.choice(["critical", "high", "info"]),
            rng.choice(["MLT-PKL-001", "MLT-X-1"]),
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 6))),
            " ".join(rng.choice(_WORDS) for _ in range(rng.randint(0, 14))),
        ]
        for _ in range(rng.randint(1, 3))
    ]


def test_table_is_laid_out_as_rich_lays_it_out() -> None:
    rng = random.Random(7)
    for _ in range(300):
        width = rng.randint(40, 130)
        rows = _random_rows(rng)
        assert table(TITLE, HEADERS, rows, width) == _rich_table(rows, width), (width, rows)


def test_lines_wrap_as_rich_wraps_them() -> None:
    rng = random.Random(11)
    for _ in range(300):
        width = rng.randint(40, 130)
        text = " ".join(rng.choice([*_WORDS, "1 file(s),", "unreadable;"]) for _ in range(30))
        ours = lines([Styled("FAIL", "bold red"), " " + text], width)
        assert ours == _rich_paragraph(f"[bold red]FAIL[/] {_escape(text)}", f"FAIL {text}", width)


# A pickle calling os.system: the table of a real scan.
_EVIL = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."


@pytest.mark.parametrize("columns", ["120", "60", "40"])
def test_scan_text_of_a_real_finding_is_what_rich_drew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    import mltrust

    (tmp_path / "evil.pkl").write_bytes(_EVIL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", columns)
    report = mltrust.scan("evil.pkl")
    out = scan_text(report)
    f = report.findings[0]
    rows = [[f.severity.value, f.rule_id, str(f.location), f.message]]
    head, summary = out.split("└", 1)[0], out.split("┘\n", 1)[1]
    assert head + "└" + out.split("└", 1)[1].split("\n", 1)[0] + "\n" == _rich_table(
        rows, int(columns)
    )
    monkeypatch.setenv("COLUMNS", "1000")  # the summary on one line
    verdict, rest = scan_text(report).splitlines()[-1].split(" ", 1)
    assert verdict == "FAIL"
    assert summary == _rich_paragraph(f"[bold red]FAIL[/] {rest}", f"FAIL {rest}", int(columns))


def _report(*findings: tuple[str, str], not_scanned: str = "") -> ScanReport:
    results = [
        FileResult(
            path="model.pkl",
            size=1,
            status=FileStatus.SCANNED,
            findings=tuple(
                Finding(
                    rule_id="MLT-PKL-001",
                    severity=Severity.CRITICAL,
                    message=message,
                    location=Location(path=path),
                )
                for path, message in findings
            ),
        )
    ]
    if not_scanned:
        results.append(
            FileResult(path=not_scanned, size=1, status=FileStatus.NOT_SCANNED, reason="unknown")
        )
    return ScanReport(files=tuple(results))


_ATTACKS = [
    "\x1b]0;pwned\x07",  # OSC: set the terminal title
    "\x1b[2J\x1b[31mcleared",  # CSI: clear screen, colour
    "safe\rREWRITTEN",  # carriage return: overwrite the line
    "a\nFAIL forged line",  # newline: forge a line of output
    "os.\u202emetsys\u202c call",  # bidi override: reads backwards
    "\u2066isolate\u2069 \u200bzero\u200dwidth\ufeff",
    "\x9b31m C1 CSI \x85 NEL \x7f DEL \x00 NUL",
    "\u115fHangul\u3164filler",
    "A" * 500,  # one unbroken word much wider than any column
    "日本語のメッセージ" * 20,  # wide characters, unbroken
    "e\u0301\u0301\u0301 combining",
    "",
    "[red]x[/red] [bold]markup[/] :skull:",
]


def _control_free(out: str, color: bool) -> None:
    text = _SGR.sub("", out) if color else out
    assert "\x1b" not in text
    for char in text:
        assert char == "\n" or char.isprintable(), repr(char)
        assert not "\u202a" <= char <= "\u202e" and not "\u2066" <= char <= "\u2069"


def _column_texts(out: str) -> list[list[str]]:
    """The text of every body cell, its wrapped lines joined (spaces dropped at breaks)."""
    body = out.split("┩\n", 1)[1].split("└", 1)[0].splitlines()
    rows: list[list[str]] = []
    for line in body:
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[0] and (not rows or rows[-1][0] in {s.value for s in Severity}):
            # a severity cell opens a row (its word may be folded over two lines)
            rows.append(["" for _ in cells])
        for i, cell in enumerate(cells):
            rows[-1][i] += cell
    return rows


@pytest.mark.parametrize("color", [False, True])
@pytest.mark.parametrize("columns", ["40", "61", "120"])
@pytest.mark.parametrize("attack", _ATTACKS)
def test_hostile_finding_text_is_shown_whole_escaped_and_boxed(
    monkeypatch: pytest.MonkeyPatch, attack: str, columns: str, color: bool
) -> None:
    monkeypatch.setenv("COLUMNS", columns)
    width = int(columns)
    out = scan_text(_report((attack, attack), ("model.pkl", "plain")), color=color, verbose=True)
    _control_free(out, color)
    plain = _SGR.sub("", out)
    row_lines = [line for line in plain.splitlines() if line[:1] in "┏┃┡│└"]
    assert {_cells(line) for line in row_lines} == {_cells(row_lines[0])}  # the box is aligned
    assert all(_cells(line) <= width for line in plain.splitlines())
    # Every cell's text is there in full (escaped), in order, once its lines are joined.
    shown = visible(attack).replace(" ", "")
    found = [[c.replace(" ", "") for c in row] for row in _column_texts(plain)]
    assert [shown, shown] in [row[2:] for row in found]
    assert found[0][:2] == ["critical", "MLT-PKL-001"]
    if attack.startswith("[red]"):
        assert any("[red]x[/red]" in row[3] and ":skull:" in row[3] for row in found)


def test_escapes_are_visible_and_markup_literal() -> None:
    assert visible("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert visible("a\rb\n") == "a\\x0db\\x0a"
    assert visible("\u202emetsys") == "\\u202emetsys"
    assert visible("\U000e0041tag") == "\\U000e0041tag"
    assert visible("[red]x[/red] 日本") == "[red]x[/red] 日本"
    assert cell_width("日本") == 4 and cell_width("e\u0301") == 1


def test_hostile_not_scanned_path_is_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = scan_text(_report(not_scanned="x\x1b[2Jy\u202e.pkl"), color=True)
    _control_free(out, True)
    assert "not scanned\x1b[0m: x\\x1b[2Jy\\u202e.pkl (unknown)" in out


def test_colour_is_sgr_on_severity_and_verdict_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    report = _report(("model.pkl", "m"))
    coloured = scan_text(report, color=True)
    assert "\x1b[1;37;41mcritical\x1b[0m" in coloured
    assert "\x1b[1;31mFAIL\x1b[0m " in coloured
    assert "\x1b" not in scan_text(report, color=False)
    assert _SGR.sub("", coloured) == scan_text(report, color=False)
    styles = {
        Severity.HIGH: "1;31",
        Severity.MEDIUM: "33",
        Severity.LOW: "36",
        Severity.INFO: "2",
    }
    for severity, sgr in styles.items():
        finding = Finding(
            rule_id="MLT-X", severity=severity, message="m", location=Location(path="p")
        )
        one = ScanReport(
            files=(FileResult(path="p", size=1, status=FileStatus.SCANNED, findings=(finding,)),)
        )
        assert f"\x1b[{sgr}m{severity.value}\x1b[0m" in scan_text(one, color=True, verbose=True)
    clean = ScanReport(files=(FileResult(path="p", size=1, status=FileStatus.SCANNED),))
    assert scan_text(clean, color=True).startswith("\x1b[1;32mPASS\x1b[0m ")


@pytest.mark.parametrize("columns", ["40", "80", "120", "133"])
def test_a_clean_summary_is_what_the_table_module_writes(
    monkeypatch: pytest.MonkeyPatch, columns: str
) -> None:
    """A clean scan's line is written without importing _table: the same as lines() writes."""
    clean = ScanReport(files=(FileResult(path="p", size=1, status=FileStatus.SCANNED),))
    monkeypatch.setenv("COLUMNS", "1000")
    verdict, rest = scan_text(clean).rstrip("\n").split(" ", 1)
    monkeypatch.setenv("COLUMNS", columns)
    assert scan_text(clean) == lines([Styled(verdict, "bold green"), f" {rest}"], int(columns))


def test_cells_of_several_lines_are_laid_out_as_rich_lays_them_out() -> None:
    """``mltrust check``'s title / details cells: each line wrapped on its own."""
    rng = random.Random(3)
    for _ in range(200):
        width = rng.randint(40, 130)
        rows = _random_rows(rng)
        cells = [
            (row[3], *[f"  - {rng.choice(_WORDS)} {row[2]}" for _ in range(rng.randint(0, 3))])
            for row in rows
        ]
        ours = table(TITLE, HEADERS, [[*r[:3], c] for r, c in zip(rows, cells, strict=True)], width)
        theirs = _rich_table(
            [[*r[:3], "\n".join(c)] for r, c in zip(rows, cells, strict=True)], width
        )
        assert ours == theirs, (width, rows, cells)


def test_check_text_escapes_a_hostile_file_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A detail of ``mltrust check`` quotes a file name: rich let its escape sequence through."""
    from mltrust.cli import main

    (tmp_path / "x\x1b]0;pwned\x07\u202e.pkl").write_bytes(_EVIL)
    monkeypatch.setenv("COLUMNS", "200")
    main(["check", str(tmp_path), "--no-store"])
    out = capsys.readouterr().out
    _control_free(out, color=False)
    assert "x\\x1b]0;pwned\\x07\\u202e.pkl" in out
