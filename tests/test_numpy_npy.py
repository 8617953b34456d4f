"""NumPy .npy scanner: header parsing, sizes, object arrays."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrust.errors import InputError
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.numpy import parse_literal, parse_npy_header
from test_archive_zip import npy_bytes, rules


def has_pickle_scanner() -> bool:
    try:
        from mltrust.scan._pickle import scan_pickle_stream  # noqa: F401
    except ImportError:
        return False
    return True


needs_pickle = pytest.mark.skipif(not has_pickle_scanner(), reason="pickle analyser not present")


def raw_npy(header: str, body: bytes = b"", version: int = 1) -> bytes:
    h = header.encode("latin-1")
    if version == 1:
        return b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h + body
    return b"\x93NUMPY" + bytes([version, 0]) + len(h).to_bytes(4, "little") + h + body


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype="<f8").reshape(3, 4),
        np.asfortranarray(np.ones((3, 5), dtype="<i2")),
        np.array(["ab", "cde"]),
        np.array([b"x", b"yz"]),
        np.zeros(0, dtype="<f4"),
        np.array(3.5),
        np.zeros(4, dtype=[("a", "<f4"), ("b", "<i8", (2,))]),
        np.array(["2020-01-01"], dtype="datetime64[ns]"),
        np.array([1 + 2j]),
    ],
)
def test_real_numpy_arrays_are_clean(arr: np.ndarray) -> None:
    result = scan_bytes(npy_bytes(arr), "a.npy")
    assert result.formats == ("numpy",)
    assert not result.fails(Severity.LOW), result.findings


def test_version_2_and_3_headers() -> None:
    from numpy.lib import format as npformat

    for version in ((2, 0), (3, 0)):
        buf = io.BytesIO()
        arr = np.arange(5)
        npformat.write_array(buf, arr, version=version)
        result = scan_bytes(buf.getvalue(), "a.npy")
        assert not result.fails(Severity.LOW), (version, result.findings)


def test_truncated_array_data() -> None:
    data = npy_bytes(np.arange(100, dtype="<i8"))
    assert "MLT-NPY-003" in rules(scan_bytes(data[:-8], "a.npy"))


def test_trailing_payload_after_array_is_sniffed() -> None:
    data = npy_bytes() + npy_bytes(np.arange(3))
    result = scan_bytes(data, "a.npy")
    assert "MLT-NPY-004" in rules(result)
    assert any(f.endswith(":numpy") for f in result.formats[1:])


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'shape': (2,)}",
        "{'descr': '<f8', 'fortran_order': 1, 'shape': (2,)}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}",
        "{'descr': 'zz', 'fortran_order': False, 'shape': (2,)}",
        "__import__('os').system('id')",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': f()}",
        "[" * 5000,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
    ],
)
def test_malformed_headers_never_evaluated(header: str) -> None:
    result = scan_bytes(raw_npy(header, b"\x00" * 16), "a.npy")
    assert "MLT-NPY-002" in rules(result)


def test_bad_version() -> None:
    data = b"\x93NUMPY\x09\x00" + b"\x00" * 20
    assert "MLT-NPY-002" in rules(scan_bytes(data, "a.npy"))


def test_literal_parser() -> None:
    assert parse_literal("{'a': (1, 2,), 'b': [True, None], 'c': -1.5e3}") == {
        "a": (1, 2),
        "b": [True, None],
        "c": -1500.0,
    }
    with pytest.raises(InputError):
        parse_literal("os.system")
    with pytest.raises(InputError):
        parse_literal("(" * 100 + ")" * 100)


def test_header_sizes() -> None:
    header = parse_npy_header(memoryview(npy_bytes(np.zeros((3, 4), dtype="<f4"))))
    assert header.nbytes == 48 and header.shape == (3, 4) and not header.has_object


@needs_pickle
def test_object_array_pickle_payload(canary: object) -> None:
    class Evil:
        def __reduce__(self) -> tuple[object, ...]:
            import os

            return (os.system, (f"touch {canary}",))

    body = pickle.dumps(np.array([1, 2], dtype=object), protocol=3)
    # Replace the array pickle by a malicious one, as an attacker would.
    body = pickle.dumps(Evil(), protocol=3)
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    result = scan_bytes(raw_npy(header, body), "a.npy")
    assert "MLT-NPY-001" in rules(result)
    assert result.fails(Severity.HIGH)


@needs_pickle
def test_benign_object_array_is_low_only() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([1, "a", 2.5], dtype=object), allow_pickle=True)
    result = scan_bytes(buf.getvalue(), "a.npy")
    assert "MLT-NPY-001" in rules(result)
    assert not result.fails(Severity.MEDIUM), result.findings


def test_object_array_without_pickle_scanner_is_not_clean() -> None:
    header = "{'descr': [('a', '<f8'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }"
    result = scan_bytes(raw_npy(header, b"\x80\x03K\x01."), "a.npy")
    assert "MLT-NPY-001" in rules(result)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_literal_parser_never_crashes(text: str) -> None:
    try:
        parse_literal(text)
    except InputError:
        pass


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6),
    cut=st.integers(0, 200),
)
def test_fuzz_mutated_npy_never_crashes(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(npy_bytes(np.zeros((3, 2), dtype=[("a", "<f4"), ("b", "<i2", (2,))])))
    for pos, value in edits:
        data[pos % len(data)] = value
    result = scan_bytes(bytes(data[: max(1, len(data) - cut)]), "fuzz.npy")
    assert "MLT-GEN-004" not in rules(result), result.findings


# --------------------------------------------------------------------------------------------
# Every dtype spelling numpy reads as "object" (the data is then a pickle), with numpy as oracle.


class _SystemGadget:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def _npy_with_descr(descr: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([_SystemGadget()], dtype=object), allow_pickle=True)
    raw = buf.getvalue()
    hlen = int.from_bytes(raw[8:10], "little")
    header = raw[10 : 10 + hlen].decode("latin1").replace("'descr': '|O'", "'descr': " + descr)
    header = header.rstrip()
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return raw[:8] + len(header).to_bytes(2, "little") + header.encode("latin1") + raw[10 + hlen :]


@pytest.mark.parametrize(
    "descr",
    ["'|O'", "'O'", "'=O'", "'|O8'", "'object'", "('|O', (1,))", "[('a', [('b', 'O')])]"],
)
def test_object_dtype_in_any_spelling_numpy_reads_is_scanned(descr: str) -> None:
    raw = _npy_with_descr(descr)
    with pytest.raises(ValueError, match="allow_pickle"):
        np.load(io.BytesIO(raw), allow_pickle=False)  # numpy: this array is a pickle
    findings = scan_bytes(raw, "x.npy").findings
    assert [f for f in findings if f.severity is Severity.CRITICAL], findings


def _object_npy(tail: bytes) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array(["a", 1], dtype=object), allow_pickle=True)
    return buf.getvalue() + tail


def test_a_line_break_after_an_object_arrays_pickle_is_low() -> None:
    """numpy's own Python 2 test files end with "\\n" after the STOP; numpy.load ignores it."""
    data = _object_npy(b"\n")
    # mltrust: ignore[MLT-CODE-004] the real loader as oracle, on an array the test saved
    assert np.load(io.BytesIO(data), allow_pickle=True).tolist() == ["a", 1]
    result = scan_bytes(data, "a.npy")
    assert "MLT-NPY-004" in rules(result) and not result.fails(Severity.MEDIUM), result.findings


@pytest.mark.parametrize("tail", [b"\n" * 17, b"\n(", b" \x80\x04.", b"\ncos\nsystem\n"])
def test_other_bytes_after_an_object_arrays_pickle_stay_medium(tail: bytes) -> None:
    result = scan_bytes(_object_npy(tail), "a.npy")
    assert result.fails(Severity.MEDIUM), result.findings
