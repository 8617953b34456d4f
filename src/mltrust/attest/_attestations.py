"""Signed attestations about a model: scan results and SLSA provenance.

Each attestation is an in-toto Statement v1 whose subject is the model's mltrust root digest
(names bound), signed into a Sigstore bundle, written beside the model under
``.mltrust/attestations/`` and, when a store is given, recorded in the evidence store.
``verify(..., attestations=True)`` checks them against the pinned key and the current digest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mltrust.attest._bundle import STATEMENT_TYPE
from mltrust.attest._keys import PrivateKey, fingerprint
from mltrust.attest._manifest import (
    ATTESTATION_PREDICATES,
    MLTRUST_FILES,
    Manifest,
    build_manifest,
    expand_ignore,
)
from mltrust.attest._sign import (
    SIGNATURE_NAME,
    format_time,
    resolve_private_key,
    sign_statement,
    write_bundle,
)
from mltrust.attest._verify import attestation_dir
from mltrust.errors import ConfigError, InputError

if TYPE_CHECKING:
    from mltrust.store import EvidenceStore

__all__ = [
    "PROVENANCE_PREDICATE",
    "SCAN_PREDICATE",
    "attest_provenance",
    "attest_scan",
    "attestation_path",
    "model_manifest",
    "provenance_statement",
    "scan_statement",
]

SCAN_PREDICATE = ATTESTATION_PREDICATES["scan"]
PROVENANCE_PREDICATE = ATTESTATION_PREDICATES["provenance"]
TRAINING_BUILD_TYPE = "https://mltrust.dev/training/v1"
DEFAULT_BUILDER = "https://mltrust.dev/builders/local"
#: A full git commit id: SHA-1 (40 hex) or SHA-256 (64 hex). An abbreviated id is ambiguous
#: and not a digest, so in-toto's gitCommit refuses it and so do we.
_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def attestation_path(path: str | Path, kind: str) -> Path:
    """``<folder>/.mltrust/attestations/<kind>.bundle.json`` or, for a file model,
    ``<parent>/.mltrust/attestations/<file>.<kind>.bundle.json``."""
    p = Path(path)
    if not p.is_dir() and (p.parent / SIGNATURE_NAME).is_file():
        # Decision: the bundle would be a new, unsigned file inside a signed folder, and
        # `verify` of that folder would then fail (fail closed: any file the signature does not
        # cover is refused). Refuse here, where the cause is clear, instead of there.
        raise ConfigError(
            f"{p} is inside a signed folder ({p.parent / SIGNATURE_NAME}); an attestation "
            "written for the file alone would add an unsigned file to that folder",
            hint="attest the model's files before signing the folder: move the signature "
            "away, attest, then sign the folder again so that its signature covers the bundle",
        )
    prefix = "" if p.is_dir() else p.name + "."
    return attestation_dir(p) / f"{prefix}{kind}.bundle.json"


def model_manifest(
    path: str | Path, ignore: Sequence[str] = (), *, include_git: bool = False
) -> Manifest:
    """The manifest whose root digest attestations name: the files ``sign`` covers with the
    same ``ignore`` and ``include_git`` (``model.sig``, mltrust's own files and, unless
    ``include_git``, ``.git*`` left out)."""
    p = Path(path)
    extra = [SIGNATURE_NAME, *expand_ignore(p, ignore)] if p.is_dir() else []
    if include_git:
        extra += MLTRUST_FILES
    return build_manifest(p, ignore=extra, default_ignores=not include_git)


def _subject(manifest: Manifest) -> list[dict[str, Any]]:
    return [{"name": manifest.name, "digest": {"sha256": manifest.root_digest}}]


def _relative_paths(report: dict[str, Any], root: Path) -> dict[str, Any]:
    base = root if root.is_dir() else root.parent
    for item in report.get("files", []):
        raw = item.get("path")
        if isinstance(raw, str):
            try:
                item["path"] = Path(raw).resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                pass
    return report


def _bind_scan_to_manifest(root: Path, manifest: Manifest, results: Sequence[Any]) -> None:
    """Refuse unless the bytes the scanner judged are the bytes the manifest hashed.

    The scanner computes the SHA-256 of the very buffer it scanned; each must equal the
    manifest's digest for that file. Then every file must still be the one hashed (inode,
    size, mtime, ctime unchanged), so no write or rename happened between hashing and the end
    of the scan. A swap made only while the scanner reads (then undone) gives the scanner's
    buffer another digest; a swap left in place fails the stat check. Not covered: an edit
    through a shared writable mapping, which changes no timestamp (docs/signing.md).
    """
    from mltrust.attest._manifest import FileChangedError

    if manifest.shard_size is not None or manifest.hash_algorithm != "sha256":
        raise ConfigError("a scan attestation needs an unsharded SHA-256 manifest")
    by_name = manifest.by_name()
    base = root.parent if manifest.single_file else root
    seen: set[str] = set()
    for r in results:
        rel = Path(r.path).resolve().relative_to(base.resolve()).as_posix()
        entry = by_name.get(rel)
        if entry is None:
            raise FileChangedError(f"the scanner read {rel}, which the manifest does not hold")
        if r.sha256 is None and r.findings:
            pass  # not read whole (too large, unreadable): its findings say so and stand
        elif r.sha256 != entry.digests[0]:
            raise FileChangedError(
                f"{rel} changed between hashing and scanning; nothing was attested"
            )
        seen.add(rel)
    missing = set(by_name) - seen
    if missing:
        raise FileChangedError(f"{sorted(missing)[0]} was hashed but not scanned")
    for entry in manifest.files:
        p = root if manifest.single_file else root / entry.name
        try:
            st = os.stat(p, follow_symlinks=False)
        except OSError as exc:
            raise FileChangedError(f"{entry.name} vanished during the scan: {exc}") from None
        if (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (
            entry.ino,
            entry.size,
            entry.mtime_ns,
            entry.ctime_ns,
        ):
            raise FileChangedError(
                f"{entry.name} changed between hashing and scanning; nothing was attested"
            )


def scan_statement(path: str | Path, manifest: Manifest) -> dict[str, Any]:
    """Scan the model's files (those in its manifest) and wrap the report in a statement.

    The scanned bytes are bound to the manifest (:func:`_bind_scan_to_manifest`): the
    attestation's subject is the digest of exactly what was scanned, or nothing is signed.
    """
    from mltrust.config import ScanConfig
    from mltrust.scan._engine import scan_paths

    root = Path(path)
    targets = [root] if manifest.single_file else [root / f.name for f in manifest.files]
    report = scan_paths(targets, ScanConfig(digest=True))
    _bind_scan_to_manifest(root, manifest, report.files)
    doc = _relative_paths(report.to_dict(), root)
    predicate = {
        "scanner": doc.get("tool", {}),
        "scannedAt": format_time(datetime.now(UTC)),
        "verdict": doc.get("verdict"),
        "failOn": doc.get("fail_on"),
        "summary": doc.get("summary", {}),
        "files": doc.get("files", []),
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": _subject(manifest),
        "predicateType": SCAN_PREDICATE,
        "predicate": predicate,
    }


def _store_and_write(
    statement: Mapping[str, Any],
    key: PrivateKey,
    out: Path,
    store: EvidenceStore | None,
) -> Path:
    bundle = sign_statement(statement, key)
    write_bundle(bundle, out)
    if store is not None:
        store.add_statement(
            statement, envelope=bundle["dsseEnvelope"], signer=fingerprint(key.public_key())
        )
    return out


def attest_scan(
    path: str | Path,
    *,
    key: str | Path | PrivateKey,
    store: EvidenceStore | None = None,
    passphrase: bytes | None = None,
    output: str | Path | None = None,
    ignore: Sequence[str] = (),
    insecure_key_permissions: bool = False,
    include_git: bool = False,
) -> Path:
    """Scan a model, sign the result about its root digest; returns the bundle path."""
    private = resolve_private_key(key, passphrase, insecure_permissions=insecure_key_permissions)
    manifest = model_manifest(path, ignore, include_git=include_git)
    statement = scan_statement(path, manifest)
    out = Path(output) if output is not None else attestation_path(path, "scan")
    return _store_and_write(statement, private, out, store)


def _parse_params(params: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(params, Mapping):
        items = list(params.items())
    else:
        items = []
        for raw in params:
            name, sep, value = raw.partition("=")
            if not sep or not name:
                raise ConfigError(f"parameter {raw!r} must look like name=value")
            items.append((name, value))
    out: dict[str, str] = {}
    for name, value in items:
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigError("parameters must be strings")
        out[name] = value
    return out


def _tuning_link(bundle_path: Path, manifest: Manifest) -> dict[str, Any]:
    """A resolved dependency naming a tuning bundle by the digest of its signed statement,
    after checking it is a tuning statement about this model (its signature is checked by
    whoever verifies the tuning attestation, against their pinned key)."""
    import json

    from mltrust.attest._bundle import read_bundle
    from mltrust.digest import sha256_bytes

    parsed = read_bundle(bundle_path, follow_links=True)
    try:
        statement = json.loads(parsed.envelope.payload)
    except ValueError:
        raise InputError(f"{bundle_path}: the signed payload is not JSON") from None
    if (
        not isinstance(statement, dict)
        or statement.get("predicateType") != (ATTESTATION_PREDICATES["tuning"])
    ):
        raise InputError(f"{bundle_path} is not a tuning attestation")
    subjects = statement.get("subject")
    digests = {
        s.get("digest", {}).get("sha256")
        for s in (subjects if isinstance(subjects, list) else [])
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    }
    if manifest.root_digest not in digests:
        raise InputError(f"{bundle_path} is a tuning attestation about another model")
    study = statement.get("predicate", {}).get("study", {})
    selected = study.get("selected", {}) if isinstance(study, dict) else {}
    return {
        "name": "tuning",
        "uri": bundle_path.resolve().as_uri(),
        "digest": {"sha256": sha256_bytes(parsed.envelope.payload)},
        "annotations": {
            "kind": "tuning",
            "predicateType": ATTESTATION_PREDICATES["tuning"],
            "study": study.get("name") if isinstance(study, dict) else None,
            "selectedTrial": selected.get("number") if isinstance(selected, dict) else None,
        },
    }


def provenance_statement(
    manifest: Manifest,
    *,
    datasets: Sequence[str | Path],
    code_commit: str | None,
    params: Mapping[str, str] | Sequence[str],
    builder_id: str = DEFAULT_BUILDER,
    code_repository: str | None = None,
    entry_point: str | None = None,
    tuning: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """A SLSA provenance v1 statement: the model was built from these data sets and code.

    ``tuning`` names signed tuning bundles (``attest tuning``) about this same model; each is
    listed among the resolved dependencies with the SHA-256 of its signed statement (the DSSE
    payload), so the provenance links to the search that chose the model's parameters.

    ``externalParameters`` (build type ``https://mltrust.dev/training/v1``) is never empty:
    ``model`` (the model's name) always, ``entryPoint`` (the training command) when given,
    ``parameters`` (``--param name=value``) when any, and ``datasets`` (their URIs) when any.
    ``code_commit`` must be a full 40- or 64-hex git commit id.
    """
    deps: list[dict[str, Any]] = []
    for ds in datasets:
        p = Path(ds)
        if not p.exists():
            raise InputError(f"data set not found: {p}")
        ds_manifest = build_manifest(p)
        deps.append(
            {
                "name": p.resolve().name,
                "uri": p.resolve().as_uri(),
                "digest": {"sha256": ds_manifest.root_digest},
                "annotations": {
                    "kind": "dataset",
                    "files": len(ds_manifest.files),
                    "bytes": ds_manifest.total_bytes,
                },
            }
        )
    if code_commit is not None:
        commit = code_commit.strip().lower()
        if not _COMMIT.match(commit):
            raise ConfigError(
                f"code commit {code_commit!r} is not a full git commit id (40 or 64 hex digits)",
                hint="pass the output of `git rev-parse HEAD`",
            )
        dep: dict[str, Any] = {"name": "code", "digest": {"gitCommit": commit}}
        if code_repository:
            dep["uri"] = code_repository
        deps.append(dep)
    deps.extend(_tuning_link(Path(b), manifest) for b in tuning)
    external: dict[str, Any] = {"model": manifest.name}
    if entry_point is not None:
        if not entry_point.strip():
            raise ConfigError("the entry point must not be empty")
        external["entryPoint"] = entry_point
    parameters = _parse_params(params)
    if parameters:
        external["parameters"] = parameters
    uris = [d["uri"] for d in deps if d.get("annotations", {}).get("kind") == "dataset"]
    if uris:
        external["datasets"] = uris
    now = format_time(datetime.now(UTC))
    return {
        "_type": STATEMENT_TYPE,
        "subject": _subject(manifest),
        "predicateType": PROVENANCE_PREDICATE,
        "predicate": {
            "buildDefinition": {
                "buildType": TRAINING_BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": {},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": builder_id},
                "metadata": {"finishedOn": now},
            },
        },
    }


def attest_provenance(
    path: str | Path,
    *,
    key: str | Path | PrivateKey,
    datasets: Sequence[str | Path],
    code_commit: str | None,
    params: Mapping[str, str] | Sequence[str],
    store: EvidenceStore | None = None,
    builder_id: str = DEFAULT_BUILDER,
    passphrase: bytes | None = None,
    output: str | Path | None = None,
    ignore: Sequence[str] = (),
    insecure_key_permissions: bool = False,
    entry_point: str | None = None,
    include_git: bool = False,
    tuning: Sequence[str | Path] = (),
) -> Path:
    """Sign SLSA provenance for a model (data sets by root digest, code commit, parameters,
    and the tuning attestations that chose them)."""
    private = resolve_private_key(key, passphrase, insecure_permissions=insecure_key_permissions)
    manifest = model_manifest(path, ignore, include_git=include_git)
    statement = provenance_statement(
        manifest,
        datasets=datasets,
        code_commit=code_commit,
        params=params,
        builder_id=builder_id,
        entry_point=entry_point,
        tuning=tuning,
    )
    out = Path(output) if output is not None else attestation_path(path, "provenance")
    return _store_and_write(statement, private, out, store)
