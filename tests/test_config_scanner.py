"""JSON/YAML config scanner: Hydra/NeMo targets, unsafe YAML, hostile documents."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Finding, Severity
from mltrust.scan import scan_bytes
from mltrust.scan.formats.config import ConfigScanner


def medium_plus(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.severity >= Severity.MEDIUM]


def by_rule(findings: tuple[Finding, ...], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule]


HYDRA_BENIGN = """\
# Hydra config for an image classifier
defaults:
  - _self_
seed: 42
model:
  _target_: torchvision.models.resnet18
  num_classes: 10
optimizer:
  _target_: torch.optim.AdamW
  _partial_: true
  lr: 3.0e-4
  weight_decay: 0.01
scheduler:
  _target_: torch.optim.lr_scheduler.CosineAnnealingLR
  _partial_: true
  T_max: 100
loss:
  _target_: torch.nn.CrossEntropyLoss
  label_smoothing: 0.1
data:
  train:
    _target_: torchvision.datasets.CIFAR10
    root: ${oc.env:DATA_DIR,./data}
    train: true
    transform:
      _target_: torchvision.transforms.Compose
      transforms:
        - _target_: torchvision.transforms.RandomCrop
          size: 32
          padding: 4
        - _target_: torchvision.transforms.ToTensor
  loader:
    _target_: torch.utils.data.DataLoader
    batch_size: 128
    shuffle: true
    num_workers: 4
trainer:
  _target_: pytorch_lightning.Trainer
  max_epochs: 30
  accelerator: auto
  callbacks:
    - _target_: pytorch_lightning.callbacks.ModelCheckpoint
      monitor: val_loss
metrics:
  _target_: torchmetrics.Accuracy
  task: multiclass
  num_classes: 10
"""

NEMO_BENIGN = """\
name: QuartzNet15x5
model:
  sample_rate: 16000
  preprocessor:
    _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
    normalize: per_feature
    window_size: 0.02
    features: 64
  spec_augment:
    _target_: nemo.collections.asr.modules.SpectrogramAugmentation
    rect_freq: 50
  encoder:
    _target_: nemo.collections.asr.modules.ConvASREncoder
    feat_in: 64
    activation: relu
    jasper:
      - filters: 256
        repeat: 1
        kernel: [33]
        stride: [2]
        dilation: [1]
        dropout: 0.0
        residual: false
  decoder:
    _target_: nemo.collections.asr.modules.ConvASRDecoder
    feat_in: 1024
    num_classes: 28
    vocabulary: [" ", "a", "b", "c", "'"]
  optim:
    name: novograd
    lr: 0.01
    betas: [0.8, 0.5]
    sched:
      name: CosineAnnealing
      warmup_steps: 1000
"""


def test_benign_hydra_config_has_no_findings() -> None:
    result = scan_bytes(HYDRA_BENIGN.encode(), "config.yaml")
    assert result.formats == ("config",)
    assert medium_plus(result.findings) == []


def test_benign_nemo_config_has_no_findings() -> None:
    assert medium_plus(scan_bytes(NEMO_BENIGN.encode(), "model_config.yaml").findings) == []


def test_benign_hydra_json_and_utf8_bom_has_no_findings() -> None:
    doc = {"optimizer": {"_target_": "torch.optim.SGD", "lr": 0.1, "momentum": 0.9}}
    data = b"\xef\xbb\xbf" + json.dumps(doc, indent=2).encode()
    result = scan_bytes(data, "cfg.json")
    assert result.formats == ("config",)
    assert medium_plus(result.findings) == []


def test_benign_hf_config_json_has_no_findings() -> None:
    doc = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "rope_scaling": None,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.44.0",
    }
    assert scan_bytes(json.dumps(doc).encode(), "config.json").findings == ()


def test_benign_jsonl_dataset_has_no_findings() -> None:
    lines = "\n".join(json.dumps({"text": f"sample {i}", "label": i % 2}) for i in range(50))
    assert scan_bytes(lines.encode(), "train.jsonl").findings == ()


# --------------------------------------------------------------------------------------------
# Hydra / NeMo targets


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "subprocess.Popen",
        "builtins.eval",
        "builtins.exec",
        "posix.system",
        "importlib.import_module",
        "runpy.run_path",
        "shutil.rmtree",
        "pickle.loads",
        "torch.load",
        "torch.hub.load",
    ],
)
def test_hydra_target_dangerous_callable(target: str) -> None:
    doc = f"job:\n  _target_: {target}\n  _args_: ['touch /tmp/pwned']\n"
    findings = scan_bytes(doc.encode(), "cfg.yaml").findings
    bad = by_rule(findings, "MLT-CFG-001")
    assert bad and bad[0].severity >= Severity.HIGH, findings
    assert target in bad[0].message


def test_hydra_get_method_gadget_resolving_os_system() -> None:
    doc = {"cb": {"_target_": "hydra.utils.get_method", "path": "os.system"}}
    findings = scan_bytes(json.dumps(doc).encode(), "cfg.json").findings
    bad = by_rule(findings, "MLT-CFG-001")
    assert bad and bad[0].severity == Severity.CRITICAL
    assert "os.system" in bad[0].message


def test_hydra_call_gadget_alone_is_high() -> None:
    doc = "x:\n  _target_: hydra.utils.call\n  config: {}\n"
    bad = by_rule(scan_bytes(doc.encode(), "c.yaml").findings, "MLT-CFG-002")
    assert bad and bad[0].severity == Severity.HIGH


def test_functools_partial_target_is_gadget() -> None:
    doc = {"f": {"_target_": "functools.partial", "_args_": ["builtins.exec"]}}
    findings = scan_bytes(json.dumps(doc).encode(), "c.json").findings
    assert medium_plus(findings)
    assert any(f.severity >= Severity.HIGH for f in findings)


def test_hydra_target_nested_deep_in_list() -> None:
    doc = {"a": [{"b": [{"c": {"_target_": "subprocess.check_output", "args": ["id"]}}]}]}
    findings = scan_bytes(json.dumps(doc).encode(), "c.json").findings
    (bad,) = by_rule(findings, "MLT-CFG-001")
    assert "/a/0/b/0/c" in (bad.location.detail or "")


def test_hydra_unknown_target_is_medium_and_allowable() -> None:
    doc = b"model:\n  _target_: acme_research.models.SuperNet\n  width: 4\n"
    (unknown,) = by_rule(scan_bytes(doc, "c.yaml").findings, "MLT-CFG-003")
    assert unknown.severity == Severity.MEDIUM
    config = ScanConfig(allow_targets=frozenset({"acme_research."}))
    assert medium_plus(scan_bytes(doc, "c.yaml", config).findings) == []


def test_allow_targets_does_not_override_denylist() -> None:
    config = ScanConfig(allow_targets=frozenset({"os."}))
    doc = b"x:\n  _target_: os.system\n"
    assert by_rule(scan_bytes(doc, "c.yaml", config).findings, "MLT-CFG-001")


def test_transformers_target_with_trust_remote_code() -> None:
    doc = {
        # mltrust: ignore[MLT-CODE-006] a config fixture that must be flagged, never loaded
        "model": {
            "_target_": "transformers.AutoModel.from_pretrained",
            "pretrained_model_name_or_path": "someone/model",
            "trust_remote_code": True,
        }
    }
    bad = by_rule(scan_bytes(json.dumps(doc).encode(), "c.json").findings, "MLT-CFG-001")
    assert bad and bad[0].severity == Severity.HIGH


def test_nemo_legacy_cls_params_target() -> None:
    doc = {"encoder": {"cls": "os.system", "params": {"command": "id"}}}
    assert by_rule(scan_bytes(json.dumps(doc).encode(), "c.json").findings, "MLT-CFG-001")


def test_target_through_module_attribute_is_critical() -> None:
    doc = b"x:\n  _target_: numpy.os.system\n"
    bad = by_rule(scan_bytes(doc, "c.yaml").findings, "MLT-CFG-001")
    assert bad and bad[0].severity == Severity.CRITICAL


def test_target_that_is_not_a_dotted_name_is_reported() -> None:
    doc = {"x": {"_target_": "os.system; rm -rf /"}}
    assert medium_plus(scan_bytes(json.dumps(doc).encode(), "c.json").findings)


# --------------------------------------------------------------------------------------------
# YAML


@pytest.mark.parametrize(
    "doc",
    [
        "run: !!python/object/apply:os.system ['touch {canary}']\n",
        "run: !!python/object/new:subprocess.Popen [['touch', '{canary}']]\n",
        "f: !!python/name:os.system\n",
        "m: !!python/module:os\n",
        "run: !<tag:yaml.org,2002:python/object/apply:os.system> ['touch {canary}']\n",
        "%TAG !p! tag:yaml.org,2002:python/\n---\nrun: !p!object/apply:os.system ['x']\n",
    ],
)
def test_yaml_python_tag_for_unsafe_loaders(doc: str, canary: Path) -> None:
    data = doc.format(canary=canary).encode()
    findings = scan_bytes(data, "config.yaml").findings
    bad = by_rule(findings, "MLT-CFG-004")
    assert bad and bad[0].severity == Severity.CRITICAL, findings
    assert not canary.exists()


def test_yaml_python_tag_in_unparsable_yaml_still_reported() -> None:
    data = b"a: 1\nrun: !!python/object/apply:os.system ['id']\n  bad: [unclosed\n"
    findings = scan_bytes(data, "c.yaml").findings
    assert by_rule(findings, "MLT-CFG-004")
    assert by_rule(findings, "MLT-CFG-006")


def test_yaml_billion_laughs_alias_bomb() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    data = ("\n".join(lines) + "\n").encode()
    started = time.perf_counter()
    findings = scan_bytes(data, "bomb.yaml").findings
    assert time.perf_counter() - started < 5
    bad = by_rule(findings, "MLT-CFG-005")
    assert bad and bad[0].severity == Severity.HIGH


def test_yaml_recursive_alias_does_not_hang() -> None:
    data = b"a: &a\n  b: *a\n  _target_: torch.nn.Linear\n"
    findings = scan_bytes(data, "r.yaml").findings
    assert by_rule(findings, "MLT-CFG-005")


def test_yaml_with_anchors_and_merge_keys_is_benign() -> None:
    data = b"""\
base: &base
  _target_: torch.optim.Adam
  lr: 0.001
fast:
  <<: *base
  lr: 0.01
"""
    assert medium_plus(scan_bytes(data, "c.yaml").findings) == []


def test_yaml_deeply_nested_does_not_crash() -> None:
    data = b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n"
    findings = scan_bytes(data, "deep.yaml").findings
    bad = by_rule(findings, "MLT-CFG-006")
    assert bad and bad[0].severity == Severity.MEDIUM, findings


def test_model_card_front_matter_is_not_medium() -> None:
    card = b"""---
license: apache-2.0
tags:
- text-classification
---

# My model

This model does: things, and more things.
"""
    assert medium_plus(scan_bytes(card, "README.md").findings) == []


# --------------------------------------------------------------------------------------------
# Hostile JSON


def test_json_deeply_nested_is_reported_not_crash() -> None:
    data = b"[" * 200_000 + b"]" * 200_000
    findings = scan_bytes(data, "deep.json").findings
    assert medium_plus(findings)
    assert all(f.rule_id != "MLT-GEN-004" for f in findings)


def test_json_nested_beyond_limit_reports_unchecked_part() -> None:
    doc: object = {"_target_": "os.system"}
    for _ in range(300):
        doc = {"x": doc}
    findings = scan_bytes(json.dumps(doc).encode(), "c.json").findings
    assert by_rule(findings, "MLT-GEN-003")


def test_json_truncated_is_reported() -> None:
    data = json.dumps({"model": {"_target_": "os.system", "x": list(range(10))}}).encode()
    findings = scan_bytes(data[:-5], "c.json").findings
    assert by_rule(findings, "MLT-CFG-006")
    assert by_rule(findings, "MLT-CFG-001")  # the text fallback still sees the target


def test_json_invalid_utf8_is_reported() -> None:
    data = b'{"name": "\xff\xfe broken", "_target_": "torch.nn.Linear"}'
    findings = scan_bytes(data, "c.json").findings
    bad = by_rule(findings, "MLT-CFG-006")
    assert bad and "UTF-8" in bad[0].message


def test_json_huge_integer_is_reported_not_crash() -> None:
    data = b'{"n": ' + b"9" * 100_000 + b"}"
    findings = scan_bytes(data, "c.json").findings
    assert by_rule(findings, "MLT-CFG-006")


def test_json_over_text_limit_is_limit_finding() -> None:
    config = ScanConfig(limits=Limits(max_text_bytes=1024))
    data = json.dumps({"pad": "x" * 4096}).encode()
    findings = scan_bytes(data, "c.json", config).findings
    assert by_rule(findings, "MLT-GEN-003")


def test_truncated_keras_lambda_json_still_flagged() -> None:
    data = b'{"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "con'
    findings = scan_bytes(data, "config.json").findings
    assert by_rule(findings, "MLT-KER-001")


# --------------------------------------------------------------------------------------------
# Sniffing


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x04\x95\x00\x00\x00",
        b"PK\x03\x04",
        b"GGUF\x03\x00\x00\x00",
        b"\x10\x00\x00\x00\x00\x00\x00\x00{}",
        b"[PAD]\n[unused0]\n[CLS]\n",
        b"#version: 0.2\n\xc4\xa0 t\n",
        b"cos\nsystem\n(S'id'\ntR.",
        b"\x93NUMPY\x01\x00",
        b"{\x00\x00}",
        b"",
    ],
)
def test_sniff_does_not_claim_other_formats(data: bytes) -> None:
    assert not ConfigScanner().sniff(memoryview(data), "x.json")


@pytest.mark.parametrize(
    "data", [b'{"a": 1}', b"  [1, 2]", b"\xef\xbb\xbf{}", b"key: value\n", b"---\na: 1\n"]
)
def test_sniff_claims_json_and_yaml(data: bytes) -> None:
    assert ConfigScanner().sniff(memoryview(data), "x")


def test_duplicate_target_key_checks_both_values() -> None:
    data = b'{"m": {"_target_": "os.system", "_target_": "torch.nn.Linear"}}'
    assert by_rule(scan_bytes(data, "c.json").findings, "MLT-CFG-001")


def test_omegaconf_eval_resolver_interpolation_to_rce() -> None:
    data = b'lr: ${eval:\'__import__("os").system("id") or 0.1\'}\nbatch: 32\n'
    bad = by_rule(scan_bytes(data, "c.yaml").findings, "MLT-CFG-008")
    assert bad and bad[0].severity == Severity.CRITICAL


def test_omegaconf_plain_interpolations_are_benign() -> None:
    data = b"root: ${oc.env:HOME}\nout: ${hydra:runtime.output_dir}/ckpt\nlr: ${optim.lr}\n"
    assert medium_plus(scan_bytes(data, "c.yaml").findings) == []


def test_hydra_get_class_of_allowlisted_class_is_benign() -> None:
    data = b"act:\n  _target_: hydra.utils.get_class\n  path: torch.nn.ReLU\n"
    assert medium_plus(scan_bytes(data, "c.yaml").findings) == []


def test_hydra_get_class_of_unknown_class_is_medium() -> None:
    data = b"act:\n  _target_: hydra.utils.get_class\n  path: acme.Thing\n"
    (f,) = medium_plus(scan_bytes(data, "c.yaml").findings)
    assert f.rule_id == "MLT-CFG-003"


def test_many_unknown_targets_are_capped() -> None:
    doc = {f"m{i}": {"_target_": f"acme.M{i}"} for i in range(3000)}
    findings = scan_bytes(json.dumps(doc).encode(), "c.json").findings
    assert len(findings) < 1100
    assert by_rule(findings, "MLT-GEN-003")


# ----------------------------------------------------------------------------- Python sources
#: A Python module holding attack configs as string literals, as this repository's tests do.
PY_MODULE_WITH_ATTACK_LITERALS = '''\
"""Fixtures: model:
  _target_: os.system
"""

import yaml

EVIL = "!!python/object/apply:os.system ['id']"
TARGET = """
model:
  _target_: os.system
  lr: ${eval:'__import__("os").system("id")'}
"""


def load(text: str) -> object:
    return yaml.safe_load(text)
'''


@pytest.mark.parametrize("name", ["fixtures.py", "config.yaml", "noextension"])
def test_python_source_with_attack_literals_is_not_a_config(name: str) -> None:
    """Decided by content whatever the name: no YAML or JSON loader reads anything from it.

    Named ``.yaml`` it is still not a config, but a file named like one that is not read as
    one is reported as not scanned (medium), never passed silently.
    """
    result = scan_bytes(PY_MODULE_WITH_ATTACK_LITERALS.encode(), name)
    assert "config" not in result.formats
    if name.endswith(".yaml"):
        assert [(f.rule_id, f.severity.value) for f in result.findings] == [
            ("MLT-GEN-001", "medium")
        ]
    else:
        assert not medium_plus(result.findings)


def test_the_config_scanner_own_source_is_not_a_config() -> None:
    source = Path(__file__).resolve().parents[1] / "src/mltrust/scan/formats/config.py"
    result = scan_bytes(source.read_bytes(), "config.py")
    assert "config" not in result.formats


@pytest.mark.parametrize("name", ["evil.py", "evil", "train.py.yaml"])
def test_yaml_config_named_like_python_is_still_scanned(name: str) -> None:
    doc = b"model:\n  _target_: os.system\n  _args_: [id]\n"
    result = scan_bytes(doc, name)
    assert "config" in result.formats
    assert by_rule(result.findings, "MLT-CFG-001")


@pytest.mark.parametrize(
    "doc",
    [
        # Both valid Python (an annotated name) and a YAML mapping.
        "_target_: os.system\n",
        # Python first line, then a YAML document that load_all reads (``---{...}`` is a
        # unary minus on a dict display to Python).
        "import os\n--- {_target_: os.system, _args_: [id]}\n",
    ],
)
def test_python_yaml_polyglot_is_still_a_config(doc: str) -> None:
    import ast

    ast.parse(doc)  # the polyglot really is Python
    result = scan_bytes(doc.encode(), "polyglot.py")
    assert "config" in result.formats
    assert by_rule(result.findings, "MLT-CFG-001")
