"""GGUF scanner: real files are clean; hostile headers, layouts and chat templates are found."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tensor_helpers import assert_clean, gguf_string, rule_ids, scan_data, scan_path
from mltrust.config import Limits, ScanConfig
from mltrust.errors import InputError
from mltrust.findings import Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan.formats.gguf import GGML_TYPE_SIZES, GgufScanner

MALFORMED = "MLT-GGUF-001"
LAYOUT = "MLT-GGUF-002"
STRING, ARRAY, UINT32 = 8, 9, 4

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
    "message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)


def kv_string(key: str, value: str, order: str = "<") -> bytes:
    return (
        gguf_string(key, order=order)
        + struct.pack(order + "I", STRING)
        + gguf_string(value, order=order)
    )


def kv_u32(key: str, value: int, order: str = "<") -> bytes:
    return gguf_string(key, order=order) + struct.pack(order + "II", UINT32, value)


def tensor_info(name: str, dims: list[int], ggml_type: int, offset: int, order: str = "<") -> bytes:
    out = gguf_string(name, order=order) + struct.pack(order + "I", len(dims))
    out += b"".join(struct.pack(order + "Q", d) for d in dims)
    return out + struct.pack(order + "IQ", ggml_type, offset)


def build(
    kvs: list[bytes],
    tensors: list[bytes],
    data: bytes = b"",
    *,
    version: int = 3,
    order: str = "<",
    align: int = 32,
    counts: tuple[int, int] | None = None,
) -> bytes:
    n_tensors, n_kv = counts if counts else (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack(order + "IQQ", version, n_tensors, n_kv)
    body = head + b"".join(kvs) + b"".join(tensors)
    body += b"\0" * (-len(body) % align)
    return body + data


def write_real(path: Path, template: str | None, extra_templates: dict[str, str] | None = None):
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny")
    writer.add_context_length(128)
    writer.add_token_list(["<s>", "</s>", "hello", "world"])
    writer.add_token_scores([0.0, 0.0, -1.0, -2.0])
    if template is not None:
        writer.add_chat_template(template)
    for name, text in (extra_templates or {}).items():
        writer.add_string(f"tokenizer.chat_template.{name}", text)
    writer.add_tensor("tok_embd.weight", np.ones((4, 8), np.float32))
    writer.add_tensor("out.weight", np.ones((8, 8), np.float16))
    writer.add_tensor("norm", np.arange(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("template", [CHATML, LLAMA3])
def test_benign_real_gguf_with_ordinary_template(tmp_path: Path, template: str) -> None:
    path = tmp_path / "model.gguf"
    write_real(path, template, {"tool_use": CHATML})
    ctx = scan_path(path)
    assert ctx.formats == ["gguf"]
    assert_clean(ctx)
    assert ctx.facts["gguf.tensors"] == 3


def test_type_size_table_matches_gguf_package() -> None:
    for qtype, sizes in gguf.GGML_QUANT_SIZES.items():
        assert GGML_TYPE_SIZES[int(qtype)] == sizes, qtype.name


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('touch CANARY').read() }}",
        "{{ lipsum.__globals__['os'].popen('touch CANARY') }}",
        "{% for m in messages %}{{ m.content }}{% endfor %}"
        "{{ self.__init__.__globals__.__builtins__['__import__']('os').system('touch CANARY') }}",
    ],
)
def test_chat_template_ssti_is_critical(tmp_path: Path, template: str, canary: Path) -> None:
    path = tmp_path / "evil.gguf"
    write_real(path, template.replace("CANARY", str(canary)))
    ctx = scan_path(path)
    assert [f for f in ctx.findings if f.severity == Severity.CRITICAL], ctx.findings


def test_ssti_in_named_chat_template_variant(tmp_path: Path) -> None:
    path = tmp_path / "evil.gguf"
    write_real(path, CHATML, {"rag": "{{ ''.__class__.__mro__[1].__subclasses__() }}"})
    ctx = scan_path(path)
    hits = [f for f in ctx.findings if f.severity == Severity.CRITICAL]
    assert hits
    assert hits[0].location.detail == "tokenizer.chat_template.rag"


def test_ssti_in_raw_big_endian_file() -> None:
    evil = "{{ cycler.__init__.__globals__.os.popen('id') }}"
    data = build([kv_string("tokenizer.chat_template", evil, ">")], [], order=">")
    ctx = scan_data(data, "x.gguf")
    assert ctx.facts["gguf.byte_order"] == "big"
    assert any(f.severity == Severity.CRITICAL for f in ctx.findings)


def test_benign_big_endian_file_with_tensor() -> None:
    data = build(
        [kv_u32("general.alignment", 32, ">")],
        [tensor_info("t", [8], 0, 0, ">")],
        b"\0" * 32,
        order=">",
    )
    ctx = scan_data(data, "be.gguf")
    assert_clean(ctx)
    assert ctx.findings == []


def test_version1_file_with_32bit_counts() -> None:
    key = gguf_string("general.name", v1=True)
    kv = key + struct.pack("<I", STRING) + gguf_string("tiny", v1=True)
    info = gguf_string("t", v1=True) + struct.pack("<II", 1, 4) + struct.pack("<IQ", 0, 0)
    head = b"GGUF" + struct.pack("<III", 1, 1, 1)
    body = head + kv + info
    body += b"\0" * (-len(body) % 32) + b"\0" * 16
    ctx = scan_data(body, "v1.gguf")
    assert ctx.findings == []
    assert ctx.facts["gguf.tensors"] == 1


def test_unsupported_version() -> None:
    ctx = scan_data(b"GGUF" + struct.pack("<IQQ", 99, 0, 0), "x.gguf")
    assert MALFORMED in rule_ids(ctx)


def test_huge_metadata_count_allocates_nothing() -> None:
    data = build([], [], counts=(0, 2**63))
    started = time.perf_counter()
    ctx = scan_data(data, "x.gguf")
    assert time.perf_counter() - started < 2
    assert any("cannot fit" in f.message for f in ctx.findings)


def test_huge_tensor_count_allocates_nothing() -> None:
    data = build([kv_u32("general.alignment", 32)], [], counts=(2**40, 1))
    ctx = scan_data(data, "x.gguf")
    assert any("tensor count" in f.message for f in ctx.findings)


def test_count_above_configured_limit() -> None:
    data = build([kv_u32("a", 1), kv_u32("b", 2)], [])
    ctx = scan_data(data, "x.gguf", limits=Limits(max_entries=1))
    assert "MLT-GEN-003" in rule_ids(ctx)


def test_string_length_past_end_of_file() -> None:
    kv = gguf_string("general.name") + struct.pack("<IQ", STRING, 2**62) + b"abc"
    ctx = scan_data(build([kv], []), "x.gguf")
    assert MALFORMED in rule_ids(ctx)
    assert any("general.name" in f.message for f in ctx.findings)


def test_huge_array_length() -> None:
    kv = gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", ARRAY, STRING, 2**60)
    ctx = scan_data(build([kv], []), "x.gguf")
    assert any("cannot fit" in f.message for f in ctx.findings)
    kv = gguf_string("scores") + struct.pack("<IIQ", ARRAY, 6, 2**60)
    ctx = scan_data(build([kv], []), "x.gguf")
    assert MALFORMED in rule_ids(ctx)


def test_deeply_nested_arrays_hit_the_depth_limit() -> None:
    depth = 300
    value = struct.pack("<IQ", ARRAY, 1) * depth + struct.pack("<IQ", UINT32, 0)
    kv = gguf_string("nest") + struct.pack("<I", ARRAY) + value
    ctx = scan_data(build([kv], []), "x.gguf")
    assert "MLT-GEN-003" in rule_ids(ctx)


def test_unknown_value_type() -> None:
    kv = gguf_string("k") + struct.pack("<I", 13) + b"\0" * 8
    ctx = scan_data(build([kv], []), "x.gguf")
    assert any("unknown metadata value type 13" in f.message for f in ctx.findings)


def test_tensor_data_past_end_of_file() -> None:
    data = build([], [tensor_info("t", [1024], 0, 0)], b"\0" * 64)
    ctx = scan_data(data, "x.gguf")
    assert any(f.rule_id == LAYOUT and "past the end" in f.message for f in ctx.findings)


def test_overlapping_tensor_data() -> None:
    tensors = [tensor_info("a", [16], 0, 0), tensor_info("b", [16], 0, 32)]
    ctx = scan_data(build([], tensors, b"\0" * 128), "x.gguf")
    assert any(f.rule_id == LAYOUT and "overlaps" in f.message for f in ctx.findings)


def test_misaligned_tensor_offset() -> None:
    tensors = [tensor_info("a", [4], 0, 0), tensor_info("b", [4], 0, 20)]
    ctx = scan_data(build([], tensors, b"\0" * 64), "x.gguf")
    assert any("not aligned" in f.message for f in ctx.findings)


def test_too_many_dimensions() -> None:
    ctx = scan_data(build([], [tensor_info("a", [1] * 9, 0, 0)], b"\0" * 32), "x.gguf")
    assert any("9 dimensions" in f.message for f in ctx.findings)


def test_unknown_ggml_type() -> None:
    ctx = scan_data(build([], [tensor_info("a", [4], 77, 0)], b"\0" * 32), "x.gguf")
    assert any("unknown ggml type 77" in f.message for f in ctx.findings)


def test_element_count_overflow() -> None:
    ctx = scan_data(build([], [tensor_info("a", [2**40, 2**40], 0, 0)], b"\0" * 32), "x.gguf")
    assert any("overflow" in f.message for f in ctx.findings)


def test_alignment_not_power_of_two() -> None:
    ctx = scan_data(build([kv_u32("general.alignment", 24)], []), "x.gguf")
    assert any("power of two" in f.message for f in ctx.findings)


def test_truncated_real_file(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    write_real(path, CHATML)
    data = path.read_bytes()
    for cut in (10, 30, 200, len(data) - 40):
        ctx = scan_data(data[:cut], "model.gguf")
        assert {MALFORMED, LAYOUT} & rule_ids(ctx), cut


def _scan_direct(data: bytes) -> None:
    scanner = GgufScanner()
    view = memoryview(data)
    if scanner.sniff(view, "f.gguf"):
        try:
            scanner.scan(view, ScanContext(config=ScanConfig()), Location("f.gguf"))
        except InputError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_crash(body: bytes) -> None:
    started = time.perf_counter()
    _scan_direct(b"GGUF" + body)
    assert time.perf_counter() - started < 2


_SEED = build(
    [kv_string("tokenizer.chat_template", "{{ x }}"), kv_u32("general.alignment", 32)],
    [tensor_info("a", [8], 0, 0), tensor_info("b", [32], 8, 32)],
    b"\1" * 96,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_mutated_file_never_crashes(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for pos, value in mutations:
        data[pos] = value
    started = time.perf_counter()
    _scan_direct(bytes(data))
    assert time.perf_counter() - started < 2


def test_hidden_bytes_after_last_tensor_are_reported_low() -> None:
    data = build([], [tensor_info("a", [8], 0, 0)], b"\0" * 32 + b"\x80\x04hidden payload" * 8)
    ctx = scan_data(data, "x.gguf")
    hits = [f for f in ctx.findings if f.rule_id == LAYOUT]
    assert hits
    assert hits[0].severity == Severity.LOW


def test_duplicate_metadata_key_parser_differential() -> None:
    evil = "{{ lipsum.__globals__.os.popen('id') }}"
    kvs = [kv_string("tokenizer.chat_template", CHATML), kv_string("tokenizer.chat_template", evil)]
    ctx = scan_data(build(kvs, []), "x.gguf")
    assert any(f.rule_id == MALFORMED and "appears twice" in f.message for f in ctx.findings)
    assert any(f.severity == Severity.CRITICAL for f in ctx.findings)


def test_duplicate_tensor_name() -> None:
    tensors = [tensor_info("a", [8], 0, 0), tensor_info("a", [8], 0, 32)]
    ctx = scan_data(build([], tensors, b"\0" * 64), "x.gguf")
    assert any(f.rule_id == LAYOUT and "appears twice" in f.message for f in ctx.findings)
