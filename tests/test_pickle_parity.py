"""The pickle machine agrees with ``pickletools``, CPython's own description of every opcode.

The opcode machine in ``mltrust.scan._pickle._machine`` keeps its own table of opcodes (which
bytes are opcodes, how wide their argument is, how many stack items they take and leave). A
table written by hand can drift from the unpickler it models, and an opcode the machine does not
know, or reads with the wrong width, desynchronises it from the real loader: the rest of the
stream is then read differently from how ``pickle.load`` reads it. ``pickletools.opcodes`` is
the reference; these tests compare the table and the machine's walk over real pickles with it.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pickle
import pickletools

import pytest

from mltrust.config import ScanConfig
from mltrust.findings import Location
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import _machine, scan_pickle_stream

_OPCODES = {ord(op.code.encode("latin-1")): op for op in pickletools.opcodes}
#: The memo writers peek at the top of the stack; pickletools lists them as taking nothing.
_PEEKS = {ord(c) for c in ("p", "q", "r")}


def _stack_counts(op: pickletools.OpcodeInfo) -> tuple[int, int]:
    """(items taken, items left) without the mark; what lies above a mark is taken with it."""
    before = list(op.stack_before)
    if pickletools.markobject in before:
        before = before[: before.index(pickletools.markobject)]
    after = [s for s in op.stack_after if s is not pickletools.markobject]
    return len(before), len(after)


def test_the_machine_knows_exactly_the_opcodes_pickletools_knows() -> None:
    assert set(_machine._FIXED) == set(_OPCODES)


@pytest.mark.parametrize("code", sorted(_OPCODES), ids=lambda c: _OPCODES[c].name)
def test_each_opcode_has_pickletools_argument_width_and_stack_effect(code: int) -> None:
    op = _OPCODES[code]
    pops, pushes, kind = _machine._FIXED[code]
    if op.arg is not None and op.arg.n > 0:
        assert kind == op.arg.n, f"{op.name}: fixed argument of {op.arg.n} bytes, table says {kind}"
    elif op.arg is None:
        pops_to_mark = pickletools.markobject in op.stack_before
        assert kind in (0, -3, -6), op.name
        assert (kind == -6) == pops_to_mark, f"{op.name}: pops to the mark is {pops_to_mark}"
        assert (kind == -3) == (pickletools.markobject in op.stack_after), op.name
    else:
        assert kind < 0, f"{op.name}: variable-length argument needs a negative kind, got {kind}"
    expected = _stack_counts(op)
    if code in _PEEKS:
        expected = (1, 1)
    assert (pops, pushes) == expected, f"{op.name}: stack effect {(pops, pushes)} != {expected}"


class _Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Point) and other.x == self.x


def _objects() -> list[object]:
    shared = [1, 2, 3]
    looped: list[object] = [0]
    looped.append(looped)
    return [
        None,
        True,
        False,
        0,
        255,
        65535,
        -1,
        2**31,
        2**100,
        -(2**300),
        1.5,
        float("inf"),
        "",
        "text with unicode \u00e9\u4e2d and \ud800 surrogate",
        "x" * 300,
        b"",
        b"\x00\xff" * 200,
        bytearray(b"abc"),
        (),
        (1,),
        (1, 2),
        (1, 2, 3),
        tuple(range(10)),
        [],
        list(range(1500)),
        {},
        {"a": 1, 2: [3]},
        {i: str(i) for i in range(1200)},
        set(),
        {1, 2, 3},
        frozenset({"a"}),
        [shared, shared, (shared,)],
        looped,
        collections.OrderedDict(a=1),
        datetime.datetime(2026, 12, 4, 16, 30),
        decimal.Decimal("1.25"),
        fractions.Fraction(3, 7),
        complex(1, 2),
        _Point(7),
        [_Point(1), _Point(2)],
    ]


def _walk(data: bytes) -> tuple[int, int]:
    """(opcodes in the first stream, offset after its STOP) as pickletools reads them."""
    count = 0
    for count, (op, _arg, pos) in enumerate(pickletools.genops(io.BytesIO(data)), start=1):
        if op.name == "STOP":
            assert pos is not None
            return count, pos + 1
    raise AssertionError("no STOP")


def _cases() -> list[tuple[str, bytes]]:
    cases = []
    for index, obj in enumerate(_objects()):
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(obj, protocol=protocol)
            cases.append((f"{index}-p{protocol}", data))
            cases.append((f"{index}-p{protocol}-opt", pickletools.optimize(data)))
    return cases


@pytest.mark.parametrize(("name", "data"), _cases(), ids=[n for n, _ in _cases()])
def test_the_machine_walks_real_pickles_as_pickletools_does(name: str, data: bytes) -> None:
    opcodes, end = _walk(data)
    ctx = ScanContext(config=ScanConfig())
    summary = scan_pickle_stream(memoryview(data), ctx, Location("x.pkl"), single=True)
    assert summary.complete, [f.message for f in ctx.findings]
    assert (summary.opcodes, summary.end) == (opcodes, end)


@pytest.mark.parametrize("code", [c for c in range(256) if c not in _OPCODES])
def test_bytes_that_are_not_opcodes_are_malformed_for_both(code: int) -> None:
    data = b"\x80\x04" + bytes([code]) + b"."
    with pytest.raises(pickle.UnpicklingError):
        # mltrust: ignore[MLT-CODE-001] the real unpickler as oracle, on bytes the test built
        pickle.loads(data)  # the real unpickler refuses the byte too
    ctx = ScanContext(config=ScanConfig())
    summary = scan_pickle_stream(memoryview(data), ctx, Location("x.pkl"), single=True)
    assert not summary.complete
    assert any("invalid opcode" in f.message for f in ctx.findings), ctx.findings


@pytest.mark.parametrize("code", sorted(_OPCODES), ids=lambda c: _OPCODES[c].name)
def test_every_pickletools_opcode_has_a_handler(code: int) -> None:
    """Each opcode is dispatched to its own handler (it may still fail on the empty stack)."""
    data = b"\x80\x04" + bytes([code]) + b"\x00" * 16 + b"."
    ctx = ScanContext(config=ScanConfig())
    scan_pickle_stream(memoryview(data), ctx, Location("x.pkl"), single=True)
    refused = f"opcode #2: invalid opcode 0x{code:02x}"
    assert not any(refused in f.message for f in ctx.findings), ctx.findings
