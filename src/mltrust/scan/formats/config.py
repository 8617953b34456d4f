"""JSON and YAML config documents: Keras model configs, Hydra/NeMo ``_target_``, chat templates.

What runs code when such a document is *used*:

* Hydra/NeMo/OmegaConf ``_target_`` values name a callable that ``hydra.utils.instantiate``
  imports and calls with the sibling keys as arguments (NeMo's older ``cls`` + ``params`` form
  too). Each target is judged: a denylist of dangerous callables and gadgets first, then the
  project's ``allow_targets``, then the pickle analyser's import judgement, then an *exact*
  list of ordinary training classes (no module prefixes); anything else is an unknown target
  (medium).
* Keras model configs (``config.json`` inside ``.keras``): see :mod:`mltrust.scan.formats.keras`.
* Jinja ``chat_template`` strings (Hugging Face ``tokenizer_config.json``): see
  :mod:`mltrust.scan.formats._jinja`.
* YAML ``!!python/...`` tags, which construct objects and call functions under unsafe loaders.
* OmegaConf ``${eval:...}`` interpolations, run by projects that register ``eval`` as a
  resolver.

YAML is never constructed by PyYAML: the document is *composed* with the safe loader (a node
graph in which aliases are shared nodes, not copies), so tags are read without being acted on,
alias bombs are measured without being expanded, and the node graph is converted to plain
Python values by this module with sharing preserved.
"""

from __future__ import annotations

import ast
import codecs
import json
import mmap
import re
import warnings
from typing import TYPE_CHECKING, ClassVar

from mltrust._lazy import lazy_exports, lazy_pattern
from mltrust.config import DEFAULT_LIMITS
from mltrust.scan.interface import FormatScanner

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext
    from mltrust.scan.formats._config_scan import judge_target

__all__ = ["ConfigScanner", "judge_target"]

# Only the scanner and what its sniff needs live here; the scan itself (targets, documents,
# YAML and JSON fallbacks) is in :mod:`mltrust.scan.formats._config_scan`, imported when a
# config is scanned (``judge_target`` is still importable from here).
__getattr__, __dir__ = lazy_exports(
    __name__, {"mltrust.scan.formats._config_scan": ("judge_target",)}
)


#: Text beyond this size is claimed only when its first document is shaped like a config
#: (the scan then reports the exhausted ``max_text_bytes``); smaller text is parsed whole.
_SNIFF_TEXT = 64 << 20


#: Characters that no JSON or YAML loader accepts in a document (C0 controls but tab/LF/CR).
_not_text = lazy_pattern(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


_doc_marker = lazy_pattern(r"^(?:---|\.\.\.|%)", re.MULTILINE)


#: A directive as PyYAML's scanner reads one: "%", a name of [0-9A-Za-z_-], then a space or
#: the end of the line (a tab, or nothing after "%", is a scanner error at the first token).
_directive_line = lazy_pattern(r"%[0-9A-Za-z_-]+(?: |$)")


_doc_marker_bytes = lazy_pattern(
    rb"(?:^|(?<=\r)|(?<=\xc2\x85)|(?<=\xe2\x80\xa8)|(?<=\xe2\x80\xa9))(?:---|\.\.\.|%)",
    re.MULTILINE,
)


#: UTF-8 encodings of the line breaks other than LF (a marker may follow any of them).
_UTF8_BREAKS = (b"\r", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9")


#: The first line of a block mapping: an implicit key then ``:`` and a space or the line end.
_key_line = lazy_pattern(r"[^\n]*?:(?:[ \t]|$)")


#: What makes a document that cannot be parsed worth a medium finding: the marks of content
#: that runs code when a lenient reader does parse it.
_code_hint = lazy_pattern(
    r"_target_|python/|python%2[fF]|!!|!<|%TAG|class_name|Lambda|chat_template|\$\{|\bcls\b"
)


def text_encoding(head: bytes) -> str:
    """The encoding JSON loaders (and PyYAML, for UTF-8/16 with a BOM) read ``head`` in.

    :func:`json.detect_encoding` is what ``json.loads(bytes)`` itself uses: BOMs, and UTF-16/32
    without a BOM recognised by the NUL bytes around the first ASCII characters.
    """
    return json.detect_encoding(head[:4])


def _decode(raw: bytes, encoding: str, *, final: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)()
    return decoder.decode(raw, final=final).removeprefix("\ufeff")


#: Line breaks of YAML 1.1 (PyYAML reads all of them; Python's str.splitlines() even more).
_line_breaks = lazy_pattern("\r\n?|[\x85\u2028\u2029]")


def _normalise_breaks(text: str) -> str:
    """``text`` with every YAML line break as ``\\n``, so that line-based sniffing sees the
    lines a loader sees (red-team finding: CR-only or U+2028 text was one "line")."""
    if "\r" not in text and "\x85" not in text and "\u2028" not in text and "\u2029" not in text:
        return text  # the usual case, without compiling the pattern
    return _line_breaks().sub("\n", text)


#: Enough of a long first line to judge it: YAML implicit keys are at most 1024 characters.
_LINE_JUDGED = 2048


_blank_or_comment_lines = lazy_pattern(r"(?:[ \t\r\f\v]*(?:#[^\n]*)?\n)*")


def _first_significant_line(text: str, *, final: bool) -> str | None:
    """The first line of ``text`` that is not blank or a comment, stripped (its first
    :data:`_LINE_JUDGED` characters at least); ``""`` when there is none and ``final``; None
    when more text is needed to tell."""
    skipped = _blank_or_comment_lines().match(text)
    pos = skipped.end() if skipped is not None else 0
    end = text.find("\n", pos)
    rest = text[pos:] if end < 0 else text[pos:end]
    stripped = rest.strip()
    if end >= 0 or final:
        return "" if stripped.startswith("#") else stripped
    if len(stripped) >= _LINE_JUDGED and not stripped.startswith("#"):
        return stripped
    return None


def _line_is_structured(stripped: str) -> bool:
    """Whether a document whose first significant line is ``stripped`` has a root that can
    carry code: a collection, a tag, an anchor, an alias, a directive or a document marker."""
    if stripped.startswith(("%", "---", "...")):
        return True
    if stripped[:1] in ("{", "[", "!", "&", "*"):
        return True
    if stripped[:2] in ("- ", "? ") or stripped in ("-", "?"):
        return True
    return _key_line().match(stripped) is not None


def _has_document_marker(data: memoryview, encoding: str) -> bool:
    """Whether a later line starts a YAML document (``---``, ``...`` or a directive)."""
    if encoding not in ("utf-8", "utf-8-sig"):
        text = bytes(data[:_SNIFF_TEXT]).decode(encoding, errors="replace")
        return _doc_marker().search(_normalise_breaks(text)) is not None
    obj = data.obj
    whole = isinstance(obj, (bytes, mmap.mmap)) and len(obj) == len(data)
    raw: bytes | mmap.mmap = obj if whole else bytes(data)  # type: ignore[assignment]
    for marker in (b"---", b"...", b"%"):
        hits = 0
        at = raw.find(marker)
        while at >= 0:
            if at == 0 or raw[at - 1] == 0x0A:
                return True
            if any(raw[max(0, at - len(b)) : at] == b for b in _UTF8_BREAKS):
                return True
            hits += 1
            if hits > 4096:  # many mid-line hits: one regular-expression pass instead
                return _doc_marker_bytes().search(raw) is not None
            at = raw.find(marker, at + 1)
    return False


#: First significant lines Python modules start with (a docstring, an import, a definition, a
#: decorator, a compound statement): the cheap gate before the real checks of
#: :func:`_is_python_source` (it keeps Python's parser off ordinary configs).
_python_first_line = lazy_pattern(
    r"[rRuUbBfF]{0,2}(?:\"\"\"|''')"
    r"|(?:from[ \t]+[\w.]+[ \t]+)?import[ \t]|(?:async[ \t]+)?def[ \t]|class[ \t]|@[\w.]"
    r"|(?:if|try|for|while|with|assert|raise)\b"
)


#: Interpreters of shell scripts (``#!/bin/sh``, ``#!/usr/bin/env bash``, Bats test files).
_SHELLS = frozenset(
    {"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "fish", "csh", "tcsh", "bats"}
)


def _is_shell_script(data: memoryview, encoding: str) -> bool:
    """Whether text is a shell script that no config loader reads anything from.

    The rule, as for Python source (:func:`_is_python_source`): the text's first line is a
    ``#!`` line naming a shell (directly or through ``env``), and no YAML reader reads a
    document of it that could carry code (a mapping or a tag) nor the whole stream (JSON never
    reads text starting with ``#``). A script read as YAML is typically a first document that
    is one plain string (its commands up to the first comment line), then a parse error, so
    ``yaml.load``, ``load_all``, OmegaConf and Hydra get no ``_target_``, tag or
    interpolation from it: its ``${VAR}`` expansions are shell, not OmegaConf. Text that YAML
    does read as a mapping or a tag stays a config whatever its first line (``#!/bin/sh`` is a
    YAML comment)."""
    if encoding not in ("utf-8", "utf-8-sig") or len(data) > DEFAULT_LIMITS.max_python_source_bytes:
        return False
    line = bytes(data[:512]).removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    if not line.startswith(b"#!"):
        return False
    words = line[2:].decode("latin-1").split()
    if words and words[0].rsplit("/", 1)[-1] == "env":
        words = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
    if not words or words[0].rsplit("/", 1)[-1] not in _SHELLS:
        return False
    try:
        text = bytes(data).decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError:
        return False
    from mltrust.scan.formats._yaml_compose import composes

    return not composes(text)


def _is_python_source(data: memoryview, encoding: str, first: str) -> bool:
    """Whether text is a Python module that no config loader reads anything from.

    The rule, by content only (a config named ``x.py`` or without an extension is still a
    config): the text starts like Python (:data:`_python_first_line()`), Python's own parser
    accepts it as a module, JSON does not parse it, and YAML reads no document from it that
    could carry code (a mapping or a tag): a Python module read as YAML is typically a first
    document holding only the empty string (the opening ``\"\"\"`` of its docstring) and
    then a parse error. The real loaders - ``json.load``, PyYAML's ``safe_load``/``load``
    (whole stream) and ``load_all`` (each document before the next is parsed), OmegaConf and
    Hydra (which load YAML through PyYAML) - then read no ``_target_``, tag or interpolation
    from it, so the attack configs that tests and docstrings hold as string literals are not
    findings. Text that is both valid Python and YAML with a mapping or tag in a document
    (``_target_: os.system`` is an annotated name in Python) is a config. YAML here is what
    PyYAML's pure-Python reader reads, the one those loaders use: libyaml skips a U+FEFF at
    the start of any line and so fails on text the loaders read as a mapping (red-team
    finding; see :mod:`._yaml_compose`).
    """
    if (
        len(data) > DEFAULT_LIMITS.max_python_source_bytes
        or _python_first_line().match(first) is None
    ):
        return False
    try:
        text = bytes(data).decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError:
        return False
    # Cheapest decisive checks first. YAML: the composition is shared with the scan, and any
    # reader (PyYAML's pure-Python one above all) that reads a mapping or a tag makes it a
    # config. Python's parser costs about 20 us a line and builds the whole tree, so text of
    # more lines than a real module has is a config (claimed, then reported malformed).
    from mltrust.scan.formats._yaml_compose import composes

    if composes(text):
        return False
    try:
        json.loads(text)
        return False
    except (ValueError, RecursionError):
        pass
    if text.count("\n") + text.count("\r") > DEFAULT_LIMITS.max_python_source_lines:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _looks_like_json(lead: str) -> bool:
    rest = lead[1:].lstrip(" \t\r\n")
    if not rest:
        return True
    if lead[:1] == "{":
        return rest[:1] in ('"', "}")
    return rest[:1] in tuple('{["-0123456789tfn]')


def _flow_root_parses(text: str) -> bool:
    """Whether a document starting with ``{``/``[`` is accepted by a JSON or YAML loader (its
    first document, at least): errors come early, so failures cost little."""
    if _looks_like_json(text.lstrip(" \t\r\n")):
        return True
    try:
        json.loads(text)
        return True
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return True  # JSON Lines, or a document followed by more
    except (ValueError, RecursionError):
        return True  # too deep or too big for us is the scan's business, not a reason to skip
    from mltrust.scan.formats._yaml_compose import composes

    return composes(text)


# --------------------------------------------------------------------------------------------
# Jinja chat template files

#: The chat template file transformers (>= 4.50) saves next to ``tokenizer_config.json`` and
#: prefers to its ``chat_template``; ``additional_chat_templates/<name>.jinja`` hold the named
#: ones. Any other ``*.jinja`` file is claimed when it holds Jinja tags.
_CHAT_TEMPLATE_FILE = "chat_template.jinja"


_jinja_tag = lazy_pattern(r"\{[%{#]")


def _is_template_name(name: str) -> bool:
    return name.lower().endswith(".jinja")


def _sniff_template(data: memoryview, encoding: str, name: str) -> bool:
    """Whether a ``*.jinja`` file is a template to check (its text, not binary)."""
    head = bytes(data[: 1 << 20]).decode(encoding, errors="replace")
    if _not_text().search(head) or head.count("\ufffd") * 20 > len(head) + 200:
        return False
    return name.lower() == _CHAT_TEMPLATE_FILE or _jinja_tag().search(head) is not None


# --------------------------------------------------------------------------------------------


class ConfigScanner(FormatScanner):
    """JSON and YAML config documents."""

    name: ClassVar[str] = "config"
    description: ClassVar[str] = (
        "JSON/YAML configs: Keras model configs, Hydra/NeMo _target_, Jinja chat templates, "
        "unsafe YAML tags and alias bombs"
    )
    priority: ClassVar[int] = 5
    suffixes: ClassVar[tuple[str, ...]] = (".json", ".yaml", ".yml", ".jinja")

    def sniff(self, data: memoryview, name: str) -> bool:
        """Whether a JSON or YAML loader would read ``data`` as a document that can carry code.

        Python source is not claimed (see :func:`_is_python_source`): decided by content, not
        by name, since Hydra and OmegaConf load a config from whatever path they are given.

        As permissive as the loaders: any leading white space or comments (of any length), a
        BOM, UTF-16/32, ``%YAML``/``%TAG`` directives, ``---``, tags, anchors, flow style and
        keys of any spelling, a later document of a stream. Text whose first document is a
        plain scalar (prose, word lists) and that has no further documents is not claimed:
        loaded, it is a string and runs nothing. Only the head up to the first significant line
        is decoded, except for a ``{``/``[`` document that does not look like JSON (parsed).
        """
        head = bytes(data[:4])
        if not head:
            return False
        encoding = text_encoding(head)
        if _is_template_name(name):
            return _sniff_template(data, encoding, name)
        size = len(data)
        step = 1 << 16
        # Replacement characters, not failure: a reader that ignores bad bytes reads the rest.
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        pos = 0
        text = ""
        first: str | None = None
        broken = False
        while pos < min(size, _SNIFF_TEXT):
            chunk = decoder.decode(bytes(data[pos : pos + step]), final=pos + step >= size)
            chunk = _normalise_breaks(chunk)  # a CR split from its LF adds a blank line: harmless
            pos += step
            if chunk.count("\ufffd") * 20 > len(chunk) + 200 or _not_text().search(chunk):
                return False  # binary, not text with a few broken bytes
            broken = broken or "\ufffd" in chunk
            text = (text + chunk).removeprefix("\ufeff")
            first = _first_significant_line(text, final=pos >= size)
            if first is not None:
                break
            # Keep only what is still undecided (keeps this loop linear): nothing after blank
            # space, a "#" inside a comment line, else the start of a short significant line.
            tail = text[text.rfind("\n") + 1 :]
            lead = tail.lstrip()
            text = "" if not lead else "#" if lead.startswith("#") else tail
        else:
            return size > _SNIFF_TEXT  # only space and comments in the window: fail closed
        if first is None or first == "":
            return False
        if broken:
            # U+FFFD is also an ordinary character (botocore's JSON has one): broken means the
            # bytes read so far do not decode, not that the text holds a replacement character.
            try:
                strict = codecs.getincrementaldecoder(encoding)("strict")
                strict.decode(bytes(data[:pos]), final=pos >= size)
            except UnicodeDecodeError:
                pass
            else:
                broken = False
        if broken:
            # No JSON or YAML loader reads text that is not valid in its encoding; it is claimed
            # (and reported malformed) only when it carries the marks of code, never for a few
            # bytes of tensor data that happen to avoid control characters.
            whole = bytes(data[:_SNIFF_TEXT]).decode(encoding, errors="replace")
            if _code_hint().search(whole) is None:
                return False
        if first[:1] in ("{", "["):
            lead = text.lstrip(" \t\r\n")
            if _looks_like_json(lead) or size > _SNIFF_TEXT:
                return True
            return _flow_root_parses(bytes(data).decode(encoding, errors="replace"))
        if first.startswith("%") and _directive_line().match(first) is None:
            # ARFF and TeX comments: a YAML scanner reads "%" first as a directive and stops at
            # the missing name, so no YAML loader reads any of the stream (nor does JSON).
            return False
        if not _line_is_structured(first) and not _has_document_marker(data, encoding):
            return False
        return not _is_python_source(data, encoding, first) and not _is_shell_script(data, encoding)

    def claims_raw_data(self, data: memoryview) -> bool:
        """Raw bytes are a config to report only if they carry the marks of code."""
        text = bytes(data[:_SNIFF_TEXT]).decode(text_encoding(bytes(data[:4])), "replace")
        return _code_hint().search(text) is not None

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        from mltrust.scan.formats._config_scan import scan_config

        scan_config(data, ctx, loc)
