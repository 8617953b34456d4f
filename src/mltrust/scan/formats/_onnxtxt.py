"""ONNX's own text syntax (``.onnxtxt``/``.onnxtext``), read the way ``onnx.parser`` reads it.

``onnx.load("model.onnxtxt")`` picks this serialisation by the file's extension, and
``onnx.load(path, format="onnxtxt")`` or ``onnx.parser.parse_model`` read it under any name; each
builds the same ``ModelProto`` as a binary model: the same custom operator domains and the same
external data locations (``float[4] W = ["location": "../../etc/passwd"]``) reach the runtime.
This module follows the grammar of ``onnx/defs/parser.cc`` production by production (whitespace
and ``#`` comments skipped before every token, ``"..."`` strings where a backslash keeps the next
character, an operator's domain made of the ``.``-separated names before it, across whitespace,
the input ending at its first NUL) and returns only what the ONNX checks need: nodes, tensors'
external data and local functions. :func:`opens_graph` is the same parser recognising a model
without a header by content.
It never guesses: text that ``onnx.parser`` would read differently or not at all raises
:class:`InputError`, and the caller fails closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mltrust.errors import InputError, LimitExceeded

__all__ = ["TextModel", "opens_graph", "parse_model"]

_PRIM_TYPES = frozenset(
    [
        "float",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "int32",
        "int64",
        "string",
        "bool",
        "float16",
        "double",
        "uint32",
        "uint64",
        "complex64",
        "complex128",
        "bfloat16",
        "float8e4m3fn",
        "float8e4m3fnuz",
        "float8e5m2",
        "float8e5m2fnuz",
        "float8e8m0",
        "uint4",
        "int4",
        "float4e2m1",
        "uint2",
        "int2",
    ]
)
_TYPE_KEYWORDS = frozenset({"seq", "map", "optional", "sparse_tensor", "opaque"})
_ATTR_TYPES = frozenset(
    [
        "float",
        "int",
        "string",
        "tensor",
        "graph",
        "sparse_tensor",
        "type_proto",
        "floats",
        "ints",
        "strings",
        "tensors",
        "graphs",
        "sparse_tensors",
        "type_protos",
    ]
)
#: What ParserBase::SkipWhiteSpace skips: C ``isspace`` characters and ``#`` comments to the end
#: of the line (possessive: a run of ``#`` is read one way only, in linear time).
_SKIP = re.compile(r"(?:[ \t\n\v\f\r]|#[^\n]*+)*+")


@dataclass
class TextModel:
    """What the checks of :mod:`.onnx` need from a parsed model."""

    #: ``(domain, op_type, node name)`` of every node, subgraphs and functions included.
    nodes: list[tuple[str, str, str]] = field(default_factory=list)
    #: ``(tensor name, [(key, value), ...])`` of every tensor with external data.
    external: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)
    #: ``(domain, name)`` of every model-local function.
    functions: set[tuple[str, str]] = field(default_factory=set)


class _Parser:
    def __init__(self, text: str, max_depth: int, max_entries: int) -> None:
        self.s = text
        self.pos = 0
        self.max_depth = max_depth
        self.max_entries = max_entries
        self.depth = 0
        self.out = TextModel()

    # -- lexical level (ParserBase) ---------------------------------------------------------

    def error(self, what: str) -> InputError:
        line = self.s.count("\n", 0, self.pos) + 1
        return InputError(f"ONNX text syntax: {what} (line {line})")

    def skip(self) -> None:
        match = _SKIP.match(self.s, self.pos)
        if match is not None:  # always: the pattern matches the empty string
            self.pos = match.end()

    def next_char(self) -> str:
        self.skip()
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def matches(self, ch: str, skip: bool = True) -> bool:
        if skip:
            self.skip()
        if self.pos < len(self.s) and self.s[self.pos] == ch:
            self.pos += 1
            return True
        return False

    def match(self, ch: str, skip: bool = True) -> None:
        if not self.matches(ch, skip):
            raise self.error(f"expected {ch!r}")

    def optional_identifier(self) -> str:
        self.skip()
        s, start = self.s, self.pos
        if self.pos < len(s) and (_alpha(s[self.pos]) or s[self.pos] == "_"):
            self.pos += 1
            while self.pos < len(s) and (_alnum(s[self.pos]) or s[self.pos] == "_"):
                self.pos += 1
        return s[start : self.pos]

    def identifier(self) -> str:
        name = self.optional_identifier()
        if not name:
            raise self.error("identifier expected")
        return name

    def peek_identifier(self) -> str:
        saved = self.pos
        name = self.optional_identifier()
        self.pos = saved
        return name

    def literal(self) -> tuple[str, str]:
        """``(kind, text)``, kind ``"string"``, ``"int"``, ``"float"`` or ``""`` (none)."""
        ch = self.next_char()
        s, start = self.s, self.pos
        if ch == '"':
            self.pos += 1
            value: list[str] = []
            while self.pos < len(s) and s[self.pos] != '"':
                if s[self.pos] == "\\":
                    self.pos += 1
                    if self.pos >= len(s):
                        break
                value.append(s[self.pos])
                self.pos += 1
            if self.pos >= len(s):
                raise self.error("incomplete string literal")
            self.pos += 1
            return "string", "".join(value)
        if ch == "-":
            self.pos += 1
            ch = self.next_char()
        if _alpha(ch):
            if not self.float_word():
                raise self.error("invalid float literal")
            while self.pos < len(s) and _alpha(s[self.pos]):
                self.pos += 1
            return "float", s[start : self.pos]
        if not _digit(ch):
            return "", ""
        self.pos += 1
        point = False
        while self.pos < len(s) and (_digit(s[self.pos]) or s[self.pos] == "."):
            if s[self.pos] == ".":
                if point:
                    break
                point = True
            self.pos += 1
        if self.pos < len(s) and s[self.pos] in "eE":
            point = True
            self.pos += 1
            if self.pos < len(s) and s[self.pos] in "+-":
                self.pos += 1
            while self.pos < len(s) and _digit(s[self.pos]):
                self.pos += 1
        return ("float" if point else "int"), s[start : self.pos]

    def float_word(self) -> bool:
        """Whether ``inf``, ``infinity`` or ``nan`` (any case, no trailing digit) is next."""
        ch = self.next_char()
        s, start = self.s, self.pos
        if not _alpha(ch):
            return False
        end = start
        while end < len(s) and _alpha(s[end]) and end - start <= 8:
            end += 1
        if end < len(s) and _digit(s[end]):
            return False
        return s[start:end].lower() in ("inf", "infinity", "nan")

    def string(self) -> str:
        kind, value = self.literal()
        if kind != "string":
            raise self.error("string expected")
        return value

    def integer(self) -> None:
        if self.literal()[0] != "int":
            raise self.error("integer expected")

    def quotable_identifier(self) -> str:
        return self.string() if self.next_char() == '"' else self.identifier()

    # -- grammar (OnnxParser) ---------------------------------------------------------------

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise LimitExceeded(f"ONNX text model nests deeper than {self.max_depth} levels")

    def count(self) -> None:
        self.max_entries -= 1
        if self.max_entries < 0:
            raise LimitExceeded("ONNX text model has more entries than max_entries")

    def next_is_type(self) -> bool:
        name = self.peek_identifier()
        return name in _PRIM_TYPES or name in _TYPE_KEYWORDS

    def shape(self) -> None:
        while True:
            if not self.matches("?"):
                if self.next_char() == '"':
                    self.string()
                elif not self.optional_identifier():
                    self.integer()
            if not self.matches(","):
                return

    def type_(self) -> bool:
        """A type; True when it is a tensor type with a shape of known rank or a scalar."""
        self.enter()
        try:
            name = self.identifier()
            if name in _PRIM_TYPES:
                if self.matches("[") and not self.matches("]"):
                    self.shape()
                    self.match("]")
                return True
            if name in ("seq", "optional"):
                self.match("(")
                self.type_()
                self.match(")")
            elif name == "map":
                self.match("(")
                if self.identifier() not in _PRIM_TYPES:
                    raise self.error("primitive map key type expected")
                self.match(",")
                self.type_()
                self.match(")")
            elif name == "sparse_tensor":
                self.match("(")
                if self.identifier() not in _PRIM_TYPES:
                    raise self.error("unexpected sparse tensor element type")
                if self.matches("[") and not self.matches("]"):
                    self.shape()
                    self.match("]")
                self.match(")")
            elif name == "opaque":
                self.match("(")
                if not self.matches(")"):
                    self.identifier()
                    while self.matches("."):
                        self.identifier()
                    if self.matches(","):
                        self.identifier()
                    self.match(")")
            else:
                raise self.error(f"unexpected type {name!r}")
            return False
        finally:
            self.depth -= 1

    def tensor_data(self, name: str, tensor_type: bool) -> None:
        """Parse(TensorProto, type): ``{constants}``, ``[external data]`` or nothing."""
        if not tensor_type:
            raise self.error("tensor type expected")
        self.count()
        if self.matches("{"):
            if not self.matches("}"):
                while True:
                    if not self.literal()[0]:
                        raise self.error("tensor value expected")
                    if not self.matches(","):
                        break
                self.match("}")
        elif self.matches("["):
            entries = []
            while True:
                key = self.string()
                self.match(":")
                entries.append((key, self.string()))
                if not self.matches(","):
                    break
            self.match("]")
            self.out.external.append((name, entries))

    def value_info(self) -> tuple[str, bool]:
        tensor = self.type_() if self.next_is_type() else False
        return self.quotable_identifier(), tensor

    def inputs_with_defaults(self, opening: str, closing: str, required: bool) -> None:
        """Graph inputs ``( ... )`` and value infos ``< ... >``: ``type name [= data]``."""
        if not self.matches(opening):
            if required:
                raise self.error(f"expected {opening!r}")
            return
        if self.matches(closing):
            return
        while True:
            name, tensor = self.value_info()
            if self.matches("="):
                self.tensor_data(name, tensor)
            if not self.matches(","):
                break
        self.match(closing)

    def value_infos(self, opening: str, closing: str) -> None:
        self.match(opening)
        if not self.matches(closing):
            while True:
                self.value_info()
                if not self.matches(","):
                    break
            self.match(closing)

    def id_list(self) -> None:
        found = self.optional_quotable_id()
        while found and self.matches(","):
            found = self.optional_quotable_id()

    def optional_quotable_id(self) -> bool:
        if self.next_char() == '"':
            self.string()
            return True
        return bool(self.optional_identifier()) or self.next_char() == ","

    def single_attribute_value(self) -> None:
        ch = self.next_char()
        if _alpha(ch) or ch == "_":
            if self.next_is_type():
                tensor = self.type_()
                ch = self.next_char()
                if ch in ("{", "=") or self.peek_identifier():
                    name = ""
                    if self.next_char() == '"':
                        name = self.string()
                    else:
                        name = self.optional_identifier()
                    self.matches("=")
                    self.tensor_data(name, tensor)
            elif self.float_word():
                self.literal()
            else:
                self.graph(self.quotable_identifier())
        elif self.matches("@"):
            self.quotable_identifier()
        elif not self.literal()[0]:
            raise self.error("attribute value expected")

    def attribute(self, name: str) -> None:
        if self.matches(":") and self.identifier() not in _ATTR_TYPES:
            raise self.error(f"unexpected type of attribute {name!r}")
        self.match("=")
        if self.next_char() == "[":
            self.match("[")
            if self.next_char() != "]":
                while True:
                    self.single_attribute_value()
                    if not self.matches(","):
                        break
            self.match("]")
        else:
            self.single_attribute_value()

    def attribute_list(self) -> bool:
        if not self.matches("<"):
            return False
        while True:
            self.attribute(self.identifier())
            if not self.matches(","):
                break
        self.match(">")
        return True

    def node(self) -> None:
        self.count()
        name = ""
        if self.matches("["):
            if self.next_char() == '"':
                name = self.string()
            else:
                name = self.optional_identifier()
            self.match("]")
        self.id_list()
        self.match("=")
        parts = [self.optional_identifier()]
        while self.matches("."):
            parts.append(self.identifier())
        if self.matches(":"):
            self.identifier()  # overload
        # onnx.parser joins the names before the operator's, an empty first one dropped
        self.out.nodes.append((".".join(p for p in parts[:-1] if p), parts[-1], name))
        has_attributes = self.attribute_list()
        self.match("(")
        self.id_list()
        self.match(")")
        if not has_attributes:
            self.attribute_list()

    def node_list(self) -> None:
        self.match("{")
        while not self.matches("}"):
            if self.pos >= len(self.s):
                raise self.error("expected '}'")
            self.node()

    def graph_signature(self) -> None:
        """What follows a graph's name up to its nodes: inputs, ``=>``, outputs, value infos."""
        self.inputs_with_defaults("(", ")", required=False)
        self.match("=")
        self.match(">", skip=False)
        self.value_infos("(", ")")
        self.inputs_with_defaults("<", ">", required=False)

    def graph(self, name: str) -> None:
        del name
        self.enter()
        try:
            self.graph_signature()
            self.node_list()
        finally:
            self.depth -= 1

    def opset_list(self) -> None:
        self.match("[")
        if not self.matches("]"):
            while True:
                self.string()
                self.match(":")
                self.integer()
                if not self.matches(","):
                    break
            self.match("]")

    def function_io(self) -> None:
        self.match("(")
        if not self.matches(")"):
            while True:
                if self.next_is_type():
                    self.type_()
                self.quotable_identifier()
                if not self.matches(","):
                    break
            self.match(")")

    def function(self) -> None:
        domain = ""
        if self.matches("<"):
            while True:
                key = self.identifier()
                self.match(":")
                if key == "opset_import":
                    self.opset_list()
                elif key in ("doc_string", "overload"):
                    self.string()
                elif key == "domain":
                    domain = self.string()
                else:
                    raise self.error(f"unhandled function keyword {key!r}")
                if not self.matches(","):
                    break
            self.match(">")
        name = self.quotable_identifier()
        self.out.functions.add((domain, name))
        if self.matches("<"):  # attribute names, or attributes with default values
            while True:
                attribute = self.quotable_identifier()
                if self.next_char() in (":", "="):
                    self.attribute(attribute)
                if not self.matches(","):
                    break
            self.match(">")
        self.function_io()
        self.match("=")
        self.match(">", skip=False)
        self.function_io()
        if self.next_char() == "<":
            self.value_infos("<", ">")
        self.node_list()

    def model(self) -> TextModel:
        if self.matches("<"):
            while True:
                key = self.identifier()
                self.match(":")
                if key in ("ir_version", "model_version"):
                    self.integer()
                elif key == "opset_import":
                    self.opset_list()
                elif key in ("producer_name", "producer_version", "domain", "doc_string"):
                    self.string()
                elif key == "metadata_props":
                    self.match("[")
                    if not self.matches("]"):
                        while True:
                            self.string()
                            self.match(":")
                            self.string()
                            if not self.matches(","):
                                break
                        self.match("]")
                else:
                    raise self.error(f"unhandled model keyword {key!r}")
                if not self.matches(","):
                    break
            self.match(">")
        self.graph(self.quotable_identifier())
        while self.next_char():
            self.function()
        return self.out


def _alpha(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") if len(ch) == 1 else False


def _digit(ch: str) -> bool:
    return len(ch) == 1 and "0" <= ch <= "9"


def _alnum(ch: str) -> bool:
    return _alpha(ch) or _digit(ch)


def _c_string(text: str) -> str:
    """``text`` as onnx.parser receives it: a C string, which ends at the first NUL (the
    binding passes ``str.c_str()``; whatever follows a NUL is never read)."""
    return text.partition("\0")[0]


def parse_model(text: str, max_depth: int, max_entries: int) -> TextModel:
    """The nodes, external data and functions of the ONNX text-syntax model ``text``.

    Raises :class:`InputError` where ``onnx.parser.parse_model`` would fail or where this
    reader is not sure to read what it reads, :class:`LimitExceeded` past the bounds.
    """
    try:
        return _Parser(_c_string(text), max_depth, max_entries).model()
    except RecursionError:
        raise LimitExceeded("ONNX text model nests too deeply to parse") from None


def opens_graph(text: str, *, complete: bool, max_depth: int, max_entries: int) -> bool:
    """Whether ``text`` opens as ``onnx.parser.parse_model`` reads a model without its
    ``<...>`` header: a graph's name, its inputs, ``=>``, its outputs and value infos, read by
    this parser up to the ``{`` of its nodes (white space and ``#`` comments anywhere).

    This is how ONNX text is recognised by content. No other kind of text has that signature
    (a script's ``f = (a) => {``, a call ``setup(name=...)``, a shell ``f () {`` all fail
    within it), and it does not depend on the rest: a model whose body this parser then cannot
    read is still claimed, and fails closed when scanned. ``complete`` False says ``text`` is
    only the head of a longer input: a signature still well formed where the head ends is
    claimed too, so padding (long comments, a large initializer among the inputs) cannot push
    the ``{`` out of sight. An exhausted bound also claims it (the scan reports the bound).
    """
    head = _c_string(text)
    complete = complete or len(head) < len(text)  # a NUL ends the input where it is
    parser = _Parser(head, max_depth, max_entries)
    try:
        parser.quotable_identifier()
        parser.graph_signature()
        ch = parser.next_char()
    except (LimitExceeded, RecursionError):
        return True
    except InputError:
        return not complete and parser.pos >= len(head)
    return ch == "{" or (not ch and not complete)
