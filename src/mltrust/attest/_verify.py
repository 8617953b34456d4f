"""Verification of model signatures and attestations against pinned keys.

Decisions (each has a test named after the attack it stops):

* The key is the verifier's: the bundle's ``verificationMaterial`` is never used to find a
  key (a hint that names another key only makes the error clearer).
* The envelope must hold **exactly one** signature. model-signing checks only the first; an
  envelope with more than one was not produced by a signer we know, so it is rejected rather
  than searched for "any" valid signature.
* ``payloadType``, ``_type`` and ``predicateType`` must be the expected ones.
* Every digest is recomputed from disk with the settings recorded in the *signed* payload and
  compared; differences are reported as added / removed / renamed / modified files.
* What is left out of the comparison: the paths the *signed* payload lists as ignored (the
  signer's decision, covered by the signature: ``.git*`` by default for mltrust and
  model_signing alike), the signature file itself, the verifier's own state file, and the exact
  files mltrust writes after signing (:data:`~._manifest.MLTRUST_FILES`: attestation bundles,
  the default evidence store). The verifier adds nothing else: any other file, under
  ``.mltrust/`` or ``.git*`` included, is an extra file and fails verification.
* The bundle is hostile until its signature checks: it is read without following a link
  (unless the user named it), without opening a FIFO or device, with the bounds of
  :class:`~mltrust.config.Limits` applied before parsing (see :mod:`._bundle`).
* The verifier says which model it expects: ``name`` must equal the signed model name, and
  ``version``/``min_version`` bound the signed version, so another model signed by the same
  key (or an old one) does not pass for this one.
* Freshness: ``max_age`` needs a signed ``issuedAt``; a ``state`` file remembers the highest
  version seen per *expected* model name (so ``state`` needs ``name``) and refuses a lower
  one (rollback) or the same version with other content. The state file has a schema; a file
  that does not fit it is an error, never a fresh start.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mltrust.attest._bundle import (
    _DEFAULT_LIMITS,
    INTOTO_PAYLOAD_TYPE,
    STATEMENT_TYPE,
    ParsedBundle,
    decode_statement,
    pae,
    parse_bundle,
    read_bundle,
)
from mltrust.attest._keys import (
    PublicKey,
    fingerprint,
    key_hint,
    load_public_key,
    verify_bytes,
)
from mltrust.attest._manifest import (
    ATTESTATION_KINDS,
    ATTESTATION_PREDICATES,
    HASH_ALGORITHMS,
    MLTRUST_FILES,
    FileEntry,
    HashProgress,
    Manifest,
    SymlinkError,
    algorithm_name,
    build_manifest,
    digest_bytes,
    normalize_ignore,
    sort_key,
)
from mltrust.attest._sign import MODEL_SIGNING_PREDICATE, default_signature_path
from mltrust.config import Limits
from mltrust.errors import ConfigError, InputError, VerificationError
from mltrust.files import read_bounded
from mltrust.store._atomic import atomic_write_bytes

__all__ = [
    "ATTESTATION_DIR",
    "KeylessPolicy",
    "PinnedKeys",
    "VerifiedAttestation",
    "VerifiedModel",
    "attestation_dir",
    "open_bundle",
    "parse_state",
    "trusted_manifest_from_bundle",
    "verify",
    "verify_attestation",
]

ATTESTATION_DIR = ".mltrust/attestations"
#: Largest clock skew tolerated for an issue time in the future.
CLOCK_SKEW = timedelta(minutes=5)
_HEX = re.compile(r"[0-9a-f]+")  # used with fullmatch (``$`` would accept a final newline)
_DIGEST_SIZES = {"sha256": 64, "blake3": 64}

KeySpec = str | Path | bytes | PublicKey


@dataclass(frozen=True, slots=True)
class KeylessPolicy:
    """Trust for keyless (certificate) bundles: CA certificates and the expected identity.

    ``oidc_issuer`` is the Fulcio OIDC-issuer the certificate must carry; ``None`` (which must
    be passed explicitly) accepts a private CA that issues no such extension, the identity
    then being the certificate's SAN alone.
    """

    trusted_roots: tuple[Path, ...]
    identity: str
    oidc_issuer: str | None
    rekor_key: Path | None = None


@dataclass(frozen=True, slots=True, init=False)
class PinnedKeys:
    """Trust for key-signed bundles: the signature must verify under one of these keys.

    Each key is a PEM file path, PEM bytes or a loaded public key; files are read when the
    policy is made, so a missing or malformed key fails here, not in the middle of a check.
    At least one key is required (an empty policy would trust nothing, or by mistake anything).

    >>> verify("models/iris", trust=PinnedKeys("keys/release.pub"))  # doctest: +SKIP
    """

    keys: tuple[PublicKey, ...]

    def __init__(self, *keys: KeySpec) -> None:
        object.__setattr__(self, "keys", tuple(_pinned(list(keys))))


@dataclass(frozen=True, slots=True)
class VerifiedAttestation:
    """A signed statement about the model that verified against a pinned key."""

    path: Path
    predicate_type: str
    key_fingerprint: str
    statement: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class VerifiedModel:
    """What a successful verification proved. Returned only when everything checked."""

    path: Path
    root_digest: str
    files: Mapping[str, str]
    signed_at: datetime | None
    model_name: str
    version: int | None
    key_fingerprint: str
    attestations: tuple[VerifiedAttestation, ...] = ()
    compat_digest: str = ""
    signature_path: Path | None = None
    identity: str | None = None
    #: ``.git*`` paths (``.git``, ``.github``, ...) present in the folder that the signature
    #: leaves out (signed ``ignore_paths``): not verified, and git runs code from ``.git``
    #: (hooks, ``core.fsmonitor``). Sign with ``--include-git`` to cover them.
    uncovered_git: tuple[str, ...] = ()
    #: How ``files`` digests were computed (the signed manifest's settings).
    hash_algorithm: str = "sha256"
    shard_size: int | None = None

    def matches(self, rel: str, data: bytes | memoryview) -> bool:
        """Whether ``data`` are exactly the verified bytes of file ``rel`` (a relative POSIX
        path; the file's own name for a single-file model), with the signed algorithm.
        False when ``rel`` is not covered by the signature."""
        signed = self.files.get(rel)
        if signed is None:
            return False
        return hmac.compare_digest(digest_bytes(data, self.hash_algorithm, self.shard_size), signed)


def _pinned(key: KeySpec | Sequence[KeySpec] | None) -> list[PublicKey]:
    if key is None:
        return []
    items: Sequence[Any]
    if isinstance(key, (str, Path, bytes)) or not isinstance(key, Sequence):
        items = [key]
    else:
        items = key
    out: list[PublicKey] = []
    for item in items:
        if isinstance(item, (str, Path, bytes)):
            out.append(load_public_key(item))
        elif isinstance(item, (ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
            out.append(item)
        else:
            raise ConfigError(
                f"not a public key: {type(item).__name__}",
                hint="pass keys one by one: PinnedKeys(*keys)",
            )
    if not out:
        raise ConfigError("no public key given: verification needs a pinned key")
    return out


def open_bundle(
    parsed: ParsedBundle,
    keys: Sequence[PublicKey],
    *,
    keyless: KeylessPolicy | None = None,
) -> tuple[dict[str, Any], str, str | None]:
    """Check the envelope signature; return (statement, signer fingerprint, identity).

    With ``keys``, the signature must verify under one of those pinned keys. With ``keyless``,
    the bundle's certificate must chain to the trusted roots and match the identity policy;
    its key then verifies the signature.
    """
    env = parsed.envelope
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"unexpected payloadType {env.payload_type!r} (expected {INTOTO_PAYLOAD_TYPE})"
        )
    if len(env.signatures) != 1:
        raise VerificationError(
            f"the envelope holds {len(env.signatures)} signatures; exactly one is accepted"
        )
    sig, _keyid = env.signatures[0]
    message = pae(env.payload_type, env.payload)
    identity: str | None = None
    if keys:
        signer = next((k for k in keys if verify_bytes(k, sig, message)), None)
        if signer is None:
            named = ""
            if parsed.key_hint and parsed.key_hint not in {key_hint(k) for k in keys}:
                named = " (the bundle names a different key)"
            raise VerificationError(f"signature does not verify with the pinned key{named}")
        fp = fingerprint(signer)
    elif keyless is not None:
        from mltrust.attest._keyless import verify_certificate_bundle

        leaf_key, identity = verify_certificate_bundle(parsed, keyless)
        if not verify_bytes(leaf_key, sig, message):
            raise VerificationError("signature does not verify with the certificate's key")
        fp = fingerprint(leaf_key)
    else:
        raise ConfigError("verification needs a pinned key or a keyless trust policy")
    statement = decode_statement(env)
    if statement.get("_type") != STATEMENT_TYPE:
        raise VerificationError(
            f"unexpected statement _type {statement.get('_type')!r} (expected {STATEMENT_TYPE})"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("the statement has no subject")
    return statement, fp, identity


def _check_digest(value: object, algorithm: str, where: str) -> str:
    size = _DIGEST_SIZES[algorithm.split("-", 1)[0]]
    if not isinstance(value, str) or len(value) != size or not _HEX.fullmatch(value):
        raise VerificationError(f"malformed digest in the signed manifest at {where}")
    return value


@dataclass(frozen=True, slots=True)
class _Expected:
    manifest: Manifest
    extras: Mapping[str, Any]
    subject_name: str
    compat_digest: str


def _int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise VerificationError(f"malformed {what} in the signed payload")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    raise VerificationError(f"malformed {what} in the signed payload")


def _expected_manifest(statement: Mapping[str, Any], *, file_name: str | None) -> _Expected:
    """Rebuild the signed manifest from a model-signing statement (ours or theirs)."""
    if statement.get("predicateType") != MODEL_SIGNING_PREDICATE:
        raise VerificationError(
            f"unexpected predicateType {statement.get('predicateType')!r} "
            f"(expected {MODEL_SIGNING_PREDICATE})"
        )
    subjects = statement["subject"]
    if len(subjects) != 1 or not isinstance(subjects[0], Mapping):
        raise VerificationError("a model signature must have exactly one subject")
    subject = subjects[0]
    digest_set = subject.get("digest")
    if not isinstance(digest_set, Mapping) or not isinstance(digest_set.get("sha256"), str):
        raise VerificationError("the subject has no sha256 digest")
    predicate = statement.get("predicate")
    if not isinstance(predicate, Mapping):
        raise VerificationError("the statement has no predicate")
    ser = predicate.get("serialization")
    resources = predicate.get("resources")
    if not isinstance(ser, Mapping) or not isinstance(resources, list):
        raise VerificationError("the predicate lacks serialization or resources")
    method = ser.get("method")
    hash_type = ser.get("hash_type")
    if not isinstance(hash_type, str) or hash_type not in HASH_ALGORITHMS:
        raise VerificationError(f"unsupported hash type {hash_type!r} in the signature")
    shard_size: int | None
    if method == "files":
        shard_size = None
    elif method == "shards":
        shard_size = _int(ser.get("shard_size"), "shard_size")
        if shard_size <= 0:
            raise VerificationError("malformed shard_size in the signed payload")
    else:
        raise VerificationError(f"unsupported serialization method {method!r}")
    allow_symlinks = ser.get("allow_symlinks", False)
    if not isinstance(allow_symlinks, bool):
        raise VerificationError("malformed allow_symlinks in the signed payload")
    raw_ignore = ser.get("ignore_paths", [])
    if not isinstance(raw_ignore, list) or not all(isinstance(p, str) for p in raw_ignore):
        raise VerificationError("malformed ignore_paths in the signed payload")
    try:
        ignore = normalize_ignore(raw_ignore)
    except ConfigError as exc:
        raise VerificationError(f"unsafe ignore path in the signed payload: {exc}") from exc
    extras = predicate.get("mltrust", {})
    if not isinstance(extras, Mapping):
        raise VerificationError("malformed mltrust extras in the signed payload")
    algorithm = algorithm_name(hash_type, shard_size)
    declared = extras.get("files")
    if file_name is not None and isinstance(declared, list) and len(declared) == 1:
        signed_name = declared[0].get("name") if isinstance(declared[0], Mapping) else None
        if isinstance(signed_name, str) and signed_name and "/" not in signed_name:
            file_name = signed_name  # the name the file was signed under (names are bound)

    compat = hashlib.sha256()
    per_file: dict[str, list[tuple[int, int, str]]] = {}
    for i, res in enumerate(resources):
        if not isinstance(res, Mapping):
            raise VerificationError(f"malformed resource #{i} in the signed manifest")
        name, alg, digest = res.get("name"), res.get("algorithm"), res.get("digest")
        if not isinstance(name, str) or not isinstance(alg, str):
            raise VerificationError(f"malformed resource #{i} in the signed manifest")
        if alg not in (algorithm, hash_type):
            raise VerificationError(f"resource {name!r} uses algorithm {alg!r}, not {algorithm}")
        digest = _check_digest(digest, hash_type, name)
        compat.update(bytes.fromhex(digest))
        if shard_size is None:
            path, start, end = name, 0, -1
        else:
            path, sep1, rest = name.rpartition(":")
            path, sep2, start_text = path.rpartition(":")
            if not sep1 or not sep2:
                raise VerificationError(f"malformed shard name {name!r}")
            try:
                start, end = int(start_text), int(rest)
            except ValueError as exc:
                raise VerificationError(f"malformed shard name {name!r}") from exc
        if path == ".":
            if file_name is None:
                raise VerificationError("the signature is for a single file, not a folder")
            path = file_name
        elif file_name is not None:
            raise VerificationError("the signature is for a folder, not a single file")
        parts = path.split("/")
        if path.startswith("/") or ".." in parts or "" in parts or "." in parts:
            raise VerificationError(f"unsafe file name in the signed manifest: {path!r}")
        per_file.setdefault(path, []).append((start, end, digest))
    if compat.hexdigest() != digest_set["sha256"]:
        raise VerificationError(
            "the signed manifest is inconsistent: resources do not hash to the subject digest"
        )
    sizes: dict[str, int] = {}
    modes: dict[str, bool] = {}
    if declared is not None:
        if not isinstance(declared, list):
            raise VerificationError("malformed file list in the signed payload")
        for item in declared:
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise VerificationError("malformed file list in the signed payload")
            sizes[item["name"]] = _int(item.get("size"), "file size")
            if "executable" in item:
                if not isinstance(item["executable"], bool):
                    raise VerificationError("malformed executable flag in the signed payload")
                modes[item["name"]] = item["executable"]
    files: list[FileEntry] = []
    for path, shards in per_file.items():
        if shard_size is None:  # one digest per file: the common, fast case
            if len(shards) != 1:
                raise VerificationError(f"file {path!r} is listed twice in the signed manifest")
            files.append(
                FileEntry(
                    path,
                    sizes.get(path, -1),
                    algorithm,
                    (shards[0][2],),
                    executable=modes.get(path),
                )
            )
            continue
        shards.sort()
        pos = 0
        for start, end, _d in shards:
            if start != pos or end < start or end - start > shard_size:
                raise VerificationError(f"shards of {path!r} do not cover the file")
            pos = end
        files.append(
            FileEntry(
                name=path,
                size=pos,
                algorithm=algorithm,
                digests=tuple(d for _s, _e, d in shards),
                executable=modes.get(path),
            )
        )
    files.sort(key=lambda f: sort_key(f.name))
    manifest = Manifest(
        name=str(subject.get("name") or ""),
        hash_algorithm=hash_type,
        files=tuple(files),
        ignore=ignore,
        shard_size=shard_size,
        allow_symlinks=allow_symlinks,
        single_file=file_name is not None,
    )
    if declared is not None:
        if set(sizes) != {f.name for f in files}:
            raise VerificationError("the signed file list does not match the signed resources")
        root = extras.get("rootDigest")
        if not isinstance(root, Mapping) or root.get("sha256") != manifest.root_digest:
            raise VerificationError("the signed root digest does not match the signed files")
    return _Expected(
        manifest=manifest,
        extras=extras,
        subject_name=str(subject.get("name") or ""),
        compat_digest=digest_set["sha256"],
    )


def _differences(expected: Manifest, actual: Manifest) -> list[str]:
    """Added / removed / renamed / modified / mode-changed files, in manifest order.

    Linear in the number of files (renames are matched through a digest index), so a folder
    with many added and removed files cannot make the comparison quadratic.
    """
    exp = {f.name: f for f in expected.files}
    act = {f.name: f for f in actual.files}
    removed = [f.name for f in expected.files if f.name not in act]
    added = [f.name for f in actual.files if f.name not in exp]
    out: list[str] = []
    renamed_from: set[str] = set()
    renamed_to: set[str] = set()
    if removed and added:
        by_digests: dict[tuple[str, ...], list[str]] = {}
        for new in reversed(added):
            by_digests.setdefault(act[new].digests, []).append(new)
        for old in removed:
            candidates = by_digests.get(exp[old].digests)
            if candidates:
                new = candidates.pop()
                out.append(f"renamed: {old} -> {new}")
                renamed_from.add(old)
                renamed_to.add(new)
    out += [f"removed: {n}" for n in removed if n not in renamed_from]
    out += [f"added: {n}" for n in added if n not in renamed_to]
    for e in expected.files:
        a = act.get(e.name)
        if a is None:
            continue
        name = e.name
        if e.digests != a.digests:
            out.append(f"modified: {name}")
        elif e.size >= 0 and e.size != a.size:
            out.append(f"modified: {name} (size {e.size} -> {a.size})")
        elif e.executable is not None and a.executable is not None and e.executable != a.executable:
            was, now = ("executable", "not executable")[:: 1 if e.executable else -1]
            out.append(f"mode changed: {name} ({was} -> {now})")
    return out


def _parse_time(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise VerificationError("malformed issuedAt in the signed payload")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise VerificationError("malformed issuedAt in the signed payload") from exc
    if t.tzinfo is None:
        raise VerificationError("issuedAt in the signed payload has no time zone")
    return t.astimezone(UTC)


def _check_freshness(signed_at: datetime | None, max_age: timedelta | None) -> None:
    now = datetime.now(UTC)
    if signed_at is not None and signed_at - now > CLOCK_SKEW:
        raise VerificationError(f"the signature is dated in the future ({signed_at.isoformat()})")
    if max_age is None:
        return
    if signed_at is None:
        raise VerificationError("the signature carries no issue time, so --max-age cannot hold")
    if now - signed_at > max_age:
        raise VerificationError(
            f"the signature expired: issued {signed_at.isoformat()}, older than {max_age}"
        )


_STATE_FORMAT = 1
_STATE_ENTRY_KEYS = frozenset({"version", "rootDigest", "issuedAt"})


def _state_schema_error(path: Path, what: str) -> ConfigError:
    return ConfigError(
        f"state file {path} does not fit its schema ({what}); refusing to guess",
        hint="restore the state file from a backup; deleting it drops rollback protection",
    )


def parse_state(data: bytes, path: Path) -> dict[str, dict[str, Any]]:
    """Validate a state document; return ``{model name: {version, rootDigest, issuedAt}}``.

    Schema: ``{"format": 1, "models": {NAME: {"version": int >= 0, "rootDigest": 64 hex,
    "issuedAt": str}}}`` (``format`` may be absent in files written before it existed).
    Anything else (a string or boolean version, a missing field, an unknown key) is refused:
    a state that is silently reset is no rollback protection.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"state file {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise _state_schema_error(path, "not a JSON object")
    unknown = set(doc) - {"format", "models"}
    if unknown:
        raise _state_schema_error(path, f"unknown key(s) {', '.join(sorted(unknown))}")
    fmt = doc.get("format", _STATE_FORMAT)
    if type(fmt) is not int or fmt != _STATE_FORMAT:
        raise _state_schema_error(path, f"format {fmt!r}")
    models = doc.get("models", {})
    if not isinstance(models, dict):
        raise _state_schema_error(path, "models is not an object")
    for name, entry in models.items():
        if not isinstance(entry, dict) or set(entry) != _STATE_ENTRY_KEYS:
            raise _state_schema_error(path, f"entry {name!r} is malformed")
        version = entry["version"]
        if type(version) is not int or version < 0:
            raise _state_schema_error(path, f"entry {name!r} has version {version!r}")
        root = entry["rootDigest"]
        if not isinstance(root, str) or len(root) != 64 or not _HEX.fullmatch(root):
            raise _state_schema_error(path, f"entry {name!r} has a malformed rootDigest")
        if not isinstance(entry["issuedAt"], str):
            raise _state_schema_error(path, f"entry {name!r} has a malformed issuedAt")
    return models


class _State:
    """The verifier's memory of the highest version seen per expected model name (JSON,
    locked, schema-checked, at most ``Limits.max_state_bytes``)."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.limits = limits

    def check_and_update(
        self, name: str, version: int | None, root: str, when: str, *, update: bool = True
    ) -> None:
        """Refuse a rollback (or other content under a version seen before); with ``update``,
        remember ``version`` as the highest seen."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
            lock_fd = os.open(self.lock_path, flags, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot use state file {self.path}: {exc.strerror}") from exc
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            models = self._read()
            entry = models.get(name)
            if version is None:
                raise VerificationError(
                    f"model {name!r}: the signature has no version, so rollback cannot be checked"
                )
            if entry is not None:
                seen = entry["version"]
                if version < seen:
                    raise VerificationError(
                        f"rollback: model {name!r} version {version} is older than the "
                        f"version {seen} already seen"
                    )
                if seen == version and entry["rootDigest"] != root:
                    raise VerificationError(
                        f"model {name!r} version {version} was seen before with other content"
                    )
                if seen >= version:
                    return
            if not update:
                return
            models[name] = {"version": version, "rootDigest": root, "issuedAt": when}
            self._write(models)
        finally:
            os.close(lock_fd)

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists() and not self.path.is_symlink():
            return {}
        try:
            data = read_bounded(
                self.path, self.limits.max_state_bytes, what="state file", follow_links=True
            )
        except InputError as exc:
            raise ConfigError(f"state file {self.path} is unusable: {exc}") from exc
        return parse_state(data, self.path)

    def _write(self, models: Mapping[str, Any]) -> None:
        doc = {"format": _STATE_FORMAT, "models": models}
        data = json.dumps(doc, indent=2, sort_keys=True).encode() + b"\n"
        atomic_write_bytes(self.path, data)


def attestation_dir(path: str | Path) -> Path:
    """Where attestations of a model live: ``<folder>/.mltrust/attestations`` or, for a file,
    ``<parent>/.mltrust/attestations``."""
    p = Path(path)
    return (p if p.is_dir() else p.parent) / ATTESTATION_DIR


def attestation_files(path: str | Path) -> list[Path]:
    """The attestation bundles mltrust writes for this model that exist (exact names only:
    ``<kind>.bundle.json``, or ``<file>.<kind>.bundle.json`` for a file model). A link or
    special file at such a name is returned too, and refused when it is read."""
    p = Path(path)
    folder = attestation_dir(p)
    prefix = "" if p.is_dir() else p.name + "."
    candidates = [folder / f"{prefix}{kind}.bundle.json" for kind in ATTESTATION_KINDS]
    return sorted(c for c in candidates if c.exists() or c.is_symlink())


def verify_attestation(
    bundle_path: Path,
    keys: Sequence[PublicKey],
    *,
    root_digest: str,
    limits: Limits = _DEFAULT_LIMITS,
) -> VerifiedAttestation:
    """An attestation must be signed by a pinned key and be about ``root_digest``."""
    statement, fp, _ = open_bundle(read_bundle(bundle_path, limits=limits), keys)
    subjects = statement["subject"]
    digests = {
        s.get("digest", {}).get("sha256")
        for s in subjects
        if isinstance(s, Mapping) and isinstance(s.get("digest"), Mapping)
    }
    if root_digest not in digests:
        raise VerificationError(
            f"attestation {bundle_path.name} is about another subject, not {root_digest[:16]}…"
        )
    ptype = statement.get("predicateType")
    if not isinstance(ptype, str):
        raise VerificationError(f"attestation {bundle_path.name} has no predicateType")
    # A bundle at a kind's name must hold that kind (no provenance passed off as a scan).
    for kind, expected_type in ATTESTATION_PREDICATES.items():
        if bundle_path.name.endswith(f"{kind}.bundle.json") and ptype != expected_type:
            raise VerificationError(
                f"attestation {bundle_path.name} holds a {ptype} statement, not {expected_type}"
            )
    return VerifiedAttestation(
        path=bundle_path, predicate_type=ptype, key_fingerprint=fp, statement=statement
    )


def trusted_manifest_from_bundle(
    path: Path, key: PublicKey, *, file_name: str | None = None, limits: Limits | None = None
) -> Manifest:
    """The manifest of a previous bundle, after checking it is signed by ``key`` (for reuse).

    ``file_name`` is the model file's name when the model is a single file.
    """
    parsed = read_bundle(path, limits=limits or _DEFAULT_LIMITS, follow_links=True)
    statement, _fp, _ = open_bundle(parsed, [key])
    expected = _expected_manifest(statement, file_name=file_name)
    hints = {
        f["name"]: f
        for f in expected.extras.get("files", [])
        if isinstance(f, Mapping) and isinstance(f.get("name"), str)
    }
    files = []
    for f in expected.manifest.files:
        h = hints.get(f.name, {})
        mt, ct, ino = h.get("mtimeNs", 0), h.get("ctimeNs", 0), h.get("inode", 0)
        files.append(
            FileEntry(
                name=f.name,
                size=f.size,
                algorithm=f.algorithm,
                digests=f.digests,
                mtime_ns=mt if isinstance(mt, int) else 0,
                ctime_ns=ct if isinstance(ct, int) else 0,
                ino=ino if isinstance(ino, int) else 0,
                executable=f.executable,
            )
        )
    return Manifest(
        name=expected.manifest.name,
        hash_algorithm=expected.manifest.hash_algorithm,
        files=tuple(files),
        ignore=expected.manifest.ignore,
        shard_size=expected.manifest.shard_size,
        allow_symlinks=expected.manifest.allow_symlinks,
        single_file=expected.manifest.single_file,
    )


def _relative_inside(child: Path, root: Path) -> str | None:
    """``child`` relative to ``root`` when it lies inside (its own name is not resolved, so
    a link placed in the folder counts as inside), else None."""
    try:
        rel = (child.parent.resolve() / child.name).relative_to(root.resolve()).as_posix()
    except (ValueError, OSError):
        return None
    return None if rel in ("", ".") else rel


def _check_identity(
    signed_name: str,
    signed_version: int | None,
    *,
    name: str | None,
    version: int | None,
    min_version: int | None,
) -> None:
    if name is not None and signed_name != name:
        raise VerificationError(
            f"the signature is for model {signed_name!r}, not the expected {name!r}",
            hint="another model signed by the same key is not this one",
        )
    if version is not None and signed_version != version:
        raise VerificationError(
            f"the signature is for version {signed_version}, not the expected {version}"
        )
    if min_version is not None and (signed_version is None or signed_version < min_version):
        raise VerificationError(
            f"the signature is for version {signed_version}, older than the minimum {min_version}"
        )


def verify(
    path: str | Path,
    *,
    trust: PinnedKeys | KeylessPolicy,
    signature: str | Path | None = None,
    max_age: timedelta | None = None,
    state: str | Path | None = None,
    attestations: bool = False,
    attestation_keys: KeySpec | Sequence[KeySpec] | None = None,
    progress: HashProgress | None = None,
    name: str | None = None,
    version: int | None = None,
    min_version: int | None = None,
    limits: Limits | None = None,
) -> VerifiedModel:
    """Verify a signed model folder or file against ``trust``; raise on any mismatch.

    ``trust`` is required: :class:`PinnedKeys` (the signature must verify under one of them) or
    :class:`KeylessPolicy` (the bundle's certificate must chain to its roots and name its
    identity). Attestations are checked against ``attestation_keys``, by default the pinned
    keys (a keyless policy needs ``attestation_keys`` for them).

    Returns a :class:`VerifiedModel` only when the signature, every digest, the expected
    identity (``name``, ``version`` or ``min_version``), the freshness checks and (with
    ``attestations``) every attestation verified. ``state`` (rollback memory) needs ``name``:
    it is keyed by the model the verifier expects, not by the name inside the bundle. Raises
    :class:`~mltrust.errors.VerificationError` (with ``differences``) when something does not
    match, :class:`~mltrust.errors.InputError`/``ConfigError`` for unusable input.
    """
    lim = limits or _DEFAULT_LIMITS
    root = Path(path)
    if not root.exists() and not root.is_symlink():
        raise InputError(f"no such file or folder: {root}")
    if version is not None and min_version is not None:
        raise ConfigError("give either an exact version or a minimum version, not both")
    for what, value in (("version", version), ("minimum version", min_version)):
        if value is not None and (type(value) is not int or value < 0):
            raise ConfigError(f"the expected {what} must be a non-negative integer")
    if name is not None and not name:
        raise ConfigError("the expected model name must not be empty")
    if state is not None and name is None:
        raise ConfigError(
            "rollback protection (state) needs the expected model name",
            hint="pass --name NAME: versions are remembered per expected name",
        )
    keys: list[PublicKey] = []
    keyless: KeylessPolicy | None = None
    if isinstance(trust, PinnedKeys):
        keys = list(trust.keys)
    elif isinstance(trust, KeylessPolicy):
        keyless = trust
    else:
        raise ConfigError(
            f"trust must be PinnedKeys(...) or KeylessPolicy(...), not {type(trust).__name__}",
            hint="verify(path, trust=PinnedKeys('release.pub'))",
        )
    if root.is_symlink():
        raise VerificationError(f"the model path is a symbolic link: {root}")
    sig_path = Path(signature) if signature is not None else default_signature_path(root)
    # A bundle the user named outside the model may be reached through a link; one in the
    # model folder (where an uploader can put anything) never is.
    inside = root.is_dir() and _relative_inside(sig_path, root) is not None
    follow = signature is not None and not inside
    parsed = read_bundle(sig_path, limits=lim, follow_links=follow)
    statement, fp, identity = open_bundle(parsed, keys, keyless=keyless)
    is_file = root.is_file()
    expected = _expected_manifest(statement, file_name=root.name if is_file else None)
    ignore: list[str] = []
    exact: list[str] = []
    if not is_file:
        # mltrust's own files are left out unless the signer covered them (another signer
        # may have hashed a folder that already held them). They, the signature and the
        # state file are left out only as regular files at exactly their path
        # (build_manifest's exact rule): a folder or link with such a name is an extra.
        signed_names = {f.name for f in expected.manifest.files}
        ignore = [*expected.manifest.ignore, *(f for f in MLTRUST_FILES if f not in signed_names)]
        for own in (sig_path, Path(state) if state is not None else None):
            rel = _relative_inside(own, root) if own is not None else None
            if rel is not None:
                exact.append(rel)
                if own is not sig_path:
                    exact.append(rel + ".lock")
    try:
        actual = build_manifest(
            root,
            hash_algorithm=expected.manifest.hash_algorithm,
            ignore=ignore,
            shard_size=expected.manifest.shard_size,
            allow_symlinks=expected.manifest.allow_symlinks,
            default_ignores=False,
            progress=progress,
            limits=lim,
            exact_ignore=exact,
        )
    except SymlinkError as exc:
        raise VerificationError(
            f"model verification failed: {exc}", differences=[str(exc)]
        ) from exc
    diffs = _differences(expected.manifest, actual)
    if diffs:
        raise VerificationError(
            f"model does not match its signature ({len(diffs)} difference"
            f"{'s' if len(diffs) != 1 else ''})",
            differences=diffs,
        )
    extras = expected.extras
    signed_at = _parse_time(extras.get("issuedAt"))
    _check_freshness(signed_at, max_age)
    model_name = extras.get("modelName") or expected.subject_name
    if not isinstance(model_name, str):
        raise VerificationError("malformed modelName in the signed payload")
    version_raw = extras.get("modelVersion")
    signed_version = None if version_raw is None else _int(version_raw, "modelVersion")
    _check_identity(model_name, signed_version, name=name, version=version, min_version=min_version)
    verified_attestations: tuple[VerifiedAttestation, ...] = ()
    if attestations:
        att_keys = _pinned(attestation_keys) if attestation_keys is not None else keys
        if not att_keys:
            raise ConfigError("attestations need a pinned key (--key, or attestation_keys)")
        found = attestation_files(root)
        if not found:
            raise VerificationError(
                f"no attestations found in {attestation_dir(root)}",
                hint="create them with `mltrust attest scan|provenance`",
            )
        results = []
        for f in found:
            try:
                results.append(
                    verify_attestation(f, att_keys, root_digest=actual.root_digest, limits=lim)
                )
            except (InputError, VerificationError) as exc:
                raise VerificationError(
                    f"attestation {f.name} did not verify", differences=[str(exc)]
                ) from exc
        verified_attestations = tuple(results)
    if state is not None and name is not None:
        _State(Path(state), lim).check_and_update(
            name,
            signed_version,
            actual.root_digest,
            signed_at.isoformat() if signed_at else "",
        )
    return VerifiedModel(
        path=root,
        root_digest=actual.root_digest,
        files={f.name: f.digest for f in actual.files},
        signed_at=signed_at,
        model_name=model_name,
        version=signed_version,
        key_fingerprint=fp,
        attestations=verified_attestations,
        compat_digest=expected.compat_digest,
        signature_path=sig_path,
        identity=identity,
        hash_algorithm=expected.manifest.hash_algorithm,
        shard_size=expected.manifest.shard_size,
        uncovered_git=_uncovered_git(root, expected.manifest.ignore) if not is_file else (),
    )


def _uncovered_git(root: Path, ignore: Sequence[str]) -> tuple[str, ...]:
    """Signed ``ignore_paths`` under a ``.git*`` name that exist in the folder (lstat)."""
    out = []
    for rel in ignore:
        if rel.split("/", 1)[0].startswith(".git") and os.path.lexists(root / rel):
            out.append(rel)
    return tuple(sorted(out))


def check_rollback(
    state: str | Path,
    verified: VerifiedModel,
    name: str,
    *,
    update: bool,
    limits: Limits | None = None,
) -> None:
    """The rollback check of :func:`verify` (``state``) for a model already verified without
    it; with ``update`` false nothing is recorded. A caller that refuses the model after
    verification (a scan, a failed move) checks first and records only once it has accepted
    the model, so a refused version cannot advance the memory."""
    _State(Path(state), limits or _DEFAULT_LIMITS).check_and_update(
        name,
        verified.version,
        verified.root_digest,
        verified.signed_at.isoformat() if verified.signed_at else "",
        update=update,
    )


def verify_bundle_bytes(
    data: bytes, key: KeySpec | Sequence[KeySpec]
) -> tuple[dict[str, Any], str]:
    """Verify any DSSE bundle held in memory against pinned keys; (statement, fingerprint)."""
    statement, fp, _ = open_bundle(parse_bundle(data), _pinned(key))
    return statement, fp


__all__ += ["attestation_files", "check_rollback", "verify_bundle_bytes"]
