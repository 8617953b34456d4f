"""Red-team tests of the text table (report/_table.py): text quoted from hostile files must not
reach the terminal as anything but drawn characters, forge a line, or make the layout slow.

Built end to end where the input can be: real files with hostile names scanned by ``mltrust scan``
in a subprocess, the raw stdout bytes inspected.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest

from mltrust.report._table import Styled, lines, table, visible, wrap

# A pickle calling os.system (a real finding, so the verdict is FAIL).
_EVIL = b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03."

# Drawn as nothing, or change how the character before them is drawn, though Python calls them
# printable (category Mn, Default_Ignorable_Code_Point): variation selectors (also the
# supplement's), the combining grapheme joiner, Khmer inherent vowels, Mongolian selectors.
_IGNORABLE_MARKS = "\ufe00\ufe0f\U000e0100\U000e01ef\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f"


def _scan(path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return subprocess.run(
        [sys.executable, "-m", "mltrust", "scan", str(path), *args],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": src, "NO_COLOR": "1", **env},
        timeout=120,
        check=False,
    )


def _drawn_only(out: str) -> None:
    """Every character of ``out`` a terminal draws as itself: no control, format, separator,
    default-ignorable mark, and no combining mark without a letter under it or stacked high."""
    marks = 0
    prev = "\n"
    for char in out:
        if char == "\n":
            prev, marks = char, 0
            continue
        assert char.isprintable(), ascii(char)
        assert char not in _IGNORABLE_MARKS, ascii(char)
        if unicodedata.category(char) in ("Mn", "Me"):
            marks += 1
            assert marks <= 3, "stacked combining marks"
            assert prev not in " \n" and not "\u2500" <= prev <= "\u259f", ascii(prev + char)
        else:
            prev, marks = char, 0


@pytest.mark.parametrize("char", list(_IGNORABLE_MARKS))
def test_default_ignorable_marks_are_escaped(char: str) -> None:
    assert visible(f"os{char}.system") == f"os{visible(char)}.system"
    assert visible(char) != char
    _drawn_only(table("t", ["a"], [[f"x{char}y"]], 40))


@pytest.mark.parametrize(
    "text",
    [
        "\u0301\u0301system",  # marks at the start: drawn on the cell's padding or border
        "a \u0336\u0336\u0336",  # marks after a space
        "a" + "\u0300\u0301\u0302\u0303\u0304" * 20,  # zalgo: a tower over the rows above/below
        "\u2503\u0338x",  # a mark on a box character: a border drawn struck through
    ],
)
def test_combining_marks_without_a_base_or_stacked_are_escaped(text: str) -> None:
    out = table("t", ["message"], [[text]], 60)
    _drawn_only(out)
    _drawn_only(lines([Styled("FAIL", "bold red"), text], 60))


def test_legitimate_combining_text_is_kept() -> None:
    for text in ("cafe\u0301", "Vie\u0323\u0302t", "\u0915\u093f\u0902"):
        assert visible(text) == text


def test_wrapped_line_cannot_forge_a_verdict_line() -> None:
    """A paragraph's continuation lines are indented: only the real label starts a line."""
    forged = "x" * 30 + " PASS 1 file(s), 1 scanned, 0 not scanned"
    out = lines([Styled("not scanned", "yellow"), f": {forged}"], 40)
    assert [line for line in out.splitlines() if line.startswith("PASS")] == []
    assert all(line.startswith("  ") for line in out.splitlines()[1:])


def test_hostile_file_name_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "a.pkl").write_bytes(_EVIL)
    marks = "\u034f\ufe0f\u0301\u0301\u0301\u0301"
    name = "x" * 12 + f" PASS 2 file(s), 1 scanned {marks} \x1b[2J\u202e"
    (tmp_path / name).write_bytes(b"not a model")
    proc = _scan(tmp_path, COLUMNS="40")
    out = proc.stdout.decode("utf-8")
    assert proc.returncode == 1, out
    _drawn_only(out)
    starts = [line for line in out.splitlines() if line[:1] not in " ┏┃┡│└"]
    assert [line for line in starts if "PASS" in line] == [], out
    assert starts[-1].startswith("FAIL"), out


@pytest.mark.parametrize(
    "text",
    [
        " " * 40_000,  # the word pattern backtracked over every start: quadratic
        "\u00e9" + " " * 40_000 + "b",  # trailing spaces trimmed one slice at a time: quadratic
        ("\u00e9 " * 40_000),
    ],
)
def test_long_text_is_laid_out_in_linear_time(text: str) -> None:
    start = time.monotonic()
    got = wrap(visible(text), 10)
    lines([Styled("FAIL", "bold red"), text], 10)
    assert time.monotonic() - start < 2.0
    assert "".join(got).replace(" ", "") == text.replace(" ", "")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_non_utf8_stdout_gets_the_report(tmp_path: Path, encoding: str) -> None:
    """stdout that cannot encode the box characters (was: UnicodeEncodeError, reported as 'not
    valid UTF-8 text', exit 2 and no report); a hostile name stays escaped, in that encoding."""
    (tmp_path / "a.pkl").write_bytes(_EVIL)
    (tmp_path / "\u00e9\u202e\x9b.bin").write_bytes(b"not a model")
    proc = _scan(tmp_path, PYTHONIOENCODING=encoding)
    assert proc.returncode == 1, proc.stderr
    assert b"MLT-PKL" in proc.stdout
    assert all(b >= 0x20 or b == 0x0A for b in proc.stdout), proc.stdout
    assert not any(0x7F <= b < 0xA0 for b in proc.stdout)


@pytest.mark.parametrize("columns", ["\u00b2", "\u0663", "9" * 5000, "99999999999999999999", "-5"])
def test_garbage_columns_do_not_crash(tmp_path: Path, columns: str) -> None:
    """``COLUMNS`` a digit to str.isdigit but not to int() (superscript two), past int()'s
    4300 digits, or huge: the report is still written."""
    (tmp_path / "a.pkl").write_bytes(_EVIL)
    proc = _scan(tmp_path, COLUMNS=columns)
    assert proc.returncode == 1, proc.stderr
    assert b"MLT-PKL" in proc.stdout
    assert max(len(line) for line in proc.stdout.decode().splitlines()) < 1000


def test_colour_mode_leaves_only_its_own_sgr() -> None:
    """With colour on, hostile text (an SGR reset, an OSC 8 link, a CSI in C1 form) cannot
    close or change a style: the only escapes out are the table's own, each opened and reset."""
    import re

    hostile = "\x1b[0m\x1b]8;;http://x\x07link\x1b]8;;\x07 \x9b31m \u0301\u0301 PASS"
    out = table("t", ["a", "b"], [[Styled(hostile, "bold red"), hostile]], 40, color=True)
    out += lines([Styled(hostile, "bold red"), hostile], 40, color=True)
    sgr = re.compile(r"\x1b\[[0-9;]*m")
    assert all(m in ("\x1b[0m", *(f"\x1b[{v}m" for v in _SGR_VALUES)) for m in sgr.findall(out))
    for line in out.splitlines():
        opened = sgr.findall(line)
        assert len([m for m in opened if m == "\x1b[0m"]) * 2 == len(opened), ascii(line)
    _drawn_only(sgr.sub("", out))


_SGR_VALUES = ("1;37;41", "1;31", "1;32", "1;35", "32", "33", "36", "2", "1", "3")


def test_a_wrapped_title_cannot_start_a_line() -> None:
    """``mltrust check``'s title quotes the subject's name: a line of it as wide as the table
    would start at column 0, where it could pass for a verdict line."""
    out = table("mltrust check: " + "n" * 25 + " PASS " + "x" * 34, ["a", "b"], [["1", "2"]], 40)
    title = out.split("┏", 1)[0].splitlines()
    assert len(title) > 1
    assert all(line.startswith(" ") for line in title), title
