"""``mltrust attest scan|provenance``: signed statements about a model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mltrust.cli._main import EXIT_CLEAN
from mltrust.cli._sign import _passphrase_for, insecure_key_option

F = TypeVar("F", bound=Callable[..., Any])


def store_option(f: F) -> F:
    f = click.option(
        "--store",
        "store_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Evidence store [default: .mltrust/evidence.db in the current folder].",
    )(f)
    out: F = click.option(
        "--no-store", is_flag=True, help="Do not record the statement in an evidence store."
    )(f)
    return out


def _open_store(store_path: Path | None, no_store: bool):  # type: ignore[no-untyped-def]
    from mltrust.store import EvidenceStore

    if no_store:
        return None
    return EvidenceStore.open(store_path or EvidenceStore.default_path(Path.cwd()))


_key_option = click.option(
    "-k",
    "--key",
    "key",
    required=True,
    type=click.Path(path_type=Path),
    help="Private key (PEM) that signs the statement.",
)
_ignore_option = click.option(
    "--ignore",
    "ignore",
    multiple=True,
    help="Relative path left out of the model digest (as given to `mltrust sign`).",
)
_include_git_option = click.option(
    "--include-git",
    is_flag=True,
    help="The model was signed with --include-git: .git* files are part of its digest.",
)


@click.group()
def attest() -> None:
    """Create signed attestations (scan results, SLSA provenance) about a model."""


@attest.command("scan")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@_key_option
@_ignore_option
@_include_git_option
@store_option
@insecure_key_option
def scan(
    path: Path,
    key: Path,
    ignore: tuple[str, ...],
    include_git: bool,
    store_path: Path | None,
    no_store: bool,
    insecure_key_permissions: bool,
) -> int:
    """Scan PATH and sign the result about the model's root digest."""
    from mltrust.attest import attest_scan

    store = _open_store(store_path, no_store)
    try:
        out = attest_scan(
            path,
            key=key,
            store=store,
            passphrase=_passphrase_for(key),
            ignore=ignore,
            insecure_key_permissions=insecure_key_permissions,
            include_git=include_git,
        )
    finally:
        if store is not None:
            store.close()
    click.echo(str(out))
    return EXIT_CLEAN


@attest.command("provenance")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@_key_option
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Training data set (file or folder), recorded by its root digest.",
)
@click.option(
    "--code-commit",
    default=None,
    help="Git commit of the training code: the full id (40 or 64 hex, `git rev-parse HEAD`).",
)
@click.option(
    "--entry-point",
    default=None,
    help="The training command or script (recorded in externalParameters.entryPoint).",
)
@click.option("--param", "params", multiple=True, help="Training parameter as name=value.")
@click.option(
    "--builder-id",
    default="https://mltrust.dev/builders/local",
    show_default=True,
    help="Identifier of the training system (runDetails.builder.id).",
)
@_ignore_option
@_include_git_option
@store_option
@insecure_key_option
def provenance(
    path: Path,
    key: Path,
    datasets: tuple[Path, ...],
    code_commit: str | None,
    entry_point: str | None,
    params: tuple[str, ...],
    builder_id: str,
    ignore: tuple[str, ...],
    include_git: bool,
    store_path: Path | None,
    no_store: bool,
    insecure_key_permissions: bool,
) -> int:
    """Sign SLSA provenance v1 for PATH: data sets, code commit and parameters."""
    from mltrust.attest import attest_provenance

    store = _open_store(store_path, no_store)
    try:
        out = attest_provenance(
            path,
            key=key,
            datasets=datasets,
            code_commit=code_commit,
            entry_point=entry_point,
            params=list(params),
            store=store,
            builder_id=builder_id,
            passphrase=_passphrase_for(key),
            ignore=ignore,
            insecure_key_permissions=insecure_key_permissions,
            include_git=include_git,
        )
    finally:
        if store is not None:
            store.close()
    click.echo(str(out))
    return EXIT_CLEAN
