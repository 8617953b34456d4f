"""A tolerant reader of protobuf text format (``saved_model.pbtxt``, ``graph.pbtxt``).

It reads what :mod:`google.protobuf.text_format` reads, without a schema: fields in any order,
``name: value`` or ``name value`` for messages, ``{...}`` or ``<...>`` delimiters, single or
double quoted strings with C escapes, adjacent string literals joined (``"Py" "Func"``),
``[a, b]`` lists, ``#`` comments, ``,``/``;`` separators and ``[ext.name]`` extension names. A
regular expression that expects ``name:`` before ``op:`` is not a reader of that format (a
red-team finding: ``node { op: "EagerPyFunc" name: "x" }`` went unseen).

The reader streams: :func:`walk` calls ``on_close`` for every message as it closes, with the
chain of enclosing messages, so the caller sees every message even when the text is
malformed later on (the error is raised after the messages before it were delivered).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mltrust.errors import InputError, LimitExceeded

__all__ = ["Message", "walk"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>[A-Za-z0-9_.+\-]+)
  | (?P<punct>[{}<>:\[\],;/])
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_OPEN = {"{": "}", "<": ">"}


@dataclass
class Message:
    """One message of the text: its scalar fields (strings joined, as text) and children."""

    name: str
    offset: int
    scalars: dict[str, list[str]] = field(default_factory=dict)
    children: list[Message] = field(default_factory=list)

    def first(self, key: str) -> str:
        values = self.scalars.get(key)
        return values[0] if values else ""

    def child(self, key: str) -> Iterator[Message]:
        return (c for c in self.children if c.name == key)


def _unescape(body: str) -> str:
    def repl(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] == "x":
            return chr(int(esc[1:], 16))
        if esc[0] in "01234567":
            return chr(int(esc, 8) & 0xFF)
        if esc[0] in "uU" and len(esc) > 1:
            return chr(min(int(esc[1:], 16), 0x10FFFF))
        return _SIMPLE_ESCAPES.get(esc, esc)

    return _ESCAPE.sub(repl, body)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """``(kind, value, offset)`` for every token; strings are unescaped."""
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InputError(f"text protobuf: unexpected character {text[pos]!r} at {pos}")
        kind = m.lastgroup or ""
        if kind != "space":
            value = m.group()
            if kind == "string":
                value = _unescape(value[1:-1])
            yield kind, value, pos
        pos = m.end()


def walk(
    text: str,
    on_close: Callable[[Message, tuple[Message, ...]], None],
    *,
    max_depth: int,
    max_messages: int,
) -> None:
    """Read ``text`` and call ``on_close(message, parents)`` for every message as it closes
    (innermost first); ``parents`` are the enclosing messages, outermost first (the root, whose
    name is empty, excluded). Raises :class:`InputError` for text the protobuf reader would
    reject (after the messages before the error were delivered) and :class:`LimitExceeded`
    past the limits."""
    root = Message("", 0)
    stack: list[tuple[Message, str]] = [(root, "")]
    count = 0
    tokens = _tokens(text)
    pending: tuple[str, str, int] | None = None

    def take() -> tuple[str, str, int] | None:
        nonlocal pending
        if pending is not None:
            tok, pending = pending, None
            return tok
        return next(tokens, None)

    while True:
        tok = take()
        if tok is None:
            break
        kind, value, offset = tok
        current, closer = stack[-1]
        if kind == "punct" and value in (",", ";"):
            continue
        if kind == "punct" and value == closer:
            stack.pop()
            on_close(current, tuple(m for m, _ in stack[1:]))
            continue
        if kind == "punct" and value == "[":  # [extension.name] or [type.googleapis.com/x]
            parts = []
            while True:
                inner = take()
                if inner is None:
                    raise InputError("text protobuf: unterminated extension name")
                if inner[1] == "]":
                    break
                parts.append(inner[1])
            key = "".join(parts)
        elif kind == "word":
            key = value
        else:
            raise InputError(f"text protobuf: expected a field name at {offset}, not {value!r}")
        nxt = take()
        if nxt is not None and nxt[1] == ":":
            nxt = take()
        if nxt is None:
            raise InputError(f"text protobuf: field {key!r} has no value")
        if nxt[0] == "punct" and nxt[1] in _OPEN:
            count += 1
            if count > max_messages:
                raise LimitExceeded(f"text protobuf has more than {max_messages} messages")
            if len(stack) > max_depth:
                raise LimitExceeded(f"text protobuf nests deeper than {max_depth} levels")
            child = Message(key, nxt[2])
            current.children.append(child)
            stack.append((child, _OPEN[nxt[1]]))
            continue
        values: list[str] = []
        if nxt[1] == "[":  # repeated scalars: [a, "b", c] (messages in lists: rare, skipped)
            depth = 1
            while depth:
                item = take()
                if item is None:
                    raise InputError(f"text protobuf: unterminated list for {key!r}")
                if item[1] in ("[", "{", "<"):
                    depth += 1
                elif item[1] in ("]", "}", ">"):
                    depth -= 1
                elif item[0] in ("string", "word"):
                    values.append(item[1])
        elif nxt[0] == "string":
            joined = [nxt[1]]
            while True:
                more = take()
                if more is not None and more[0] == "string":
                    joined.append(more[1])
                    continue
                pending = more
                break
            values.append("".join(joined))
        elif nxt[0] == "word":
            values.append(nxt[1])
        else:
            raise InputError(f"text protobuf: field {key!r} has no value at {nxt[2]}")
        current.scalars.setdefault(key, []).extend(values)
    if len(stack) > 1:
        raise InputError("text protobuf: a message is not closed at the end of the text")
