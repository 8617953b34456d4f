"""`mltrust mlflow`: sign, verify and promote versions in an MLflow model registry."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mltrust.cli._common import Format, format_option
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import UnsafeModelError, VerificationError

__all__ = ["mlflow"]

_uri = click.argument("uri")
_tracking = click.option(
    "--tracking-uri", help="MLflow tracking server [default: $MLFLOW_TRACKING_URI]."
)
_format = format_option(Format.TEXT, Format.JSON)


@click.group()
def mlflow() -> None:
    """Sign, verify and promote model versions in an MLflow registry (models:/NAME/VERSION)."""


@mlflow.command("sign")
@_uri
@click.option("-k", "--key", type=click.Path(path_type=Path), required=True,
              help="Private key (PEM); its passphrase from MLTRUST_PASSPHRASE.")  # fmt: skip
@_tracking
@_format
def sign_cmd(uri: str, key: Path, tracking_uri: str | None, fmt: str) -> int:
    """Scan a registered version's artifacts, sign them with its name and version, and store
    the signature and scan attestation as artifacts of its run.

    Exit 0 signed, 1 the artifacts have findings (not signed), 2 error.
    """
    from mltrust.integrations.mlflow import sign_model_version

    try:
        signed = sign_model_version(uri, key=key, tracking_uri=tracking_uri)
    except UnsafeModelError as exc:
        click.echo(f"NOT SIGNED: {uri}: {exc}")
        return EXIT_FINDINGS
    if fmt == "json":
        doc = {"signed": True, "uri": uri, "root_digest": signed.root_digest,
               "signature": signed.signature_uri, "files": signed.files}  # fmt: skip
        click.echo(json.dumps(doc))
    else:
        click.echo(f"signed: {uri} ({signed.files} files)")
        click.echo(f"  root sha256:{signed.root_digest}")
        click.echo(f"  signature {signed.signature_uri}")
    return EXIT_CLEAN


@mlflow.command("verify")
@_uri
@click.option("-k", "--key", "keys", type=click.Path(path_type=Path), multiple=True,
              required=True, help="Pinned public key (PEM); repeatable.")  # fmt: skip
@_tracking
@_format
def verify_cmd(uri: str, keys: tuple[Path, ...], tracking_uri: str | None, fmt: str) -> int:
    """Download a version and its signature and verify every file, its name and version.

    Exit 0 verified, 1 mismatch or unsigned, 2 error.
    """
    from mltrust.integrations.mlflow import verify_model_version

    try:
        verified = verify_model_version(uri, key=list(keys), tracking_uri=tracking_uri)
    except VerificationError as exc:
        if fmt == "json":
            click.echo(json.dumps({"verified": False, "uri": uri, "error": str(exc),
                                   "differences": exc.differences}))  # fmt: skip
        else:
            click.echo(f"FAILED: {uri}: {exc}")
            for line in exc.differences:
                click.echo(f"  {line}")
        return EXIT_FINDINGS
    if fmt == "json":
        click.echo(json.dumps({"verified": True, "uri": uri, "root_digest": verified.root_digest,
                               "files": len(verified.files)}))  # fmt: skip
    else:
        click.echo(f"verified: {uri} ({len(verified.files)} files)")
        click.echo(f"  root sha256:{verified.root_digest}")
    return EXIT_CLEAN


@mlflow.command("promote")
@_uri
@click.option("--alias", required=True, help="Alias to set, e.g. production.")
@click.option("-k", "--key", "keys", type=click.Path(path_type=Path), multiple=True,
              required=True, help="Pinned public key (PEM); repeatable.")  # fmt: skip
@_tracking
def promote_cmd(uri: str, alias: str, keys: tuple[Path, ...], tracking_uri: str | None) -> int:
    """Set an alias on a version only when it verifies and scans clean.

    Exit 0 promoted, 1 refused (unsigned, mismatch or findings), 2 error.
    """
    from mltrust.integrations.mlflow import promote

    try:
        promote(uri, alias=alias, key=list(keys), tracking_uri=tracking_uri)
    except (VerificationError, UnsafeModelError) as exc:
        click.echo(f"NOT PROMOTED: {uri}: {exc}")
        return EXIT_FINDINGS
    click.echo(f"promoted: {uri} is now @{alias}")
    return EXIT_CLEAN
