"""Integrity and provenance for models and data sets: manifests, keys, signing, verification
and signed attestations.

Signatures are Sigstore bundles (v0.3) holding a DSSE envelope around an in-toto Statement v1
with the OpenSSF model-signing predicate, so they interoperate with ``model_signing``; mltrust
adds a name-binding root digest, an issue time and a model version for freshness and
rollback protection. See :func:`sign` and :func:`verify`.
"""

from __future__ import annotations

from mltrust.attest._attestations import (
    PROVENANCE_PREDICATE,
    SCAN_PREDICATE,
    attest_provenance,
    attest_scan,
    attestation_path,
    model_manifest,
    provenance_statement,
    scan_statement,
)
from mltrust.attest._bundle import (
    BUNDLE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    pae,
    parse_bundle,
    read_bundle,
)
from mltrust.attest._keys import (
    KEY_TYPES,
    KeyPair,
    PrivateKey,
    PublicKey,
    default_key_dir,
    fingerprint,
    generate_keypair,
    key_hint,
    load_private_key,
    load_public_key,
)
from mltrust.attest._manifest import (
    FileEntry,
    HashProgress,
    Manifest,
    build_manifest,
    expand_ignore,
)
from mltrust.attest._sign import (
    MODEL_SIGNING_PREDICATE,
    default_signature_path,
    sign,
    sign_statement,
    write_bundle,
)
from mltrust.attest._tuning import (
    TUNING_PREDICATE,
    attest_tuning,
    read_optuna_study,
    tuning_statement,
)
from mltrust.attest._verify import (
    KeylessPolicy,
    PinnedKeys,
    VerifiedAttestation,
    VerifiedModel,
    attestation_dir,
    verify,
    verify_attestation,
    verify_bundle_bytes,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "INTOTO_PAYLOAD_TYPE",
    "KEY_TYPES",
    "MODEL_SIGNING_PREDICATE",
    "PROVENANCE_PREDICATE",
    "SCAN_PREDICATE",
    "STATEMENT_TYPE",
    "TUNING_PREDICATE",
    "FileEntry",
    "HashProgress",
    "KeyPair",
    "KeylessPolicy",
    "Manifest",
    "PinnedKeys",
    "PrivateKey",
    "PublicKey",
    "VerifiedAttestation",
    "VerifiedModel",
    "attest_provenance",
    "attest_scan",
    "attest_tuning",
    "attestation_dir",
    "attestation_path",
    "build_manifest",
    "default_key_dir",
    "default_signature_path",
    "expand_ignore",
    "fingerprint",
    "generate_keypair",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "model_manifest",
    "pae",
    "parse_bundle",
    "provenance_statement",
    "read_bundle",
    "read_optuna_study",
    "scan_statement",
    "sign",
    "sign_statement",
    "tuning_statement",
    "verify",
    "verify_attestation",
    "verify_bundle_bytes",
    "write_bundle",
]
