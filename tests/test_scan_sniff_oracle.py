"""The pickle sniffer against the real unpicklers: "not scanned" must never hide a pickle.

The oracle is CPython itself: a throwaway subprocess unpickles each input with the C unpickler
(``pickle.loads``: pickle, torch, numpy) and the pure-Python one (``pickle._loads``: joblib),
with an audit hook that records every ``pickle.find_class`` and then blocks it. Whenever a real
unpickler resolves a global, the sniffer must have called the bytes a pickle.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import subprocess
import sys
import zipfile
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats._pickle_head import Reach, simulate
from mltrust.scan.formats.pickle import PickleScanner

_ORACLE = r"""
import json, pickle, resource, sys
# LONG_BINPUT with a huge index makes the C unpickler allocate a memo of that size: fail fast.
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
hits = None
def hook(event, args):
    global hits
    if event == "pickle.find_class":
        hits.append(str(args[0]))
        raise RuntimeError("blocked by the oracle")
sys.addaudithook(hook)
sys.setrecursionlimit(500)
out = []
for line in sys.stdin:
    data = bytes.fromhex(line.strip())
    seen = []
    for loads in (pickle.loads, pickle._loads):
        hits = []
        try:
            loads(data)
        except BaseException:
            pass
        seen.extend(hits)
    out.append(seen)
json.dump(out, sys.stdout)
"""

_IMPORTABLE = re.compile(r"[\w.\-/]+")


def _oracle(inputs: list[bytes]) -> list[list[str]]:
    """Modules the real unpicklers try to import for each input (imports are blocked)."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", _ORACLE],
        input="\n".join(d.hex() for d in inputs),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result: list[list[str]] = json.loads(proc.stdout)
    return result


class _Gadget:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def _seed_pickles() -> list[bytes]:
    objects: list[object] = [
        _Gadget(),
        [1, 2.5, "x", b"y", None, True],
        {"a": OrderedDict(b=1), "c": (1, 2, 3)},
        os.path.join,
        {1, 2, frozenset({3})},
        [[], {}, ()],
    ]
    out = []
    for obj in objects:
        for proto in range(6):
            try:
                out.append(pickle.dumps(obj, protocol=proto))
            except (pickle.PicklingError, TypeError):
                continue
    return out


_TEXT_OPS = [b"I1\n", b"I01\n", b"I02\n", b"L5L\n", b"F1.5\n", b"S'x'\n", b"Vx\n", b"p0\n"]
_TEXT_OPS += [b"g0\n", b"Pid\n"]
_BIN_OPS = [b"N", b"(", b"0", b"1", b"2", b"K\x01", b"q\x00", b"h\x00", b"]", b"}", b")", b"a"]
_BIN_OPS += [b"t", b"l", b"d", b"s", b"e", b"u", b"\x94", b"\x85", b"\x86", b"\x8c\x01a", b"."]
_BIN_OPS += [b"\x80\x02", b"\x80\x05", b"\x95\x00\x00\x00\x00\x00\x00\x00\x00", b"b", b"\x88"]
_IMPORTS = [b"cos\nsystem\n", b"(ios\nsystem\n", b"\x8c\x02os\x8c\x06system\x93", b"R"]


def _random_inputs(rng: random.Random, count: int) -> list[bytes]:
    seeds = _seed_pickles()
    out: list[bytes] = []
    while len(out) < count:
        kind = rng.random()
        if kind < 0.4:
            parts = [rng.choice(_TEXT_OPS + _BIN_OPS + _IMPORTS) for _ in range(rng.randint(1, 10))]
            out.append(b"".join(parts))
        elif kind < 0.8:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(1, 3)):
                action = rng.random()
                pos = rng.randrange(len(data) + 1)
                if action < 0.3 and data:
                    data[min(pos, len(data) - 1)] = rng.randrange(256)
                elif action < 0.6:
                    data[pos:pos] = rng.choice(_TEXT_OPS + _BIN_OPS)
                elif action < 0.8:
                    del data[pos : pos + rng.randint(1, 4)]
                else:
                    data[0:0] = rng.choice(_TEXT_OPS + _BIN_OPS)
            out.append(bytes(data))
        else:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 24))))
    return out


def test_sniffer_claims_everything_the_real_unpicklers_import_from() -> None:
    inputs = _random_inputs(random.Random(20261203), 3000)
    inputs += _seed_pickles()
    verdicts = _oracle(inputs)
    sniffer = PickleScanner()
    imported = 0
    missed = []
    for data, modules in zip(inputs, verdicts, strict=True):
        if not any(_IMPORTABLE.fullmatch(m) for m in modules):
            continue
        imported += 1
        if not sniffer.sniff(memoryview(data), "x"):
            missed.append((data, modules))
    assert imported > 500  # the generator does reach imports
    assert not missed, missed[:5]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_simulation_never_raises(data: bytes) -> None:
    reach, ops = simulate(data)
    assert isinstance(reach, Reach) and ops >= 0


# --------------------------------------------------------------------------------------------
# Bypasses of a strict sniffer, built from raw bytes

_PAYLOAD = b"cos\nsystem\n(S'echo pwned'\ntR."


@pytest.mark.parametrize(
    "data",
    [
        b"I1\n0" + _PAYLOAD,  # protocol 0 INT first, popped
        b"I 0x_1\n0" + _PAYLOAD,  # an INT only int(..., 0) reads
        b"S'" + b"A" * 100_000 + b"'\n0" + _PAYLOAD,  # a very long first line
        b"(0" + _PAYLOAD,  # MARK, POP (pops the mark)
        b"N0N0N0N0N0N0N0N0N0N0N0" + _PAYLOAD,  # many harmless opcodes first
        b"\x95\x00\x00\x00\x00\x00\x00\x00\x00" + _PAYLOAD,  # FRAME first
        b"K\x01\x80\x02" + b"0" + _PAYLOAD,  # PROTO not first
        b"Vhello\n0" + _PAYLOAD,
    ],
)
def test_pickle_without_a_recognisable_head_is_scanned(data: bytes) -> None:
    assert _oracle([data])[0], "the real unpickler must reach the import"
    _assert_caught(data)


def test_octal_int_first_is_scanned_and_fails_closed() -> None:
    # "I007" is read by the C unpickler's strtol (octal 7), not by int(..., 0).
    data = b"I007\n0" + _PAYLOAD
    assert _oracle([data])[0]
    result = scan_bytes(data, "model.bin")
    assert "pickle" in result.formats
    assert max(f.severity for f in result.findings) >= Severity.MEDIUM


def test_octal_int_first_payload_is_identified() -> None:
    _assert_caught(b"I007\n0" + _PAYLOAD)


def test_persistent_id_first_is_scanned() -> None:
    # pickle.loads has no persistent_load and stops; torch.load has one and goes on.
    _assert_caught(b"Pab\n0" + _PAYLOAD)


def _assert_caught(data: bytes) -> None:
    result = scan_bytes(data, "model.bin")
    assert "pickle" in result.formats
    worst = max((f.severity for f in result.findings), default=Severity.INFO)
    assert worst >= Severity.HIGH, result.findings


def test_payload_in_a_second_concatenated_pickle_is_scanned() -> None:
    # a harmless pickle, then the payload for the loader's next load() call
    result = scan_bytes(b"N." + _PAYLOAD, "model.bin")
    assert "pickle" in result.formats
    worst = max((f.severity for f in result.findings), default=Severity.INFO)
    assert worst >= Severity.HIGH, result.findings


def test_torch_zip_data_pkl_without_proto_is_scanned() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"I1\n0" + _PAYLOAD)
        zf.writestr("archive/version", b"3\n")
    result = scan_bytes(buf.getvalue(), "model.pt")
    worst = max((f.severity for f in result.findings), default=Severity.INFO)
    assert worst >= Severity.HIGH, result.findings


@pytest.mark.parametrize(
    "text",
    [
        b"[PAD]\n[UNK]\n[CLS]\n",
        b"hello world\n",
        b"# Model card\n\nSome text.\n",
        b"airplane\nautomobile\n",
        b"person\nbicycle\n",
    ],
)
def test_ordinary_text_is_not_called_a_pickle(text: bytes) -> None:
    assert not PickleScanner().sniff(memoryview(text), "x")
