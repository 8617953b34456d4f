"""A small, bounded reader of the protobuf wire format.

Used by the ONNX and TensorFlow scanners, which must not import those frameworks. Only the wire
format is decoded (varint, 64-bit, length-delimited, 32-bit); the meaning of each field is up to
the caller. Nothing is copied: length-delimited fields are returned as ``(start, end)`` offsets
into the caller's buffer, so a multi-gigabyte tensor payload costs nothing to skip.

Every read is bounds-checked; malformed input raises :class:`ProtobufError` (an
:class:`~mltrust.errors.InputError`). Nesting depth is the caller's to bound: each message it
descends into passes ``depth + 1`` to :func:`check_depth`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from mltrust.errors import InputError, LimitExceeded

__all__ = [
    "I32",
    "I64",
    "LEN",
    "VARINT",
    "Field",
    "ProtobufError",
    "check_depth",
    "iter_fields",
    "read_varint",
    "text",
]

VARINT = 0
I64 = 1
LEN = 2
_SGROUP = 3
_EGROUP = 4
I32 = 5

#: Facts of the protobuf wire format (a varint has at most 10 bytes, a field number at most
#: 29 bits), not bounds on work, so not in :class:`~mltrust.config.Limits`.
_VARINT_LEN = 10
_TOP_FIELD_NUMBER = (1 << 29) - 1


class ProtobufError(InputError):
    """The bytes are not a well-formed protobuf message."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte {offset}")
        self.offset = offset


class Field(NamedTuple):
    """One field of a message.

    ``value`` is the integer for varint and fixed-width fields and the payload start for
    length-delimited ones; ``end`` is the payload end (exclusive) for length-delimited fields and
    equals ``value`` otherwise. ``offset`` is where the field's tag starts.
    """

    number: int
    wire_type: int
    value: int
    end: int
    offset: int

    @property
    def size(self) -> int:
        return self.end - self.value if self.wire_type == LEN else 0


_new = tuple.__new__


def read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; returns ``(value, position after it)``."""
    if pos < end:
        first = buf[pos]
        if first < 0x80:  # the common one-byte case
            return first, pos + 1
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise ProtobufError("truncated varint", start)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if pos - start >= _VARINT_LEN:
            raise ProtobufError("varint longer than 10 bytes", start)


def iter_fields(buf: memoryview, start: int = 0, end: int | None = None) -> Iterator[Field]:
    """Yield the fields of the message stored in ``buf[start:end]``, in order.

    Raises :class:`ProtobufError` on a truncated field, a field number of 0, a group (deprecated
    and used by none of the formats read here) or an unknown wire type.
    """
    stop = len(buf) if end is None else end
    if start < 0 or stop > len(buf) or start > stop:
        raise ProtobufError("message bounds outside the buffer", start)
    pos = start
    while pos < stop:
        offset = pos
        key = buf[pos]
        if key < 0x80:
            pos += 1
        else:
            key, pos = read_varint(buf, pos, stop)
        number = key >> 3
        wire = key & 7
        if number == 0 or number > _TOP_FIELD_NUMBER:
            raise ProtobufError(f"invalid field number {number}", offset)
        if wire == VARINT:
            value, pos = read_varint(buf, pos, stop)
            yield _new(Field, (number, wire, value, value, offset))
        elif wire == LEN:
            if pos < stop and buf[pos] < 0x80:
                length = buf[pos]
                pos += 1
            else:
                length, pos = read_varint(buf, pos, stop)
            if length > stop - pos:
                raise ProtobufError(
                    f"field {number} claims {length} bytes but only {stop - pos} remain", offset
                )
            yield _new(Field, (number, wire, pos, pos + length, offset))
            pos += length
        elif wire == I64:
            if pos + 8 > stop:
                raise ProtobufError(f"truncated 64-bit field {number}", offset)
            value = int.from_bytes(buf[pos : pos + 8], "little")
            pos += 8
            yield _new(Field, (number, wire, value, value, offset))
        elif wire == I32:
            if pos + 4 > stop:
                raise ProtobufError(f"truncated 32-bit field {number}", offset)
            value = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
            yield _new(Field, (number, wire, value, value, offset))
        elif wire in (_SGROUP, _EGROUP):
            raise ProtobufError(f"group wire type in field {number} is not supported", offset)
        else:
            raise ProtobufError(f"invalid wire type {wire} in field {number}", offset)


def text(buf: memoryview, field: Field, limit: int = 1 << 20) -> str:
    """The string payload of a length-delimited field (invalid UTF-8 is replaced, long text cut)."""
    if field.wire_type != LEN:
        raise ProtobufError(f"field {field.number} should be length-delimited", field.offset)
    end = min(field.end, field.value + limit)
    return bytes(buf[field.value : end]).decode("utf-8", "replace")


def check_depth(depth: int, limit: int, offset: int) -> None:
    """Raise :class:`LimitExceeded` once messages nest deeper than ``limit``."""
    if depth > limit:
        raise LimitExceeded(f"protobuf messages nest deeper than {limit} levels at byte {offset}")
