"""Reading in-toto statements already stored next to a model (``.mltrust/*.json``).

Statements may be bare, in a DSSE envelope, or in a Sigstore bundle (``dsseEnvelope``). This
module only reads them; signatures are verified by :mod:`mltrust.attest`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["read_statements"]

_MAX_BYTES = 16 * 1024 * 1024


def _statement(doc: Any) -> tuple[Mapping[str, Any] | None, bool]:
    """``(statement, enveloped)`` for one JSON document."""
    if not isinstance(doc, Mapping):
        return None, False
    if "predicateType" in doc and "subject" in doc:
        return doc, False
    envelope = doc.get("dsseEnvelope", doc)
    if isinstance(envelope, Mapping) and isinstance(envelope.get("payload"), str):
        try:
            inner = json.loads(base64.b64decode(envelope["payload"], validate=True))
        except (binascii.Error, ValueError):
            return None, False
        if isinstance(inner, Mapping) and "predicateType" in inner:
            return inner, True
    return None, False


def read_statements(folder: Path) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """``(file name, statement, enveloped)`` for each statement in ``folder/.mltrust/``."""
    base = folder / ".mltrust"
    if not base.is_dir():
        return
    for path in sorted(base.glob("*.json")):
        try:
            if path.stat().st_size > _MAX_BYTES:
                continue
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        statement, enveloped = _statement(doc)
        if statement is not None:
            yield path.name, statement, enveloped
