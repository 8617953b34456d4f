"""Signing: a model manifest becomes an in-toto Statement in a DSSE envelope in a Sigstore bundle.

The statement uses the OpenSSF model-signing predicate exactly as ``model_signing`` 1.x writes
it (``subject`` = model name + model-signing root digest; ``predicate.serialization`` and
``predicate.resources``), so ``model_signing verify key`` accepts our bundles. What
model-signing lacks rides in one extra predicate field, ``predicate.mltrust``, which v1.0
verifiers ignore by specification and which is covered by the same signature:

* ``rootDigest.sha256``: mltrust's root digest (binds names and sizes, see :mod:`._manifest`);
* ``files``: name, size, ``executable`` (checked by verification: the mode bit git keeps)
  and stat hints (``mtimeNs``, ``ctimeNs``, ``inode``) per file; the hints are used only by
  ``sign --reuse`` and never trusted by verification;
* ``modelName``, ``modelVersion``, ``issuedAt``: freshness and rollback protection;
* ``keyFingerprint``: the signer's key (informational; the verifier pins its own key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrust.attest._bundle import (
    INTOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    canonical_json,
    make_bundle,
    make_envelope,
    pae,
)
from mltrust.attest._keys import (
    PrivateKey,
    fingerprint,
    key_hint,
    load_private_key,
    sign_bytes,
)
from mltrust.attest._manifest import (
    MLTRUST_FILES,
    HashProgress,
    Manifest,
    build_manifest,
    expand_ignore,
)
from mltrust.config import Limits
from mltrust.errors import ConfigError, InputError
from mltrust.store._atomic import atomic_write_bytes

if TYPE_CHECKING:
    from mltrust.executors import Executor
    from mltrust.store import EvidenceStore

__all__ = [
    "MODEL_SIGNING_PREDICATE",
    "default_signature_path",
    "manifest_statement",
    "sign",
    "sign_statement",
    "write_bundle",
]

MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
SIGNATURE_NAME = "model.sig"


def default_signature_path(path: str | Path) -> Path:
    """Folder -> ``<folder>/model.sig``; file -> ``<file>.sig`` beside it."""
    p = Path(path)
    if p.is_dir():
        return p / SIGNATURE_NAME
    return p.with_name(p.name + ".sig")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def manifest_statement(
    manifest: Manifest,
    *,
    model_name: str,
    version: int | None,
    issued_at: datetime,
    signer_fingerprint: str,
) -> dict[str, Any]:
    """The model-signing-compatible in-toto statement for ``manifest``, with mltrust extras."""
    resources = [
        {"name": name, "algorithm": alg, "digest": digest}
        for name, alg, digest in manifest.resources()
    ]
    extras: dict[str, Any] = {
        "format": 1,
        "rootDigest": {"sha256": manifest.root_digest},
        "modelName": model_name,
        "issuedAt": format_time(issued_at),
        "keyFingerprint": signer_fingerprint,
        "files": [
            {
                "name": f.name,
                "size": f.size,
                "mtimeNs": f.mtime_ns,
                "ctimeNs": f.ctime_ns,
                "inode": f.ino,
                **({} if f.executable is None else {"executable": f.executable}),
            }
            for f in manifest.files
        ],
    }
    if version is not None:
        extras["modelVersion"] = version
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": manifest.compat_digest}}],
        "predicateType": MODEL_SIGNING_PREDICATE,
        "predicate": {
            "serialization": manifest.serialization(),
            "resources": resources,
            "mltrust": extras,
        },
    }


def sign_statement(statement: Mapping[str, Any], key: PrivateKey) -> dict[str, Any]:
    """Sign an in-toto statement: a Sigstore bundle v0.3 (public-key) around a DSSE envelope."""
    payload = canonical_json(statement)
    signature = sign_bytes(key, pae(INTOTO_PAYLOAD_TYPE, payload))
    envelope = make_envelope(payload, signature)
    return make_bundle(envelope, key_hint=key_hint(key.public_key()))


def write_bundle(bundle: Mapping[str, Any], path: Path) -> None:
    """Write a bundle atomically (temp file in the same folder + os.replace)."""
    data = json.dumps(bundle, indent=2, sort_keys=True).encode("utf-8") + b"\n"
    atomic_write_bytes(path, data)


def resolve_private_key(
    key: str | Path | PrivateKey, passphrase: bytes | None, *, insecure_permissions: bool = False
) -> PrivateKey:
    if isinstance(key, (str, Path)):
        return load_private_key(key, passphrase, insecure_permissions=insecure_permissions)
    return key


def _relative_inside(child: Path, root: Path) -> str | None:
    try:
        rel = child.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    text = rel.as_posix()
    return None if text in ("", ".") else text


def sign(
    path: str | Path,
    *,
    key: str | Path | PrivateKey,
    output: str | Path | None = None,
    model_name: str | None = None,
    version: int | None = None,
    ignore: Sequence[str] = (),
    hash_algorithm: str = "sha256",
    passphrase: bytes | None = None,
    reuse: str | Path | None = None,
    shard_size: int | None = None,
    allow_symlinks: bool = False,
    store: EvidenceStore | None = None,
    issued_at: datetime | None = None,
    progress: HashProgress | None = None,
    insecure_key_permissions: bool = False,
    limits: Limits | None = None,
    include_git: bool = False,
    executor: Executor | None = None,
) -> Path:
    """Sign a model folder or file; returns the path of the bundle written.

    ``ignore`` holds relative paths or glob patterns (see :func:`expand_ignore`); the paths
    they match now are recorded in the signed payload, with the bundle itself (when it lies
    inside the folder), the exact files mltrust writes after signing
    (:data:`~._manifest.MLTRUST_FILES`) and, unless ``include_git``, ``.git``,
    ``.gitattributes``, ``.github`` and ``.gitignore`` (as model_signing does; with
    ``include_git`` they are covered too, and ``model_signing verify`` of the folder then
    needs ``--no-ignore-git-paths``).

    ``reuse`` names a previous bundle of the same model: it is first verified against the
    signer's own public key, then files whose size, inode, mtime_ns and ctime_ns are unchanged
    keep their recorded digests instead of being re-read. Trade-off: the stat data is trusted.
    The owner can restore mtime with ``touch``, but ctime changes on every write and can only
    be reset by root (changing the clock, ``debugfs``) or on file systems that do not keep it
    (some network/FUSE mounts); such an attacker gets stale digests signed. Use ``--reuse``
    only on local storage you control; a full ``sign`` has no such assumption.

    ``executor`` hashes the files elsewhere (``sign --ray``): the folder is listed here, the
    byte ranges are hashed in tasks that read them by path, and the manifest is assembled
    here, so the statement signed is the one a local run signs.
    """
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise InputError(f"no such file or folder: {root}")
    if version is not None and (isinstance(version, bool) or version < 0):
        raise ConfigError(f"version must be a non-negative integer, not {version!r}")
    private = resolve_private_key(key, passphrase, insecure_permissions=insecure_key_permissions)
    out = Path(output) if output is not None else default_signature_path(root)
    extra_ignore = expand_ignore(root, ignore)
    own: list[str] = []
    if root.is_dir():
        rel = _relative_inside(out, root)
        if rel is not None:
            extra_ignore.append(rel)
            own.append(rel)
    previous: Manifest | None = None
    if reuse is not None:
        from mltrust.attest._verify import trusted_manifest_from_bundle

        previous = trusted_manifest_from_bundle(
            Path(reuse),
            private.public_key(),
            file_name=root.name if root.is_file() else None,
            limits=limits,
        )
    if include_git:
        extra_ignore += MLTRUST_FILES
    manifest = build_manifest(
        root,
        hash_algorithm=hash_algorithm,
        ignore=extra_ignore,
        default_ignores=not include_git,
        reuse=previous,
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        name=model_name,
        progress=progress,
        limits=limits,
        executor=executor,
        exact_ignore=own,
    )
    name = model_name or manifest.name
    statement = manifest_statement(
        manifest,
        model_name=name,
        version=version,
        issued_at=issued_at or _now(),
        signer_fingerprint=fingerprint(private.public_key()),
    )
    bundle = sign_statement(statement, private)
    write_bundle(bundle, out)
    if store is not None:
        store.add_statement(
            statement,
            envelope=bundle["dsseEnvelope"],
            signer=fingerprint(private.public_key()),
            subject_digest=manifest.root_digest,
        )
    return out
