"""`mltrust s3`: push signed model folders to S3-compatible storage and pull them verified."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mltrust.cli._common import Format, format_option
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS
from mltrust.errors import UnsafeModelError, VerificationError

__all__ = ["s3"]

_endpoint = click.option(
    "--endpoint-url",
    help="S3-compatible server, e.g. MinIO [default: AWS, or $AWS_ENDPOINT_URL_S3].",
)
_profile = click.option("--profile", help="AWS profile [default: $AWS_PROFILE or default].")
_region = click.option("--region", help="Region [default: the profile's, else us-east-1].")
_format = format_option(Format.TEXT, Format.JSON)


def _failed(fmt: str, uri: str, exc: VerificationError | UnsafeModelError, verb: str) -> int:
    differences = getattr(exc, "differences", [])
    if fmt == "json":
        click.echo(json.dumps({"ok": False, "uri": uri, "error": str(exc),
                               "differences": differences}))  # fmt: skip
    else:
        text = str(exc)  # most of the library's messages already start with the location
        click.echo(f"{verb}: {text}" if text.startswith("s3://") else f"{verb}: {uri}: {text}")
        for line in differences:
            click.echo(f"  {line}")
    return EXIT_FINDINGS


@click.group()
def s3() -> None:
    """Push signed model folders to S3-compatible storage and pull them verified."""


@s3.command("push")
@click.argument("folder", type=click.Path(path_type=Path))
@click.argument("uri")
@click.option("-k", "--key", "keys", type=click.Path(path_type=Path), multiple=True,
              help="Pinned public key (PEM; a private key stands for its public half, "
                   "passphrase from MLTRUST_PASSPHRASE); repeatable.")  # fmt: skip
@click.option("--allow-unsigned", is_flag=True,
              help="Push an unsigned or non-verifying folder (every file as found).")  # fmt: skip
@click.option("--replace", is_flag=True,
              help="Overwrite a non-empty prefix; delete objects not in the folder.")  # fmt: skip
@_endpoint
@_profile
@_region
@_format
def push_cmd(
    folder: Path,
    uri: str,
    keys: tuple[Path, ...],
    allow_unsigned: bool,
    replace: bool,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    fmt: str,
) -> int:
    """Verify a signed model folder and upload it, with model.sig and its attestations, to
    s3://BUCKET/PREFIX.

    Exit 0 pushed, 1 the folder does not verify (nothing uploaded), 2 error.
    """
    from mltrust.integrations.s3 import push

    try:
        result = push(
            folder,
            uri,
            key=list(keys) or None,
            allow_unsigned=allow_unsigned,
            replace=replace,
            endpoint_url=endpoint_url,
            profile=profile,
            region=region,
        )
    except VerificationError as exc:
        return _failed(fmt, uri, exc, "NOT PUSHED")
    if fmt == "json":
        click.echo(json.dumps({"ok": True, "uri": str(result.location),
                               "objects": len(result.objects), "bytes": result.bytes,
                               "root_digest": result.root_digest,
                               "deleted": list(result.deleted)}))  # fmt: skip
    else:
        state = "signed" if result.root_digest else "UNSIGNED"
        click.echo(f"pushed: {folder} -> {result.location} ({len(result.objects)} objects, "
                   f"{result.bytes} bytes, {state})")  # fmt: skip
        if result.root_digest:
            click.echo(f"  root sha256:{result.root_digest}")
        if result.deleted:
            click.echo(f"  deleted {len(result.deleted)} old object(s)")
    return EXIT_CLEAN


@s3.command("pull")
@click.argument("uri")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("-k", "--key", "keys", type=click.Path(path_type=Path), multiple=True,
              required=True, help="Pinned public key (PEM); repeatable.")  # fmt: skip
@click.option("--name", "expected_name", help="Expected signed model name.")
@click.option("--version", "expected_version", type=click.IntRange(min=0),
              help="Expected signed model version.")  # fmt: skip
@click.option("--min-version", type=click.IntRange(min=0),
              help="Lowest acceptable signed version (rollback).")  # fmt: skip
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path),
              help="Remember versions per --name here and refuse rollbacks.")  # fmt: skip
@click.option("--no-scan", is_flag=True, help="Verify only; do not scan the files.")
@click.option("--require-attestations", is_flag=True,
              help="Fail when the prefix holds no attestation bundle (one deleted from the "
                   "bucket is otherwise not noticed).")  # fmt: skip
@click.option("--max-object-bytes", type=click.IntRange(min=1),
              help="Largest signed file pulled [default: the scan limit, 256 GiB].")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Seconds the whole pull (listing, downloads, verification, scan) may take; "
                   "past it nothing is pulled (exit 2).")  # fmt: skip
@click.option("--min-rate", type=click.IntRange(min=1), default=64 * 1024, show_default=True,
              help="Slowest accepted download rate per object, bytes per second, after a "
                   "60 s grace period (a trickling server fails, exit 2).")  # fmt: skip
@_endpoint
@_profile
@_region
@_format
def pull_cmd(
    uri: str,
    dest: Path,
    keys: tuple[Path, ...],
    expected_name: str | None,
    expected_version: int | None,
    min_version: int | None,
    state: Path | None,
    no_scan: bool,
    require_attestations: bool,
    max_object_bytes: int | None,
    timeout: float,
    min_rate: int,
    endpoint_url: str | None,
    profile: str | None,
    region: str | None,
    fmt: str,
) -> int:
    """Download s3://BUCKET/PREFIX into DEST (a new folder) only after it verifies against the
    pinned key and scans clean; on failure nothing is left at DEST.

    Exit 0 pulled, 1 verification failed or findings, 2 error.
    """
    from mltrust.integrations.s3 import pull

    try:
        result = pull(
            uri,
            dest,
            trust=list(keys),
            name=expected_name,
            version=expected_version,
            min_version=min_version,
            state=state,
            scan=not no_scan,
            require_attestations=require_attestations,
            max_object_bytes=max_object_bytes,
            timeout=timeout,
            min_rate=min_rate,
            endpoint_url=endpoint_url,
            profile=profile,
            region=region,
        )
    except (VerificationError, UnsafeModelError) as exc:
        return _failed(fmt, uri, exc, "NOT PULLED")
    v = result.verified
    if fmt == "json":
        click.echo(json.dumps({"ok": True, "uri": str(result.location), "dest": str(result.dest),
                               "root_digest": v.root_digest, "files": len(v.files),
                               "model": v.model_name, "version": v.version,
                               "scanned": result.scanned}))  # fmt: skip
    else:
        version = f" version {v.version}" if v.version is not None else ""
        click.echo(f"pulled: {result.location} -> {result.dest} ({len(v.files)} files, verified"
                   f"{', scanned clean' if result.scanned else ', NOT scanned'})")  # fmt: skip
        click.echo(f"  model {v.model_name}{version}")
        click.echo(f"  root sha256:{v.root_digest}")
        for a in v.attestations:
            click.echo(f"  attestation {a.predicate_type} ({a.path.name})")
    return EXIT_CLEAN
