"""Collector: dangerous code patterns (bandit + mltrust's ML rules) and committed secrets in
Python files, Jupyter notebooks and configuration files."""

from __future__ import annotations

import ast
import base64
import io
import json
import logging
import posixpath
import re
import time
import tokenize
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS
from mltrust.evidence import _rules
from mltrust.evidence._classify import (
    LauncherKind,
    code_kind,
    compiled_kind,
    first_line,
    launcher_kind,
    python_source_text,
)
from mltrust.evidence._code_ast import analyse_project
from mltrust.evidence._commands import (
    computed_name,
    host_file_matches,
    unread_host,
)
from mltrust.evidence._launchers import Launch, launches, resolve_target
from mltrust.evidence._secrets import find_secrets
from mltrust.evidence.interface import (
    CollectContext,
    Collected,
    Collector,
    finding_fingerprint,
    fingerprint,
    severity_counts,
)
from mltrust.files import SkipReason
from mltrust.findings import Confidence, Finding, Location, Rule, Severity

__all__ = ["CodeCollector", "notebook_source"]

log = logging.getLogger("mltrust.evidence")

PREDICATE_TYPE = "https://mltrust.dev/code/v1"
#: Bytes a chunk carries over from the previous one when it holds no line break (longer than
#: any secret the rules match), so a secret across a chunk boundary is still found.
_CHUNK_OVERLAP = 4096
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
_ASCII_RUN = re.compile(rb"[\t\x20-\x7e]{6,}")
_UTF16_RUNS = (
    (re.compile(rb"(?:[\t\x20-\x7e]\x00){6,}"), "utf-16-le"),
    (re.compile(rb"(?:\x00[\t\x20-\x7e]){6,}"), "utf-16-be"),
)
_UTF32_RUNS = (
    (re.compile(rb"(?:[\t\x20-\x7e]\x00\x00\x00){6,}"), "utf-32-le"),
    (re.compile(rb"(?:\x00\x00\x00[\t\x20-\x7e]){6,}"), "utf-32-be"),
)
#: UTF-32 byte-order marks, tested before the UTF-16 ones (``ff fe 00 00`` starts like both).
_UTF32_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"))


def utf16_without_bom(data: bytes) -> str | None:
    """``utf-16-le``/``utf-16-be`` when the first 4 KiB alternate NUL bytes with others as
    ASCII text in UTF-16 does (a third or more of one byte position NUL, at most 5 % of the
    other), else None."""
    sample = data[:4096]
    sample = sample[: len(sample) // 2 * 2]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nul, odd_nul = even.count(0) / len(even), odd.count(0) / len(odd)
    if odd_nul >= 0.33 and even_nul <= 0.05:
        return "utf-16-le"
    if even_nul >= 0.33 and odd_nul <= 0.05:
        return "utf-16-be"
    return None


#: One text to search for secrets, and the file line of each of its lines (None: the text's
#: lines are the file's).
SecretView = tuple[str, tuple[int, ...] | None]


def secret_views(data: bytes) -> list[SecretView]:
    """What the secret search reads of a file's bytes.

    Text (no NUL byte, or a BOM) is decoded as pip decodes it (UTF-32 by its BOM); after a
    UTF-16 or UTF-32 BOM it is also read as runs, like bytes with NULs. Bytes with NULs are
    read several ways and all are searched, so no choice of encoding hides a secret: as
    UTF-16 when the NULs alternate like UTF-16 text without a BOM does, and, like ``strings``,
    as the runs of 6 or more printable ASCII characters, and of printable UTF-16 and UTF-32
    (LE and BE) characters. Lines of a run are the file's lines where the run starts (line
    breaks counted in bytes).
    """
    from mltrust.evidence._depsources import decode_text

    views: list[SecretView] = []
    wide = next((c for b, c in _UTF32_BOMS if data.startswith(b)), None)
    if wide is not None:
        views.append((data[4:].decode(wide, errors="replace"), None))
    elif data.startswith(_BOMS) or b"\x00" not in data:
        views.append((decode_text(data), None))
        if not data.startswith(_BOMS[1:]):
            return views
    # A UTF-16 or UTF-32 BOM is bytes anyone can put in front of other content: what follows
    # is also read as the runs below, so a BOM cannot turn ASCII or UTF-8 into noise.
    guess = utf16_without_bom(data)
    if guess is not None:
        views.append((data.decode(guess, errors="replace"), None))
    runs: list[tuple[re.Pattern[bytes], str]] = [(_ASCII_RUN, "ascii")]
    runs.extend(r for r in _UTF16_RUNS if r[1] != guess)
    runs.extend(_UTF32_RUNS)
    for pattern, codec in runs:
        texts: list[str] = []
        lines: list[int] = []
        line, previous = 1, 0
        for m in pattern.finditer(data):
            line += data.count(b"\n", previous, m.start())
            previous = m.start()
            texts.append(m.group().decode(codec, errors="replace"))
            lines.append(line)
        if texts:
            views.append(("\n".join(texts), tuple(lines)))
    return views


def _is_env_file(name: str) -> bool:
    low = name.lower()
    return low.startswith(".env") or low.endswith(".env") or low == ".envrc"


#: Low-severity bandit tests that are noise for ML code (asserts, "password" literals already
#: judged by the secret rules, ``import pickle``). Only LOW issues of these tests are dropped:
#: every bandit MEDIUM/HIGH issue is reported, including the deserialisation and eval tests
#: (B301, B302, B307, B506, B614) that mltrust's own rules also cover, and B615.
_BANDIT_NOISE = frozenset({"B101", "B105", "B106", "B107", "B403", "B404"})
_BANDIT_SEVERITY = {"LOW": Severity.LOW, "MEDIUM": Severity.MEDIUM, "HIGH": Severity.HIGH}
_BANDIT_CONFIDENCE = {"LOW": Confidence.LOW, "MEDIUM": Confidence.MEDIUM, "HIGH": Confidence.HIGH}


@dataclass(frozen=True, slots=True)
class _Source:
    rel: str
    text: str
    #: For a notebook: line of the joined source -> (cell index, line in the cell).
    cells: tuple[tuple[int, int], ...] = ()
    notebook: bool = False
    #: For Python given inline by a launcher (``python -c``, a heredoc) whose ``rel`` is the
    #: launcher: the launcher's line of each line of the code (findings are reported there).
    lines: tuple[int, ...] = ()

    def host_line(self, line: int) -> int:
        """The line of ``rel`` a line of :attr:`text` is."""
        if not self.lines:
            return line
        return self.lines[min(max(line, 1), len(self.lines)) - 1]


#: Line magics that run their argument as Python (after their options), with the options
#: that take a value: ``%time``, ``%timeit -n 10 f()``, ``%prun -s cumtime f()``,
#: ``%debug [--breakpoint FILE:LINE] [statement]``.
_PYTHON_LINE_MAGICS: dict[str, frozenset[str]] = {
    "time": frozenset(),
    "timeit": frozenset({"-n", "-r", "-p"}),
    "prun": frozenset({"-D", "-l", "-s", "-T"}),
    "debug": frozenset({"-b", "--breakpoint"}),
}
#: Line magics whose argument is a shell command, a path or a setting, never Python.
_OTHER_LINE_MAGICS = frozenset(
    {"pip", "conda", "mamba", "micromamba", "uv", "matplotlib", "load_ext", "reload_ext"}
    | {"unload_ext", "env", "set_env", "cd", "ls", "cat", "mkdir", "rm", "cp", "mv", "pwd"}
    | {"system", "sx", "sc", "bookmark", "alias", "who", "whos", "history", "config", "store"}
    | {"load", "run", "pycat", "autoreload", "aimport", "pdb", "xmode", "precision", "colors"}
    | {"pprint", "magic", "lsmagic", "autosave", "autocall", "automagic", "logstart", "reset"}
)
#: Cell magics whose body IPython runs as Python (``%%script python``/``%%python3`` too).
_PYTHON_CELL_MAGICS = frozenset(
    {"time", "timeit", "prun", "capture", "debug", "python", "python2", "python3", "pypy"}
)
#: Cell magics whose body is not Python (blanked unless it parses as Python anyway).
_SHELL_CELL_MAGICS = frozenset({"bash", "sh", "script", "system", "sx"})
_MAGIC = re.compile(r"^(\s*)(?:([A-Za-z_][A-Za-z0-9_]*)\s*=\s*)?%([A-Za-z_][A-Za-z0-9_]*)(.*)$")


def _parses(text: str) -> bool:
    import ast

    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _magic_argument(name: str, args: str) -> str:
    """The Python statement a line magic runs: ``args`` less the magic's options."""
    options = _PYTHON_LINE_MAGICS.get(name, frozenset())
    words = args.strip()
    while (words.startswith("-") and not words.startswith("--")) or words.startswith(
        "--breakpoint"
    ):
        head, _, tail = words.partition(" ")
        flag = head if head.startswith("--") else head[:2]
        words = tail.lstrip()
        if flag in options and head == flag:  # its value is the next word
            words = words.partition(" ")[2].lstrip()
    return words


def _cell_lines(text: str) -> list[str]:
    """The lines of one code cell as mltrust analyses them (line count kept).

    IPython runs some magics' arguments as Python: the statement of ``%time``, ``%timeit``,
    ``%prun`` and ``%debug`` (also as ``x = %time f()``), and the body of the cell magics
    ``%%time``, ``%%timeit``, ``%%prun``, ``%%capture``, ``%%debug``, ``%%python3``: those are
    analysed (and must parse). The argument of any other line magic not known to take a
    shell command, path or setting (``%pip``, ``%matplotlib``...), and the body of any other
    cell magic except shell ones, is analysed when it parses as Python on its own (a
    user-defined magic may evaluate it); otherwise, like ``!cmd`` shell escapes and
    ``%%bash`` cells, it becomes a blank line.
    """
    lines = text.splitlines()
    blank = 0  # IPython drops leading blank lines before looking for a cell magic
    while blank < len(lines) and not lines[blank].strip():
        blank += 1
    if blank < len(lines) and lines[blank].lstrip().startswith("%%"):
        first = lines[blank].lstrip()[2:].split()
        name = first[0] if first else ""
        body = lines[blank + 1 :]
        if name == "script" and len(first) > 1:
            python = _runs_python_word(first[1])
        else:
            python = name in _PYTHON_CELL_MAGICS
        if python or (name not in _SHELL_CELL_MAGICS and _parses("\n".join(body))):
            return [""] * (blank + 1) + [_line_as_python(line) for line in body]
        return [""] * len(lines)
    return [_line_as_python(line) for line in lines]


def _runs_python_word(word: str) -> bool:
    from mltrust.evidence._classify import python_shebang

    return python_shebang(f"#!{word}")


def _line_as_python(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith("!"):
        return ""
    match = _MAGIC.match(line)
    if match is None:
        return "" if stripped.startswith("%") else line
    indent, target, name, args = match.groups()
    statement = _magic_argument(name, args)
    if (
        not statement
        or name in _OTHER_LINE_MAGICS
        or (name not in _PYTHON_LINE_MAGICS and not _parses(statement))
    ):
        return ""
    return f"{indent}{target} = {statement}" if target else f"{indent}{statement}"


def notebook_source(raw: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The code cells of a notebook joined into one source, and where each line came from.

    IPython magics and shell escapes become what IPython runs as Python, else blank lines,
    so that line numbers stay aligned (:func:`_cell_lines`). Raises ``ValueError`` for a
    document that is not a notebook.
    """
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise ValueError("notebook JSON is nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise ValueError("not a Jupyter notebook (no cells)")
    lines: list[str] = []
    where: list[tuple[int, int]] = []
    for index, cell in enumerate(doc["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        for number, line in enumerate(_cell_lines(text), 1):
            lines.append(line)
            where.append((index, number))
        lines.append("")
        where.append((index, 0))
    return "\n".join(lines) + "\n", tuple(where)


_NOTEBOOK_KEYS = frozenset({"cells", "metadata", "nbformat", "nbformat_minor"})
_CELL_KEYS = frozenset(
    {"cell_type", "source", "metadata", "outputs", "attachments", "execution_count", "id"}
)
_OUTPUT_KEYS = frozenset(
    {
        "output_type",
        "name",
        "text",
        "data",
        "metadata",
        "execution_count",
        "ename",
        "evalue",
        "traceback",
    }
)


def _duplicates_why(keys: list[str]) -> str:
    names = ", ".join(repr(k) for k in sorted(set(keys))[:5])
    return (
        f"notebook JSON repeats a key ({names}): readers disagree on which value wins, so "
        "what was searched may not be what Jupyter reads; not searched"
    )


def notebook_cells(raw: str, duplicates: list[str] | None = None) -> list[tuple[int, str]]:
    """``(cell index, text)`` of everything in a notebook a secret can hide in, for the
    secret search: every cell's source (code, markdown, raw), its metadata, its attachments
    (base64-decoded; non-text ones as their printable runs) and every output: stream text,
    every ``data`` entry (``text/plain``, ``text/html``, ``application/json`` and any other
    text; base64 images as printable runs), error names, values and tracebacks, and output
    metadata; and, as JSON, any key nbformat does not define. The notebook's own metadata is
    cell index -1. Raises ``ValueError`` for a document that is not a notebook. Keys an object
    repeats (``json`` keeps the last) are appended to ``duplicates``."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        table = dict(items)
        if duplicates is not None and len(table) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    duplicates.append(key)
                seen.add(key)
        return table

    try:
        doc = json.loads(raw, object_pairs_hook=pairs)
    except RecursionError:
        raise ValueError("notebook JSON is nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise ValueError("not a Jupyter notebook (no cells)")
    out: list[tuple[int, str]] = []

    def text_of(value: Any) -> str:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "".join(value)
        if isinstance(value, str):
            return value
        if value is None or value == {} or value == []:
            return ""
        try:
            return json.dumps(value, indent=1, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            return ""

    def decoded(mime: str, value: Any, *, attachment: bool = False) -> str:
        """Output data as it is; attachments and non-text outputs (images) also decoded
        from base64 (attachments are base64 whatever their type)."""
        text = text_of(value)
        if not attachment and (
            mime.startswith("text/") or mime.endswith(("json", "javascript", "xml"))
        ):
            return text
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except ValueError:
            return text
        return text + "\n" + "\n".join(v for v, _ in secret_views(data))

    def others(index: int, table: dict[str, Any], known: frozenset[str]) -> None:
        """Keys nbformat does not define: searched as JSON, so no key hides a secret."""
        extra = {k: v for k, v in table.items() if k not in known}
        if extra:
            out.append((index, text_of(extra)))

    out.append((-1, text_of(doc.get("metadata"))))
    others(-1, doc, _NOTEBOOK_KEYS)
    for index, cell in enumerate(doc["cells"]):
        if not isinstance(cell, dict):
            out.append((index, text_of(cell)))
            continue
        others(index, cell, _CELL_KEYS)
        out.append((index, text_of(cell.get("source", ""))))
        out.append((index, text_of(cell.get("metadata"))))
        attachments = cell.get("attachments")
        for bundle in attachments.values() if isinstance(attachments, dict) else []:
            for mime, value in bundle.items() if isinstance(bundle, dict) else []:
                out.append((index, decoded(str(mime), value, attachment=True)))
        outputs = cell.get("outputs")
        for output in outputs if isinstance(outputs, list) else []:
            if not isinstance(output, dict):
                out.append((index, text_of(output)))
                continue
            others(index, output, _OUTPUT_KEYS)
            out.append((index, text_of(output.get("text", ""))))
            for key in ("ename", "evalue", "metadata"):
                out.append((index, text_of(output.get(key))))
            out.append((index, "\n".join(_strings(output.get("traceback")))))
            data = output.get("data")
            for mime, value in data.items() if isinstance(data, dict) else []:
                out.append((index, decoded(str(mime), value)))
    return [(index, text) for index, text in out if text]


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


#: An inline marker (``mltrust: ignore[RULE-ID, ...] reason`` after a ``#``), searched in comment
#: tokens only.
_MARKER = re.compile(r"#\s*mltrust:\s*ignore\[([^\]]*)\]\s*(.*?)\s*$")
_RULE_ID = re.compile(r"MLT-CODE-\d{3}")
_NOT_HONOURED = (
    "inline suppressions are not honoured by this policy (a profile opts in with "
    "code: {inline_suppressions: true}, or --inline-suppressions)"
)


def _markers(text: str) -> dict[int, tuple[tuple[str, ...], str, bool]]:
    """Line number -> (rule ids, reason, whole line is the comment) of every marker of a Python
    source.

    Only real comments count: the source is split into tokens (:mod:`tokenize`) and only
    ``COMMENT`` tokens are searched, so a marker spelled inside a string literal or a
    docstring is text, not a marker. A source that does not tokenize, or whose lines
    ``str.splitlines`` numbers differently from Python, has no markers.
    """
    out: dict[int, tuple[tuple[str, ...], str, bool]] = {}
    if "mltrust:" not in text:
        return out
    newline_lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    if len(text.splitlines()) != newline_lines:
        # Form feeds, U+2028 and the like: the secret search (str.splitlines) and Python
        # (newlines) would number lines differently, so no marker line is unambiguous.
        return out
    try:
        comments = [
            tok
            for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError, MemoryError):
        return out
    for tok in comments:
        m = _MARKER.search(tok.string)
        if m is None:
            continue
        number, column = tok.start
        ids = tuple(x.strip() for x in m.group(1).split(",") if x.strip())
        # the physical line as the tokenizer (and ast) numbered it, not str.splitlines()
        out[number] = (ids, m.group(2).strip(), tok.line[:column].strip() == "")
    return out


def apply_inline_suppressions(
    findings: list[Finding], texts: dict[str, str], *, honour: bool = True
) -> tuple[list[Finding], list[dict[str, Any]], list[dict[str, Any]]]:
    """Drop the findings an inline marker names, keeping a record of each; flag bad markers.

    A marker is a comment of a Python file (``texts``: path -> source; a marker inside a
    string, in a notebook or in any other file is not one). It suppresses a code or secret
    finding of a rule it names, on its own line, or on the line below when the marker is a
    line of its own, and only with a reason (the words after the bracket).

    ``honour`` is the policy's choice (``code.inline_suppressions``, off by default): the
    markers are written by the project being judged. Returns ``(kept findings, suppressed,
    ignored)``: when honoured, every suppression is recorded in ``suppressed`` (so a profile can
    forbid them, ``size(code.suppressed) == 0``); when not, the findings stay and the markers
    that would have suppressed them are recorded in ``ignored``, with why.
    """
    markers = {rel: _markers(text) for rel, text in texts.items()}
    kept: list[Finding] = []
    suppressed: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []
    for f in findings:
        extra = dict(f.extra)
        rel, line = f.location.path, int(extra.get("line", "0") or 0)
        here = markers.get(rel, {})
        hit = None
        if "cell" not in extra and line > 0:
            for at in (line, line - 1):
                ids, reason, alone = here.get(at, ((), "", False))
                if f.rule_id in ids and reason and (at == line or alone):
                    hit = (at, reason)
                    break
        if hit is None:
            kept.append(f)
            continue
        record = {
            "rule_id": f.rule_id,
            "path": rel,
            "line": line,
            "reason": hit[1],
            "message": f.message,
            "fingerprint": finding_fingerprint(f),
        }
        if honour:
            suppressed.append(record)
        else:
            kept.append(f)
            ignored.append({**record, "marker_line": hit[0], "why": _NOT_HONOURED})
    for rel, found in markers.items():
        for at, (ids, reason, _alone) in found.items():
            bad = [i for i in ids if not _RULE_ID.fullmatch(i)]
            if not ids or bad or not reason:
                why = "no reason given" if ids and not bad else f"not a code rule: {bad or ids}"
                kept.append(
                    Finding.of(
                        _rules.CODE_SUPPRESSION_INVALID,
                        f"inline suppression ignored: {why}",
                        Location(rel, detail=f"line {at}"),
                        extra={"line": str(at), "tool": "mltrust"},
                    )
                )
    return kept, suppressed, ignored


class _TooLarge(Exception):
    pass


class _Unreadable(Exception):
    pass


#: The rules whose findings are secrets (git state, the ``secret`` row kind, line binding).
_SECRET_RULE_IDS = frozenset(
    {
        _rules.CODE_PRIVATE_KEY.id,
        _rules.CODE_TOKEN.id,
        _rules.CODE_HIGH_ENTROPY.id,
        _rules.CODE_PASSWORD.id,
    }
)
_PY_NEWLINE = re.compile(r"\r\n|\r|\n")


def _bind_to_content(
    findings: list[Finding], sources: list[_Source], paths: dict[str, Path]
) -> list[Finding]:
    """Give each finding on a line a fingerprint that also covers what the line says.

    The fingerprint (:func:`~mltrust.evidence.interface.fingerprint`) names rule, path, line,
    cell and message; a waiver by fingerprint must not survive the line being rewritten (a
    reviewed ``pickle.loads(local_cache)`` turned into ``pickle.loads(download)`` keeps all
    five), so the SHA-256 of the line's text with all whitespace removed is folded in and the
    result is kept as the finding's ``fingerprint`` extra (reports, SARIF and waivers read it
    through :func:`finding_fingerprint`). Lines are numbered as the rule numbered them: code
    rules like Python (``\r\n``, ``\r``, ``\n``), secret rules like the secret search
    (:meth:`str.splitlines`, by ``\n`` in binary files; a notebook secret's line is the line
    at that position in each text of its cell). Only the combined fingerprint is reported,
    never a separate digest of a secret's line. A file too large to re-read is bound as
    ``unread`` (line only)."""
    import hashlib
    from dataclasses import replace

    by_rel = {s.rel: s for s in sources if not s.lines}
    data_of: dict[str, bytes | None] = {}

    def data(rel: str) -> bytes | None:
        if rel not in data_of:
            path = paths.get(rel)
            try:
                data_of[rel] = _read_bytes(path) if path is not None else None
            except (_TooLarge, _Unreadable):
                data_of[rel] = None
        return data_of[rel]

    def pick(lines: list[str], line: int) -> str:
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def line_text(f: Finding, line: int, cell: int) -> str | None:
        rel = f.location.path
        if f.rule_id not in _SECRET_RULE_IDS:
            src = by_rel.get(rel)
            if src is not None and src.cells:
                spot = (cell, line)
                for i, where in enumerate(src.cells):
                    if where == spot:
                        return pick(_PY_NEWLINE.split(src.text), i + 1)
                return None
            if src is not None:
                return pick(_PY_NEWLINE.split(src.text), line)
            raw = data(rel)
            text = _analysis_text(raw) if raw is not None else None
            return pick(_PY_NEWLINE.split(text), line) if text is not None else None
        raw = data(rel)
        if raw is None:
            return None
        if rel.lower().endswith(".ipynb") or cell >= 0:
            try:
                from mltrust.evidence._depsources import decode_text

                texts = [t for i, t in notebook_cells(decode_text(raw)) if i == cell]
            except ValueError:
                texts = []
            if texts:
                return "\n".join(pick(t.splitlines(), line) for t in texts)
        if raw.startswith(_BOMS) or b"\x00" not in raw:
            from mltrust.evidence._depsources import decode_text

            return pick(decode_text(raw).splitlines(), line)
        parts = raw.split(b"\n")
        return parts[line - 1].decode("latin-1") if 0 < line <= len(parts) else ""

    out = []
    for f in findings:
        extra = dict(f.extra)
        line = int(extra.get("line", "0") or 0)
        if line <= 0:
            out.append(f)
            continue
        cell = int(extra.get("cell", "-1") or -1)
        text = line_text(f, line, cell)
        content = (
            "unread"
            if text is None
            else hashlib.sha256("".join(text.split()).encode("utf-8", "surrogatepass")).hexdigest()
        )
        extra.pop("fingerprint", None)
        extra["fingerprint"] = fingerprint(
            f.rule_id, f.location.path, line, cell, f.message, content=content
        )
        out.append(replace(f, extra=tuple(sorted(extra.items()))))
    return out


#: How a file a launcher runs (a ``shell``/``make``/``dockerfile`` launch) is read.
def _includer(host: str, tree: dict[str, Path]) -> Callable[[str], str | None]:
    """The text of a project file a makefile ``host`` includes (found as a launch's file is,
    :func:`resolve_target`: inside the project), for the variables it assigns
    (:func:`mltrust.evidence._commands.commands`); None for any other name."""

    def include(name: str) -> str | None:
        texts: list[str] = []
        for target in _host_targets(host, name, tree) or ():
            try:
                text = _analysis_text(_read_bytes(tree[target]))
            except (_TooLarge, _Unreadable):
                continue  # reported where the file is read as a makefile
            if text is not None:
                texts.append(text)
        return "\n".join(texts) if texts else None

    return include


def _host_targets(
    host: str, name: str, tree: dict[str, Path], kind: str | None = None, dirs: tuple[str, ...] = ()
) -> list[str] | None:
    """The project files a file name a command host runs or includes may be: from the
    host's folder and from the project root (where CI runs, where GitLab's ``local:`` and
    make's ``include`` look), both when both exist (a decoy beside the host hides nothing),
    and from each of ``dirs`` (folders from the root: a makefile's ``include`` in a ``make -I
    DIR`` run); for a name the shell computes (``bash ci/st*p``, ``. $DIR/x``, ``include
    $(wildcard mk/*.mk)``), every project file it may name, but those read on their own as
    hosts of ``kind`` when it is given (one naming nothing here, ``$HOME/.x``, names none).
    None when that is more than ``Limits.max_command_host_matches`` files."""
    if not computed_name(name):
        found = [resolve_target(host, "file", name, tree), resolve_target("", "file", name, tree)]
        if not name.startswith("/"):
            found += [resolve_target("", "file", posixpath.join(d, name), tree) for d in dirs]
        return list(dict.fromkeys(t for t in found if t is not None))
    folders: dict[str, set[str]] = {}
    for rel in tree:
        parts = rel.split("/")
        for k in range(len(parts)):
            folders.setdefault("/".join(parts[:k]), set()).add(parts[k])
    targets = host_file_matches(
        name,
        (posixpath.dirname(host), "", *dirs),
        lambda rel: sorted(folders.get(rel, ())),
        lambda rel: rel in tree and (kind is None or launcher_kind(rel, "") != kind),
    )
    return None if len(targets) > DEFAULT_LIMITS.max_command_host_matches else targets


_HOST_FILE_KINDS: dict[str, LauncherKind] = {
    "shell": "shell",
    "make": "make",
    "dockerfile": "dockerfile",
    "yaml": "yaml",
    "lines": "lines",
}


def _read_bytes(path: Path) -> bytes:
    """The bytes of a file of at most ``max_code_text_bytes``; raises :class:`_TooLarge`
    past it and :class:`_Unreadable` (with the reason) when it cannot be read."""
    from mltrust.errors import Error, LimitExceeded
    from mltrust.files import read_bounded

    try:
        return read_bounded(path, DEFAULT_LIMITS.max_code_text_bytes, what="text file")
    except LimitExceeded:
        raise _TooLarge from None
    except Error as exc:
        raise _Unreadable(str(exc)) from None


def _analysis_text(data: bytes) -> str | None:
    """The text code analysis reads: None for bytes with a NUL (not source code) unless a
    UTF-16 BOM says it is text."""
    from mltrust.evidence._depsources import decode_text

    if not data.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in data:
        return None
    return decode_text(data)


@dataclass
class _Budget:
    """Bytes the chunked secret search may still read over the whole project."""

    left: int


def _search_views(
    views: list[SecretView], env_file: bool, line_offset: int = 0
) -> list[tuple[Rule, int, str]]:
    found: dict[tuple[str, int, str], tuple[Rule, int, str]] = {}
    for text, lines in views:
        for hit in find_secrets(text, env_file=env_file and lines is None):
            line = (lines[hit.line - 1] if lines is not None else hit.line) + line_offset
            found.setdefault((hit.rule.id, line, hit.message), (hit.rule, line, hit.message))
    return list(found.values())


def _folded(node: Any) -> str | None:
    """The string a constant expression spells: a ``str`` (or ``bytes``, as Latin-1) constant,
    an f-string without placeholders, ``+`` of such, ``sep.join([...])`` of such; else None."""
    import ast

    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return node.value
        return node.value.decode("latin-1") if isinstance(node.value, bytes) else None
    if isinstance(node, ast.JoinedStr):
        parts = [_folded(v) for v in node.values]
        return None if None in parts else "".join(p for p in parts if p is not None)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _folded(node.left), _folded(node.right)
        return None if left is None or right is None else left + right
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "join"
        and len(node.args) == 1
        and not node.keywords
        and isinstance(node.args[0], ast.List | ast.Tuple)
    ):
        sep = _folded(node.func.value)
        items = [_folded(e) for e in node.args[0].elts]
        if sep is None or None in items:
            return None
        return sep.join(i for i in items if i is not None)
    return None


def literal_nodes(nodes: list[Any], text: str) -> SecretView | None:
    """The string constants among a Python source's parsed ``nodes`` as Python reads them,
    one view line per line of a value, each bound to the source line of its literal:
    adjacent literals joined by the parser (``"ghp_" "abc..."``, across lines in
    parentheses), escapes (``\\x``, ``\\u``, octal) decoded, and ``+`` of constant strings
    and ``sep.join([...])`` of constant strings folded. A literal whose value is spelled as is
    on its own lines is left out (the text view finds it there). ``nodes`` in breadth-first
    order (parents first), as :func:`ast.walk` and the code rules' parse list them."""
    import ast

    source_lines = _PY_NEWLINE.split(text)
    texts: list[str] = []
    numbers: list[int] = []
    inner: set[int] = set()
    for node in nodes:
        if isinstance(node, ast.BinOp):
            # a chain a + b + c is folded once, at its top
            inner.update(id(n) for n in (node.left, node.right) if isinstance(n, ast.BinOp))
            if id(node) in inner:
                continue
        elif not isinstance(node, ast.Constant | ast.JoinedStr | ast.Call):
            continue
        try:
            value = _folded(node)
        except RecursionError:
            continue
        if not value:
            continue
        first = getattr(node, "lineno", 1)
        last = getattr(node, "end_lineno", first) or first
        if isinstance(node, ast.Constant) and value in "\n".join(source_lines[first - 1 : last]):
            continue
        for offset, part in enumerate(value.splitlines()):
            texts.append(part)
            # a value's own line breaks follow the source's in a triple-quoted literal; an
            # escaped one (\\n) does not: never past the literal's last line
            numbers.append(min(first + offset, last) if isinstance(node, ast.Constant) else first)
    return ("\n".join(texts), tuple(numbers)) if texts else None


def _packed_hits(
    rel: str, data: Any, allowance: Any
) -> tuple[list[tuple[str, Rule, int, str]], list[tuple[str, str]]]:
    """Secrets in the compressed or archived content of ``data`` (a file's bytes or a map of
    them), ``(where, rule, line, message)``, and what of it was not searched, ``(where, why)``
    (see :mod:`._unpack`)."""
    from mltrust.evidence._unpack import unpack

    hits: list[tuple[str, Rule, int, str]] = []
    problems: list[tuple[str, str]] = []
    for piece in unpack(rel, data, allowance):
        if piece.data is None:
            problems.append((piece.where, piece.why))
            continue
        env_file = _is_env_file(piece.where.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
        for rule, line, message in _search_views(secret_views(piece.data), env_file):
            hits.append((piece.where, rule, line, message))
    return hits, problems


def _packed_large(
    rel: str, path: Path, allowance: Any
) -> tuple[list[tuple[str, Rule, int, str]], list[tuple[str, str]]]:
    """:func:`_packed_hits` of a file too large to read whole, through a read-only map."""
    import mmap
    import os

    from mltrust.errors import Error
    from mltrust.evidence._unpack import TAIL, is_packed
    from mltrust.files import open_regular

    try:
        fd = open_regular(path)
    except Error:
        return [], []  # already listed by the chunked search
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, 512, 0)
        tail = os.pread(fd, TAIL, max(size - TAIL, 0))
        if not is_packed(rel.rsplit("/", 1)[-1], head, tail):
            return [], []
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
            return _packed_hits(rel, view, allowance)
    except (OSError, ValueError) as exc:
        return [], [(rel, f"compressed content could not be read ({exc}); not searched")]
    finally:
        os.close(fd)


def _large_notebook_hits(
    path: Path, budget: _Budget, duplicates: list[str]
) -> list[tuple[int, Any]] | None:
    """A notebook larger than ``max_code_text_bytes`` (image outputs make them so), read whole
    up to ``max_secret_file_bytes`` (counted against the budget) and searched cell by
    cell like a small one, so base64 attachments and outputs are still decoded. None when it
    is larger still or not a notebook: it is then searched as raw text in chunks."""
    from mltrust.errors import Error
    from mltrust.evidence._depsources import decode_text
    from mltrust.files import read_bounded

    limit = min(DEFAULT_LIMITS.max_secret_file_bytes, budget.left)
    try:
        data = read_bounded(path, limit, what="notebook")
    except Error:
        return None
    budget.left -= len(data)
    try:
        cells = notebook_cells(decode_text(data), duplicates)
    except ValueError:
        return None
    return [(index, hit) for index, text in cells for hit in find_secrets(text)]


def _search_large(path: Path, env_file: bool, budget: _Budget) -> tuple[list[Any], str | None]:
    """Search a file larger than ``max_code_text_bytes`` for secrets in chunks of that size,
    each cut after its last line break (or, without one, carrying :data:`_CHUNK_OVERLAP`
    bytes into the next), up to ``max_secret_file_bytes`` of it and what is left of the
    project's ``max_secret_total_bytes``. Returns the hits ``(rule, line, message)`` and,
    when part of the file was not searched, why."""
    import os

    from mltrust.errors import Error
    from mltrust.files import open_regular

    try:
        fd = open_regular(path)
    except Error as exc:
        return [], f"could not be read: {exc}"
    hits: dict[tuple[str, int, str], tuple[Rule, int, str]] = {}
    searched = 0
    lines_before = 0
    carry = b""
    bom = b""
    try:
        size = os.fstat(fd).st_size
        while True:
            allowance = min(DEFAULT_LIMITS.max_secret_file_bytes - searched, budget.left)
            if allowance <= 0:
                break
            chunk = os.read(fd, min(DEFAULT_LIMITS.max_code_text_bytes, allowance))
            if not chunk:
                if carry:
                    for hit in _search_views(secret_views(bom + carry), env_file, lines_before):
                        hits.setdefault((hit[0].id, hit[1], hit[2]), hit)
                break
            searched += len(chunk)
            budget.left -= len(chunk)
            data = carry + chunk
            if not bom and searched == len(chunk):
                bom = next((b for b in _BOMS[1:] if data.startswith(b)), b"")
                data = data[len(bom) :] if bom else data
            cut = data.rfind(b"\n") + 1
            if bom == b"\xff\xfe" or (not bom and utf16_without_bom(data) == "utf-16-le"):
                cut += cut % 2  # the NUL after a UTF-16-LE line feed belongs to it
            if cut <= 0 or cut > len(data):
                body, carry, overlap = data, data[-_CHUNK_OVERLAP:], True
            else:
                body, carry, overlap = data[:cut], data[cut:], False
            for hit in _search_views(secret_views(bom + body), env_file, lines_before):
                hits.setdefault((hit[0].id, hit[1], hit[2]), hit)
            if not overlap:
                lines_before += body.count(b"\n")
    except OSError as exc:
        return list(hits.values()), f"could not be read: {exc.strerror or exc}"
    finally:
        os.close(fd)
    if searched < size:
        why = (
            f"larger than the {DEFAULT_LIMITS.max_secret_file_bytes} bytes searched per file"
            if searched >= DEFAULT_LIMITS.max_secret_file_bytes
            else "the secret search's overall cap of "
            f"{DEFAULT_LIMITS.max_secret_total_bytes} bytes was spent"
        )
        return list(hits.values()), f"{size - searched} of {size} bytes not searched ({why})"
    return list(hits.values()), None


_COMPILED_WHY = {
    "bytecode": "compiled Python bytecode: Python imports it (a .pyc beside or instead of its "
    "source, in __pycache__ or alone) but what it runs cannot be analysed; not analysed",
    "extension": "native extension module: Python imports it but its machine code cannot be "
    "analysed; not analysed",
}
#: Archives Python imports from when they are on ``sys.path`` (zipimport) or runs as a
#: script; any other file that starts like a zip is opened too (zipimport ignores names).
_ARCHIVE_SUFFIXES = (".zip", ".egg", ".pyz", ".pyzw", ".whl")
_ZIP_MAGIC = b"PK\x03\x04"


def _archive_sources(
    rel: str, path: Path, head: bytes | None
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Python source inside a zip archive of the tree, which Python imports when the
    archive is on ``sys.path`` (zipimport) or runs as a zip application: ``(rel:member,
    text)`` of every ``.py``/``.pyw`` member, decoded as CPython decodes source, and
    ``(where, why)`` of what was not analysed: bytecode members (zipimport imports them),
    members encrypted, too large, not decodable, or past the bounds, and an archive named
    like one (``.zip``, ``.egg``, ``.pyz``, ``.whl``) that cannot be read. A file that is not
    named like an archive is opened only when it starts with a zip header, and one that
    cannot be read then is left to the other rules. Nested archives are not opened.
    ``head``: the file's first bytes when the caller read them (None: not read)."""
    import os
    import zipfile

    from mltrust.errors import Error
    from mltrust.files import open_regular

    named = rel.lower().endswith(_ARCHIVE_SUFFIXES)
    if not named and head is not None and not head.startswith(_ZIP_MAGIC):
        return [], []  # the caller read its first bytes: not a zip
    try:
        fd = open_regular(path)
    except Error as exc:
        return [], ([(rel, f"archive could not be read: {exc}; not analysed")] if named else [])
    members: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    with os.fdopen(fd, "rb") as fh:
        try:
            if not named and fh.read(4) != _ZIP_MAGIC:
                return [], []
            fh.seek(0)
            archive = zipfile.ZipFile(fh)
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as exc:
            if named:
                problems.append((rel, f"archive could not be read ({exc}); not analysed"))
            return [], problems
        with archive:
            infos = archive.infolist()
            if len(infos) > DEFAULT_LIMITS.max_code_archive_members:
                return [], [
                    (
                        rel,
                        f"archive lists more than "
                        f"{DEFAULT_LIMITS.max_code_archive_members} members; not analysed",
                    )
                ]
            left = DEFAULT_LIMITS.max_code_archive_source_bytes
            for info in infos:
                name = info.filename
                where = f"{rel}:{name}"
                low = name.lower()
                if low.endswith((".pyc", ".pyo")):
                    problems.append((where, _COMPILED_WHY["bytecode"]))
                    continue
                if not low.endswith((".py", ".pyw")) or info.is_dir():
                    continue
                if info.flag_bits & 0x1:
                    problems.append((where, "encrypted archive member; not analysed"))
                    continue
                limit = min(DEFAULT_LIMITS.max_code_text_bytes, left)
                if info.file_size > limit:
                    problems.append(
                        (
                            where,
                            f"archive member larger than {limit} bytes "
                            "(or the archive's source budget is spent); not analysed",
                        )
                    )
                    continue
                try:
                    with archive.open(info) as member:
                        data = member.read(limit + 1)
                except (
                    OSError,
                    zipfile.BadZipFile,
                    ValueError,
                    EOFError,
                    NotImplementedError,
                    RuntimeError,
                ) as exc:
                    problems.append(
                        (where, f"archive member could not be read ({exc}); not analysed")
                    )
                    continue
                if len(data) > limit:
                    problems.append((where, "archive member larger than it declares; not analysed"))
                    continue
                left -= len(data)
                try:
                    members.append((where, python_source_text(data)))
                except ValueError as exc:
                    problems.append((where, f"{exc}; not analysed"))
    return members, problems


#: Sources handed to one bandit worker at a time when ``jobs`` > 1.
_BANDIT_CHUNK = 50


def _bandit_chunk(sources: list[_Source]) -> list[Finding]:
    return CodeCollector()._bandit(sources)


def _bandit_parallel(sources: list[_Source], jobs: int) -> list[Finding]:
    """bandit over ``sources`` in ``jobs`` worker processes (results in source order)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunks = [sources[i : i + _BANDIT_CHUNK] for i in range(0, len(sources), _BANDIT_CHUNK)]
    out: list[Finding] = []
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp) as pool:
        for found in pool.map(_bandit_chunk, chunks):
            out.extend(found)
    return out


def _bandit_version() -> str:
    """``bandit X.Y`` when bandit runs alongside mltrust's rules, else ``""`` (reported)."""
    # The installed distribution's version, without importing bandit: its import loads every
    # formatter plugin and logs an error for each one whose optional package is missing.
    from importlib import metadata

    try:
        return f"bandit {metadata.version('bandit')}"
    except metadata.PackageNotFoundError:
        return ""


class CodeCollector(Collector):
    name = "code"
    predicate_type = PREDICATE_TYPE

    def applies(self, ctx: CollectContext) -> bool:
        # a link's target is searched for secrets even when the project has no other file
        return bool(ctx.analysis_files()) or (
            not ctx.is_file and any(s.reason is SkipReason.SYMLINK for s in ctx.skipped())
        )

    def absent(self) -> dict[str, Any]:
        return {
            "present": False,
            "files": 0,
            "python_files": 0,
            "notebooks": 0,
            "findings": [],
            "findings_by_severity": severity_counts(()),
            "dangerous": [],
            "secrets": [],
            "not_analysed": [],
            "inline_suppressions": False,
            "suppressed": [],
            "suppressions_ignored": [],
            "secrets_not_searched": [],
            "secrets_not_searched_models": [],
            "bandit": "",
            "not_evaluated": [],
        }

    def collect(self, ctx: CollectContext) -> Collected:
        started = time.perf_counter()
        findings: list[Finding] = []
        sources: list[_Source] = []
        files = 0
        notebooks = 0
        not_analysed: list[str] = []
        not_searched: list[tuple[str, str]] = []
        texts: dict[str, str] = {}
        launched: list[tuple[str, Launch]] = []
        tree = dict(ctx.files()) | dict(ctx.analysis_files())
        #: (rule, line or "*", message) of the secrets already found in each Python source
        #: and notebook, so the string-constant view adds only what the text views missed
        literal_known: dict[str, set[tuple[str, str, str]]] = {}
        aliases = ctx.link_aliases()
        budget = _Budget(DEFAULT_LIMITS.max_secret_total_bytes)
        # files the model scan (which runs first) recognised as holding a model
        model_files = frozenset(ctx.shared.get("model_files", ()))
        models_not_searched: list[dict[str, str]] = []

        def add_packed(packed: Any, problems: Any, model: bool, allowance: Any) -> None:
            """What archives and compressed streams in one file held, into this run's lists."""
            self._add_packed(
                packed,
                problems,
                model,
                allowance,
                budget,
                findings,
                not_searched,
                models_not_searched,
            )

        for rel, path in ctx.analysis_files():
            name = rel.rsplit("/", 1)[-1]
            env_file = _is_env_file(name)
            # a link analysed as its target: the target's bytes are searched for secrets under
            # the target's own name, once
            alias = rel in aliases
            compiled = compiled_kind(rel)
            if compiled is not None:
                not_analysed.append(rel)
                findings.append(
                    self._finding(
                        _rules.CODE_UNPARSABLE,
                        _COMPILED_WHY[compiled],
                        rel,
                        0,
                        (),
                    )
                )
            try:
                data = _read_bytes(path)
                head: bytes | None = data[:4]
            except _TooLarge:
                data, head = None, None
            except _Unreadable:
                data, head = None, b""
            members, problems = _archive_sources(rel, path, head)
            sources.extend(_Source(member, text) for member, text in members)
            for where, reason in problems:
                not_analysed.append(where)
                findings.append(self._finding(_rules.CODE_UNPARSABLE, reason, where, 0, ()))
            try:
                if data is None:
                    data = _read_bytes(path)
            except _Unreadable as exc:
                if not alias:
                    not_searched.append((rel, f"could not be read: {exc}"))
                if code_kind(rel, "") is not None:
                    not_analysed.append(rel)
                    findings.append(
                        self._finding(
                            _rules.CODE_UNPARSABLE, "could not be read; not analysed", rel, 0, ()
                        )
                    )
                continue
            except _TooLarge:
                kind = code_kind(rel, first_line(path), whole=False)
                if kind is not None:
                    not_analysed.append(rel)
                    findings.append(
                        self._finding(
                            _rules.CODE_UNPARSABLE,
                            f"larger than {DEFAULT_LIMITS.max_code_text_bytes} bytes; not analysed",
                            rel,
                            0,
                            (),
                        )
                    )
                if alias:
                    continue
                if kind == "notebook":
                    duplicates: list[str] = []
                    nb_hits = _large_notebook_hits(path, budget, duplicates)
                    if nb_hits is not None:
                        notebooks += 1
                        for index, hit in nb_hits:
                            findings.append(
                                self._finding(
                                    hit.rule,
                                    hit.message,
                                    rel,
                                    hit.line,
                                    (),
                                    cell=index if index >= 0 else None,
                                )
                            )
                        # the raw bytes too: what a JSON reader drops is still in them
                        nb_known = {(h.rule.id, h.message) for _, h in nb_hits}
                        hits, why = _search_large(path, False, budget)
                        for rule, line, message in hits:
                            if (rule.id, message) not in nb_known:
                                findings.append(self._finding(rule, message, rel, line, ()))
                        if why is not None:
                            not_searched.append((rel, why))
                        if duplicates:
                            not_searched.append((rel, _duplicates_why(duplicates)))
                        continue
                model = rel in model_files
                if model:
                    # Model weights the model scanner recognised and examined: their first
                    # max_code_text_bytes (where safetensors, GGUF, NumPy and ONNX keep their
                    # headers and metadata) are searched outside the project budget; the
                    # rest is listed, not failed (see secrets_not_searched_models).
                    hits, why = _search_large(
                        path, env_file, _Budget(DEFAULT_LIMITS.max_code_text_bytes)
                    )
                    if why is not None:
                        models_not_searched.append({"path": rel, "message": why})
                else:
                    hits, why = _search_large(path, env_file, budget)
                    if why is not None:
                        not_searched.append((rel, why))
                for rule, line, message in hits:
                    findings.append(self._finding(rule, message, rel, line, ()))
                allowance = self._allowance(model, budget)
                packed, problems = _packed_large(rel, path, allowance)
                add_packed(packed, problems, model, allowance)
                continue
            files += 1
            text = _analysis_text(data)
            kind = (
                code_kind(rel, text)
                if text is not None
                else code_kind(rel, first_line(path), whole=False)
            )
            # the raw bytes of every file, notebooks included (what a JSON reader drops is
            # still in them; a notebook's raw hits are added below, after its cells')
            raw_hits = [] if alias else _search_views(secret_views(data), env_file)
            if kind != "notebook" or text is None:
                for rule, line, message in raw_hits:
                    findings.append(self._finding(rule, message, rel, line, ()))
            if not alias:
                model = rel in model_files
                allowance = self._allowance(model, budget)
                packed, problems = _packed_hits(rel, data, allowance)
                add_packed(packed, problems, model, allowance)
            if text is None:
                # Binary. Python runs a zip file given as a script (a zip application behind
                # a shebang, or named .py), so code by name or shebang that is not text is a
                # file not analysed, never a clean one.
                if kind is not None:
                    not_analysed.append(rel)
                    findings.append(
                        self._finding(
                            _rules.CODE_UNPARSABLE,
                            "holds NUL bytes (binary, a zip application?); not analysed",
                            rel,
                            0,
                            (),
                        )
                    )
                continue
            if kind in ("python", "ipython"):
                try:
                    text = python_source_text(data)
                except ValueError as exc:
                    not_analysed.append(rel)
                    findings.append(self._finding(_rules.CODE_UNPARSABLE, str(exc), rel, 0, ()))
                    continue
            if kind == "python" and "mltrust:" in text:
                texts[rel] = text
            launcher = launcher_kind(rel, text[:512]) if not alias else None
            if launcher is not None:
                try:
                    include = _includer(rel, tree)
                    launched.extend((rel, found) for found in launches(launcher, text, include))
                except (ValueError, RecursionError, MemoryError) as exc:
                    launched.append((rel, Launch(0, "unknown", f"cannot be read ({exc})")))
            if kind == "python" and not alias:
                # searched again below, as the parser reads its string constants
                literal_known[rel] = {(r.id, str(line), m) for r, line, m in raw_hits}
            if kind == "notebook":
                notebooks += 1
                nb_found: set[tuple[str, str]] = set()
                try:
                    code, cells = notebook_source(text)
                    duplicates = []
                    for index, cell_text in notebook_cells(text, duplicates) if not alias else ():
                        for hit in find_secrets(cell_text):
                            nb_found.add((hit.rule.id, hit.message))
                            findings.append(
                                self._finding(
                                    hit.rule,
                                    hit.message,
                                    rel,
                                    hit.line,
                                    (),
                                    cell=index if index >= 0 else None,
                                )
                            )
                    if duplicates:
                        not_searched.append((rel, _duplicates_why(duplicates)))
                    if not alias:
                        # its code cells' string constants are searched below
                        literal_known[rel] = {(r, "*", m) for r, m in nb_found} | {
                            (r.id, "*", m) for r, _, m in raw_hits
                        }
                except ValueError as exc:
                    not_analysed.append(rel)
                    findings.append(self._finding(_rules.CODE_UNPARSABLE, str(exc), rel, 0, ()))
                    continue
                finally:
                    for rule, line, message in raw_hits:
                        if (rule.id, message) not in nb_found:
                            findings.append(self._finding(rule, message, rel, line, ()))
                sources.append(_Source(rel, code, cells, notebook=True))
                continue
            if kind == "python":
                sources.append(_Source(rel, text))
            elif kind == "ipython":
                sources.append(_Source(rel, "\n".join(_cell_lines(text))))
        if not ctx.is_file:
            # a symbolic link's target is text the project commits, like a file's
            for link in ctx.skipped():
                if link.reason is SkipReason.SYMLINK and link.target:
                    for hit in find_secrets(link.target):
                        message = f"{hit.message} in the target of a symbolic link"
                        findings.append(self._finding(hit.rule, message, link.rel, 0, ()))
        for rel, why in not_searched:
            findings.append(self._finding(_rules.CODE_NOT_SEARCHED, why, rel, 0, ()))
        # what launchers run with Python: inline code, and files whatever their names
        run_by: set[str] = set()
        hosts_read: set[str] = set()
        for host, launch in launched:  # grows while read: files hosts run are hosts too
            if launch.kind == "code":
                sources.append(_Source(host, launch.value, lines=launch.lines))
                continue
            if launch.kind in _HOST_FILE_KINDS:
                launched.extend(self._host_file(host, launch, tree, hosts_read))
                continue
            target = None
            if launch.kind == "file" or launch.kind == "module":
                target = resolve_target(host, launch.kind, launch.value, tree)
            if target is not None:
                run_by.add(target)
            elif launch.kind != "module":  # a module not in the project is an installed one
                why = (
                    launch.value
                    if launch.kind == "unknown"
                    else f"runs {launch.value!r} with Python, which is not a file of the project"
                )
                not_analysed.append(host)
                findings.append(
                    self._finding(
                        _rules.CODE_UNPARSABLE,
                        f"{why}; what it runs is not analysed",
                        host,
                        launch.line,
                        (),
                    )
                )
        known = {s.rel for s in sources if not s.lines} | set(not_analysed)
        pending = sources + self._run_files(run_by - known, tree, texts, not_analysed, findings)
        sources = list(pending)
        analysed_ok: list[_Source] = []
        for depth in range(DEFAULT_LIMITS.max_code_run_depth + 1):
            if not pending:
                break
            known |= {s.rel for s in pending}
            # one pass over the whole project, so names imported from its own modules resolve
            parsed_nodes: dict[int, list[ast.AST]] = {}
            analysed = analyse_project(
                [(s.rel, s.text, not s.notebook and not s.lines) for s in pending], parsed_nodes
            )
            for index, src in enumerate(pending):
                # the string constants as Python reads them: joined, unescaped, folded
                seen = literal_known.get(src.rel) if not src.lines else None
                view = (
                    literal_nodes(parsed_nodes[index], src.text) if index in parsed_nodes else None
                )
                if seen is None or view is None:
                    continue
                for rule, line, message in _search_views([view], False):
                    if not {(rule.id, str(line), message), (rule.id, "*", message)} & seen:
                        findings.append(self._finding(rule, message, src.rel, line, src.cells))
            more: set[str] = set()
            for src, result in zip(pending, analysed, strict=True):
                if isinstance(result, Exception):
                    not_analysed.append(src.rel)
                    line = src.host_line(getattr(result, "lineno", 0) or 0)
                    findings.append(
                        self._finding(
                            _rules.CODE_UNPARSABLE,
                            f"cannot parse: {result}",
                            src.rel,
                            line,
                            src.cells,
                        )
                    )
                    continue
                analysed_ok.append(src)
                for code_hit in result:
                    if code_hit.runs and depth < DEFAULT_LIMITS.max_code_run_depth:
                        target = resolve_target(src.rel, "file", code_hit.runs, tree)
                        if target is not None:
                            more.add(target)  # analysed as Python instead
                            continue
                    findings.append(
                        self._finding(
                            code_hit.rule,
                            code_hit.message,
                            src.rel,
                            src.host_line(code_hit.line),
                            src.cells,
                        )
                    )
            pending = self._run_files(more - known, tree, texts, not_analysed, findings)
            sources.extend(pending)
        found = self._bandit(analysed_ok, jobs=ctx.jobs)
        not_analysed.extend(
            f.location.path
            for f in found
            if f.rule_id == _rules.CODE_UNPARSABLE.id and f.location.path not in not_analysed
        )
        findings.extend(
            sorted(
                found,
                key=lambda f: (f.location.path, int(dict(f.extra).get("line", "0")), f.message),
            )
        )
        findings = _bind_to_content(findings, sources, dict(ctx.analysis_files()))
        findings, suppressed, ignored = apply_inline_suppressions(
            findings, texts, honour=ctx.inline_suppressions
        )
        findings = self._git_state(ctx, findings)
        rows = [self._row(f) for f in findings]
        section = {
            "present": True,
            "files": files,
            "python_files": sum(1 for s in sources if not s.notebook and not s.lines),
            "notebooks": notebooks,
            "findings": rows,
            "findings_by_severity": severity_counts(f.severity for f in findings),
            "dangerous": [r for r in rows if r["kind"] == "dangerous"],
            "secrets": [r for r in rows if r["kind"] == "secret"],
            "not_analysed": not_analysed,
            "inline_suppressions": ctx.inline_suppressions,
            "suppressed": suppressed,
            "suppressions_ignored": ignored,
            "secrets_not_searched": [r for r in rows if r["kind"] == "not-searched"],
            "secrets_not_searched_models": models_not_searched,
            "bandit": _bandit_version(),
            "not_evaluated": ctx.not_evaluated(),
        }
        return Collected(
            self.name,
            self.predicate_type,
            section,
            section,
            tuple(findings),
            time.perf_counter() - started,
        )

    @staticmethod
    def _host_file(
        host: str, launch: Launch, tree: dict[str, Path], hosts_read: set[str]
    ) -> list[tuple[str, Launch]]:
        """What a file a launcher runs as a shell script or reads as a makefile starts with
        Python, read as a command host of that kind (once; a file that is a command host by
        name is read as one already). A file outside the project (``source
        .venv/bin/activate``, ``$HOME/.profile``) is not the project's code; one that cannot
        be read at all (:func:`mltrust.evidence._commands.unread_host`: a remote include,
        ``bash "$f"``) is a launch not known (fail closed). A makefile of a ``make -I DIR``
        run (:attr:`Launch.dirs`) looks up what it includes in DIR too: one read on its own
        already is read again for such a run, for the makefiles it includes only."""
        from dataclasses import replace

        kind = _HOST_FILE_KINDS[launch.kind]
        why = unread_host(kind, launch.value)  # type: ignore[arg-type]
        if why is not None:
            return [(host, Launch(launch.line, "unknown", why))]
        targets = _host_targets(host, launch.value, tree, kind, launch.dirs)
        if targets is None:
            most = DEFAULT_LIMITS.max_command_host_matches
            why = f"runs {launch.value!r}, which names more than {most} files"
            return [(host, Launch(launch.line, "unknown", why))]
        out: list[tuple[str, Launch]] = []
        dirs = launch.dirs
        for target in targets:
            if not dirs and f"{kind}:{target}" in hosts_read:
                continue  # read already
            try:
                text = _analysis_text(_read_bytes(tree[target]))
            except (_TooLarge, _Unreadable) as exc:
                text, why = None, f"runs {target}, which {exc}"
            else:
                why = ""
            # a host of this kind by name or shebang is read already, but for what the
            # include folders of a make run add
            own = text is not None and launcher_kind(target, text[:512]) == kind
            key = f"{kind}:{target}" + (f" -I {' '.join(dirs)}" if own and dirs else "")
            if key in hosts_read:
                continue  # once per kind (a file run as a script and read as a makefile)
            hosts_read.add(key)
            if why:
                out.append((host, Launch(launch.line, "unknown", why)))
                continue
            if text is None or (own and not dirs):
                continue  # not text, or read already
            try:
                include = _includer(target, tree)
                found = launches(kind, text, include)
            except (ValueError, RecursionError, MemoryError) as exc:
                out.append((target, Launch(0, "unknown", f"cannot be read ({exc})")))
                continue
            for each in found:
                if each.kind == "make" and dirs and not each.dirs:
                    each = replace(each, dirs=dirs)  # its includes, and make run by it
                elif own:
                    continue  # read where the file is read on its own
                out.append((target, each))
        return out

    def _run_files(
        self,
        targets: set[str],
        tree: dict[str, Path],
        texts: dict[str, str],
        not_analysed: list[str],
        findings: list[Finding],
    ) -> list[_Source]:
        """The files the project runs with Python (named by a launcher, or by a constant path
        given to ``runpy.run_path``/``exec(open(...).read())``/``SourceFileLoader``) that are
        not analysed yet, read as Python source whatever their names. One that cannot be read
        as Python text is not analysed (fail closed); a zip is analysed as an archive."""
        out: list[_Source] = []
        for rel in sorted(targets):
            why = None
            try:
                data = _read_bytes(tree[rel])
            except _TooLarge:
                why = f"larger than {DEFAULT_LIMITS.max_code_text_bytes} bytes"
            except _Unreadable as exc:
                why = f"could not be read: {exc}"
            else:
                if data.startswith(_ZIP_MAGIC):
                    continue  # a zip application: its members are analysed as an archive's
                if _analysis_text(data) is None:
                    why = "holds NUL bytes (binary)"
                else:
                    try:
                        text = python_source_text(data)
                    except ValueError as exc:
                        why = str(exc)
            if why is not None:
                not_analysed.append(rel)
                message = f"run with Python by the project, but {why}; not analysed"
                findings.append(self._finding(_rules.CODE_UNPARSABLE, message, rel, 0, ()))
                continue
            kind = code_kind(rel, "", whole=False, run_by_python=True)
            if kind == "notebook":
                continue  # analysed as a notebook already
            if kind == "python" and "mltrust:" in text:
                texts[rel] = text
            out.append(_Source(rel, "\n".join(_cell_lines(text)) if kind == "ipython" else text))
        return out

    @staticmethod
    def _allowance(model: bool, budget: _Budget) -> Any:
        """Bytes decompression may produce for one file: a model's own small allowance (as
        for its chunked search), else the per-file cap within what the project has left."""
        from mltrust.evidence._unpack import Allowance

        if model:
            return Allowance(DEFAULT_LIMITS.max_code_text_bytes)
        return Allowance(max(min(DEFAULT_LIMITS.max_secret_file_bytes, budget.left), 0))

    def _add_packed(
        self,
        packed: list[tuple[str, Rule, int, str]],
        problems: list[tuple[str, str]],
        model: bool,
        allowance: Any,
        budget: _Budget,
        findings: list[Finding],
        not_searched: list[tuple[str, str]],
        models_not_searched: list[dict[str, str]],
    ) -> None:
        """Record what :func:`_packed_hits` found and could not search in one file; a
        model's unsearched pieces are listed like its unsearched bytes, anything else's
        fail the control."""
        if not model:
            budget.left -= allowance.used
        for where, rule, line, message in packed:
            findings.append(self._finding(rule, message, where, line, ()))
        for where, why in problems:
            if model:
                models_not_searched.append({"path": where, "message": why})
            else:
                not_searched.append((where, why))

    @staticmethod
    def _git_state(ctx: CollectContext, findings: list[Finding]) -> list[Finding]:
        """Say, on each secret, whether git tracks its file (see :mod:`._gitindex`)."""
        from dataclasses import replace

        secret_rules = _SECRET_RULE_IDS
        if ctx.is_file or not any(f.rule_id in secret_rules for f in findings):
            return findings
        if ctx.tracked() is None:
            return findings
        out = []
        for f in findings:
            if f.rule_id in secret_rules:
                path = f.location.path
                # a piece of an archive (file:member) is committed when its file is
                tracked = ctx.is_tracked(path) or (
                    ":" in path and ctx.is_tracked(path.split(":", 1)[0])
                )
                state = "tracked" if tracked else "untracked"
                f = replace(f, extra=tuple(sorted({**dict(f.extra), "git": state}.items())))
            out.append(f)
        return out

    @staticmethod
    def _row(f: Finding) -> dict[str, Any]:
        extra = dict(f.extra)
        secret = f.rule_id in _SECRET_RULE_IDS
        kind = (
            "secret"
            if secret
            else "not-analysed"
            if f.rule_id == _rules.CODE_UNPARSABLE.id
            else "not-searched"
            if f.rule_id == _rules.CODE_NOT_SEARCHED.id
            else "dangerous"
        )
        message = f.message
        if extra.get("git") == "tracked":
            message += " (committed: tracked by git)"
        elif extra.get("git") == "untracked":
            message += (
                " (not committed: git does not track this file; it is still in the working "
                "tree and in anything built from it)"
            )
        return {
            "rule_id": f.rule_id,
            "severity": f.severity.value,
            "message": message,
            "path": f.location.path,
            "line": int(extra.get("line", "0")),
            "cell": int(extra.get("cell", "-1")),
            "kind": kind,
            "tool": extra.get("tool", "mltrust"),
            "git": extra.get("git", "unknown"),
            "fingerprint": finding_fingerprint(f),
        }

    @staticmethod
    def _finding(
        rule: Rule,
        message: str,
        rel: str,
        line: int,
        cells: tuple[tuple[int, int], ...],
        *,
        severity: Severity | None = None,
        confidence: Confidence = Confidence.HIGH,
        tool: str = "mltrust",
        cell: int | None = None,
    ) -> Finding:
        extra = {"line": str(line), "tool": tool}
        detail = f"line {line}" if line else None
        if cell is not None:
            extra["cell"] = str(cell)
            detail = f"cell {cell}, line {line}"
        if cells and 0 < line <= len(cells):
            cell, cell_line = cells[line - 1]
            extra = {"line": str(cell_line), "cell": str(cell), "tool": tool}
            detail = f"cell {cell}, line {cell_line}"
        return Finding.of(
            rule,
            message,
            Location(rel, detail=detail),
            severity=severity,
            confidence=confidence,
            extra=extra,
        )

    def _bandit(self, sources: list[_Source], *, jobs: int = 1) -> list[Finding]:
        if not sources:
            return []
        if jobs > 1 and len(sources) >= 2 * _BANDIT_CHUNK:
            return _bandit_parallel(sources, jobs)
        # bandit's plugin loader logs errors for optional formatters it cannot load.
        quiet = [logging.getLogger(n) for n in ("bandit", "stevedore")]
        previous = [q.level for q in quiet]
        for q in quiet:
            q.setLevel(logging.CRITICAL)
        try:
            return self._run_bandit(sources)
        except ImportError:
            log.info("bandit is not installed; only mltrust's own code rules ran")
            return []
        finally:
            for q, level in zip(quiet, previous, strict=True):
                q.setLevel(level)

    def _run_bandit(self, sources: list[_Source]) -> list[Finding]:
        from bandit.core import config as b_config
        from bandit.core import manager as b_manager

        out: list[Finding] = []
        # The sources are handed to bandit from memory, the way its own ``bandit -`` reads
        # stdin: writing each to a temporary file first cost about a millisecond a file (5,000
        # files: 5 s on a loaded disk), more than bandit's analysis of them. The names are
        # labels only, under a folder that does not exist.
        by_file = {f"/mltrust-bandit-source/f{i}.py": src for i, src in enumerate(sources)}
        # ``# nosec`` comments are written by the project being judged: a gate does not let
        # its subject waive its own findings (use a waiver file, reviewed and expiring).
        mgr = b_manager.BanditManager(
            b_config.BanditConfig(), "file", quiet=True, ignore_nosec=True
        )
        mgr.files_list = list(by_file)
        remaining = list(by_file)
        for fname, src in by_file.items():
            mgr._parse_file(fname, io.BytesIO(src.text.encode("utf-8")), remaining)
        mgr.files_list = remaining
        mgr.metrics.aggregate()
        # A file bandit gave up on (an exception inside one of its tests, a syntax error its
        # parser saw and ours did not) has none of bandit's findings: it was not analysed,
        # which fails the code control (the caller lists it) instead of passing as clean.
        for fname, reason in mgr.skipped:
            skipped = by_file.get(fname)
            if skipped is not None:
                out.append(
                    self._finding(
                        _rules.CODE_UNPARSABLE,
                        f"bandit did not analyse it: {reason}",
                        skipped.rel,
                        0,
                        (),
                        tool="bandit",
                    )
                )
        for issue in mgr.get_issue_list():
            if issue.test_id in _BANDIT_NOISE and str(issue.severity) == "LOW":
                continue
            found = by_file.get(issue.fname)
            if found is None:
                continue
            src = found
            out.append(
                self._finding(
                    _rules.CODE_BANDIT,
                    f"[{issue.test_id}] {issue.text}",
                    src.rel,
                    src.host_line(int(issue.lineno or 0)),
                    src.cells,
                    severity=_BANDIT_SEVERITY.get(str(issue.severity), Severity.MEDIUM),
                    confidence=_BANDIT_CONFIDENCE.get(str(issue.confidence), Confidence.MEDIUM),
                    tool=f"bandit:{issue.test_id}",
                )
            )
        return out
