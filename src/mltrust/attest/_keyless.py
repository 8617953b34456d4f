"""Offline verification of keyless (certificate) Sigstore bundles against a user trust policy.

What is checked:

* the certificate path, by ``cryptography``'s RFC 5280 path validation
  (:mod:`cryptography.x509.verification`, the Web PKI profile as sigstore-python uses it), not
  by hand: the leaf chains through the bundle's intermediates (at most
  ``Limits.max_certificates``) to one of the user's trusted CA certificates; every signature,
  validity at the signing time, ``BasicConstraints`` (CA, ``pathLenConstraint``), ``KeyUsage
  keyCertSign`` on every CA, name constraints and critical extensions are enforced. Two
  relaxations of the Web PKI profile, neither about trust: ``AuthorityKeyIdentifier`` may be
  absent (it only helps to find the issuer), and the leaf's ExtendedKeyUsage must hold
  **codeSigning** (the Web PKI profile would ask for clientAuth);
* the identity policy: the leaf's SubjectAlternativeName (email or URI) equals
  ``--cert-identity`` and its Fulcio OIDC-issuer extension (1.3.6.1.4.1.57264.1.8, or the
  legacy 1.3.6.1.4.1.57264.1.1) equals ``--cert-oidc-issuer``. A private CA that issues no
  such extension is accepted only when the policy says so explicitly
  (``oidc_issuer=None``, ``--private-ca``): the identity is then the SAN alone;
* with ``--rekor-key``: every transparency-log entry's signed entry timestamp
  (``inclusionPromise``) is verified with that key, the entry's body must name this payload's
  digest, and its ``integratedTime`` (inside the leaf's validity) becomes the signing time.

* with ``--rekor-key``, when an entry carries an ``inclusionProof``: the RFC 9162 Merkle
  audit path from the entry's leaf hash to ``rootHash``, and the checkpoint (a signed note)
  that must be signed by the same log key and name the same tree size and root.

What is **not** checked offline: that the checkpoint is consistent with the log's *current*
state (that needs the network, so a log that forked is not detected), signed timestamps from
a timestamp authority, and certificate revocation. Without ``--rekor-key`` no signing time can be
established, so the chain is checked at the present time (short-lived Fulcio certificates then
fail as expired; that is the honest answer, not a bug).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
)
from cryptography.x509.verification import VerificationError as PathValidationError

from mltrust.attest._bundle import ParsedBundle, b64decode_strict
from mltrust.attest._keys import PublicKey, load_public_key, verify_bytes
from mltrust.config import Limits
from mltrust.errors import ConfigError, InputError, VerificationError
from mltrust.files import read_bounded

if TYPE_CHECKING:
    from mltrust.attest._verify import KeylessPolicy

__all__ = ["OIDC_ISSUER_OID", "OIDC_ISSUER_V2_OID", "verify_certificate_bundle"]

OIDC_ISSUER_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OIDC_ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
_LIMITS = Limits()


def _load_roots(policy: KeylessPolicy) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    for path in policy.trusted_roots:
        data = read_bounded(path, _LIMITS.max_key_bytes, what="trusted root", follow_links=True)
        try:
            roots += x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise InputError(f"trusted root {path} holds no PEM certificate") from exc
    if not roots:
        raise ConfigError("keyless verification needs at least one trusted root certificate")
    return roots


def _load_chain(parsed: ParsedBundle) -> list[x509.Certificate]:
    if not parsed.certificates:
        raise VerificationError("the bundle carries no certificate (not a keyless bundle)")
    if len(parsed.certificates) > _LIMITS.max_certificates:
        raise VerificationError("the bundle's certificate chain is too long")
    chain: list[x509.Certificate] = []
    for der in parsed.certificates:
        try:
            chain.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise InputError("malformed bundle: a certificate is not valid DER") from exc
    return chain


def _code_signing(_policy: object, _cert: x509.Certificate, eku: object) -> None:
    if not isinstance(eku, x509.ExtendedKeyUsage) or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise ValueError("the signing certificate is not for code signing (ExtendedKeyUsage)")


def _check_path(
    chain: list[x509.Certificate], roots: list[x509.Certificate], when: datetime
) -> None:
    """RFC 5280 path validation of ``chain[0]`` to ``roots`` at ``when`` (see the module doc)."""
    aki = x509.AuthorityKeyIdentifier
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        aki, Criticality.NON_CRITICAL, None
    )
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(aki, Criticality.NON_CRITICAL, None)
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _code_signing)
    )
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(when)
        .max_chain_depth(_LIMITS.max_certificates)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verifier.verify(chain[0], chain[1:])
    except (PathValidationError, ValueError, TypeError) as exc:
        raise VerificationError(
            f"the signing certificate does not validate to a trusted root at "
            f"{when.isoformat()}: {exc}"
        ) from None


def _identities(leaf: x509.Certificate) -> list[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [
        *san.get_values_for_type(x509.RFC822Name),
        *san.get_values_for_type(x509.UniformResourceIdentifier),
    ]


def _der_utf8(data: bytes) -> str | None:
    # A DER UTF8String: tag 0x0c, short or long length form.
    if len(data) < 2 or data[0] != 0x0C:
        return None
    length = data[1]
    offset = 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 2 or len(data) < 2 + n:
            return None
        length = int.from_bytes(data[2 : 2 + n], "big")
        offset = 2 + n
    if offset + length != len(data):
        return None
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def _oidc_issuer(leaf: x509.Certificate) -> str | None:
    for ext in leaf.extensions:
        if ext.oid == OIDC_ISSUER_V2_OID and isinstance(ext.value, x509.UnrecognizedExtension):
            return _der_utf8(ext.value.value)
    for ext in leaf.extensions:
        if ext.oid == OIDC_ISSUER_OID and isinstance(ext.value, x509.UnrecognizedExtension):
            try:
                return ext.value.value.decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def _int_field(entry: Mapping[str, Any], name: str) -> int:
    value = entry.get(name)
    try:
        return int(str(value))
    except ValueError as exc:
        raise VerificationError(f"malformed transparency-log entry: {name}") from exc


def _check_tlog(parsed: ParsedBundle, rekor_key: PublicKey) -> datetime:
    """Verify every entry's signed entry timestamp; return the earliest integrated time."""
    if not parsed.tlog_entries:
        raise VerificationError("--rekor-key was given but the bundle has no tlog entries")
    payload_hash = hashlib.sha256(parsed.envelope.payload).hexdigest()
    log_id_expected = hashlib.sha256(
        rekor_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).hexdigest()
    times: list[int] = []
    for entry in parsed.tlog_entries:
        body_b64 = entry.get("canonicalizedBody")
        body = b64decode_strict(body_b64, "tlogEntries[].canonicalizedBody")
        log_id = entry.get("logId")
        if not isinstance(log_id, Mapping):
            raise VerificationError("malformed transparency-log entry: logId")
        key_id = b64decode_strict(log_id.get("keyId"), "tlogEntries[].logId.keyId").hex()
        if key_id != log_id_expected:
            raise VerificationError("a transparency-log entry comes from another log")
        promise = entry.get("inclusionPromise")
        if not isinstance(promise, Mapping):
            raise VerificationError("a transparency-log entry has no inclusion promise")
        set_sig = b64decode_strict(promise.get("signedEntryTimestamp"), "signedEntryTimestamp")
        integrated = _int_field(entry, "integratedTime")
        signed = json.dumps(
            {
                "body": body_b64,
                "integratedTime": integrated,
                "logID": key_id,
                "logIndex": _int_field(entry, "logIndex"),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        if not verify_bytes(rekor_key, set_sig, signed):
            raise VerificationError("a transparency-log entry's signed timestamp does not verify")
        if payload_hash not in _payload_hashes(body):
            raise VerificationError("a transparency-log entry is about another payload")
        proof = entry.get("inclusionProof")
        if proof is not None:
            _check_inclusion_proof(proof, body, rekor_key, bytes.fromhex(key_id))
        times.append(integrated)
    return datetime.fromtimestamp(min(times), UTC)


def _leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root_from_proof(
    index: int, tree_size: int, leaf: bytes, path: list[bytes]
) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root implied by an inclusion proof, or None if invalid."""
    if index < 0 or index >= tree_size:
        return None
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def _check_checkpoint(note: str, rekor_key: PublicKey, log_id: bytes) -> tuple[int, bytes]:
    """Verify a signed-note checkpoint with the log key; return (tree size, root hash)."""
    text, sep, signatures = note.partition("\n\n")
    if not sep:
        raise VerificationError("malformed checkpoint: no signature block")
    body = (text + "\n").encode("utf-8")
    lines = text.split("\n")
    if len(lines) < 3:
        raise VerificationError("malformed checkpoint: too few lines")
    try:
        size = int(lines[1])
        root = b64decode_strict(lines[2], "checkpoint root hash")
    except ValueError as exc:
        raise VerificationError("malformed checkpoint: tree size") from exc
    for line in signatures.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            continue
        try:
            raw = b64decode_strict(parts[2], "checkpoint signature")
        except InputError:
            continue
        if raw[:4] == log_id[:4] and verify_bytes(rekor_key, raw[4:], body):
            return size, root
    raise VerificationError("the checkpoint is not signed by the transparency-log key")


def _check_inclusion_proof(proof: object, body: bytes, rekor_key: PublicKey, log_id: bytes) -> None:
    """Check a tlog entry's Merkle inclusion proof against its log-signed checkpoint."""
    if not isinstance(proof, Mapping):
        raise VerificationError("malformed transparency-log entry: inclusionProof")
    index = _int_field(proof, "logIndex")
    size = _int_field(proof, "treeSize")
    root = b64decode_strict(proof.get("rootHash"), "inclusionProof.rootHash")
    hashes = proof.get("hashes", [])
    if not isinstance(hashes, list) or len(hashes) > 64:
        raise VerificationError("malformed transparency-log entry: inclusionProof.hashes")
    path = [b64decode_strict(h, "inclusionProof.hashes[]") for h in hashes]
    if merkle_root_from_proof(index, size, _leaf_hash(body), path) != root:
        raise VerificationError("the transparency-log inclusion proof does not verify")
    checkpoint = proof.get("checkpoint")
    envelope = checkpoint.get("envelope") if isinstance(checkpoint, Mapping) else None
    if not isinstance(envelope, str):
        raise VerificationError("the inclusion proof has no checkpoint")
    cp_size, cp_root = _check_checkpoint(envelope, rekor_key, log_id)
    if (cp_size, cp_root) != (size, root):
        raise VerificationError("the inclusion proof does not match the signed checkpoint")


def _payload_hashes(body: bytes) -> set[str]:
    out: set[str] = set()
    try:
        doc = json.loads(body)
    except ValueError:
        return out

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            ph = node.get("payloadHash")
            if isinstance(ph, Mapping) and isinstance(ph.get("value"), str):
                out.add(ph["value"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    return out


def verify_certificate_bundle(parsed: ParsedBundle, policy: KeylessPolicy) -> tuple[PublicKey, str]:
    """Check a keyless bundle's certificate against the policy; (leaf key, identity)."""
    if not policy.identity:
        raise ConfigError("keyless verification needs an expected certificate identity")
    if policy.oidc_issuer is not None and not policy.oidc_issuer:
        raise ConfigError(
            "keyless verification needs an OIDC issuer (or None, explicitly, for a private CA)"
        )
    roots = _load_roots(policy)
    chain = _load_chain(parsed)
    when = datetime.now(UTC)
    if policy.rekor_key is not None:
        when = _check_tlog(parsed, load_public_key(policy.rekor_key))
    _check_path(chain, roots, when)
    leaf = chain[0]
    identities = _identities(leaf)
    if policy.identity not in identities:
        raise VerificationError(
            f"certificate identity {', '.join(identities) or '(none)'} does not match "
            f"{policy.identity}"
        )
    issuer = _oidc_issuer(leaf)
    if policy.oidc_issuer is not None and issuer != policy.oidc_issuer:
        raise VerificationError(
            f"certificate OIDC issuer {issuer or '(none)'} does not match {policy.oidc_issuer}"
        )
    key = leaf.public_key()
    if not isinstance(key, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        raise VerificationError("the signing certificate's key type is not supported")
    return key, policy.identity
