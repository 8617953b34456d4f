"""Helpers for the ONNX, TensorFlow, GGUF and safetensors scanner tests.

A tiny protobuf *encoder* (the scanners only decode) and a way to run the engine on a buffer
with a chosen path, so that ONNX external data resolves against a real folder.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from mltrust.config import Limits, ScanConfig
from mltrust.findings import Finding, Location, Severity
from mltrust.scan._context import ScanContext
from mltrust.scan._engine import scan_buffer

# --- protobuf encoding ------------------------------------------------------------------------


def varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vi(field: int, value: int) -> bytes:
    """A varint field."""
    return varint(field << 3) + varint(value)


def ld(field: int, payload: bytes | str) -> bytes:
    """A length-delimited field."""
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(field << 3 | 2) + varint(len(payload)) + payload


# --- running the engine ------------------------------------------------------------------------


def scan_data(
    data: bytes, path: str | os.PathLike[str] = "model.bin", *, limits: Limits | None = None
) -> ScanContext:
    """Sniff and scan ``data`` as the file ``path`` (which need not exist)."""
    config = ScanConfig(limits=limits) if limits else ScanConfig()
    ctx = ScanContext(config=config)
    spath = str(path)
    scan_buffer(memoryview(data), ctx, Location(spath), os.path.basename(spath))
    return ctx


def scan_path(path: Path, *, limits: Limits | None = None) -> ScanContext:
    return scan_data(path.read_bytes(), path, limits=limits)


def rule_ids(ctx: ScanContext) -> set[str]:
    return {f.rule_id for f in ctx.findings}


def at_least(ctx: ScanContext, severity: Severity) -> list[Finding]:
    return [f for f in ctx.findings if f.severity >= severity]


def assert_clean(ctx: ScanContext) -> None:
    bad = at_least(ctx, Severity.MEDIUM)
    assert not bad, [(f.rule_id, f.severity.value, f.message) for f in bad]


def gguf_string(text: str | bytes, v1: bool = False, order: str = "<") -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack(order + ("I" if v1 else "Q"), len(raw)) + raw
