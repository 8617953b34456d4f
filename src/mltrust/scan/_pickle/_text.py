"""The numbers of text (protocol 0) opcode arguments, as CPython's unpicklers read them.

One model for the machine and the sniffer's oracle (:mod:`mltrust.scan.formats._pickle_head`).
An argument is accepted when *either* unpickler accepts it: the C ``_pickle`` (what
``pickle.load``, ``torch.load`` and ``numpy.load`` use) or the pure-Python ``pickle._Unpickler``
(what joblib subclasses); where both accept, they agree on the value.

The C unpickler hands C string functions a copy of the line that ends with a NUL, so ``strtol``,
``PyLong_FromString`` and ``PyOS_string_to_double`` stop at the first NUL byte in the line:
``I1001\\x00junk\\n`` is 1001 there, while Python's ``int()`` refuses it. ``load_int`` tries
``strtol(s, &end, 0)`` first (so ``007`` is octal 7 and a line holding only a NUL is 0) and
accepts it when ``end`` is at the newline or the NUL; otherwise (trailing text, overflow of a
C long) it falls back to ``PyLong_FromString(s, NULL, 0)``. ``load_long`` drops an ``L``
before the newline and uses ``PyLong_FromString``; ``load_float`` uses
``PyOS_string_to_double``, which takes no white space and no underscores; GET and PUT use
``PyLong_FromString(s, NULL, 10)``. The Python unpickler uses ``int(line, 0)``, ``float(line)``
and ``int(line)`` on the line without its newline (the whole line: a NUL makes them fail).
"""

from __future__ import annotations

import math
import re

from mltrust._lazy import lazy_pattern

__all__ = ["float_arg", "int_arg", "key_arg", "long_arg"]

#: What C's ``isspace`` is true for in the C locale.
_C_SPACE = b" \t\n\v\f\r"
_LONG_MIN = -(1 << 63)
_LONG_MAX = (1 << 63) - 1
_HEX = frozenset(b"0123456789abcdefABCDEF")


#: What ``PyOS_string_to_double`` reads whole (no white space, no underscores, no hex).
_c_float = lazy_pattern(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)\Z", re.IGNORECASE
)


def _c_string(line: bytes) -> bytes:
    nul = line.find(b"\x00")
    return line if nul < 0 else line[:nul]


def _strtol(s: bytes) -> tuple[int, int, bool]:
    """glibc ``strtol(s, &end, 0)``: (value, end offset, overflowed)."""
    i = 0
    n = len(s)
    while i < n and s[i] in _C_SPACE:
        i += 1
    negative = False
    if i < n and s[i] in b"+-":
        negative = s[i] == 0x2D
        i += 1
    if s[i : i + 2] in (b"0x", b"0X") and i + 2 < n and s[i + 2] in _HEX:
        j = i + 2
        while j < n and s[j] in _HEX:
            j += 1
        value = int(s[i + 2 : j], 16)
    elif s[i : i + 1] == b"0":
        j = i + 1
        while j < n and 0x30 <= s[j] <= 0x37:
            j += 1
        value = int(s[i:j], 8)
    elif i < n and 0x30 <= s[i] <= 0x39:
        j = i
        while j < n and 0x30 <= s[j] <= 0x39:
            j += 1
        value = int(s[i:j])
    else:
        return 0, 0, False  # no conversion: end is the start of the string
    value = -value if negative else value
    return value, j, not _LONG_MIN <= value <= _LONG_MAX


def int_arg(line: bytes) -> int:
    """The value of an INT argument (``line`` without its newline); ValueError if refused."""
    s = _c_string(line)
    if line:  # the C unpickler needs at least one byte before the newline
        value, end, overflow = _strtol(s)
        if end == len(s) and not overflow:
            return value
        try:
            return int(s, 0)
        except ValueError:
            pass
    if line in (b"00", b"01"):
        return line == b"01"
    return int(line, 0)


def long_arg(line: bytes) -> int:
    """The value of a LONG argument (without its newline; an ``L`` before it is dropped)."""
    if line.endswith(b"L"):
        line = line[:-1]
    try:
        return int(_c_string(line), 0)
    except ValueError:
        return int(line, 0)


def float_arg(line: bytes) -> float:
    """The value of a FLOAT argument (without its newline); ValueError if refused."""
    s = _c_string(line)
    if line and _c_float().match(s):
        value = float(s)
        if not math.isinf(value) or b"inf" in s.lower():  # C refuses an overflow
            return value
    return float(line)


def key_arg(line: bytes) -> int:
    """The memo key of a GET or PUT argument (without its newline); ValueError if refused."""
    try:
        return int(_c_string(line))
    except ValueError:
        return int(line)
