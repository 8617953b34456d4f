"""How far the real unpickler gets into some bytes: the pickle sniffer's oracle model.

``pickle.load`` accepts *any* opcode first. There is no magic number: protocol 0/1 pickles are
text (``I42\\n``, ``cos\\nsystem\\n``...), a PROTO header is optional, lines can be of any
length, and several pickles may follow each other. A sniffer stricter than the loader lets a
payload through as "not scanned", so the pickle sniffer does not guess from a few head bytes:
:func:`simulate` follows the bytes the way CPython's unpicklers do (the C ``_pickle`` used by
``pickle.load``/``torch.load``/``numpy.load`` and the pure-Python ``pickle._Unpickler`` that
joblib subclasses) and reports whether they ever reach the point where code can run.

Code runs through a pickle only after an import: GLOBAL, STACK_GLOBAL and INST call
``find_class``; every callable that REDUCE, NEWOBJ or OBJ could call comes from such an import
(or from the loader's ``persistent_load``, whose results are treated as possibly callable). The
EXT* opcodes look codes up in ``copyreg``'s extension registry, which is empty unless the
loading program fills it; they count as imports in streams with a PROTO header (where pickle
writers emit them) and elsewhere push a value that may be callable. So bytes on which both
unpicklers raise before any import opcode is executed can run nothing when unpickled, and bytes
on which they reach one are a pickle, whatever the head looks like.

The model is a *superset* of the real unpicklers: every check it makes is one both unpicklers
make in the same place with the same outcome (stack underflow against the innermost MARK, a
missing MARK, a memo key never stored, an argument past the end of the data, an undecodable
text argument, STACK_GLOBAL on values that are not strings, a call of a value that is not a
class or function), and everything it cannot know (persistent ids, out-of-band buffers,
whether a BUILD or a container operation suits its object) is assumed to succeed. It can
therefore call bytes a pickle that the real unpickler rejects a little later (the scanner then
reports what it finds), never the reverse. A differential test runs random and mutated bytes
through the real unpicklers with an audit hook on ``pickle.find_class`` and checks this.

One judgement: an import is counted only when its module line could name an importable module
(word characters, ``.``, ``-``, ``/``): ``__import__`` of a name with spaces, commas or quotes
cannot find a module that ordinary installations hold, and counting those would make every CSV
or prose file whose first line starts with ``c`` a "pickle".
"""

from __future__ import annotations

import enum
import re

from mltrust._lazy import lazy_pattern
from mltrust.config import DEFAULT_LIMITS

__all__ = ["Reach", "simulate"]


class Reach(enum.Enum):
    """How far the real unpickler gets."""

    #: It raises before executing any import or call: nothing can run.
    NOTHING = "nothing"
    #: A whole pickle (reached STOP) that imports nothing: data only.
    DATA = "data"
    #: It executes an import (or a call) opcode: a pickle that can run code.
    CODE = "code"
    #: Still unpickling when the simulation budget ran out: must be scanned as a pickle.
    UNKNOWN = "unknown"


_HIGHEST_PROTOCOL = 5


_importable_name = lazy_pattern(r"[\w.\-/]+", re.UNICODE)


# Opcode groups (values are the opcode bytes).
_PUSH_FIXED = {
    0x4E: 0,  # NONE
    0x88: 0,  # NEWTRUE
    0x89: 0,  # NEWFALSE
    0x29: 0,  # EMPTY_TUPLE
    0x5D: 0,  # EMPTY_LIST
    0x7D: 0,  # EMPTY_DICT
    0x8F: 0,  # EMPTY_SET
    0x4B: 1,  # BININT1
    0x4D: 2,  # BININT2
    0x4A: 4,  # BININT
    0x47: 8,  # BINFLOAT
    0x97: 0,  # NEXT_BUFFER (no buffers given: fails for real; assumed to succeed)
}
#: Opcodes followed by a length of N bytes (little-endian) and that many bytes, pushing one value.
_PUSH_COUNTED = {
    0x55: (1, False),  # SHORT_BINSTRING
    0x43: (1, False),  # SHORT_BINBYTES
    0x8C: (1, False),  # SHORT_BINUNICODE
    0x8A: (1, False),  # LONG1
    0x54: (4, True),  # BINSTRING (signed length)
    0x42: (4, False),  # BINBYTES
    0x58: (4, False),  # BINUNICODE
    0x8B: (4, True),  # LONG4 (signed length)
    0x8D: (8, False),  # BINUNICODE8
    0x8E: (8, False),  # BINBYTES8
    0x96: (8, False),  # BYTEARRAY8
}
#: Opcodes that pop N values above the innermost MARK and push one.
_POP_PUSH = {
    0x85: (1, 1),  # TUPLE1
    0x86: (2, 1),  # TUPLE2
    0x87: (3, 1),  # TUPLE3
    0x62: (2, 1),  # BUILD
    0x98: (1, 1),  # READONLY_BUFFER
}
_CALLS = {0x52: 2, 0x81: 2, 0x92: 3}  # REDUCE, NEWOBJ, NEWOBJ_EX
_EXT = {0x82: 1, 0x83: 2, 0x84: 4}


def _line(data: memoryview, pos: int) -> tuple[bytes, int] | None:
    """The text argument at ``pos`` (up to and including its newline, or to the end) and the
    position after it; None when the newline is further than the search window."""
    window = 256
    while True:
        chunk = bytes(data[pos : pos + window])
        nl = chunk.find(b"\n")
        if nl >= 0:
            return chunk[: nl + 1], pos + nl + 1
        if pos + len(chunk) >= len(data):
            return chunk, pos + len(chunk)
        if window >= DEFAULT_LIMITS.max_pickle_line_bytes:
            return None
        window *= 16


def _number(op: int, raw: bytes) -> int | None:
    """The number an INT/LONG/FLOAT/GET/PUT text argument (newline included) holds, as the
    unpicklers read it (:mod:`mltrust.scan._pickle._text`); None when neither would."""
    from mltrust.scan._pickle._text import float_arg, int_arg, key_arg, long_arg

    line = raw[:-1] if raw.endswith(b"\n") else raw
    parse = {0x49: int_arg, 0x4C: long_arg, 0x46: float_arg}.get(op, key_arg)
    try:
        return int(parse(line)) if op != 0x46 else 0
    except (ValueError, OverflowError):
        return None


def _importable(raw_line: bytes) -> bool:
    """Whether a GLOBAL/INST module line (newline included) could name a module."""
    name = raw_line[:-1] if raw_line.endswith(b"\n") else raw_line
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _importable_name().fullmatch(text) is not None


def simulate(data: memoryview | bytes, start: int = 0, *, max_ops: int = 512) -> tuple[Reach, int]:
    """How far the real unpickler gets into ``data`` from ``start``, within ``max_ops`` opcodes.

    Returns the outcome and the number of opcodes the first stream executed. Concatenated
    pickles are followed too (a loader may call ``load`` again): the outcome is the furthest
    any stream gets.
    """
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    size = len(view)
    pos = start
    ops = 0
    first = -1
    best = Reach.NOTHING
    while pos < size:
        outcome, pos, used = _one_stream(view, pos, max_ops - ops)
        ops += used
        if first < 0:
            first = used
        if outcome in (Reach.CODE, Reach.UNKNOWN):
            return outcome, first
        if outcome is Reach.NOTHING:
            return best, first
        best = Reach.DATA
        if ops >= max_ops:
            return Reach.UNKNOWN, first
    return best, max(first, 0)


#: Value kinds tracked on the simulated stack: a str, a persistent-load result (whatever the
#: loader's persistent_load returns: assumed to be anything), anything else.
_STR, _PERSISTENT, _OTHER = "s", "p", "o"
_STR_PUSHES = frozenset({0x55, 0x54, 0x8C, 0x58, 0x8D})  # SHORT_BINSTRING ... BINUNICODE8
_MAYBE_CALLABLE = frozenset({_PERSISTENT})


def _one_stream(view: memoryview, pos: int, budget: int) -> tuple[Reach, int, int]:
    """Simulate one pickle from ``pos``: (outcome, position after it, opcodes run).

    The stack holds value kinds, not values: calls need a callable, and without an import the
    only values that might be callable are persistent-load results; STACK_GLOBAL needs two
    strings. Everything else about values is assumed to succeed.
    """
    size = len(view)
    st: list[str] = []
    marks: list[int] = []
    memo: dict[int, str] = {}
    ops = 0
    proto_seen = False
    while True:
        if ops >= budget:
            return Reach.UNKNOWN, pos, ops
        if pos >= size:
            return Reach.NOTHING, pos, ops
        op = view[pos]
        pos += 1
        ops += 1
        n = len(st)
        fence = marks[-1] if marks else 0
        if op in _PUSH_FIXED:
            pos += _PUSH_FIXED[op]
            if pos > size:
                return Reach.NOTHING, pos, ops
            st.append(_OTHER)
        elif op in _PUSH_COUNTED:
            width, signed = _PUSH_COUNTED[op]
            if pos + width > size:
                return Reach.NOTHING, pos, ops
            length = int.from_bytes(view[pos : pos + width], "little", signed=signed)
            pos += width
            if length < 0 or pos + length > size:
                return Reach.NOTHING, pos, ops
            pos += length
            st.append(_STR if op in _STR_PUSHES else _OTHER)
        elif op == 0x80:  # PROTO
            if pos >= size or view[pos] > _HIGHEST_PROTOCOL:
                return Reach.NOTHING, pos, ops
            pos += 1
            proto_seen = True
        elif op == 0x95:  # FRAME: its content is read as opcodes
            pos += 8
            if pos > size:
                return Reach.NOTHING, pos, ops
        elif op == 0x2E:  # STOP
            if n <= fence:
                return Reach.NOTHING, pos, ops
            return Reach.DATA, pos, ops
        elif op == 0x28:  # MARK
            marks.append(n)
        elif op == 0x30:  # POP
            if marks and marks[-1] == n:
                marks.pop()
            elif n <= fence:
                return Reach.NOTHING, pos, ops
            else:
                st.pop()
        elif op == 0x31:  # POP_MARK
            if not marks:
                return Reach.NOTHING, pos, ops
            del st[marks.pop() :]
        elif op == 0x32:  # DUP
            if n <= fence:
                return Reach.NOTHING, pos, ops
            st.append(st[-1])
        elif op in (0x6C, 0x74, 0x64, 0x91):  # LIST, TUPLE, DICT, FROZENSET
            if not marks:
                return Reach.NOTHING, pos, ops
            mark = marks.pop()
            if op == 0x64 and (n - mark) % 2:
                return Reach.NOTHING, pos, ops
            del st[mark:]
            st.append(_OTHER)
        elif op in (0x65, 0x75, 0x90):  # APPENDS, SETITEMS, ADDITEMS
            if not marks:
                return Reach.NOTHING, pos, ops
            mark = marks.pop()
            fence = marks[-1] if marks else 0
            if mark <= fence or (op == 0x75 and (n - mark) % 2):
                return Reach.NOTHING, pos, ops
            del st[mark:]
        elif op == 0x61:  # APPEND
            if n - 1 <= fence:
                return Reach.NOTHING, pos, ops
            st.pop()
        elif op == 0x73:  # SETITEM
            if n - 2 <= fence:
                return Reach.NOTHING, pos, ops
            del st[-2:]
        elif op in _POP_PUSH:
            pops, _ = _POP_PUSH[op]
            if n - pops < fence:
                return Reach.NOTHING, pos, ops
            kept = st[-pops] if op == 0x62 else _OTHER  # BUILD keeps its object
            del st[-pops:]
            st.append(kept)
        elif op in _CALLS:
            width = _CALLS[op]
            if n - width < fence:
                return Reach.NOTHING, pos, ops
            # REDUCE calls st[-2]; NEWOBJ st[-2]; NEWOBJ_EX st[-3].
            if st[-width] in _MAYBE_CALLABLE:
                return Reach.CODE, pos, ops
            return Reach.NOTHING, pos, ops
        elif op == 0x6F:  # OBJ
            if not marks or n - marks[-1] < 1:
                return Reach.NOTHING, pos, ops
            if st[marks[-1]] in _MAYBE_CALLABLE:
                return Reach.CODE, pos, ops
            return Reach.NOTHING, pos, ops
        elif op == 0x93:  # STACK_GLOBAL: module and name must be str
            if n - 2 < fence:
                return Reach.NOTHING, pos, ops
            if st[-1] == _OTHER or st[-2] == _OTHER:
                return Reach.NOTHING, pos, ops
            return Reach.CODE, pos, ops
        elif op in _EXT:
            # copyreg's extension registry is empty unless the loading program fills it, and
            # then the code names an import. Pickle writers emit EXT only in protocol 2+
            # streams, which carry PROTO: there it counts as an import. Random bytes start
            # with 0x82-0x84 one time in 85, so without PROTO it is not enough on its own.
            if pos + _EXT[op] > size:
                return Reach.NOTHING, pos, ops
            if proto_seen:
                return Reach.CODE, pos, ops
            # Without PROTO: the registered object (anything, possibly callable) is pushed and
            # the bytes must go on to look like a pickle to be claimed.
            pos += _EXT[op]
            st.append(_PERSISTENT)
        elif op in (0x63, 0x69):  # GLOBAL, INST (the Python unpickler imports before MARK)
            first = _line(view, pos)
            if first is None:
                return Reach.UNKNOWN, pos, ops
            second = _line(view, first[1])
            if second is None:
                return Reach.UNKNOWN, pos, ops
            if not _importable(first[0]):
                return Reach.NOTHING, pos, ops
            return Reach.CODE, pos, ops
        elif op in (0x68, 0x6A):  # BINGET, LONG_BINGET
            width = 1 if op == 0x68 else 4
            if pos + width > size:
                return Reach.NOTHING, pos, ops
            key = int.from_bytes(view[pos : pos + width], "little")
            pos += width
            if key not in memo:
                return Reach.NOTHING, pos, ops
            st.append(memo[key])
        elif op in (0x71, 0x72):  # BINPUT, LONG_BINPUT
            width = 1 if op == 0x71 else 4
            if pos + width > size:
                return Reach.NOTHING, pos, ops
            key = int.from_bytes(view[pos : pos + width], "little")
            pos += width
            if n <= fence:
                return Reach.NOTHING, pos, ops
            memo[key] = st[-1]
        elif op == 0x94:  # MEMOIZE
            if n <= fence:
                return Reach.NOTHING, pos, ops
            memo[len(memo)] = st[-1]
        elif op == 0x51:  # BINPERSID (a persistent_load is assumed, as torch.load has one)
            if n - 1 < fence:
                return Reach.NOTHING, pos, ops
            st[-1] = _PERSISTENT
        elif op in (0x49, 0x4C, 0x46, 0x53, 0x56, 0x50, 0x67, 0x70):
            got = _line(view, pos)
            if got is None:
                return Reach.UNKNOWN, pos, ops
            raw, pos = got
            if not _text_ok(op, raw, memo, n <= fence):
                return Reach.NOTHING, pos, ops
            if op == 0x70:  # PUT
                stored = _number(op, raw)
                if stored is not None:
                    memo[stored] = st[-1]
            elif op == 0x67:  # GET
                got_key = _number(op, raw)
                st.append(memo[got_key] if got_key is not None else _OTHER)
            elif op == 0x50:
                st.append(_PERSISTENT)
            else:
                st.append(_STR if op in (0x53, 0x56) else _OTHER)
        else:
            return Reach.NOTHING, pos, ops


def _text_ok(op: int, raw: bytes, memo: dict[int, str], empty: bool) -> bool:
    """Whether an INT/LONG/FLOAT/STRING/UNICODE/PERSID/GET/PUT text argument is accepted."""
    if op in (0x49, 0x4C, 0x46):  # INT, LONG, FLOAT
        return _number(op, raw) is not None
    if op == 0x53:  # STRING: quoted (the last byte read is taken as the newline)
        body = raw[:-1]
        return len(body) >= 2 and body[:1] in (b"'", b'"') and body[-1:] == body[:1]
    if op == 0x50:  # PERSID: ASCII
        return raw[:-1].isascii()
    if op == 0x56:  # UNICODE (raw-unicode-escape; assumed to decode)
        return True
    key = _number(op, raw)
    if op == 0x67:  # GET
        return key is not None and key in memo
    # PUT
    return not empty and key is not None and key >= 0
