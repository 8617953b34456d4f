"""Config documents that a JSON or YAML loader reads must be scanned, however they start.

Each attack is built from raw bytes; the real loaders (``json.loads``, ``yaml.safe_load``/
``safe_load_all``, which parse exactly as the unsafe loaders do) are the oracle that the
document is readable, and the scan must then report the code it names.
"""

from __future__ import annotations

import json

import pytest
import yaml

from mltrust.findings import Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.config import ConfigScanner

_TARGET = {"_target_": "os.system", "command": "id"}
_JSON = json.dumps({"model": _TARGET}).encode()


def _yaml_readable(data: bytes) -> bool:
    class Tolerant(yaml.SafeLoader):
        pass

    Tolerant.add_multi_constructor("", lambda loader, suffix, node: None)
    try:
        # mltrust: ignore[MLT-CODE-003] a safe loader whose one added constructor returns None
        list(yaml.load_all(data, Loader=Tolerant))
    except yaml.YAMLError:
        return False
    return True


def _json_readable(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


YAML_ATTACKS = {
    "long-comment-head": b"#"
    + b" padding" * 1000
    + b"\n"
    + b"# more\n" * 100
    + b"model:\n  _target_: os.system\n  command: id\n",
    "tag-first": b"!!python/object/apply:os.system ['id']\n",
    "tag-after-marker": b"--- !!python/object/apply:os.system ['id']\n",
    "flow-mapping": b"{_target_: os.system, command: id}\n",
    "flow-mapping-spaced": b"{ model: {_target_: os.system} }\n",
    "yaml-directive": b"%YAML 1.1\n---\n_target_: os.system\n",
    "numeric-first-key": b"1: x\nrun:\n  _target_: os.system\n",
    "unicode-first-key": "ключ: x\nrun:\n  _target_: os.system\n".encode(),
    "symbol-first-key": b"(x): 1\nrun:\n  _target_: os.system\n",
    "plain-first-document": b"hello\n---\n_target_: os.system\n",
    "anchor-root": b"&a\n_target_: os.system\n",
    "explicit-key": b"? run\n: {_target_: os.system}\n",
    "utf16-bom": "_target_: os.system\n".encode("utf-16"),
    "crlf": b"\r\n\r\nrun:\r\n  _target_: os.system\r\n",
}

JSON_ATTACKS = {
    "long-leading-whitespace": b" " * 10_000 + b"\n" * 10_000 + _JSON,
    "utf8-bom": b"\xef\xbb\xbf" + _JSON,
    "utf16-le-bom": _JSON.decode().encode("utf-16"),
    "utf16-be-no-bom": _JSON.decode().encode("utf-16-be"),
    "utf32-le-no-bom": _JSON.decode().encode("utf-32-le"),
    "utf32-bom": _JSON.decode().encode("utf-32"),
}


def _assert_target_found(data: bytes) -> None:
    result = scan_bytes(data, "cfg.bin")
    assert "config" in result.formats, result
    worst = max((f.severity for f in result.findings), default=Severity.INFO)
    assert worst >= Severity.HIGH, result.findings


@pytest.mark.parametrize("data", YAML_ATTACKS.values(), ids=YAML_ATTACKS.keys())
def test_yaml_readable_by_the_loader_is_scanned(data: bytes) -> None:
    assert _yaml_readable(data)
    _assert_target_found(data)


@pytest.mark.parametrize("data", JSON_ATTACKS.values(), ids=JSON_ATTACKS.keys())
def test_json_readable_by_the_loader_is_scanned(data: bytes) -> None:
    assert _json_readable(data)
    _assert_target_found(data)


def test_json_lookalike_that_is_yaml_flow_style_is_scanned_as_yaml() -> None:
    data = b"[{_target_: os.system, command: id}]"
    assert not _json_readable(data) and _yaml_readable(data)
    _assert_target_found(data)


@pytest.mark.parametrize(
    "text",
    [
        b"[PAD]\n[unused0]\n[CLS]\n",
        b"#version: 0.2\n\xc4\xa0 t\n\xc4\xa0 a\n",
        b"Some prose about a model.\nIt has lines.\n",
        b"cat\ndog\n",
    ],
)
def test_text_no_loader_reads_as_a_collection_is_not_claimed(text: bytes) -> None:
    assert not ConfigScanner().sniff(memoryview(text), "x")


def test_unparsable_json_without_code_marks_is_low() -> None:
    data = b'{"a": [1, 2,, 3]}'
    result = scan_bytes(data, "x.json")
    assert result.findings
    assert max(f.severity for f in result.findings) == Severity.LOW


@pytest.mark.parametrize(
    "target",
    [
        "torch.testing._internal.common_utils.shell",
        "torch.utils.cpp_extension.load_inline",
        "torch.utils.data.datapipes.iter.callable.MapperIterDataPipe",
        "sklearn.utils._testing.TempMemmap",
        "transformers.testing_utils.run_command",
        "nemo.collections.common.parts.run_subprocess",
        "torch.nn.modules.module.register_module_forward_hook",
        "torchvision.io.read_file",
    ],
)
def test_hydra_target_in_allowlisted_package_is_not_trusted_by_prefix(target: str) -> None:
    data = json.dumps({"x": {"_target_": target, "_args_": ["id"]}}).encode()
    result = scan_bytes(data, "cfg.json")
    assert max((f.severity for f in result.findings), default=Severity.INFO) >= Severity.MEDIUM


@pytest.mark.parametrize(
    "target", ["torch.optim.AdamW", "torch.nn.Linear", "sklearn.linear_model.LogisticRegression"]
)
def test_hydra_ordinary_targets_stay_quiet(target: str) -> None:
    data = json.dumps({"x": {"_target_": target}}).encode()
    assert scan_bytes(data, "cfg.json").findings == ()


@pytest.mark.parametrize(
    "data",
    [
        b"x:\n  _target_: os.system\n  _target_: torch.nn.Linear\n",
        b"x: {_target_: os.system, _target_: torch.nn.Linear}\n",
    ],
)
def test_yaml_duplicate_key_first_value_is_checked(data: bytes) -> None:
    # PyYAML keeps the last value; readers that keep the first (or merge tools) run os.system.
    assert yaml.safe_load(data)["x"]["_target_"] == "torch.nn.Linear"
    result = scan_bytes(data, "c.yaml")
    assert max((f.severity for f in result.findings), default=Severity.INFO) >= Severity.HIGH


def test_json_holding_a_literal_replacement_character_is_read_as_json() -> None:
    """U+FFFD is an ordinary character (botocore ships JSON with one); only bytes that do not
    decode make text "broken". Such a document is scanned, so its code is still found, and a
    benign one passes instead of being reported as a config nothing read."""
    benign = json.dumps({"doc": "a \ufffd b", "x": list(range(50))}, ensure_ascii=False).encode()
    assert _json_readable(benign)
    assert ConfigScanner().sniff(memoryview(benign), "service.json")
    report = scan_bytes(benign, "service.json")
    assert not report.findings
    hostile = json.dumps({"doc": "\ufffd", "model": _TARGET}, ensure_ascii=False).encode()
    findings = scan_bytes(hostile, "service.json").findings
    assert any(f.severity >= Severity.HIGH for f in findings), findings


@pytest.mark.parametrize(
    "text",
    [
        b"% ARFF comment !! with marks\n@relation iris\n@attribute a numeric\n",
        b"%\n% Title\n@relation x\n",
        b"%\tTAB\nkey: value\n",
        b"  % indented\nkey: value\n",
    ],
)
def test_percent_lines_no_yaml_scanner_reads_are_not_configs(text: bytes) -> None:
    with pytest.raises(yaml.YAMLError):
        list(yaml.safe_load_all(text))  # the loader stops at the first token
    assert not ConfigScanner().sniff(memoryview(text), "data.arff")


@pytest.mark.parametrize(
    "text",
    [
        b"%YAML 1.1\n---\nmodel:\n  _target_: os.system\n",
        b"%FOO ignored\n---\nmodel:\n  _target_: os.system\n",
        b"%TAG !e! tag:example.com,2000:\n---\nmodel:\n  _target_: os.system\n",
    ],
)
def test_real_directives_still_start_a_scanned_config(text: bytes) -> None:
    assert _yaml_readable(text)
    _assert_target_found(text)
