"""The bounded protobuf wire-format reader shared by the ONNX and TensorFlow scanners."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _tensor_helpers import ld, varint, vi
from mltrust.errors import InputError, LimitExceeded
from mltrust.scan import _protobuf as pb


def fields(data: bytes) -> list[pb.Field]:
    return list(pb.iter_fields(memoryview(data)))


def test_all_wire_types_decode() -> None:
    data = vi(1, 300) + ld(2, b"abc") + varint(3 << 3 | 1) + (7).to_bytes(8, "little")
    data += varint(4 << 3 | 5) + (9).to_bytes(4, "little")
    out = fields(data)
    assert [(f.number, f.wire_type) for f in out] == [(1, 0), (2, 2), (3, 1), (4, 5)]
    assert out[0].value == 300
    assert data[out[1].value : out[1].end] == b"abc"
    assert out[1].size == 3
    assert out[2].value == 7
    assert out[3].value == 9


def test_length_delimited_payload_is_an_offset_not_a_copy() -> None:
    buf = memoryview(ld(1, b"x" * 1_000_000))
    (f,) = pb.iter_fields(buf)
    assert f.end - f.value == 1_000_000
    assert pb.text(buf, f, limit=5) == "xxxxx"


def test_length_past_end_is_rejected() -> None:
    with pytest.raises(pb.ProtobufError, match="claims 100 bytes"):
        fields(varint(1 << 3 | 2) + varint(100) + b"abc")


def test_overlong_varint_is_rejected() -> None:
    with pytest.raises(pb.ProtobufError, match="longer than 10 bytes"):
        fields(b"\x08" + b"\xff" * 11 + b"\x01")


@pytest.mark.parametrize("data", [b"\x08", b"\x09\x00\x00", b"\x0d\x00", b"\x80"])
def test_truncated_fields_are_rejected(data: bytes) -> None:
    with pytest.raises(pb.ProtobufError):
        fields(data)


@pytest.mark.parametrize("key", [0x00, 0x0B, 0x0C, 0x0E, 0x0F])
def test_field_zero_groups_and_bad_wire_types_are_rejected(key: int) -> None:
    with pytest.raises(pb.ProtobufError):
        fields(bytes([key, 0, 0, 0, 0, 0, 0, 0, 0]))


def test_bounds_outside_buffer_are_rejected() -> None:
    with pytest.raises(pb.ProtobufError):
        list(pb.iter_fields(memoryview(b"\x08\x01"), 0, 10))


def test_errors_are_input_errors_and_depth_is_a_limit() -> None:
    assert issubclass(pb.ProtobufError, InputError)
    pb.check_depth(5, 5, 0)
    with pytest.raises(LimitExceeded):
        pb.check_depth(6, 5, 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_parse_or_raise_protobuf_error(data: bytes) -> None:
    started = time.perf_counter()
    try:
        for f in fields(data):
            assert f.wire_type in (0, 1, 2, 5)
            if f.wire_type == pb.LEN:
                assert 0 <= f.value <= f.end <= len(data)
    except pb.ProtobufError:
        pass
    assert time.perf_counter() - started < 2
