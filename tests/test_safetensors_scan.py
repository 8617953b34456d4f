"""safetensors scanner: real files are clean; every header lie is a precise finding."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from _tensor_helpers import assert_clean, rule_ids, scan_data, scan_path
from mltrust.config import ScanConfig
from mltrust.errors import InputError
from mltrust.findings import Location
from mltrust.scan._context import ScanContext
from mltrust.scan._registry import all_scanners
from mltrust.scan.formats.safetensors import SafetensorsScanner

MALFORMED = "MLT-ST-001"
DUPLICATE = "MLT-ST-002"


def build(header: dict[str, object] | str, data: bytes = b"", pad: bytes = b"") -> bytes:
    text = header if isinstance(header, str) else json.dumps(header)
    raw = text.encode() + pad
    return struct.pack("<Q", len(raw)) + raw + data


def one(dtype: str = "F32", shape: list[int] | None = None, offsets: list[int] | None = None):
    return {"dtype": dtype, "shape": shape or [2], "data_offsets": offsets or [0, 8]}


def messages(data: bytes, name: str = "m.safetensors") -> list[str]:
    return [f.message for f in scan_data(data, name).findings if f.rule_id == MALFORMED]


def test_benign_numpy_file_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file(
        {
            "w": np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32),
            "b": np.zeros(8, np.float16),
            "ids": np.arange(10, dtype=np.int64),
            "mask": np.ones((3, 3), bool),
            "empty": np.zeros((0, 4), np.uint8),
        },
        str(path),
        metadata={"format": "np", "note": "ok"},
    )
    ctx = scan_path(path)
    assert ctx.formats == ["safetensors"]
    assert ctx.findings == []
    assert ctx.facts["safetensors.tensors"] == 5


def test_benign_file_with_space_padded_header() -> None:
    data = build({"a": one()}, b"\0" * 8, pad=b"    ")
    ctx = scan_data(data)
    assert ctx.formats == ["safetensors"]
    assert_clean(ctx)


def test_header_length_past_end_of_file() -> None:
    raw = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    data = struct.pack("<Q", 1 << 40) + raw
    ctx = scan_data(data, "evil.safetensors")
    assert MALFORMED in rule_ids(ctx)
    assert any("exceeds" in f.message for f in ctx.findings)


def test_tensor_data_truncated() -> None:
    data = build({"a": one(shape=[4], offsets=[0, 16])}, b"\0" * 8)
    assert any("past the data section" in m for m in messages(data))


def test_shape_does_not_match_byte_count() -> None:
    data = build({"a": one(shape=[3], offsets=[0, 8])}, b"\0" * 8)
    assert any("needs 12 bytes" in m for m in messages(data))


def test_overlapping_tensors_alias_the_same_bytes() -> None:
    data = build({"a": one(offsets=[0, 8]), "b": one(offsets=[4, 12])}, b"\0" * 12)
    assert any("overlaps" in m for m in messages(data))


def test_hidden_bytes_in_gap_between_tensors() -> None:
    data = build({"a": one(offsets=[0, 8]), "b": one(offsets=[16, 24])}, b"\0" * 24)
    assert any("gap of 8" in m for m in messages(data))


def test_trailing_payload_after_last_tensor() -> None:
    data = build({"a": one()}, b"\0" * 8 + b"\x80\x04payload")
    assert any("data section holds" in m for m in messages(data))


def test_unknown_dtype() -> None:
    data = build({"a": one(dtype="OBJECT")}, b"\0" * 8)
    assert any("unknown dtype 'OBJECT'" in m for m in messages(data))


def test_negative_dimension() -> None:
    data = build({"a": one(shape=[-2])}, b"\0" * 8)
    assert any("non-negative" in m for m in messages(data))


def test_huge_shape_product_does_not_hang() -> None:
    data = build({"a": one(shape=[2**62] * 50)}, b"\0" * 8)
    started = time.perf_counter()
    assert any("needs" in m for m in messages(data))
    assert time.perf_counter() - started < 2


def test_bad_data_offsets() -> None:
    data = build({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8)
    assert any("after end" in m for m in messages(data))
    data = build({"a": {"dtype": "F32", "shape": [2], "data_offsets": "0-8"}}, b"\0" * 8)
    assert any("two non-negative integers" in m for m in messages(data))


def test_missing_tensor_fields() -> None:
    data = build({"a": {"dtype": "F32"}}, b"")
    assert any("missing shape, data_offsets" in m for m in messages(data))


def test_metadata_values_must_be_strings() -> None:
    data = build({"__metadata__": {"x": {"nested": 1}}, "a": one()}, b"\0" * 8)
    assert any("__metadata__['x']" in m for m in messages(data))


def test_duplicate_key_parser_differential() -> None:
    text = (
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
        '"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    )
    ctx = scan_data(build(text, b"\0" * 8))
    assert DUPLICATE in rule_ids(ctx)


def test_header_padding_with_nul_bytes() -> None:
    data = build({"a": one()}, b"\0" * 8, pad=b"\0\0\0\0")
    assert any("not valid JSON" in m for m in messages(data))


def test_header_with_nan_constant() -> None:
    data = build('{"__metadata__": {"a": NaN}}')
    assert any("NaN" in m for m in messages(data))


def test_header_with_trailing_garbage() -> None:
    ctx = scan_data(struct.pack("<Q", 9) + b"{  } [1] ", "m.safetensors")
    assert any("not valid JSON" in m for m in [f.message for f in ctx.findings])


def test_deeply_nested_header_json() -> None:
    text = '{"__metadata__": ' + "[" * 100_000 + "]" * 100_000 + "}"
    ctx = scan_data(build(text))
    assert MALFORMED in rule_ids(ctx)


def test_pickle_disguised_as_safetensors() -> None:
    if not any(s.name == "pickle" for s in all_scanners()):
        pytest.skip("no pickle scanner registered in this checkout")
    payload = b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
    ctx = scan_data(payload, "model.safetensors")
    assert "MLT-GEN-005" in rule_ids(ctx)


def test_not_sniffed_without_json_header() -> None:
    scanner = SafetensorsScanner()
    assert not scanner.sniff(memoryview(b"\x08\x00\x00\x00\x00\x00\x00\x00[1,2,3] "), "x")
    assert not scanner.sniff(memoryview(b"GGUF\x03\x00\x00\x00\x00\x00"), "x.safetensors")


def _scan_direct(data: bytes) -> None:
    ctx = ScanContext(config=ScanConfig())
    scanner = SafetensorsScanner()
    view = memoryview(data)
    if scanner.sniff(view, "f.safetensors"):
        try:
            scanner.scan(view, ctx, Location("f.safetensors"))
        except InputError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=300))
def test_fuzz_random_headers_never_crash(body: bytes, n: int) -> None:
    started = time.perf_counter()
    _scan_direct(struct.pack("<Q", n) + b"{" + body)
    assert time.perf_counter() - started < 2


_SEED = build({"__metadata__": {"k": "v"}, "a": one(), "b": one("I8", [4], [8, 12])}, b"\1" * 12)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_file_never_crashes(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for pos, value in mutations:
        data[pos] = value
    started = time.perf_counter()
    _scan_direct(bytes(data))
    assert time.perf_counter() - started < 2


def test_null_metadata_is_accepted_like_the_reference_parser() -> None:
    ctx = scan_data(build({"__metadata__": None, "a": one()}, b"\0" * 8))
    assert ctx.findings == []
