"""DSSE envelopes and Sigstore bundles (v0.3 JSON): building, strict parsing, PAE.

Parsing is strict and fails closed: wrong types, bad base64 or oversized documents raise
:class:`~mltrust.errors.InputError`. Nothing here decides trust; :mod:`._verify` does.

A bundle usually lies inside the folder being verified, so it is hostile input until its
signature checks. Reading and parsing are bounded *before* any JSON object is built
(:class:`~mltrust.config.Limits`):

* the file is opened with :func:`mltrust.files.read_bounded` (no link followed for a bundle
  inside a model folder, no FIFO or device opened, reading stops one byte past
  ``max_bundle_bytes``), so ``model.sig -> /dev/zero`` or a FIFO fails at once;
* the JSON structure is counted on the raw bytes (``{``, ``[`` and ``,``; base64 never holds
  them) against ``max_bundle_tokens``: an envelope with millions of signatures is refused
  without being parsed, in time and memory proportional to the bytes read;
* the envelope's signature list is bounded by ``max_signatures`` before any is decoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mltrust.config import Limits
from mltrust.errors import InputError, LimitExceeded
from mltrust.files import read_bounded

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "INTOTO_PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "Envelope",
    "ParsedBundle",
    "b64decode_strict",
    "check_bundle_size",
    "make_bundle",
    "make_envelope",
    "pae",
    "parse_bundle",
    "read_bundle",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: Media types of bundles we parse (v0.3 spelled both ways, and v0.2 for keyless bundles).
ACCEPTED_MEDIA_TYPES = frozenset(
    {
        BUNDLE_MEDIA_TYPE,
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
    }
)
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_DEFAULT_LIMITS = Limits()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def b64decode_strict(value: object, what: str) -> bytes:
    """Decode standard or URL-safe base64, refusing anything else."""
    if not isinstance(value, str) or not value:
        raise InputError(f"malformed bundle: {what} must be a non-empty base64 string")
    text = value.strip()
    try:
        if "-" in text or "_" in text:
            text = text.replace("-", "+").replace("_", "/")
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"malformed bundle: {what} is not valid base64") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded DSSE envelope."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[bytes, str], ...]  # (signature, keyid)


@dataclass(frozen=True, slots=True)
class ParsedBundle:
    """The parts of a Sigstore bundle that verification uses."""

    media_type: str
    envelope: Envelope
    key_hint: str | None
    certificates: tuple[bytes, ...]  # DER, leaf first
    tlog_entries: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any]


def make_envelope(payload: bytes, signature: bytes, *, keyid: str = "") -> dict[str, Any]:
    return {
        "payload": _b64(payload),
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": _b64(signature), "keyid": keyid}],
    }


def make_bundle(envelope: Mapping[str, Any], *, key_hint: str) -> dict[str, Any]:
    """A public-key Sigstore bundle v0.3 around a DSSE envelope."""
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint}, "tlogEntries": []},
        "dsseEnvelope": dict(envelope),
    }


def _dict(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"malformed bundle: {what} must be an object")
    return value


def parse_envelope(raw: object, *, limits: Limits = _DEFAULT_LIMITS) -> Envelope:
    env = _dict(raw, "dsseEnvelope")
    payload_type = env.get("payloadType")
    if not isinstance(payload_type, str):
        raise InputError("malformed bundle: dsseEnvelope.payloadType must be a string")
    payload = b64decode_strict(env.get("payload"), "dsseEnvelope.payload")
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise InputError("malformed bundle: dsseEnvelope.signatures must be a non-empty list")
    if len(sigs) > limits.max_signatures:
        raise LimitExceeded(
            f"malformed bundle: {len(sigs)} signatures in the envelope "
            f"(at most {limits.max_signatures} are read)"
        )
    out: list[tuple[bytes, str]] = []
    for i, item in enumerate(sigs):
        entry = _dict(item, f"signatures[{i}]")
        keyid = entry.get("keyid", "")
        if keyid is None:
            keyid = ""
        if not isinstance(keyid, str):
            raise InputError(f"malformed bundle: signatures[{i}].keyid must be a string")
        out.append((b64decode_strict(entry.get("sig"), f"signatures[{i}].sig"), keyid))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(out))


def check_bundle_size(data: bytes | str, source: str, limits: Limits = _DEFAULT_LIMITS) -> None:
    """Refuse a bundle too large, or with too much JSON structure, before it is parsed."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > limits.max_bundle_bytes:
        raise LimitExceeded(f"{source}: bundle larger than {limits.max_bundle_bytes} bytes")
    tokens = raw.count(b"{") + raw.count(b"[") + raw.count(b",")
    if tokens > limits.max_bundle_tokens:
        raise LimitExceeded(
            f"{source}: bundle has {tokens} JSON objects, lists or items; a Sigstore bundle "
            f"has at most {limits.max_bundle_tokens} (not parsed)"
        )


def parse_bundle(
    data: bytes | str, *, source: str = "bundle", limits: Limits = _DEFAULT_LIMITS
) -> ParsedBundle:
    """Parse a Sigstore bundle JSON document (public-key or keyless, DSSE content only)."""
    check_bundle_size(data, source, limits)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{source}: malformed bundle: not valid JSON ({exc})") from exc
    top = _dict(doc, "the document")
    media_type = top.get("mediaType")
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise InputError(f"{source}: not a Sigstore bundle (mediaType {media_type!r})")
    if "dsseEnvelope" not in top:
        raise InputError(f"{source}: bundle has no dsseEnvelope (message signatures unsupported)")
    envelope = parse_envelope(top["dsseEnvelope"], limits=limits)
    material = _dict(top.get("verificationMaterial", {}), "verificationMaterial")
    hint: str | None = None
    certs: list[bytes] = []
    if "publicKey" in material:
        pk = _dict(material["publicKey"], "verificationMaterial.publicKey")
        h = pk.get("hint")
        if h is not None and not isinstance(h, str):
            raise InputError(f"{source}: malformed bundle: publicKey.hint must be a string")
        hint = h or None
    if "certificate" in material:
        cert = _dict(material["certificate"], "verificationMaterial.certificate")
        certs.append(b64decode_strict(cert.get("rawBytes"), "certificate.rawBytes"))
    if "x509CertificateChain" in material:
        chain = _dict(material["x509CertificateChain"], "x509CertificateChain")
        items = chain.get("certificates")
        if not isinstance(items, list):
            raise InputError(f"{source}: malformed bundle: certificates must be a list")
        if len(items) > limits.max_certificates:
            raise LimitExceeded(
                f"{source}: {len(items)} certificates in the chain "
                f"(at most {limits.max_certificates})"
            )
        for i, item in enumerate(items):
            c = _dict(item, f"certificates[{i}]")
            certs.append(b64decode_strict(c.get("rawBytes"), f"certificates[{i}].rawBytes"))
    tlog = material.get("tlogEntries", [])
    if tlog is None:
        tlog = []
    if not isinstance(tlog, list):
        raise InputError(f"{source}: malformed bundle: tlogEntries must be a list")
    return ParsedBundle(
        media_type=str(media_type),
        envelope=envelope,
        key_hint=hint,
        certificates=tuple(certs),
        tlog_entries=tuple(_dict(t, "tlogEntries[]") for t in tlog),
        raw=top,
    )


def read_bundle(
    path: str | Path, *, limits: Limits = _DEFAULT_LIMITS, follow_links: bool = False
) -> ParsedBundle:
    """Read and parse a bundle file safely (see the module docstring).

    ``follow_links`` is for a bundle the user named explicitly; a bundle found inside a
    model folder is never read through a symbolic link.
    """
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise InputError(f"signature not found: {p}", hint="pass --signature FILE")
    if p.is_dir():
        raise InputError(f"signature path is a folder: {p}")
    data = read_bounded(p, limits.max_bundle_bytes, what="bundle", follow_links=follow_links)
    return parse_bundle(data, source=str(p), limits=limits)


def decode_statement(envelope: Envelope) -> dict[str, Any]:
    """The in-toto Statement inside an envelope (shape checked; trust decided elsewhere)."""
    try:
        doc = json.loads(envelope.payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError("malformed bundle: the DSSE payload is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise InputError("malformed bundle: the DSSE payload is not a JSON object")
    return doc


def canonical_json(doc: object) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
