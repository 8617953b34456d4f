"""Keras ``.h5`` models and HDF5 weights, built with h5py and scanned from bytes."""

from __future__ import annotations

import base64
import io
import json
import marshal
from pathlib import Path
from typing import Any

import pytest

from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.hdf5 import Hdf5Scanner, find_superblock, read_root_attributes

h5py = pytest.importorskip("h5py")
np = pytest.importorskip("numpy")


def _payload(canary: Path) -> str:
    src = f"lambda x: __import__('os').system('touch {canary}') or x"
    # mltrust: ignore[MLT-CODE-005] the test builds a planted Lambda layer's bytecode
    code = compile(src, "<payload>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


def keras2_config(extra_layers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    layers: list[dict[str, Any]] = [
        {
            "class_name": "InputLayer",
            "config": {"batch_input_shape": [None, 8], "dtype": "float32", "name": "in"},
        },
        {
            "class_name": "Dense",
            "config": {
                "name": "dense",
                "units": 16,
                "activation": "relu",
                "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                "bias_initializer": {"class_name": "Zeros", "config": {}},
            },
        },
        {"class_name": "Dropout", "config": {"name": "dropout", "rate": 0.1}},
        {"class_name": "BatchNormalization", "config": {"name": "bn", "momentum": 0.99}},
        {"class_name": "Dense", "config": {"name": "out", "units": 1, "activation": "sigmoid"}},
    ]
    layers.extend(extra_layers or [])
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


TRAINING = {
    "loss": "binary_crossentropy",
    "metrics": [[{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy"}}]],
    "optimizer_config": {
        "class_name": "Adam",
        "config": {"name": "Adam", "learning_rate": 0.001, "beta_1": 0.9},
    },
}


def lambda_layer(canary: Path) -> dict[str, Any]:
    return {
        "class_name": "Lambda",
        "config": {
            "name": "lambda",
            "function": [_payload(canary), None, None],
            "function_type": "lambda",
            "module": "__main__",
            "output_shape": None,
            "output_shape_type": "raw",
            "arguments": {},
        },
    }


def make_h5(
    model_config: object | None,
    *,
    libver: str = "earliest",
    userblock: int = 0,
    as_bytes: bool = True,
    many_attrs: bool = False,
) -> bytes:
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver=libver, userblock_size=userblock) as f:
        if many_attrs:
            for i in range(24):
                f.attrs[f"note{i}"] = "x" * 64
        if model_config is not None:
            text = json.dumps(model_config)
            f.attrs["model_config"] = text.encode() if as_bytes else text
            f.attrs["training_config"] = json.dumps(TRAINING).encode()
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        weights = f.create_group("model_weights")
        dense = weights.create_group("dense")
        dense.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        dense.create_dataset("kernel:0", data=np.random.default_rng(0).random((8, 16)))
        dense.create_dataset("bias:0", data=np.zeros(16))
    return bio.getvalue()


def medium_plus(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.severity >= Severity.MEDIUM]


@pytest.mark.parametrize("libver", ["earliest", "latest"])
@pytest.mark.parametrize("as_bytes", [True, False])
def test_benign_keras_h5_model_has_no_findings(libver: str, as_bytes: bool) -> None:
    result = scan_bytes(make_h5(keras2_config(), libver=libver, as_bytes=as_bytes), "model.h5")
    assert result.formats == ("hdf5",)
    assert medium_plus(result.findings) == []
    assert dict(result.facts).get("keras_config") is True


def test_weights_only_h5_is_benign_data() -> None:
    result = scan_bytes(make_h5(None), "weights.h5")
    assert result.formats == ("hdf5",)
    assert result.findings == ()


@pytest.mark.parametrize("libver", ["earliest", "latest"])
@pytest.mark.parametrize("as_bytes", [True, False])
def test_h5_lambda_layer_in_model_config(libver: str, as_bytes: bool, canary: Path) -> None:
    data = make_h5(keras2_config([lambda_layer(canary)]), libver=libver, as_bytes=as_bytes)
    result = scan_bytes(data, "model.h5")
    lam = [f for f in result.findings if f.rule_id == "MLT-KER-001"]
    assert lam and lam[0].severity == Severity.CRITICAL
    assert "system" in lam[0].message
    assert not canary.exists()


@pytest.mark.parametrize("userblock", [512, 4096])
def test_h5_lambda_behind_user_block(userblock: int, canary: Path) -> None:
    data = make_h5(keras2_config([lambda_layer(canary)]), userblock=userblock)
    assert find_superblock(memoryview(data)) == userblock
    assert "MLT-KER-001" in {f.rule_id for f in scan_bytes(data, "m.h5").findings}


def test_h5_lambda_in_dense_attribute_storage(canary: Path) -> None:
    data = make_h5(keras2_config([lambda_layer(canary)]), libver="latest", many_attrs=True)
    attrs = read_root_attributes(memoryview(data))
    assert not attrs.dense  # the fractal heap is read ...
    assert "model_config" in attrs.values
    rules = {f.rule_id for f in scan_bytes(data, "m.h5").findings}
    assert "MLT-KER-001" in rules  # ... and the config analysed
    # A heap that cannot be read (its direct block signature broken) falls back to content.
    broken = data.replace(b"FHDB", b"XHDB")
    assert read_root_attributes(memoryview(broken)).dense
    rules = {f.rule_id for f in scan_bytes(broken, "m.h5").findings}
    assert {"MLT-KER-001", "MLT-H5-001"} <= rules


def test_h5_non_keras_module_in_training_config() -> None:
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.attrs["model_config"] = json.dumps(keras2_config()).encode()
        training = dict(TRAINING)
        training["loss"] = {
            "module": "posix",
            "class_name": "function",
            "config": "system",
            "registered_name": None,
        }
        f.attrs["training_config"] = json.dumps(training).encode()
    findings = scan_bytes(bio.getvalue(), "m.h5").findings
    bad = [f for f in findings if f.rule_id == "MLT-KER-002"]
    assert bad and bad[0].severity == Severity.CRITICAL


def test_h5_model_config_not_json_is_not_fully_scanned() -> None:
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.attrs["model_config"] = b"garbage{not json"
    findings = scan_bytes(bio.getvalue(), "m.h5").findings
    assert any(f.rule_id == "MLT-H5-001" and f.severity == Severity.MEDIUM for f in findings)


def test_h5_model_config_of_numeric_type_is_not_fully_scanned() -> None:
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.attrs["model_config"] = np.arange(4)
    findings = scan_bytes(bio.getvalue(), "m.h5").findings
    assert any(f.rule_id == "MLT-H5-001" for f in findings)


def test_h5_corrupted_structure_falls_back_to_content(canary: Path) -> None:
    data = bytearray(make_h5(keras2_config([lambda_layer(canary)])))
    data[8] = 9  # unknown superblock version
    findings = scan_bytes(bytes(data), "m.h5").findings
    rules = {f.rule_id for f in findings}
    assert "MLT-H5-002" in rules and "MLT-KER-001" in rules


def test_h5_corrupted_structure_with_hidden_config_is_not_clean() -> None:
    data = bytearray(make_h5(keras2_config()))
    data[8] = 9
    # Break every JSON object so that the content fallback cannot decode a config either.
    text = bytes(data).replace(b'{"class_name"', b'{"class_nam\x00"')
    findings = scan_bytes(text, "m.h5").findings
    assert any(f.rule_id == "MLT-H5-001" for f in findings), findings


def test_h5_truncated_file_does_not_crash() -> None:
    data = make_h5(keras2_config())
    for cut in (9, 40, 200, 800, len(data) // 2):
        result = scan_bytes(data[:cut], "m.h5")
        assert all(f.rule_id != "MLT-GEN-004" for f in result.findings), result.findings


def test_h5_sniff_rejects_other_bytes() -> None:
    scanner = Hdf5Scanner()
    assert not scanner.sniff(memoryview(b"PK\x03\x04" + b"\x00" * 600), "x.h5")
    assert scanner.sniff(memoryview(make_h5(None)), "x.bin")


def test_h5_lambda_model_fails_cli_scan(tmp_path: Path, canary: Path) -> None:
    from mltrust.cli._main import main

    bad = tmp_path / "model.h5"
    bad.write_bytes(make_h5(keras2_config([lambda_layer(canary)])))
    good = tmp_path / "weights.h5"
    good.write_bytes(make_h5(keras2_config()))
    assert main(["scan", str(good), "--format", "json"]) == 0
    assert main(["scan", str(bad), "--format", "json"]) == 1
    assert not canary.exists()


@pytest.mark.parametrize("libver", ["earliest", "latest"])
def test_h5_lambda_with_attribute_creation_order_tracked(libver: str, canary: Path) -> None:
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver=libver, track_order=True) as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(keras2_config([lambda_layer(canary)]))
    attrs = read_root_attributes(memoryview(bio.getvalue()))
    assert set(attrs.names) == {"keras_version", "model_config"}
    assert "MLT-KER-001" in {f.rule_id for f in scan_bytes(bio.getvalue(), "m.h5").findings}


def test_h5_large_config_in_dense_storage_found_by_content(canary: Path) -> None:
    filler = [
        {"class_name": "Dense", "config": {"name": f"dense_{i}", "units": 8, "pad": "x" * 200}}
        for i in range(6000)
    ]
    data = make_h5(keras2_config([*filler, lambda_layer(canary)]), libver="latest", many_attrs=True)
    findings = scan_bytes(data, "m.h5").findings
    assert "MLT-KER-001" in {f.rule_id for f in findings}


@pytest.mark.parametrize("evil_first", [True, False])
def test_h5_duplicate_model_config_attribute(evil_first: bool, canary: Path) -> None:
    """Two root attributes named model_config (written under another name, then renamed in
    the raw bytes; version 1 object headers carry no checksum): whichever one a reader picks,
    both are analysed and the duplicate is high."""
    benign = json.dumps(keras2_config()).encode()
    evil = json.dumps(keras2_config([lambda_layer(canary)])).encode()
    width = max(len(benign), len(evil))
    first, second = (evil, benign) if evil_first else (benign, evil)
    bio = io.BytesIO()
    with h5py.File(bio, "w", libver="earliest") as f:
        f.attrs["model_config"] = first.ljust(width)
        f.attrs["model_confiX"] = second.ljust(width)
        f.attrs["keras_version"] = b"2.15.0"
    raw = bio.getvalue()
    assert raw.count(b"model_confiX") == 1
    raw = raw.replace(b"model_confiX", b"model_config")
    with h5py.File(io.BytesIO(raw), "r") as f:  # the real reader opens it and reads one
        seen = f.attrs["model_config"]
    seen_bytes = seen.encode() if isinstance(seen, str) else bytes(seen)
    assert seen_bytes.strip() in (benign, evil)
    findings = scan_bytes(raw, "model.h5").findings
    rules = {f.rule_id for f in findings}
    assert "MLT-H5-003" in rules, findings
    assert "MLT-KER-001" in rules, findings  # the Lambda is found whichever comes first
