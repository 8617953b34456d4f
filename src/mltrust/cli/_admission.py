"""``mltrust admission serve``: the Kubernetes validating admission webhook."""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path

import click

from mltrust.cli._common import tls_files
from mltrust.cli._main import EXIT_CLEAN
from mltrust.errors import ConfigError


@click.group()
def admission() -> None:
    """Kubernetes admission: verify models before the cluster runs them."""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@admission.command("serve")
@click.option(
    "--trusted-key",
    "trusted_keys",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public key (PEM) model signatures must verify against (repeatable).",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8443, show_default=True, help="TCP port."
)
@click.option(
    "--host",
    default=None,
    help="Address to listen on [default: 0.0.0.0 with TLS, 127.0.0.1 without].",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM certificate chain the webhook serves (the API server requires TLS).",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key of --tls-cert.",
)
@click.option(
    "--storage-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/models"),
    show_default=True,
    help="Where model paths and file:// and pvc:// URIs are looked up "
    "(pvc://CLAIM/p is DIR/CLAIM/p).",
)
@click.option(
    "--profile",
    default=None,
    help="Also evaluate the evidence (scan, signature...) against this profile (name or YAML).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Admit everything; report what would be denied as warnings.",
)
@click.option(
    "--require-annotation",
    is_flag=True,
    help="Deny pods and workloads that name no model (mltrust.dev/model-path).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Reviews verified at the same time (each hashes a whole model).",
)
def serve(
    trusted_keys: tuple[Path, ...],
    port: int,
    host: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    storage_root: Path,
    profile: str | None,
    dry_run: bool,
    require_annotation: bool,
    concurrency: int,
) -> int:
    """Answer AdmissionReview v1 on POST /validate (and GET /healthz).

    Objects naming a model (annotation mltrust.dev/model-path, InferenceService storageUri,
    SeldonDeployment modelUri) are admitted only when the model's signature verifies against
    a trusted key (and, with --profile, its evidence passes). Any error denies.
    """
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ConfigError(
            "the admission webhook needs the serve extra", hint="pip install 'mltrust[serve]'"
        ) from None

    from mltrust.admission import AdmissionPolicy, create_app

    tls = tls_files(tls_cert, tls_key, ("--tls-cert", "--tls-key"))
    bind = host or ("0.0.0.0" if tls else "127.0.0.1")  # noqa: S104 - a server with TLS
    if not tls and not _loopback(bind):
        raise ConfigError(
            f"refusing to serve admission without TLS on {bind}",
            hint="give --tls-cert and --tls-key (the API server only calls HTTPS webhooks)",
        )
    policy = AdmissionPolicy(
        trusted_keys=tuple(k.resolve() for k in trusted_keys),
        storage_root=storage_root.resolve(),
        profile=profile,
        dry_run=dry_run,
        require_annotation=require_annotation,
    )
    logging.getLogger("mltrust.admission").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    if dry_run:
        click.echo("admission: DRY RUN: nothing will be denied", err=True)
    uvicorn.run(
        create_app(policy, concurrency=concurrency),
        host=bind,
        port=port,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    return EXIT_CLEAN
