"""Property tests: any bytes and mutated real pickles scan in bounded time, never crash."""

from __future__ import annotations

import io
import pickle
import time

import joblib
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.config import ScanConfig
from mltrust.findings import Location
from mltrust.scan import scan_bytes
from mltrust.scan._context import ScanContext
from mltrust.scan._pickle import scan_pickle_stream


def _seeds() -> list[bytes]:
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(20.0), "o": np.array([1, "x"], dtype=object), "k": [1, 2]}, buf)
    return [
        pickle.dumps({"a": [1, 2.5, "x", b"y", None, (1, 2)], "s": {1, 2}}, protocol=p)
        for p in range(6)
    ] + [buf.getvalue(), b"cos\nsystem\n(S'echo'\ntR."]


SEEDS = _seeds()
FUZZ = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash(data: bytes) -> None:
    started = time.perf_counter()
    result = scan_bytes(data, "fuzz.pkl")
    assert time.perf_counter() - started < 2.0
    assert all(f.rule_id != "MLT-GEN-004" for f in result.findings), result.findings


@FUZZ
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10_000),
)
def test_mutated_pickles_never_crash(seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for where, value in edits:
        data[where % len(data)] = value
    data = data[: max(1, len(data) - cut % 8)]
    ctx = ScanContext(config=ScanConfig())
    started = time.perf_counter()
    summary = scan_pickle_stream(memoryview(bytes(data)), ctx, Location("m.pkl"))
    assert time.perf_counter() - started < 2.0
    assert summary.end <= len(data)
    if not summary.complete:
        assert ctx.findings, "an incomplete parse must leave a finding"


@FUZZ
@given(st.lists(st.sampled_from(list(b"()0123abdeltsuR\x85\x86\x87\x93\x94h\x81NK")), max_size=300))
def test_random_opcode_sequences_never_crash(ops: list[int]) -> None:
    data = b"\x80\x04" + bytes(ops) + b"."
    ctx = ScanContext(config=ScanConfig())
    summary = scan_pickle_stream(memoryview(data), ctx, Location("ops.pkl"))
    assert summary.complete or ctx.findings
