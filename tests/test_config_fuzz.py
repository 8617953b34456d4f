"""Property tests: any bytes through the config and HDF5 scanners give findings, never a crash."""

from __future__ import annotations

import io
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.config import ScanConfig
from mltrust.errors import InputError
from mltrust.findings import Location
from mltrust.scan._context import ScanContext
from mltrust.scan.formats.config import ConfigScanner
from mltrust.scan.formats.hdf5 import Hdf5Scanner

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SEED_JSON = json.dumps(
    {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"class_name": "Dense", "config": {"units": 3}},
                {"class_name": "Lambda", "config": {"function": ["4wEAAAAA", None, None]}},
            ]
        },
        "opt": {"_target_": "torch.optim.Adam", "lr": 0.1},
        "chat_template": "{{ messages[0]['content'] }}",
    }
).encode()
SEED_YAML = b"a: &x [1, 2]\nb: [*x, *x]\nc:\n  _target_: torch.nn.Linear\n  in_features: 4\n"


def run(scanner: ConfigScanner | Hdf5Scanner, data: bytes) -> ScanContext:
    ctx = ScanContext(config=ScanConfig())
    view = memoryview(data)
    started = time.perf_counter()
    if scanner.sniff(view, "x"):
        try:
            scanner.scan(view, ctx, Location("x"))
        except InputError:
            pass  # the engine turns these into findings
    assert time.perf_counter() - started < 10
    return ctx


def mutate(seed: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(seed)
    for pos, value in edits:
        if data:
            data[pos % len(data)] = value
    return bytes(data)


edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12)


@_SETTINGS
@given(st.binary(max_size=2048))
def test_config_scanner_random_bytes(data: bytes) -> None:
    run(ConfigScanner(), data)


@_SETTINGS
@given(st.sampled_from([SEED_JSON, SEED_YAML]), edits, st.integers(0, 400))
def test_config_scanner_mutated_documents(
    seed: bytes, changes: list[tuple[int, int]], cut: int
) -> None:
    data = mutate(seed, changes)
    run(ConfigScanner(), data[: len(data) - cut] if cut < len(data) else data)


@_SETTINGS
@given(st.text(max_size=500))
def test_config_scanner_random_yaml_text(text: str) -> None:
    run(ConfigScanner(), ("k: v\n" + text).encode("utf-8", "surrogatepass"))


@pytest.fixture(scope="module")
def h5_seed() -> bytes:
    h5py = pytest.importorskip("h5py")
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {}}).encode()
        f.attrs["keras_version"] = "2.15.0"
        f.create_dataset("w", data=[1.0, 2.0, 3.0])
    return bio.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=edits, cut=st.integers(0, 3000))
def test_hdf5_scanner_mutated_files(h5_seed: bytes, edits: list[tuple[int, int]], cut: int) -> None:
    data = mutate(h5_seed, [(p % 2048, v) for p, v in edits])
    run(Hdf5Scanner(), data[: max(len(data) - cut, 8)])
