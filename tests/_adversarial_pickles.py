"""Generators of pickles crafted to make a static analyser do super-linear work.

Each generator takes a size parameter ``n`` and returns the pickle's bytes, about linear in
``n``. None of them is ever unpickled: several would take exponential time or memory to load
(a tower of DUP + TUPLE2 is a DAG of ``n`` nodes with ``2**n`` paths). Used by
``tests/test_scan_dos.py`` (visit counts must grow linearly) and by
``benchmarks/pickle_dos_bench.py`` (time against size).

The shapes are the ones the scanner's walks over its symbolic value graph could blow up on:
shared subtrees (DUP, memo GET), deep nesting (TUPLE1 towers, MARK stacks), BUILD from one
large shared state, numpy dtypes whose fields share one dtype at every level, and the same
embedded payload handed to a nested loader again and again.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["GENERATORS", "build_chain", "call_tower", "describe_tower", "dtype_fanout"]

PROTO = b"\x80\x02"
STOP = b"."
NONE = b"N"
DUP = b"2"
POP = b"0"
MARK = b"("
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
EMPTY_LIST = b"]"
EMPTY_DICT = b"}"
APPEND = b"a"
APPENDS = b"e"
SETITEMS = b"u"
BUILD = b"b"
REDUCE = b"R"
EMPTY_TUPLE = b")"

#: A restricted (tracked) global: once imported, every value stored anywhere is checked for it.
LOADER = b"ctorch.storage\n_load_from_bytes\n"
#: An allowlisted callable judged by its (plain data) arguments.
ORDERED_DICT = b"ccollections\nOrderedDict\n"
DTYPE = b"cnumpy\ndtype\n"


def put(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def get(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def text(s: str) -> bytes:
    raw = s.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def small_int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _tower(depth: int) -> bytes:
    """NONE then ``depth`` DUP + TUPLE2: a tuple DAG with 2**depth paths to its leaf."""
    return NONE + (DUP + TUPLE2) * depth


def shared_tower(n: int, *, mark: bool = False, tracked: bool = True) -> bytes:
    """A DUP/TUPLE2 tower of depth ``n`` stored ``n`` times into a list (memo GET).

    ``mark`` opens a MARK before the global (the values go in by one APPENDS); ``tracked``
    imports and drops a nested loader first, so that every stored value is checked for it.
    """
    out = bytearray(PROTO)
    if mark:
        out += EMPTY_LIST + put(0) + MARK
        if tracked:
            out += LOADER + POP
        out += _tower(n) + put(1) + get(1) * (n - 1) + APPENDS
    else:
        if tracked:
            out += LOADER + POP
        out += EMPTY_LIST + put(0) + _tower(n) + put(1) + POP
        out += (get(1) + APPEND) * n
    return bytes(out + STOP)


def redteam_mark_variant(n: int) -> bytes:
    """The red team's MARK-opened variant: APPEND onto the tower itself, a parse error whose
    message describes the tower (``repr`` of it is exponential)."""
    data = bytearray(PROTO + EMPTY_LIST + b"q\x00" + MARK + LOADER + POP)
    data += _tower(n) + b"q\x01" + (b"h\x01" + APPEND) * 60 + STOP
    return bytes(data)


def call_tower(n: int) -> bytes:
    """No tracked global: an allowlisted callable called ``n`` times with a depth-``n`` tower
    (its arguments are judged each time)."""
    out = bytearray(PROTO + ORDERED_DICT + put(0) + _tower(n) + put(1) + POP)
    out += (get(0) + get(1) + TUPLE1 + REDUCE + POP) * n
    out += NONE + STOP
    return bytes(out)


def wide_args(n: int) -> bytes:
    """One argument tuple of ``n`` items (globals among them) passed to ``n`` calls."""
    out = bytearray(PROTO + ORDERED_DICT + put(0) + MARK)
    out += (get(0) + NONE) * (n // 2) + TUPLE + put(1) + POP
    out += (get(0) + get(1) + REDUCE + POP) * n
    return bytes(out + NONE + STOP)


def describe_tower(n: int) -> bytes:
    """A parse error (REDUCE on a tuple) whose finding names a depth-``n`` tower."""
    return PROTO + _tower(n) + put(0) + get(0) + REDUCE + STOP


def deep_nesting(n: int) -> bytes:
    """Tuples nested ``n`` deep by TUPLE1 and by MARK stacks (1000 MARKs at a time), stored in
    a list after a tracked import."""
    out = bytearray(PROTO + LOADER + POP + EMPTY_LIST)
    out += NONE + TUPLE1 * n + APPEND
    for _ in range(max(1, n // 1000)):
        out += MARK * 1000 + NONE + TUPLE * 1000 + APPEND
    return bytes(out + STOP)


def build_chain(n: int) -> bytes:
    """One object BUILT ``n`` times from the same 4096-key state dict (memo GET)."""
    out = bytearray(PROTO + ORDERED_DICT + EMPTY_TUPLE + REDUCE)
    out += EMPTY_DICT + put(0) + MARK
    for i in range(4096):
        out += text(f"k{i}") + NONE
    out += SETITEMS + POP
    out += (get(0) + BUILD) * n
    return bytes(out + STOP)


def _dtype_level(prev: int, width: int, memo: int) -> bytes:
    """A dtype whose ``width`` fields all have the dtype in memo ``prev``; memoised at ``memo``."""
    out = bytearray(DTYPE + text("V8") + TUPLE1 + REDUCE + put(memo))
    out += MARK + small_int(3) + text("|") + NONE + NONE
    out += EMPTY_DICT + MARK
    for i in range(width):
        out += text(f"f{i}") + get(prev) + small_int(0) + TUPLE2
    out += SETITEMS + small_int(8) + small_int(1) + small_int(0) + TUPLE + BUILD
    return bytes(out)


def dtype_fanout(n: int, *, levels: int = 16, rebuilds: int = 0) -> bytes:
    """numpy dtypes ``levels`` deep, each with ``n`` fields that all share the level below
    (``n ** levels`` paths); ``rebuilds`` more BUILDs of the top one with its own state."""
    out = bytearray(PROTO + DTYPE + text("f8") + TUPLE1 + REDUCE + put(0) + POP)
    for level in range(1, levels + 1):
        out += _dtype_level(level - 1, n, level) + POP
    if rebuilds:
        # The top dtype's state, rebuilt from memo: the same walk each time.
        out += get(levels) + MARK + small_int(3) + text("|") + NONE + NONE + EMPTY_DICT + MARK
        for i in range(n):
            out += text(f"f{i}") + get(levels - 1) + small_int(0) + TUPLE2
        out += SETITEMS + small_int(8) + small_int(1) + small_int(0) + TUPLE + put(levels + 1)
        out += BUILD + (get(levels + 1) + BUILD) * rebuilds
    return bytes(out + NONE + STOP)


def nested_payload(n: int) -> bytes:
    """One embedded pickle of ``n`` opcode bytes handed ``n // 8`` times to a nested loader."""
    inner = PROTO + (NONE + POP) * (n // 2) + NONE + STOP
    out = bytearray(PROTO + LOADER + put(0) + POP)
    out += b"B" + struct.pack("<I", len(inner)) + inner + put(1) + POP
    out += (get(0) + get(1) + TUPLE1 + REDUCE + POP) * max(1, n // 8)
    return bytes(out + NONE + STOP)


#: Name -> generator of a pickle about linear in ``n``, for tests and the benchmark.
GENERATORS: dict[str, Callable[[int], bytes]] = {
    "shared_tower": shared_tower,
    "shared_tower_mark": lambda n: shared_tower(n, mark=True),
    "shared_tower_untracked": lambda n: shared_tower(n, tracked=False),
    "redteam_mark_variant": redteam_mark_variant,
    "call_tower": call_tower,
    "wide_args": wide_args,
    "describe_tower": describe_tower,
    "deep_nesting": deep_nesting,
    "build_chain": build_chain,
    "dtype_fanout": dtype_fanout,
    "dtype_rebuild": lambda n: dtype_fanout(max(2, n // 64), levels=4, rebuilds=n // 8),
    "nested_payload": nested_payload,
}
