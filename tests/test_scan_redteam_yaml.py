"""Red-team attacks on the YAML/config scanner, each named after the attack.

The oracle is the real reader: the loaders that run code from YAML (``yaml.unsafe_load``,
OmegaConf, Hydra) read it with PyYAML's pure-Python ``SafeLoader`` machinery, so each test
first checks with ``yaml.SafeLoader`` that the attack text really is read as the attack, then
that the scan reports it. Nothing is constructed with an unsafe loader here.
"""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest
import yaml

from mltrust.config import ScanConfig
from mltrust.errors import LimitExceeded
from mltrust.findings import Finding, Location, Severity
from mltrust.scan import scan_bytes, scan_paths
from mltrust.scan._context import ScanContext
from mltrust.scan.formats import _yaml_compose
from mltrust.scan.formats.config import ConfigScanner


def rules(findings: tuple[Finding, ...]) -> set[tuple[str, str]]:
    return {(f.rule_id, f.severity.value) for f in findings}


def medium_plus(findings: tuple[Finding, ...]) -> list[Finding]:
    return [f for f in findings if f.severity >= Severity.MEDIUM]


def pure(text: str) -> object:
    """What PyYAML's pure-Python reader (OmegaConf's and Hydra's) constructs, safely."""
    return yaml.load(text, Loader=yaml.SafeLoader)


# 1. U+FEFF at a line start: a comment to libyaml, a key to the pure-Python reader.

BOM_COMMENT_TAG = 'name: model\n\ufeff#: !!python/object/apply:os.system ["true"]\n'
BOM_COMMENT_HYDRA = 'trainer:\n  max_epochs: 1\n\ufeff#: {_target_: os.system, _args_: ["true"]}\n'


def test_bom_comment_line_hides_python_tag_from_libyaml() -> None:
    node = yaml.compose(BOM_COMMENT_TAG, Loader=yaml.SafeLoader)
    assert node is not None
    assert any("python/object/apply" in v.tag for _, v in node.value)
    result = scan_bytes(BOM_COMMENT_TAG.encode(), "unsafe.yaml")
    assert ("MLT-CFG-004", "critical") in rules(result.findings)
    assert any("readers disagree" in f.message for f in result.findings)


def test_bom_comment_line_hides_hydra_target_from_libyaml() -> None:
    assert pure(BOM_COMMENT_HYDRA)["\ufeff#"]["_target_"] == "os.system"  # type: ignore[index]
    result = scan_bytes(BOM_COMMENT_HYDRA.encode(), "hydra.yaml")
    assert ("MLT-CFG-001", "critical") in rules(result.findings)


def test_bom_comment_line_in_a_yaml_stream_member_of_json_flow() -> None:
    text = "{a: 1}\n\ufeff#: {_target_: os.system}\n"
    result = scan_bytes(text.encode(), "x.yaml")
    assert medium_plus(result.findings)


# 2. The same BOM makes a Python/YAML polyglot fail in libyaml: it must still be a config.

BOM_POLYGLOT = (
    'try: 0 or """\n'
    "\ufeffz: 1\n"
    "model:\n"
    "  _target_: os.system\n"
    '  _args_: ["true"]\n'
    'q: 0 or """\n'
    "except: 0\n"
)


def test_bom_polyglot_python_source_is_still_a_config() -> None:
    ast.parse(BOM_POLYGLOT)
    assert pure(BOM_POLYGLOT)["model"]["_target_"] == "os.system"  # type: ignore[index]
    assert ConfigScanner().sniff(memoryview(BOM_POLYGLOT.encode()), "config.yaml")
    result = scan_bytes(BOM_POLYGLOT.encode(), "config.yaml")
    assert "config" in result.formats
    assert ("MLT-CFG-001", "critical") in rules(result.findings)


def test_bom_polyglot_without_yaml_extension_is_still_a_config() -> None:
    result = scan_bytes(BOM_POLYGLOT.encode(), "settings")
    assert ("MLT-CFG-001", "critical") in rules(result.findings)


# 3. After libyaml fails: the pure-Python reader retries; if it fails too, the text fallback
#    reads %TAG handles, escaped keys and tagged values, and is medium.

BOM_FALLBACK = {
    "tag_handle.yaml": (
        "%TAG !p! tag:yaml.org,2002:python/\n---\na: 1\n\ufeffz: 1\n"
        'x: !p!object/apply:os.system ["true"]\n',
        "MLT-CFG-004",
    ),
    "escaped_key.yaml": (
        'a: 1\n\ufeffz: 1\nmodel:\n  "\\x5ftarget_": os.system\n  _args_: ["true"]\n',
        "MLT-CFG-001",
    ),
    "tagged_value.yaml": (
        'a: 1\n\ufeffz: 1\nmodel:\n  _target_: !!str os.system\n  _args_: ["true"]\n',
        "MLT-CFG-001",
    ),
}


@pytest.mark.parametrize("name", sorted(BOM_FALLBACK))
def test_bom_fallback_is_read_by_the_pure_python_reader(name: str) -> None:
    text, rule = BOM_FALLBACK[name]
    result = scan_bytes(text.encode(), name)
    assert (rule, "critical") in rules(result.findings)


@pytest.mark.parametrize("name", sorted(BOM_FALLBACK))
def test_unparsable_yaml_fallback_reads_tag_handles_and_escapes(name: str) -> None:
    text, rule = BOM_FALLBACK[name]
    broken = text + "y: [never closed\nz: 1\n"
    with pytest.raises(yaml.YAMLError):
        pure(broken)
    result = scan_bytes(broken.encode(), name)
    assert any(f.rule_id == rule for f in result.findings)
    malformed = [f for f in result.findings if f.rule_id == "MLT-CFG-006"]
    assert malformed
    assert all(f.severity >= Severity.MEDIUM for f in malformed)


# 4. Line breaks other than LF: CR, NEL, U+2028, U+2029.

CR_LINES = ["model:", "  _target_:", "    os.system", "  _args_:", "    - true", ""]


@pytest.mark.parametrize("brk", ["\r", "\r\n", "\x85", "\u2028", "\u2029"])
def test_cr_newlines_hydra_target_is_claimed(brk: str) -> None:
    text = brk.join(CR_LINES)
    assert pure(text)["model"]["_target_"] == "os.system"  # type: ignore[index]
    result = scan_bytes(text.encode(), "hydra.yaml")
    assert "config" in result.formats
    assert ("MLT-CFG-001", "critical") in rules(result.findings)


@pytest.mark.parametrize("brk", ["\r", "\x85", "\u2028"])
def test_cr_newlines_python_tag_is_claimed(brk: str) -> None:
    text = brk.join(["x:", "  !!python/object/apply:os.system", "  - true", ""])
    result = scan_bytes(text.encode(), "unsafe")
    assert ("MLT-CFG-004", "critical") in rules(result.findings)


@pytest.mark.parametrize("brk", ["\r", "\u2028"])
def test_cr_newlines_document_marker_after_prose_is_claimed(brk: str) -> None:
    text = brk.join(["just words", "---", "model:", "  _target_:", "    os.system", ""])
    result = scan_bytes(text.encode(), "notes")
    assert ("MLT-CFG-001", "critical") in rules(result.findings)


def test_unclaimed_yaml_named_file_is_medium_not_scanned() -> None:
    result = scan_bytes(b"just a line of prose\n", "params.yaml")
    assert ("MLT-GEN-001", "medium") in rules(result.findings)
    assert ("MLT-GEN-001", "low") in rules(scan_bytes(b"just prose\n", "notes.txt").findings)


# 5. Merge keys hide trust_remote_code next to a from_pretrained target.

MERGED = """defaults_opts: &opts
  trust_remote_code: true
model:
  <<: *opts
  _target_: transformers.AutoModelForCausalLM.from_pretrained
  pretrained_model_name_or_path: attacker/repo
"""


def test_merge_key_trust_remote_code() -> None:
    assert pure(MERGED)["model"]["trust_remote_code"] is True  # type: ignore[index]
    result = scan_bytes(MERGED.encode(), "merged.yaml")
    assert ("MLT-CFG-001", "high") in rules(result.findings)


def test_merge_key_list_of_anchors_trust_remote_code() -> None:
    text = (
        "a: &a {name: x}\nb: &b {trust_remote_code: yes}\n"
        "model:\n  <<: [*a, *b]\n"
        "  _target_: transformers.AutoModel.from_pretrained\n"
    )
    assert pure(text)["model"]["trust_remote_code"] is True  # type: ignore[index]
    result = scan_bytes(text.encode(), "merged.yaml")
    assert ("MLT-CFG-001", "high") in rules(result.findings)


def test_merge_key_explicit_key_overrides_as_pyyaml_does() -> None:
    text = MERGED + "  trust_remote_code: false\n"
    assert pure(text)["model"]["trust_remote_code"] is False  # type: ignore[index]
    assert not medium_plus(scan_bytes(text.encode(), "merged.yaml").findings)
    # In a list the earlier mapping wins.
    first_wins = (
        "a: &a {trust_remote_code: false}\nb: &b {trust_remote_code: true}\n"
        "model:\n  <<: [*a, *b]\n  _target_: transformers.AutoModel.from_pretrained\n"
    )
    assert pure(first_wins)["model"]["trust_remote_code"] is False  # type: ignore[index]
    assert not medium_plus(scan_bytes(first_wins.encode(), "m.yaml").findings)


def test_merge_key_nested_merge_hides_target() -> None:
    text = "base: &base {_target_: os.system}\nmid: &mid {<<: *base, x: 1}\nmodel:\n  <<: *mid\n"
    assert pure(text)["model"]["_target_"] == "os.system"  # type: ignore[index]
    result = scan_bytes(text.encode(), "m.yaml")
    assert any(f.rule_id == "MLT-CFG-001" and "/model/" in str(f.location) for f in result.findings)


def test_merge_key_doubling_bomb_stays_linear() -> None:
    lines = ["l0: &l0 {k0: 0}"]
    for i in range(1, 60):
        lines.append(f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], k{i}: {i}}}")
    text = "\n".join(lines) + "\n"
    started = time.monotonic()
    result = scan_bytes(text.encode(), "bomb.yaml")
    assert time.monotonic() - started < 20
    assert "config" in result.formats


# 6. Chat template files.

EVIL_TEMPLATE = (
    '{%- set x = "".__class__.__mro__[1].__subclasses__() -%}'
    '{{ cycler.__init__.__globals__.os.popen("true").read() }}'
    "{% for m in messages %}{{ m.content }}{% endfor %}"
)
PLAIN_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def test_chat_template_jinja_unscanned(tmp_path: Path) -> None:
    (tmp_path / "chat_template.jinja").write_text(EVIL_TEMPLATE)
    (tmp_path / "additional_chat_templates").mkdir()
    (tmp_path / "additional_chat_templates" / "tool_use.jinja").write_text(EVIL_TEMPLATE)
    (tmp_path / "ok.jinja").write_text(PLAIN_TEMPLATE)
    report = scan_paths([tmp_path])
    by_name = {Path(f.path).name: f for f in report.files}
    for name in ("chat_template.jinja", "tool_use.jinja"):
        assert ("MLT-CFG-007", "critical") in rules(by_name[name].findings), name
    assert by_name["ok.jinja"].formats == ("config",)
    assert not medium_plus(by_name["ok.jinja"].findings)


def test_chat_template_jinja_inside_an_archive() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model/chat_template.jinja", EVIL_TEMPLATE)
    result = scan_bytes(buf.getvalue(), "model.zip")
    assert ("MLT-CFG-007", "critical") in rules(result.findings)


# 7. Denial of service through the pure-Python composer and the Python-source sniff.


def test_dos_yaml_pure_python_is_refused_quickly() -> None:
    body = "try: 0\nexcept:\n x = (\n" + " " * 1000 + "1)\n" + " a\n" * 650000
    started = time.monotonic()
    result = scan_bytes(body.encode(), "dos.yaml")
    assert time.monotonic() - started < 15  # was 12-30 s and 1.2 GB before
    assert ("MLT-GEN-003", "high") in rules(result.findings)


def test_dos_yaml_many_python_statements_is_not_parsed_as_python() -> None:
    body = '"""doc"""\n' + "a\n" * 300_000
    started = time.monotonic()
    result = scan_bytes(body.encode(), "dos")
    assert time.monotonic() - started < 15  # was 12-30 s and 1.2 GB before
    assert result.findings


def test_dos_yaml_pure_python_composer_charges_the_deadline() -> None:
    # Three nodes (the node walk never reaches its deadline check), 20 000 lines.
    text = "a:\n" + " " * 1000 + "b: 1\nc: |\n" + "  line\n" * 20_000
    ctx = ScanContext(config=ScanConfig(), deadline=time.monotonic() - 1)
    with pytest.raises(LimitExceeded):
        _yaml_compose.scan_yaml(text, ctx, Location("late.yaml"))


def test_dos_yaml_sniff_and_scan_compose_once() -> None:
    text = "a:\n" + " " * 1000 + "b: 1\n" + "".join(f"q{i}: v\n" for i in range(2_000))
    reads: list[str] = []
    real = _yaml_compose._read

    def counting(loader_cls: type, t: str, tick: object) -> _yaml_compose.View:
        reads.append(loader_cls.__name__)
        return real(loader_cls, t, tick)  # type: ignore[arg-type]

    _yaml_compose._read = counting  # type: ignore[assignment]
    try:
        scan_bytes(text.encode(), "twice.yaml")
    finally:
        _yaml_compose._read = real  # type: ignore[assignment]
    assert reads.count("_ComposeLoader") <= 1
