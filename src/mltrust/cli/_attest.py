"""``mltrust attest scan|provenance|robustness|explain|tuning``: signed statements about a
model.

Every statement is recorded in the evidence store of the current folder,
``./.mltrust/evidence.db`` (the one ``mltrust evidence`` reads, and the one ``mltrust check .``
writes when run from the same folder), unless ``--store`` names another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mltrust.cli._common import no_conflict
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

    no_conflict(**{"--store": store_path, "--no-store": no_store})
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
    """Create signed attestations (scan, provenance, robustness, explanations, tuning) about a
    model."""


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
    "--tuning",
    "tuning",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A tuning bundle (`mltrust attest tuning`) about this model, linked from the "
    "provenance by the digest of its signed statement.",
)
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
    tuning: tuple[Path, ...],
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
            tuning=tuning,
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


ROBUSTNESS_PREDICATE = "https://mltrust.dev/robustness/v1"
EXPLAIN_PREDICATE = "https://mltrust.dev/explain/v1"


def _sign_measurement(
    path: Path,
    statement_path: Path,
    key: Path,
    store_path: Path | None,
    no_store: bool,
    *,
    kind: str,
    predicate_type: str,
) -> Path:
    """Sign a statement a measuring command wrote (``--statement FILE``) about the model file
    PATH, after checking its predicate type and that its subject is PATH's SHA-256."""
    import json

    from mltrust.attest import attestation_path, fingerprint, sign_statement, write_bundle
    from mltrust.attest._sign import resolve_private_key
    from mltrust.digest import sha256_file
    from mltrust.errors import ConfigError, InputError
    from mltrust.files import read_bounded

    if not path.is_file():
        raise ConfigError(f"{path} is not a model file ({kind} is measured on one file)")
    try:
        statement = json.loads(read_bounded(statement_path, 16 << 20, what="statement"))
    except ValueError as exc:
        raise InputError(f"{statement_path} is not JSON: {exc}") from None
    if not isinstance(statement, dict) or statement.get("predicateType") != predicate_type:
        raise InputError(f"{statement_path} is not a {kind} statement ({predicate_type})")
    digest = sha256_file(path)
    subjects = statement.get("subject")
    claimed = [
        s.get("digest", {}).get("sha256")
        for s in (subjects if isinstance(subjects, list) else [])
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    ]
    if digest not in claimed:
        raise InputError(
            f"{statement_path} is about another file, not {path.name} ({digest[:16]}…)"
        )
    private = resolve_private_key(key, _passphrase_for(key))
    bundle = sign_statement(statement, private)
    out = attestation_path(path, kind)
    write_bundle(bundle, out)
    store = _open_store(store_path, no_store)
    if store is not None:
        try:
            store.add_statement(
                statement,
                envelope=bundle["dsseEnvelope"],
                signer=fingerprint(private.public_key()),
                subject_digest=digest,
            )
        finally:
            store.close()
    return out


@attest.command("robustness")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--statement",
    "statement_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The statement written by `mltrust robustness MODEL ... --statement FILE`.",
)
@_key_option
@store_option
def robustness(
    path: Path, statement_path: Path, key: Path, store_path: Path | None, no_store: bool
) -> int:
    """Sign a robustness measurement about PATH (a model file) so `mltrust check --key` counts it.

    The statement must be a robustness statement whose subject is PATH's SHA-256 (checked
    here, before signing). The bundle is written to .mltrust/attestations/ beside the model.
    """
    out = _sign_measurement(
        path,
        statement_path,
        key,
        store_path,
        no_store,
        kind="robustness",
        predicate_type=ROBUSTNESS_PREDICATE,
    )
    click.echo(str(out))
    return EXIT_CLEAN


@attest.command("explain")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--statement",
    "statement_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The statement written by `mltrust explain MODEL ... --statement FILE`.",
)
@_key_option
@store_option
def explain(
    path: Path, statement_path: Path, key: Path, store_path: Path | None, no_store: bool
) -> int:
    """Sign an explanation (attributions and sanity checks) about PATH, a model file.

    The statement must be an explain statement whose subject is PATH's SHA-256 (checked here,
    before signing). The bundle is written to .mltrust/attestations/ beside the model, where
    `mltrust check --key` reads it (evidence section `explain`).
    """
    out = _sign_measurement(
        path,
        statement_path,
        key,
        store_path,
        no_store,
        kind="explain",
        predicate_type=EXPLAIN_PREDICATE,
    )
    click.echo(str(out))
    return EXIT_CLEAN


@attest.command("tuning")
@click.argument("study")
@click.option(
    "--model",
    "model",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The model the search chose (file or folder); the statement is about its root digest.",
)
@click.option(
    "--study-name",
    default=None,
    help="Study to read [default: the only study in the storage].",
)
@click.option(
    "--selected-trial",
    type=click.IntRange(min=0),
    default=None,
    help="Number of the trial the model comes from [default: the study's best trial].",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Data set the trials were evaluated on (file or folder), recorded by root digest.",
)
@click.option(
    "--code-commit",
    default=None,
    help="Git commit of the tuning code: the full id (40 or 64 hex, `git rev-parse HEAD`).",
)
@_key_option
@_ignore_option
@_include_git_option
@store_option
@insecure_key_option
def tuning(
    study: str,
    model: Path,
    study_name: str | None,
    selected_trial: int | None,
    datasets: tuple[Path, ...],
    code_commit: str | None,
    key: Path,
    ignore: tuple[str, ...],
    include_git: bool,
    store_path: Path | None,
    no_store: bool,
    insecure_key_permissions: bool,
) -> int:
    """Sign the hyperparameter search that chose a model: an Optuna study's search space,
    trials and selected trial.

    STUDY is the study's storage: a SQLite file, sqlite:///PATH, or another RDB URL Optuna
    reads (needs the `tuning` extra). The bundle is written to .mltrust/attestations/ beside
    (or inside) the model; link it from the provenance with `attest provenance --tuning`.
    """
    from mltrust.attest import attest_tuning

    store = _open_store(store_path, no_store)
    try:
        out = attest_tuning(
            model,
            study,
            key=key,
            study_name=study_name,
            selected_trial=selected_trial,
            datasets=datasets,
            code_commit=code_commit,
            store=store,
            passphrase=_passphrase_for(key),
            ignore=ignore,
            include_git=include_git,
            insecure_key_permissions=insecure_key_permissions,
        )
    finally:
        if store is not None:
            store.close()
    click.echo(str(out))
    return EXIT_CLEAN
