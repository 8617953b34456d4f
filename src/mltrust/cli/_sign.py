"""``mltrust sign`` and ``mltrust verify``: signatures over model folders and files."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from mltrust.cli._common import Format, format_option, progress_option, ray_executor, ray_options
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import ConfigError, VerificationError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"bad duration {text!r}; use a number and s, m, h, d or w (e.g. 30d)")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_size(text: str) -> int:
    """``1GiB``, ``512MiB``, ``1000000`` ..."""
    m = re.match(r"^\s*(\d+)\s*([KMGT]i?B?)?\s*$", text, re.IGNORECASE)
    if not m:
        raise ConfigError(f"bad size {text!r}; use e.g. 1GiB or 1000000000")
    unit = (m.group(2) or "").upper().rstrip("B")
    factor = {
        "": 1,
        "K": 1000,
        "M": 10**6,
        "G": 10**9,
        "T": 10**12,
        "KI": 1 << 10,
        "MI": 1 << 20,
        "GI": 1 << 30,
        "TI": 1 << 40,
    }[unit]
    return int(m.group(1)) * factor


class _Bar:
    """A rich progress bar on stderr for hashing (thread-safe updates)."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn(label),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._bar.add_task(label, total=None)

    def __enter__(self) -> _Bar:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, total_bytes: int) -> None:
        self._bar.update(self._task, total=total_bytes)

    def advance(self, nbytes: int) -> None:
        self._bar.advance(self._task, nbytes)


def _progress(enabled: bool | None, label: str) -> Any:
    import contextlib

    show = sys.stderr.isatty() if enabled is None else enabled
    return _Bar(label) if show else contextlib.nullcontext(None)


insecure_key_option = click.option(
    "--insecure-key-permissions",
    is_flag=True,
    help="Use a private key file that group or others can read or write (refused by default).",
)


def _passphrase_for(key: Path) -> bytes | None:
    """Prompt for an encrypted key's passphrase when MLTRUST_PASSPHRASE is unset and we can."""
    if os.environ.get("MLTRUST_PASSPHRASE") is not None:
        return None
    from mltrust.config import Limits
    from mltrust.errors import InputError
    from mltrust.files import read_bounded

    try:
        head = read_bounded(key, Limits().max_key_bytes, what="key", follow_links=True)[:4096]
    except InputError:
        return None  # the loader reports the error
    if b"ENCRYPTED" not in head or not sys.stdin.isatty():
        return None
    text: str = click.prompt(f"Passphrase for {key}", hide_input=True, err=True)
    return text.encode("utf-8")


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "-k",
    "--key",
    "key",
    required=True,
    type=click.Path(path_type=Path),
    help="Private key (PEM); its passphrase from MLTRUST_PASSPHRASE or a prompt.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Bundle to write [default: FOLDER/model.sig or FILE.sig].",
)
@click.option(
    "--name",
    "model_name",
    default=None,
    help="Model name for rollback protection [default: the folder or file name].",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=0),
    default=None,
    help="Model version (increasing per name; verifiers with --state refuse rollbacks).",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    help="Relative path (file or folder) to leave out; recorded in the signature.",
)
@click.option(
    "--hash",
    "hash_algorithm",
    type=click.Choice(["sha256", "blake3"]),
    default="sha256",
    show_default=True,
    help="Digest algorithm for files.",
)
@click.option(
    "--shard-size",
    default=None,
    help="Hash large files in shards of this size (e.g. 1GiB): one digest per shard.",
)
@click.option(
    "--reuse",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Previous bundle (verified with this key first): re-hash only files whose "
    "size, mtime or inode changed. Trusts file metadata; see the docs.",
)
@click.option(
    "--allow-symlinks",
    is_flag=True,
    help="Hash symlinks that stay inside the folder (refused by default).",
)
@click.option(
    "--include-git",
    is_flag=True,
    help="Also cover .git, .gitattributes, .github and .gitignore (left out by default, as "
    "model_signing does; its verify then needs --no-ignore-git-paths).",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also record the signed statement in this evidence store.",
)
@insecure_key_option
@progress_option
@ray_options
def sign(
    path: Path,
    key: Path,
    output: Path | None,
    model_name: str | None,
    version: int | None,
    ignore: tuple[str, ...],
    hash_algorithm: str,
    shard_size: str | None,
    reuse: Path | None,
    allow_symlinks: bool,
    include_git: bool,
    store_path: Path | None,
    insecure_key_permissions: bool,
    progress: bool | None,
    ray_address: str | None,
    ray_retries: int,
) -> int:
    """Sign a model folder or file: a Sigstore bundle with the OpenSSF model-signing predicate.

    The bundle verifies with `mltrust verify` and with `model_signing verify key`. With --ray
    the files are hashed on a Ray cluster; the manifest is assembled and signed here.
    """
    from mltrust.attest import sign as do_sign
    from mltrust.store import EvidenceStore

    passphrase = _passphrase_for(key)
    store = EvidenceStore.open(store_path) if store_path is not None else None
    executor = ray_executor(ray_address, ray_retries)
    try:
        with _progress(progress, "signing") as bar:
            out = do_sign(
                path,
                key=key,
                output=output,
                model_name=model_name,
                version=version,
                ignore=ignore,
                hash_algorithm=hash_algorithm,
                passphrase=passphrase,
                reuse=reuse,
                shard_size=parse_size(shard_size) if shard_size else None,
                allow_symlinks=allow_symlinks,
                store=store,
                progress=bar,
                insecure_key_permissions=insecure_key_permissions,
                include_git=include_git,
                executor=executor,
            )
    finally:
        if executor is not None:
            executor.close()
        if store is not None:
            store.close()
    click.echo(str(out))
    return EXIT_CLEAN


def _result_json(model: Any) -> dict[str, Any]:
    return {
        "verified": True,
        "path": str(model.path),
        "rootDigest": {"sha256": model.root_digest},
        "modelSigningDigest": {"sha256": model.compat_digest},
        "modelName": model.model_name,
        "modelVersion": model.version,
        "signedAt": model.signed_at.isoformat() if model.signed_at else None,
        "keyFingerprint": model.key_fingerprint,
        "identity": model.identity,
        "files": dict(model.files),
        "attestations": [
            {"path": str(a.path), "predicateType": a.predicate_type, "key": a.key_fingerprint}
            for a in model.attestations
        ],
        "uncoveredGitPaths": list(model.uncovered_git),
    }


@click.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "-k",
    "--key",
    "keys",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Pinned public key (PEM); repeat to accept any of several keys.",
)
@click.option(
    "-s",
    "--signature",
    type=click.Path(path_type=Path),
    default=None,
    help="Bundle to check [default: FOLDER/model.sig or FILE.sig].",
)
@click.option(
    "--name",
    "expected_name",
    default=None,
    help="The model expected: the signed model name must be this one.",
)
@click.option(
    "--version",
    "expected_version",
    type=click.IntRange(min=0),
    default=None,
    help="The signed version must be exactly this one.",
)
@click.option(
    "--min-version",
    type=click.IntRange(min=0),
    default=None,
    help="The signed version must be at least this one.",
)
@click.option("--max-age", default=None, help="Refuse signatures older than this (e.g. 30d).")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Remember versions per expected model (--name) here and refuse rollbacks.",
)
@click.option(
    "--attestations",
    is_flag=True,
    help="Also verify the attestations in .mltrust/attestations (signed by --key).",
)
@click.option(
    "--trusted-root",
    "trusted_roots",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keyless: CA certificate(s) (PEM) that signing certificates must chain to.",
)
@click.option(
    "--cert-identity",
    default=None,
    help="Keyless: required certificate identity (SAN email or URI).",
)
@click.option("--cert-oidc-issuer", default=None, help="Keyless: required OIDC issuer.")
@click.option(
    "--private-ca",
    is_flag=True,
    help="Keyless: the trusted root is a private CA that issues no Fulcio OIDC-issuer "
    "extension; the identity is the certificate's SAN alone (instead of --cert-oidc-issuer).",
)
@click.option(
    "--rekor-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Keyless: transparency-log public key (checks signed timestamps, inclusion proofs).",
)
@format_option(Format.TEXT, Format.JSON)
@progress_option
def verify(
    path: Path,
    keys: tuple[Path, ...],
    signature: Path | None,
    expected_name: str | None,
    expected_version: int | None,
    min_version: int | None,
    max_age: str | None,
    state: Path | None,
    attestations: bool,
    trusted_roots: tuple[Path, ...],
    cert_identity: str | None,
    cert_oidc_issuer: str | None,
    private_ca: bool,
    rekor_key: Path | None,
    fmt: str,
    progress: bool | None,
) -> int:
    """Verify a signed model against a pinned key; exit 0 verified, 1 mismatch, 2 error.

    Every file is re-hashed; differences are listed as added, removed, renamed or modified.
    """
    from mltrust.attest import KeylessPolicy, PinnedKeys
    from mltrust.attest import verify as do_verify

    keyless = None
    if trusted_roots or cert_identity or cert_oidc_issuer or private_ca:
        if private_ca and cert_oidc_issuer:
            raise ConfigError("give --cert-oidc-issuer or --private-ca, not both")
        if not (trusted_roots and cert_identity and (cert_oidc_issuer or private_ca)):
            raise ConfigError(
                "keyless verification needs --trusted-root, --cert-identity and "
                "--cert-oidc-issuer (or --private-ca) together"
            )
        keyless = KeylessPolicy(
            trusted_roots=tuple(trusted_roots),
            identity=cert_identity or "",
            oidc_issuer=None if private_ca else cert_oidc_issuer,
            rekor_key=rekor_key,
        )
    if not keys and keyless is None:
        raise ConfigError("give a pinned public key with --key (or a keyless policy)")
    if keys and keyless is not None:
        # before, --key silently won and the identity options were ignored
        raise ConfigError("give --key or the keyless options (--trusted-root ...), not both")
    trust = keyless if keyless is not None else PinnedKeys(*keys)
    age = parse_duration(max_age) if max_age else None
    try:
        with _progress(progress, "verifying") as bar:
            model = do_verify(
                path,
                trust=trust,
                signature=signature,
                max_age=age,
                state=state,
                attestations=attestations,
                progress=bar,
                name=expected_name,
                version=expected_version,
                min_version=min_version,
            )
    except VerificationError as exc:
        if fmt == "json":
            doc = {
                "verified": False,
                "path": str(path),
                "error": str(exc),
                "differences": exc.differences,
            }
            click.echo(json.dumps(doc, indent=2))
        else:
            click.echo(f"FAILED: {path}: {exc}")
            for line in exc.differences:
                click.echo(f"  {line}")
        return EXIT_FINDINGS
    for rel in model.uncovered_git:
        click.echo(
            f"warning: {rel} is present but not covered by the signature (git runs code from "
            "hooks and config there); sign with --include-git to cover it",
            err=True,
        )
    if fmt == "json":
        click.echo(json.dumps(_result_json(model), indent=2))
    else:
        when = model.signed_at.isoformat() if model.signed_at else "unknown time"
        version = f" version {model.version}" if model.version is not None else ""
        click.echo(f"verified: {path} ({len(model.files)} files)")
        click.echo(f"  model {model.model_name}{version}, signed {when}")
        click.echo(f"  root sha256:{model.root_digest}")
        click.echo(f"  key {model.identity or model.key_fingerprint}")
        for a in model.attestations:
            click.echo(f"  attestation {a.predicate_type} ({a.path.name})")
    return EXIT_CLEAN
