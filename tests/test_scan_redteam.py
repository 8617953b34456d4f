"""Red-team findings against the scanner (session of 2026-12-03), one test per attack."""

from __future__ import annotations

import time

import pytest

from mltrust.findings import Severity
from mltrust.scan import scan_bytes


def _worst(data: bytes, name: str) -> Severity | None:
    findings = scan_bytes(data, name).findings
    return max((f.severity for f in findings), default=None)


@pytest.mark.parametrize(
    "value",
    [
        "${remote}\nremote: true",
        "'${oc.decode:\"true\"}'",
        "{_target_: builtins.bool, _args_: [1]}",
    ],
)
def test_trust_remote_code_set_indirectly_is_flagged(value: str) -> None:
    doc = (
        "model:\n  _target_: transformers.AutoModel.from_pretrained\n"
        f"  pretrained_model_name_or_path: org/repo\n  trust_remote_code: {value}\n"
    )
    worst = _worst(doc.encode(), "config.yaml")
    assert worst is not None and worst >= Severity.HIGH


def test_trust_remote_code_false_stays_quiet() -> None:
    doc = (
        "model:\n  _target_: transformers.AutoModel.from_pretrained\n"
        "  pretrained_model_name_or_path: org/repo\n  trust_remote_code: false\n"
    )
    worst = _worst(doc.encode(), "config.yaml")
    assert worst is None or worst < Severity.MEDIUM


def test_target_hidden_in_oc_create_is_flagged() -> None:
    doc = (
        "model:\n  _target_: builtins.list\n  _args_:\n"
        "    - - '${oc.create:{_target_: os.system, _args_: [\"touch /tmp/x\"]}}'\n"
    )
    worst = _worst(doc.encode(), "config.yaml")
    assert worst is not None and worst >= Severity.HIGH


def test_shared_subtuples_do_not_make_the_flow_walk_exponential() -> None:
    """280 bytes: a tracked loader popped, then a 31-level DUP/TUPLE2 tower appended 60 times."""
    data = bytearray(b"\x80\x02ctorch.storage\n_load_from_bytes\n0]N")
    data += b"2\x86" * 31
    data += b"q\x00a" + b"h\x00a" * 59 + b"."
    started = time.monotonic()
    scan_bytes(bytes(data), "model.pkl")
    assert time.monotonic() - started < 10
