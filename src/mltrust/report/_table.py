"""Boxed text tables and wrapped lines for terminal reports, without rich.

Decisions, with their reasons:

- Written here rather than with rich: ``mltrust scan`` of one file with findings spent ~30% of
  its process on importing rich (~45 modules) only to draw one table. This module imports
  ``re`` and ``unicodedata`` and nothing else; the layout follows rich's ``Table`` (HEAVY_HEAD
  box, one space of padding, rich's column shrinking and word wrapping) so the output looks
  the same.
- Everything shown is made visible first (:func:`visible`): findings quote bytes from scanned
  files, so a control character, escape sequence, bidi override or zero-width character
  becomes its escape (``\\x1b``, ``\\u202e``) instead of reaching the terminal. There is no
  markup: ``[red]x[/red]`` prints as written.
- Every column folds a word longer than the column (rich's default for its first columns cuts
  it with an ellipsis): no cell text is lost.
- Widths are display cells: East Asian wide and full-width characters count 2, combining
  marks 0, everything else 1.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

__all__ = ["SGR", "Cell", "Styled", "cell_width", "lines", "table", "visible", "wrap"]

#: ANSI SGR parameters of the styles reports use (rich's names for them).
SGR = {
    "bold white on red": "1;37;41",
    "bold red": "1;31",
    "bold green": "1;32",
    "bold magenta": "1;35",
    "green": "32",
    "yellow": "33",
    "cyan": "36",
    "dim": "2",
    "bold": "1",
    "italic": "3",
}

# Printable to Python but drawn as nothing, or changing how the character before is drawn:
# Hangul fillers, and the default-ignorable marks (variation selectors and their supplement,
# the combining grapheme joiner, Khmer inherent vowels, Mongolian variation selectors).
_INVISIBLE = frozenset(
    "\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
#: Before the lines of a paragraph after its first.
_INDENT = "  "
#: Combining marks drawn on one character at most (more stack over the lines above and below);
#: the rest are shown escaped. A presentation rule, not a bound on input (nothing is dropped).
_SHOWN_MARKS = 3
_WORD = re.compile(r"\s*\S+\s*")


class Styled:
    """Text shown in a style (a key of :data:`SGR`) when colour is on. A plain class, not a
    dataclass: ``dataclasses`` compiles its methods from text when the class is made, which a
    short scan would pay for at every start."""

    __slots__ = ("style", "text")

    def __init__(self, text: str, style: str) -> None:
        self.text = text
        self.style = style


#: A table cell: text, styled text, or lines of text (each wrapped on its own, as rich wraps
#: the lines of a text with newlines; a newline inside one is shown escaped).
Cell = str | Styled | tuple[str, ...]


def visible(text: str) -> str:
    """``text`` with every character a terminal would not simply draw escaped: controls (C0,
    C1, DEL, so also ESC, CR and newlines), format characters (bidi overrides and isolates,
    zero-width characters), separators other than the space, unassigned and private-use code
    points, lone surrogates, default-ignorable marks, and combining marks with no letter to sit
    on (at the start, after a space, an escape or a box-drawing character) or stacked more than
    :data:`_SHOWN_MARKS` high."""
    if text.isascii():
        if text.isprintable():
            return text
        return "".join(c if c.isprintable() else _escape(c) for c in text)
    import unicodedata

    out = []
    marks = -1  # marks on the last character; -1: nothing a mark may sit on
    for char in text:
        if char in _INVISIBLE or not char.isprintable():
            out.append(_escape(char))
            marks = -1
        elif unicodedata.category(char) in ("Mn", "Me"):
            if 0 <= marks < _SHOWN_MARKS:
                out.append(char)
                marks += 1
            else:
                out.append(_escape(char))
                marks = -1
        else:
            out.append(char)
            marks = -1 if char == " " or "\u2500" <= char <= "\u259f" else 0
    return "".join(out)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _char_width(char: str) -> int:
    import unicodedata  # only for text beyond ASCII: a scan's usual table has none

    if unicodedata.category(char) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def cell_width(text: str) -> int:
    """Display cells ``text`` takes on a terminal (for text already made :func:`visible`)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(c) for c in text)


def _chop(word: str, width: int) -> list[str]:
    """``word`` cut into pieces of at most ``width`` cells (a character wider than ``width``
    gets a piece of its own)."""
    pieces: list[str] = []
    piece: list[str] = []
    used = 0
    for char in word:
        size = _char_width(char)
        if piece and used + size > width:
            pieces.append("".join(piece))
            piece, used = [], 0
        piece.append(char)
        used += size
    pieces.append("".join(piece))
    return pieces


def _breaks(text: str, width: int) -> list[int]:
    """Offsets to break ``text`` at so each line fits ``width`` cells: at word starts, and
    inside words longer than a line (rich's ``divide_line`` with folding)."""
    breaks: list[int] = []
    if text.isspace():  # no word: _WORD would try every start over the rest, quadratic
        return breaks
    used = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group()
        size = cell_width(word.rstrip())
        if width - used >= size:
            used += cell_width(word)
        elif size > width:
            pieces = _chop(word, width)
            for index, piece in enumerate(pieces):
                if start:
                    breaks.append(start)
                if index == len(pieces) - 1:
                    used = cell_width(piece)
                else:
                    start += len(piece)
        elif used and start:
            breaks.append(start)
            used = cell_width(word)
    return breaks


def _spans(text: str, width: int) -> list[tuple[int, int]]:
    """Where each line of ``text`` wrapped at ``width`` starts and ends in ``text``."""
    if cell_width(text) <= width:
        return [(0, len(text))]
    offsets = [0, *_breaks(text, width), len(text)]
    out = []
    for start, end in itertools.pairwise(offsets):
        # as rich: whitespace at the end of a line is dropped only where it overflows (counted
        # down, not measured again per character: a long run of spaces was quadratic)
        used = cell_width(text[start:end])
        while end > start and used > width and text[end - 1].isspace():
            end -= 1
            used -= _char_width(text[end])
        out.append((start, end))
    return out


def wrap(text: str, width: int) -> list[str]:
    """``text`` (already :func:`visible`) as lines of at most ``width`` cells, broken at word
    boundaries, words longer than a line folded. Always at least one line."""
    return [text[start:end] for start, end in _spans(text, max(width, 1))]


def _paint(text: str, style: str | None, color: bool) -> str:
    if not color or not style or not text:
        return text
    return f"\x1b[{SGR[style]}m{text}\x1b[0m"


def lines(parts: Sequence[str | Styled], width: int, *, color: bool = False) -> str:
    """One paragraph from ``parts`` (joined, each made :func:`visible`), wrapped at
    ``width`` cells, lines after the first indented by two spaces, styled parts coloured when
    ``color``; ends with a newline."""
    texts = [visible(p.text if isinstance(p, Styled) else p) for p in parts]
    styles = [p.style if isinstance(p, Styled) else None for p in parts]
    text = "".join(texts)
    spans = _spans(text, max(width, 1))
    if len(spans) > 1:
        # Lines after the first are indented (rich's are not): quoted text wrapped to the start
        # of a line could otherwise pass for a line of its own, such as a forged "PASS ...".
        rest = spans[1][0]
        spans[1:] = [(rest + a, rest + b) for a, b in _spans(text[rest:], max(width - 2, 1))]
    out = []
    for number, (start, end) in enumerate(spans):
        indent = _INDENT if number else ""
        if not color:
            out.append(indent + text[start:end])
            continue
        painted, offset = [], 0
        for part, style in zip(texts, styles, strict=True):
            low, high = max(offset, start), min(offset + len(part), end)
            if low < high:
                painted.append(_paint(text[low:high], style, color))
            offset += len(part)
        out.append(indent + "".join(painted))
    return "\n".join(out) + "\n"


def table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    color: bool = False,
) -> str:
    """A table as rich draws ``Table(title=title)`` with rich's default box (HEAVY_HEAD),
    laid out to ``width`` cells: the title centred above, the header in bold, each cell
    :func:`visible` and wrapped to its column."""
    texts = [[[visible(h)] for h in headers]]
    styles: list[list[str | None]] = [["bold"] * len(headers)]
    for row in rows:
        texts.append([_paragraphs(c) for c in row])
        styles.append([c.style if isinstance(c, Styled) else None for c in row])
    widths = _column_widths(texts, width)
    total = sum(widths) + len(widths) + 1
    out = []
    # wrapped two cells narrower than the table (rich: as wide): every title line starts with a
    # space, so a quoted name in it cannot start a line that passes for a verdict
    for line in wrap(visible(title), total - 2):
        left = (total - cell_width(line)) // 2
        out.append(
            _paint(" " * left + line + " " * (total - left - cell_width(line)), "italic", color)
        )

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * w for w in widths) + right

    out.append(rule("┏", "━", "┳", "┓"))
    for index, (row_texts, row_styles) in enumerate(zip(texts, styles, strict=True)):
        bar = "┃" if index == 0 else "│"
        cells = [
            [line for text in cell for line in wrap(text, w - 2)]
            for cell, w in zip(row_texts, widths, strict=True)
        ]
        height = max(len(c) for c in cells)
        if index == 0:  # as rich: header cells sit on the header's last line
            cells = [[""] * (height - len(c)) + c for c in cells]
        for n in range(height):
            parts = []
            for cell, w, style in zip(cells, widths, row_styles, strict=True):
                text = cell[n] if n < len(cell) else ""
                pad = " " * (w - 2 - cell_width(text))
                if index == 0:
                    parts.append(_paint(f" {text}{pad} ", style, color))
                else:
                    parts.append(f" {_paint(text, style, color)}{pad} ")
            out.append(bar + bar.join(parts) + bar)
        if index == 0:
            out.append(rule("┡", "━", "╇", "┩"))
    out.append(rule("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"


def _paragraphs(cell: Cell) -> list[str]:
    if isinstance(cell, Styled):
        return [visible(cell.text)]
    if isinstance(cell, str):
        return [visible(cell)]
    return [visible(line) for line in cell] or [""]


def _column_widths(texts: list[list[list[str]]], width: int) -> list[int]:
    """Width of each column, padding included, borders not: rich's ``Table`` layout. Each
    column wants its longest text; when they do not fit, the widest columns shrink first
    (to the next widest), then all evenly."""
    count = len(texts[0])
    room = max(width - (count + 1), count)
    widths = [
        min(room, max(cell_width(line) for row in texts for line in row[i]) + 2)
        for i in range(count)
    ]
    excess = sum(widths) - room
    while excess > 0:
        widest = max(widths)
        second = max((w for w in widths if w != widest), default=0)
        ratios = [1 if w == widest else 0 for w in widths]
        if widest == second:
            break
        widths = _ratio_reduce(excess, ratios, [min(excess, widest - second)] * count, widths)
        excess = sum(widths) - room
    if excess > 0:
        widths = _ratio_reduce(excess, [1] * count, widths, widths)
    return [max(w, 4) for w in widths]  # two cells of text at least: a wide character fits


def _ratio_reduce(
    total: int, ratios: list[int], maximums: list[int], values: list[int]
) -> list[int]:
    """rich's ``ratio_reduce``: take ``total`` from ``values`` in proportion to ``ratios``,
    at most ``maximums`` from each."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums, strict=True)]
    left, remaining = sum(ratios), total
    out = []
    for ratio, maximum, value in zip(ratios, maximums, values, strict=True):
        if ratio and left > 0:
            taken = min(maximum, round(ratio * remaining / left))
            out.append(value - taken)
            remaining -= taken
            left -= ratio
        else:
            out.append(value)
    return out
