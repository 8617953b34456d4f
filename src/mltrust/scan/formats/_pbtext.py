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

from mltrust._lazy import lazy_pattern
from mltrust.errors import InputError, LimitExceeded

__all__ = ["Message", "walk"]


_token = lazy_pattern(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<word>[A-Za-z0-9_.+\-]+)
  | (?P<punct>[{}<>:\[\],;/])
    """,
    re.VERBOSE,
)


_escape = lazy_pattern(r"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")


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

    def last(self, key: str) -> str:
        """The value a singular field takes: ``text_format.Merge`` (which TensorFlow's loader
        uses) keeps the last of repeated ones."""
        values = self.scalars.get(key)
        return values[-1] if values else ""

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

    return _escape().sub(repl, body)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    """``(kind, value, offset)`` for every token; strings are unescaped."""
    pos = 0
    n = len(text)
    while pos < n:
        m = _token().match(text, pos)
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
    reader = _Reader(text, on_close, max_depth, max_messages)
    reader.run()


class _Reader:
    """The state of one :func:`walk`: a stack of open messages and ``[...]`` lists."""

    def __init__(
        self,
        text: str,
        on_close: Callable[[Message, tuple[Message, ...]], None],
        max_depth: int,
        max_messages: int,
    ) -> None:
        self.tokens = _tokens(text)
        self.pending: tuple[str, str, int] | None = None
        self.on_close = on_close
        self.max_depth = max_depth
        self.max_messages = max_messages
        self.count = 0
        #: Open messages (with the token that closes each) and lists (``]``, with their
        #: field name): ``[(message, closer, list_key)]``; list frames repeat their message.
        self.stack: list[tuple[Message, str, str | None]] = [(Message("", 0), "", None)]
        # (one open list per ``[``; a list frame names its field and reuses its message)

    def take(self) -> tuple[str, str, int] | None:
        if self.pending is not None:
            tok, self.pending = self.pending, None
            return tok
        return next(self.tokens, None)

    def messages(self) -> tuple[Message, ...]:
        return tuple(m for m, closer, key in self.stack[1:] if key is None)

    def open_message(self, parent: Message, key: str, tok: tuple[str, str, int]) -> None:
        self.count += 1
        if self.count > self.max_messages:
            raise LimitExceeded(f"text protobuf has more than {self.max_messages} messages")
        if len(self.stack) > self.max_depth:
            raise LimitExceeded(f"text protobuf nests deeper than {self.max_depth} levels")
        child = Message(key, tok[2])
        parent.children.append(child)
        self.stack.append((child, _OPEN[tok[1]], None))

    def scalar(self, parent: Message, key: str, tok: tuple[str, str, int]) -> None:
        """A scalar value; adjacent string literals are one value (``"Py" "Func"``)."""
        if tok[0] == "string":
            joined = [tok[1]]
            while True:
                more = self.take()
                if more is not None and more[0] == "string":
                    joined.append(more[1])
                    continue
                self.pending = more
                break
            parent.scalars.setdefault(key, []).append("".join(joined))
        elif tok[0] == "word":
            parent.scalars.setdefault(key, []).append(tok[1])
        else:
            raise InputError(f"text protobuf: field {key!r} has no value at {tok[2]}")

    def run(self) -> None:
        while True:
            tok = self.take()
            if tok is None:
                break
            kind, value, _ = tok
            current, closer, list_key = self.stack[-1]
            if kind == "punct" and value in (",", ";"):
                continue
            if kind == "punct" and value == closer:
                self.stack.pop()
                if list_key is None:
                    self.on_close(current, self.messages())
                continue
            if list_key is not None:  # an item of ``key: [a, {...}, "b"]``
                if kind == "punct" and value in _OPEN:
                    self.open_message(current, list_key, tok)
                else:
                    self.scalar(current, list_key, tok)
                continue
            key = self.field_name(tok)
            nxt = self.take()
            if nxt is not None and nxt[1] == ":":
                nxt = self.take()
            if nxt is None:
                raise InputError(f"text protobuf: field {key!r} has no value")
            if nxt[0] == "punct" and nxt[1] in _OPEN:
                self.open_message(current, key, nxt)
            elif nxt[0] == "punct" and nxt[1] == "[":
                # Repeated fields in list syntax, messages included: ``node: [{...}, {...}]``
                # (red-team finding: messages in lists were skipped).
                self.stack.append((current, "]", key))
            else:
                self.scalar(current, key, nxt)
        if len(self.stack) > 1:
            raise InputError("text protobuf: a message is not closed at the end of the text")

    def field_name(self, tok: tuple[str, str, int]) -> str:
        kind, value, offset = tok
        if kind == "punct" and value == "[":  # [extension.name] or [type.googleapis.com/x]
            parts: list[str] = []
            while True:
                inner = self.take()
                if inner is None:
                    raise InputError("text protobuf: unterminated extension name")
                if inner[1] == "]":
                    return "".join(parts)
                parts.append(inner[1])
        if kind == "word":
            return value
        raise InputError(f"text protobuf: expected a field name at {offset}, not {value!r}")
