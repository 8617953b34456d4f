"""Red-team round 7 (issue 10): structures the scanner left unread or half-read.

* HDF5 dense storage whose name index is a v2 B-tree deeper than one leaf (thousands of
  attributes or links), huge heap objects and nested fractal-heap indirect blocks: every
  attribute and link libhdf5 finds must be read, with h5py as the oracle.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.hdf5 import read_root_attributes
from test_keras_h5 import keras2_config, lambda_layer


def _rules(data: bytes, name: str, config: ScanConfig | None = None) -> dict[str, Severity]:
    out: dict[str, Severity] = {}
    for f in scan_bytes(data, name, config).findings:
        out[f.rule_id] = max(out.get(f.rule_id, f.severity), f.severity)
    return out


# -- HDF5: dense storage behind multi-level v2 B-trees ---------------------------------------


def _btree_depths(data: bytes) -> list[int]:
    """Depth of every v2 B-tree header in the file (the field after the record size)."""
    depths = []
    at = data.find(b"BTHD")
    while at >= 0:
        depths.append(int.from_bytes(data[at + 12 : at + 14], "little"))
        at = data.find(b"BTHD", at + 1)
    return depths


def _many_attributes(
    config: dict[str, Any], count: int, position: int, fixed: bool = False
) -> bytes:
    h5py = pytest.importorskip("h5py")
    np = pytest.importorskip("numpy")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        for i in range(count):
            if i == position:
                text = json.dumps(config).encode()
                f.attrs["model_config"] = np.bytes_(text) if fixed else text
            f.attrs[f"note_{i:05d}"] = f"value {i}"
        f.attrs["keras_version"] = b"2.15.0"
    return bio.getvalue()


def _h5py_attribute_names(data: bytes) -> set[str]:
    h5py = pytest.importorskip("h5py")
    with h5py.File(io.BytesIO(data), "r") as f:
        return set(f.attrs.keys())


@pytest.mark.parametrize("position", [0, 700, 1399])
def test_h5_lambda_deep_in_a_two_level_attribute_name_index(position: int, canary: Path) -> None:
    data = _many_attributes(keras2_config([lambda_layer(canary)]), 1400, position)
    assert max(_btree_depths(data)) >= 2  # libhdf5 built internal nodes over internal nodes
    attrs = read_root_attributes(memoryview(data))
    assert not attrs.dense
    assert set(attrs.names) == _h5py_attribute_names(data)  # every name h5py lists
    assert len(attrs.names) == len(set(attrs.names))
    result = scan_bytes(data, "model.h5")
    lam = [f for f in result.findings if f.rule_id == "MLT-KER-001"]
    assert lam and lam[0].severity == Severity.CRITICAL
    assert dict(result.facts).get("keras_config") is True  # read where Keras reads it
    assert "MLT-H5-001" not in {f.rule_id for f in result.findings}
    assert not canary.exists()


def test_h5_many_benign_attributes_are_read_and_clean() -> None:
    data = _many_attributes(keras2_config(), 1400, 3)
    attrs = read_root_attributes(memoryview(data))
    assert set(attrs.names) == _h5py_attribute_names(data)
    assert scan_bytes(data, "model.h5").findings == ()


def test_h5_huge_fixed_length_config_in_dense_storage_is_read_exactly(canary: Path) -> None:
    """A model_config over 64 KiB stored as a fixed-length string is a huge heap object, kept
    outside the managed blocks and found through the heap's own B-tree."""
    filler = [{"class_name": "Dense", "config": {"name": f"d{i}", "units": 8}} for i in range(2000)]
    data = _many_attributes(keras2_config([*filler, lambda_layer(canary)]), 30, 10, fixed=True)
    assert len(_btree_depths(data)) == 2  # the name index and the huge-object index
    attrs = read_root_attributes(memoryview(data))
    assert not attrs.dense and set(attrs.names) == _h5py_attribute_names(data)
    result = scan_bytes(data, "model.h5")
    assert {f.rule_id for f in result.findings} == {"MLT-KER-001"}
    assert dict(result.facts).get("keras_config") is True


def _many_links(external_at: int | None, count: int = 1400) -> tuple[bytes, int]:
    h5py = pytest.importorskip("h5py")
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="latest") as f:
        layers = f.create_group("layers")
        for i in range(count):
            if i == external_at:
                layers[f"layer_{i:05d}x"] = h5py.ExternalLink("/etc/secret.h5", "/data")
            layers.create_group(f"layer_{i:05d}")
    data = bio.getvalue()
    with h5py.File(io.BytesIO(data), "r") as f:
        objects: list[str] = []
        f.visit(objects.append)
    return data, len(objects) + 1


@pytest.mark.parametrize("position", [0, 900, 1399])
def test_h5_external_link_deep_in_a_two_level_link_name_index(position: int) -> None:
    data, _ = _many_links(position)
    assert max(_btree_depths(data)) >= 1
    rules = _rules(data, "model.weights.h5")
    assert rules == {"MLT-H5-004": Severity.HIGH}, rules


def test_h5_thousands_of_links_walk_clean_and_every_object_is_visited() -> None:
    data, objects = _many_links(None)
    result = scan_bytes(data, "model.weights.h5")
    assert result.findings == ()
    assert dict(result.facts)["hdf5_objects"] == objects  # h5py's visit, plus the root


def _root_btree(data: bytes) -> tuple[int, int, int, int]:
    """(header offset, root node address, record count, record size) of the first B-tree."""
    at = data.find(b"BTHD")
    record_size = int.from_bytes(data[at + 10 : at + 12], "little")
    root = int.from_bytes(data[at + 16 : at + 24], "little")
    count = int.from_bytes(data[at + 24 : at + 26], "little")
    return at, root, count, record_size


def test_h5_attribute_name_index_that_loops_fails_closed(canary: Path) -> None:
    data = bytearray(_many_attributes(keras2_config([lambda_layer(canary)]), 1400, 700))
    _, root, count, record_size = _root_btree(bytes(data))
    assert data[root : root + 4] == b"BTIN"
    child = root + 6 + count * record_size  # first child pointer: now the root itself
    data[child : child + 8] = root.to_bytes(8, "little")
    assert read_root_attributes(memoryview(bytes(data))).dense
    rules = _rules(bytes(data), "model.h5")
    assert rules.get("MLT-H5-001") == Severity.MEDIUM, rules
    assert rules.get("MLT-KER-001") == Severity.CRITICAL  # the content search still finds it


def test_h5_attribute_name_index_deeper_than_the_limit_fails_closed() -> None:
    data = _many_attributes(keras2_config(), 1400, 3)
    tight = ScanConfig(limits=dataclasses.replace(Limits(), max_nesting_depth=1))
    assert read_root_attributes(memoryview(data), tight.limits).dense
    assert _rules(data, "model.h5", tight).get("MLT-H5-001") == Severity.MEDIUM
    forged = bytearray(data)
    at, *_ = _root_btree(data)
    forged[at + 12 : at + 14] = (0xFFFF).to_bytes(2, "little")  # a forged depth
    assert _rules(bytes(forged), "model.h5") == {"MLT-H5-001": Severity.MEDIUM}
