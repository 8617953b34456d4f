"""The NumPy scanner's work and the ``.npy`` header reader (:mod:`mltrust.scan.formats.numpy`),
imported only when an array is scanned."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from mltrust._lazy import lazy_pattern
from mltrust.config import DEFAULT_LIMITS, Limits
from mltrust.errors import InputError
from mltrust.findings import Severity
from mltrust.scan import _archive_rules as R
from mltrust.scan.formats.numpy import _MAGIC

if TYPE_CHECKING:
    from mltrust.findings import Location
    from mltrust.scan._context import ScanContext

__all__ = ["NpyHeader", "parse_literal", "parse_npy_header", "scan_numpy"]

#: Trailing white space after an object array's pickle that is reported low, not scanned.
_BLANK_TAIL = 16

Literal = object


_number = lazy_pattern(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?L?")


class _LiteralReader:
    """Reads one Python literal of the kinds a .npy header uses."""

    def __init__(self, text: str, max_depth: int) -> None:
        self.text = text
        self.pos = 0
        self.max_depth = max_depth

    def fail(self, what: str) -> InputError:
        return InputError(f"npy header: {what} at character {self.pos}")

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def value(self, depth: int = 0) -> Literal:
        if depth > self.max_depth:
            raise self.fail("nesting too deep")
        self.ws()
        if self.pos >= len(self.text):
            raise self.fail("unexpected end")
        c = self.text[self.pos]
        if c in "'\"":
            return self.string()
        if c in "([{":
            return self.container(c, depth)
        for word, val in (("True", True), ("False", False), ("None", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return val
        m = _number().match(self.text, self.pos)
        if m is None:
            raise self.fail("unexpected character")
        self.pos = m.end()
        tok = m.group(0).rstrip("L")
        if re.fullmatch(r"[+-]?\d+", tok):
            return int(tok)
        return float(tok)

    def string(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\":
                if self.pos + 1 >= len(self.text):
                    break
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c == quote:
                self.pos += 1
                return "".join(out)
            out.append(c)
            self.pos += 1
        raise self.fail("unterminated string")

    def container(self, opener: str, depth: int) -> Literal:
        closer = {"(": ")", "[": "]", "{": "}"}[opener]
        self.pos += 1
        items: list[Literal] = []
        pairs: dict[object, Literal] = {}
        while True:
            self.ws()
            if self.pos >= len(self.text):
                raise self.fail("unterminated container")
            if self.text[self.pos] == closer:
                self.pos += 1
                break
            item = self.value(depth + 1)
            if opener == "{":
                self.ws()
                if self.text[self.pos : self.pos + 1] != ":":
                    raise self.fail("expected ':'")
                self.pos += 1
                if not isinstance(item, (str, int, float, bool, type(None), tuple)):
                    raise self.fail("unhashable key")
                pairs[item] = self.value(depth + 1)
            else:
                items.append(item)
            self.ws()
            if self.text[self.pos : self.pos + 1] == ",":
                self.pos += 1
            elif self.text[self.pos : self.pos + 1] != closer:
                raise self.fail("expected ',' or closing bracket")
        if opener == "{":
            return pairs
        return tuple(items) if opener == "(" else items


def parse_literal(text: str, limits: Limits = DEFAULT_LIMITS) -> Literal:
    """Parse one Python literal (no expressions, no names) from ``text``."""
    reader = _LiteralReader(text, limits.max_npy_header_depth)
    value = reader.value()
    reader.ws()
    if reader.pos != len(text):
        raise reader.fail("text after the literal")
    return value


_simple = lazy_pattern(r"^([<>|=]?)([?bBhHiIlLqQpPefdgFDGuicSaUVOMmt])(\d*)(\[[a-zA-Z0-9,]+\])?$")


_object_name = lazy_pattern(r"^[<>|=]?(?:O\d*|object_?|object\d*)$")


_NUMPY_CHAR_SIZES = {
    "?": 1, "b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 8, "L": 8, "q": 8, "Q": 8,
    "p": 8, "P": 8, "e": 2, "f": 4, "d": 8, "g": 16, "F": 8, "D": 16, "G": 32,
}  # fmt: skip


def _dtype_info(descr: object, max_depth: int, depth: int = 0) -> tuple[int, bool]:
    """(itemsize, has_object) of a .npy ``descr``; raises InputError when invalid."""
    if depth > max_depth:
        raise InputError("npy dtype nested too deeply")
    if isinstance(descr, str):
        m = _simple().match(descr)
        if m is None and _object_name().match(descr):
            return 8, True  # numpy also spells the object dtype "object", "object_", "O8"...
        if m is None:
            raise InputError(f"npy dtype {descr!r} is not understood")
        kind, digits = m.group(2), m.group(3)
        if kind == "O":
            return 8, True
        if digits:
            n = int(digits)
            return (4 * n if kind == "U" else n), False
        if kind in _NUMPY_CHAR_SIZES:
            return _NUMPY_CHAR_SIZES[kind], False
        if kind in "SaUV":
            return 0, False
        raise InputError(f"npy dtype {descr!r} has no size")
    if isinstance(descr, list):
        total = 0
        has_obj = False
        for field in descr:
            if not isinstance(field, tuple) or len(field) not in (2, 3):
                raise InputError("npy structured dtype field is not a 2- or 3-tuple")
            fname = field[0]
            if not isinstance(fname, (str, tuple)):
                raise InputError("npy structured dtype field name is not a string")
            size, obj = _dtype_info(field[1], max_depth, depth + 1)
            count = 1
            if len(field) == 3:
                shape = field[2]
                shape = shape if isinstance(shape, tuple) else (shape,)
                count = _count(shape)
            total += size * count
            has_obj = has_obj or obj
        return total, has_obj
    if isinstance(descr, tuple) and len(descr) == 2:
        # A sub-array dtype, (base, shape): numpy accepts it as a descr too.
        size, obj = _dtype_info(descr[0], max_depth, depth + 1)
        shape = descr[1] if isinstance(descr[1], tuple) else (descr[1],)
        return size * _count(shape), obj
    raise InputError(f"npy descr of type {type(descr).__name__} is not understood")


def _count(shape: tuple[object, ...]) -> int:
    n = 1
    for dim in shape:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise InputError(f"npy shape {shape!r} is not a tuple of non-negative integers")
        n *= dim
    return n


class NpyHeader:
    """The validated header of a .npy file."""

    __slots__ = ("descr", "end", "fortran_order", "has_object", "itemsize", "shape", "version")

    def __init__(
        self,
        version: tuple[int, int],
        descr: object,
        shape: tuple[int, ...],
        fortran_order: bool,
        itemsize: int,
        has_object: bool,
        end: int,
    ) -> None:
        self.version = version
        self.descr = descr
        self.shape = shape
        self.fortran_order = fortran_order
        self.itemsize = itemsize
        self.has_object = has_object
        self.end = end

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.itemsize


def parse_npy_header(data: memoryview, limits: Limits = DEFAULT_LIMITS) -> NpyHeader:
    """Parse and validate the header of a .npy buffer; raises InputError when malformed."""
    if len(data) < 10 or bytes(data[:6]) != _MAGIC:
        raise InputError("not a .npy file (bad magic)")
    major, minor = data[6], data[7]
    if major == 1:
        hlen = int.from_bytes(data[8:10], "little")
        start = 10
    elif major in (2, 3):
        if len(data) < 12:
            raise InputError("npy header truncated")
        hlen = int.from_bytes(data[8:12], "little")
        start = 12
    else:
        raise InputError(f"npy format version {major}.{minor} is unknown")
    if hlen > limits.max_npy_header_bytes:
        raise InputError(f"npy header of {hlen} bytes is implausibly large")
    end = start + hlen
    if end > len(data):
        raise InputError("npy header runs past the end of the file")
    raw = bytes(data[start:end])
    text = raw.decode("utf-8" if major == 3 else "latin-1", "strict")
    header = parse_literal(text.strip(), limits)
    if not isinstance(header, dict):
        raise InputError("npy header is not a dictionary")
    if set(header) != {"descr", "fortran_order", "shape"}:
        raise InputError(f"npy header keys {sorted(map(str, header))} are not the three expected")
    shape = header["shape"]
    if not isinstance(shape, tuple):
        raise InputError("npy shape is not a tuple")
    _count(shape)
    fortran = header["fortran_order"]
    if not isinstance(fortran, bool):
        raise InputError("npy fortran_order is not a boolean")
    itemsize, has_object = _dtype_info(header["descr"], limits.max_npy_header_depth)
    return NpyHeader((major, minor), header["descr"], shape, fortran, itemsize, has_object, end)


class _NumpyScan:
    """The work of :meth:`NumpyScanner.scan`, one scan at a time."""

    def scan(self, data: memoryview, ctx: ScanContext, loc: Location) -> None:
        try:
            header = parse_npy_header(data, ctx.limits)
        except (InputError, UnicodeDecodeError) as exc:
            ctx.report(R.NPY_MALFORMED, str(exc), loc)
            self._scan_unparsed_data(data, ctx, loc)
            return
        ctx.facts.setdefault("npy_shape", list(header.shape))
        if header.has_object:
            ctx.report(
                R.NPY_OBJECT,
                f"object dtype {header.descr!r}: the data is a pickle (needs allow_pickle=True)",
                loc.at(header.end),
            )
            self._scan_object_data(data, ctx, loc, header)
            return
        available = len(data) - header.end
        need = header.nbytes
        if available < need:
            ctx.report(
                R.NPY_SIZE,
                f"shape {header.shape} of {header.descr!r} needs {need} bytes, {available} present",
                loc.at(header.end),
            )
        elif available > need:
            off = header.end + need
            ctx.report(
                R.NPY_TRAILING,
                f"{available - need} bytes follow the array data",
                loc.at(off),
            )
            ctx.scan_nested(data[off:], loc.member(f"[after-array@{off}]"), "trailing")

    @staticmethod
    def _scan_unparsed_data(data: memoryview, ctx: ScanContext, loc: Location) -> None:
        """A header this parser rejects may still be one numpy reads (with a dtype that needs
        pickle): whatever follows the header is scanned if it is a pickle (fail closed)."""
        from mltrust.scan._pickle import scan_pickle_stream
        from mltrust.scan.formats.pickle import PickleScanner

        if len(data) < 10:
            return
        wide = data[6] in (2, 3)
        start = 12 if wide else 10
        hlen = int.from_bytes(data[8:start], "little")
        end = start + hlen
        if end < len(data) and PickleScanner().sniff(data[end:], "npy-data"):
            scan_pickle_stream(data, ctx, loc, start=end, single=True, context="npy")

    def _scan_object_data(
        self, data: memoryview, ctx: ScanContext, loc: Location, header: NpyHeader
    ) -> None:
        from mltrust.scan._pickle import scan_pickle_stream

        if header.end >= len(data):
            if header.nbytes:
                ctx.report(R.NPY_SIZE, "object array has no pickle data", loc.at(header.end))
            return
        summary = scan_pickle_stream(data, ctx, loc, start=header.end, single=True, context="npy")
        if summary.complete and summary.end < len(data):
            off = summary.end
            rest = bytes(data[off : off + _BLANK_TAIL + 1])
            if len(data) - off <= _BLANK_TAIL and rest.isspace():
                # A line break after the STOP (numpy's own Python 2 test files end so): no
                # byte of it is an opcode or any format's magic, and numpy.load ignores it.
                ctx.report(
                    R.NPY_TRAILING,
                    f"{len(rest)} white-space bytes follow the pickled array",
                    loc.at(off),
                    severity=Severity.LOW,
                )
                return
            ctx.report(
                R.NPY_TRAILING, f"{len(data) - off} bytes follow the pickled array", loc.at(off)
            )
            ctx.scan_nested(data[off:], loc.member(f"[after-array@{off}]"), "trailing")


def scan_numpy(data: memoryview, ctx: ScanContext, loc: Location) -> None:
    """Scan a .npy array (the work of :meth:`NumpyScanner.scan`)."""
    _NumpyScan().scan(data, ctx, loc)
