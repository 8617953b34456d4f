"""``mltrust vault``: the secrets service (server side) and its client commands.

Server side (work on the state folder / database directly):
  vault init, serve, rotate, token create|list|revoke, backup, restore.
Client side (talk HTTP to ``MLTRUST_VAULT_ADDR`` with ``MLTRUST_VAULT_TOKEN``):
  vault env create|list|delete, set, get, list, history, rollback, delete, undelete, destroy,
  import, run, pull, clear.

Values never appear on a command line: ``set`` reads them from ``--from-file``, ``--stdin`` or a
hidden prompt.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from mltrust.cli._common import (
    Format,
    bind_socket,
    format_option,
    server_options,
    tls_files,
    warn_if_exposed,
)
from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
from mltrust.errors import ConfigError

__all__ = ["vault"]

_state_option = click.option(
    "--state",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The vault's state folder (SQLite database, audit log).",
)
_db_option = click.option(
    "--database",
    envvar="MLTRUST_VAULT_DATABASE",
    default=None,
    metavar="URL",
    help="postgresql://… instead of the SQLite file in the state folder "
    "[env: MLTRUST_VAULT_DATABASE].",
)
_kek_option = click.option(
    "--kek-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Key-encryption key file [default: the MLTRUST_VAULT_PASSPHRASE passphrase].",
)


@click.group()
def vault() -> None:
    """Environments and secret variables for ML pipelines: encrypted, versioned, audited.

    \b
    mltrust vault init --state DIR
    MLTRUST_VAULT_PASSPHRASE=… mltrust vault serve --state DIR --port 8200
    mltrust vault token create --state DIR --env production --role read --ttl 1h
    MLTRUST_VAULT_ADDR=http://127.0.0.1:8200 MLTRUST_VAULT_TOKEN=… \\
        mltrust vault run --env production -- python train.py
    """


# -- server side ---------------------------------------------------------------------------
@vault.command()
@_state_option
@_db_option
@_kek_option
@click.option(
    "--generate-kek-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Create a new random key file (mode 0600) and use it as the KEK.",
)
@click.option("--kdf-cost", type=click.IntRange(14, 20), default=17, hidden=True)
def init(
    state: Path,
    database: str | None,
    kek_file: Path | None,
    generate_kek_file: Path | None,
    kdf_cost: int,
) -> int:
    """Create the state folder and database; record the KEK check value when a KEK is given."""
    from mltrust.vault._crypto import kek_from_file, write_key_file
    from mltrust.vault._service import Vault
    from mltrust.vault._state import init_state, kek_bytes

    if generate_kek_file is not None:
        if kek_file is not None:
            raise ConfigError("--kek-file and --generate-kek-file exclude each other")
        write_key_file(generate_kek_file)
        kek_file = generate_kek_file
    elif kek_file is not None:
        kek_from_file(kek_file)  # a bad key file fails before the state folder is created
    storage, created = init_state(state, database, kdf_log_n=kdf_cost)
    try:
        v = Vault(storage)
        key = kek_bytes(v, kek_file, required=False)
        if key is not None:
            v.unseal(key)
        where = storage.description
    finally:
        storage.close()
    word = "initialised" if created else "already initialised"
    kek = "KEK recorded" if key is not None else "no KEK yet: the first one given binds"
    click.echo(f"vault {word} in {where} ({kek})", err=True)
    return EXIT_CLEAN


@vault.command()
@_state_option
@_db_option
@_kek_option
@server_options(
    port=8200,
    auth_failure_rps=5.0,
    jwks_help="Also accept JWTs signed by these keys (roles: ENV:role).",
)
@click.option("--sealed", is_flag=True, help="Start sealed; unseal with POST /sys/unseal.")
@click.option(
    "--max-versions",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Versions kept per variable unless the variable says otherwise.",
)
@click.option(
    "--metrics-public",
    is_flag=True,
    help="Serve GET /sys/metrics without authentication [default: an admin token on '*'].",
)
def serve(
    state: Path,
    database: str | None,
    kek_file: Path | None,
    host: str,
    port: int,
    sealed: bool,
    max_versions: int,
    auth_failure_rps: float,
    audit_sync: str,
    audit_key: Path | None,
    audit_anchor: Path | None,
    jwks: Path | None,
    jwt_issuer: str | None,
    jwt_audience: str | None,
    metrics_public: bool,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> int:
    """Serve the vault API (127.0.0.1 by default; TLS with --ssl-certfile/--ssl-keyfile)."""
    import logging

    import uvicorn

    from mltrust.serve._auth import JwtVerifier
    from mltrust.serve._logging import JsonFormatter
    from mltrust.vault._app import VaultApp, VaultAppConfig, log
    from mltrust.vault._service import Vault
    from mltrust.vault._state import kek_bytes, open_audit_log
    from mltrust.vault._storage import open_storage
    from mltrust.vault._tokens import TokenStore

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    tls = tls_files(ssl_certfile, ssl_keyfile)
    jwt = None
    if jwks is not None:
        jwt = JwtVerifier(jwks, issuer=jwt_issuer or "", audience=jwt_audience or "")
    storage = open_storage(state, database)
    v = Vault(storage, max_versions=max_versions)
    if not sealed:
        v.unseal(kek_bytes(v, kek_file) or b"")
    audit = open_audit_log(state, key_path=audit_key, anchor=audit_anchor, sync=audit_sync)
    app = VaultApp(
        v,
        TokenStore(storage, lambda: v.row_mac),
        audit,
        jwt=jwt,
        config=VaultAppConfig(auth_failure_rps=auth_failure_rps, metrics_public=metrics_public),
    )
    warn_if_exposed(host, tls, log)
    sock = bind_socket(host, port)
    scheme = "https" if tls else "http"
    bound = sock.getsockname()
    log.info(
        "vault listening",
        extra={
            "fields": {
                "url": f"{scheme}://{host}:{bound[1]}",
                "port": bound[1],
                "sealed": v.sealed,
                "database": storage.description,
            }
        },
    )
    try:
        config = uvicorn.Config(
            app.app,
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=10,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        audit.close()
        storage.close()
        sock.close()
    return EXIT_CLEAN


@vault.command()
@_state_option
@_db_option
@_kek_option
@click.option(
    "--new-kek-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The new key file.",
)
@click.option(
    "--new-passphrase-env",
    default="MLTRUST_VAULT_NEW_PASSPHRASE",
    show_default=True,
    help="Environment variable holding the new passphrase (when no --new-kek-file).",
)
def rotate(
    state: Path,
    database: str | None,
    kek_file: Path | None,
    new_kek_file: Path | None,
    new_passphrase_env: str,
) -> int:
    """Rewrap every data key under a new KEK (values untouched; servers keep running)."""
    from mltrust.vault._crypto import kek_from_file
    from mltrust.vault._state import open_vault

    v = open_vault(state, database, kek_file)
    try:
        if new_kek_file is not None:
            new = v.derive_kek(key=kek_from_file(new_kek_file))
        else:
            passphrase = os.environ.get(new_passphrase_env)
            if not passphrase:
                raise ConfigError(f"give --new-kek-file or set {new_passphrase_env}")
            new = v.derive_kek(passphrase=passphrase)
        count = v.rotate(new)
    finally:
        v.storage.close()
    click.echo(f"rewrapped {count} data key(s) under the new KEK", err=True)
    return EXIT_CLEAN


@vault.command()
@_state_option
@_db_option
@_kek_option
def migrate(state: Path, database: str | None, kek_file: Path | None) -> int:
    """Tag the rows of a vault from before integrity tags (once, after upgrading).

    Environments, variables and tokens without a tag are tagged under the KEK and listed; rows
    with a wrong tag are left refused. Untagged rows could also be rows someone inserted
    into the database: check the list (and `vault token list`) it prints.
    """
    from mltrust.vault._state import open_vault

    v = open_vault(state, database, kek_file)
    try:
        done = v.migrate_integrity()
    finally:
        v.storage.close()
    for kind, items in done.items():
        click.echo(f"tagged {len(items)} {kind}" + (f": {', '.join(items)}" if items else ""))
    return EXIT_CLEAN


@vault.group()
def token() -> None:
    """Create, list and revoke access tokens (stored hashed)."""


@token.command("create")
@_state_option
@_db_option
@_kek_option
@click.option("--env", "env", required=True, help="Environment name, or '*' for all.")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["read", "write", "admin"]),
    help="read: get/list/pull; write: also set/delete; admin: also tokens and environments.",
)
@click.option("--ttl", default=None, help="Lifetime, e.g. 15m, 1h, 7d [default: no expiry].")
@click.option("--name", default="", help="Who holds it (shown in the audit log).")
def token_create(
    state: Path,
    database: str | None,
    kek_file: Path | None,
    env: str,
    role: str,
    ttl: str | None,
    name: str,
) -> int:
    """Print a new token once (only its hash is kept; the row is tagged with the KEK)."""
    from mltrust.vault._tokens import TokenStore, parse_ttl

    life = None if ttl is None else parse_ttl(ttl)
    v = _token_vault(state, database, kek_file)
    try:
        secret, record = TokenStore(v.storage, lambda: v.row_mac).create(
            env, role, ttl=life, name=name
        )
    finally:
        v.storage.close()
    click.echo(secret)
    expires = (
        "never"
        if record.expires is None
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.expires))
    )
    click.echo(f"token {record.id} ({env}:{role}, expires {expires}): shown once", err=True)
    return EXIT_CLEAN


def _token_vault(state: Path, database: str | None, kek_file: Path | None) -> Any:
    """An unsealed vault: token rows are tagged and checked with the row key (KEK-wrapped)."""
    from mltrust.vault._state import open_vault

    return open_vault(state, database, kek_file)


@token.command("list")
@_state_option
@_db_option
@_kek_option
@format_option(Format.TEXT, Format.JSON)
def token_list(state: Path, database: str | None, kek_file: Path | None, fmt: str) -> int:
    """List tokens (ids, grants, expiry; never the tokens). A row that fails its integrity
    check (written outside the vault) is listed as TAMPERED and exits 1."""
    from mltrust.vault._tokens import TokenStore

    v = _token_vault(state, database, kek_file)
    try:
        listed = TokenStore(v.storage, lambda: v.row_mac).list()
    finally:
        v.storage.close()
    tampered = [r.id for r, intact in listed if not intact]
    records = [r for r, _ in listed]
    if fmt == "json":
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "name": r.name,
                        "env": r.env,
                        "role": r.role,
                        "created": r.created,
                        "expires": r.expires,
                        "revoked": r.revoked,
                        "intact": r.id not in tampered,
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return EXIT_FINDINGS if tampered else EXIT_CLEAN
    now = time.time()
    for r in records:
        status = (
            "TAMPERED"
            if r.id in tampered
            else "revoked"
            if r.revoked
            else "expired"
            if r.expires is not None and r.expires <= now
            else "active"
        )
        click.echo(f"{r.id}  {status:8}  {r.env}:{r.role}  {r.name}")
    if tampered:
        click.echo(
            f"{len(tampered)} token row(s) fail their integrity check (refused by the server):"
            f" {', '.join(tampered)}",
            err=True,
        )
        return EXIT_FINDINGS
    return EXIT_CLEAN


@token.command("revoke")
@_state_option
@_db_option
@_kek_option
@click.argument("token_id")
def token_revoke(state: Path, database: str | None, kek_file: Path | None, token_id: str) -> int:
    """Revoke a token by id or name (servers notice within a second)."""
    from mltrust.vault._tokens import TokenStore

    v = _token_vault(state, database, kek_file)
    try:
        count = TokenStore(v.storage, lambda: v.row_mac).revoke(token_id)
    finally:
        v.storage.close()
    if not count:
        click.echo(f"no active token {token_id!r}", err=True)
        return EXIT_FINDINGS
    click.echo(f"revoked {count} token(s)", err=True)
    return EXIT_CLEAN


@vault.command()
@_state_option
@_db_option
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Backup file to write.",
)
def backup(state: Path, database: str | None, output: Path) -> int:
    """Write the encrypted state (ciphertext, wrapped keys, token hashes) to one file."""
    from mltrust.vault._backup import backup as run_backup
    from mltrust.vault._storage import open_storage

    storage = open_storage(state, database)
    try:
        counts = run_backup(storage, output)
    finally:
        storage.close()
    click.echo(f"{output}: {counts}", err=True)
    return EXIT_CLEAN


@vault.command()
@_state_option
@_db_option
@click.argument("backup_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(state: Path, database: str | None, backup_file: Path) -> int:
    """Load a backup into a fresh vault (created here when missing)."""
    from mltrust.vault._backup import read_backup
    from mltrust.vault._backup import restore as run_restore
    from mltrust.vault._state import init_state

    read_backup(backup_file)  # a damaged backup fails before a vault is created for it
    storage, _ = init_state(state, database)
    try:
        counts = run_restore(storage, backup_file)
    finally:
        storage.close()
    click.echo(f"restored {counts}", err=True)
    return EXIT_CLEAN


# -- client side ---------------------------------------------------------------------------
def _client() -> Any:
    from mltrust.vault._client import VaultClient

    return VaultClient()


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@vault.group("env")
def env_group() -> None:
    """Create, list and delete environments."""


@env_group.command("create")
@click.argument("name")
@click.option("--description", default="", help="Free text shown by `env list`.")
def env_create(name: str, description: str) -> int:
    """Create environment NAME (admin on NAME or *)."""
    doc = _client().env_create(name, description)
    click.echo(doc["id"])
    return EXIT_CLEAN


@env_group.command("list")
@format_option(Format.TEXT, Format.JSON)
def env_list(fmt: str) -> int:
    """The environments this token may read."""
    envs = _client().env_list()
    if fmt == "json":
        click.echo(json.dumps(envs, indent=2))
    else:
        for e in envs:
            click.echo(f"{e['name']}  {e['id']}  {e['description']}")
    return EXIT_CLEAN


@env_group.command("delete")
@click.argument("name")
def env_delete(name: str) -> int:
    """Delete environment NAME with all its variables (admin)."""
    _client().env_delete(name)
    click.echo(f"deleted {name}", err=True)
    return EXIT_CLEAN


@vault.command("set")
@click.argument("env")
@click.argument("name")
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the value from a file (trailing newline kept).",
)
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the value from standard input.")
@click.option("--public", is_flag=True, help="Mark the variable as not secret (still encrypted).")
@click.option(
    "--cas",
    type=click.IntRange(0),
    default=None,
    help="Write only if the current version is this (0: only if new).",
)
def set_(
    env: str, name: str, from_file: Path | None, from_stdin: bool, public: bool, cas: int | None
) -> int:
    """Write a new version of NAME in ENV (the value never goes on the command line)."""
    if from_file is not None and from_stdin:
        raise ConfigError("--from-file and --stdin exclude each other")
    if from_file is not None:
        value = from_file.read_text(encoding="utf-8")
    elif from_stdin:
        value = sys.stdin.read()
    elif sys.stdin.isatty():
        value = click.prompt(f"{name}", hide_input=True, confirmation_prompt=True)
    else:
        raise ConfigError("no value: use --from-file FILE, --stdin or a terminal prompt")
    doc = _client().set(env, name, value, secret=False if public else None, cas=cas)
    click.echo(f"{env}/{name}: version {doc.get('version', doc.get('current_version'))}", err=True)
    return EXIT_CLEAN


@vault.command()
@click.argument("env")
@click.argument("name")
@click.option(
    "--version", type=click.IntRange(1), default=None, help="This version [default: the latest]."
)
@format_option(Format.VALUE, Format.JSON)
def get(env: str, name: str, version: int | None, fmt: str) -> int:
    """Print the value of NAME (latest, or --version N)."""
    doc = _client().get(env, name, version)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(doc["value"], nl=not str(doc["value"]).endswith("\n"))
    return EXIT_CLEAN


@vault.command("list")
@click.argument("env")
@click.option("--values", "with_values", is_flag=True, help="Show values (secret ones too).")
@format_option(Format.TEXT, Format.JSON)
def list_(env: str, with_values: bool, fmt: str) -> int:
    """Variables of ENV with version and flags (values only with --values)."""
    doc = _client().list(env, values=with_values)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return EXIT_CLEAN
    for v in doc["variables"]:
        kind = "secret" if v["secret"] else "public"
        line = f"{v['name']}  v{v['current_version']}  {kind}  {_when(v['updated'])}"
        if with_values:
            line += f"  {json.dumps(v.get('value'))}"
        click.echo(line)
    return EXIT_CLEAN


@vault.command()
@click.argument("env")
@click.argument("name")
@format_option(Format.TEXT, Format.JSON)
def history(env: str, name: str, fmt: str) -> int:
    """Versions of NAME (created, deleted, destroyed)."""
    doc = _client().history(env, name)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return EXIT_CLEAN
    for v in doc["versions"]:
        state = "destroyed" if v["destroyed"] else "deleted" if v["deleted"] else "live"
        marker = "*" if v["version"] == doc["current_version"] else " "
        click.echo(f"{marker}v{v['version']}  {_when(v['created'])}  {state}")
    return EXIT_CLEAN


@vault.command()
@click.argument("env")
@click.argument("name")
@click.option("--version", required=True, type=click.IntRange(1), help="Version to restore.")
def rollback(env: str, name: str, version: int) -> int:
    """Write version N's value as a new version (fails if someone wrote meanwhile)."""
    doc = _client().rollback(env, name, version)
    click.echo(f"{env}/{name}: version {doc['version']} = version {version}", err=True)
    return EXIT_CLEAN


@vault.command()
@click.argument("env")
@click.argument("name")
@click.option("--versions", default=None, help="Comma-separated versions [default: latest].")
@click.option("--purge", is_flag=True, help="Delete the variable and every version (admin).")
def delete(env: str, name: str, versions: str | None, purge: bool) -> int:
    """Soft-delete versions of NAME (undo with `undelete`), or purge it."""
    numbers = [int(v) for v in versions.split(",")] if versions else None
    click.echo(json.dumps(_client().delete(env, name, numbers, purge=purge)))
    return EXIT_CLEAN


@vault.command()
@click.argument("env")
@click.argument("name")
@click.option("--versions", required=True, help="Comma-separated versions.")
def undelete(env: str, name: str, versions: str) -> int:
    """Bring soft-deleted versions back."""
    click.echo(json.dumps(_client().undelete(env, name, [int(v) for v in versions.split(",")])))
    return EXIT_CLEAN


@vault.command()
@click.argument("env")
@click.argument("name")
@click.option("--versions", required=True, help="Comma-separated versions.")
def destroy(env: str, name: str, versions: str) -> int:
    """Remove versions for good (admin)."""
    click.echo(json.dumps(_client().destroy(env, name, [int(v) for v in versions.split(",")])))
    return EXIT_CLEAN


@vault.command("import")
@click.option("--env", "env", required=True, help="Environment name.")
@click.argument("dotenv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_(env: str, dotenv: Path) -> int:
    """Import every KEY=VALUE of a .env file into ENV (a new version each)."""
    from mltrust.vault._dotenv import parse_dotenv

    values = parse_dotenv(dotenv.read_text(encoding="utf-8"))
    client = _client()
    for key, value in values.items():
        client.set(env, key, value)
    click.echo(f"imported {len(values)} variable(s) into {env}", err=True)
    return EXIT_CLEAN


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(signum)


def _run_child(command: tuple[str, ...], env: dict[str, str]) -> int:
    """Run the child; SIGTERM/SIGINT to us are passed on, and we wait for it to end."""
    child = subprocess.Popen(list(command), env=env)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    for s in previous:
        signal.signal(s, forward)
    try:
        return child.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


_allow_env_option = click.option(
    "--allow-env",
    "allow_env",
    multiple=True,
    metavar="NAME",
    help="Pass on this variable although it can make programs load code (PATH, LD_PRELOAD, "
    "PYTHONPATH…); repeatable. Without it such variables are refused.",
)


@vault.command(context_settings={"ignore_unknown_options": True})
@click.option("--env", "env", required=True, help="Environment name.")
@_allow_env_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def run(env: str, allow_env: tuple[str, ...], command: tuple[str, ...]) -> int:
    """Run COMMAND with ENV's variables added to its environment only.

    \b
    mltrust vault run --env production -- python train.py
    The exit code is the command's. MLTRUST_VAULT_TOKEN is not passed on. Variables that
    make programs load code (PATH, LD_*, BASH_ENV, PYTHONPATH, NODE_OPTIONS…) are refused
    unless allowed by name with --allow-env.
    """
    from mltrust.vault._childenv import check_child_env
    from mltrust.vault._client import TOKEN_ENV

    values = _client().values(env)
    check_child_env(values, allow_env)
    child_env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    child_env.update(values)
    try:
        return _run_child(command, child_env)
    except FileNotFoundError:
        click.echo(f"error: {command[0]}: command not found", err=True)
        return 127


@vault.command(context_settings={"ignore_unknown_options": True})
@click.option("--env", "env", required=True, help="Environment name.")
@click.option(
    "--dotenv",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (mode 0600).",
)
@_allow_env_option
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def pull(env: str, dotenv: Path, allow_env: tuple[str, ...], command: tuple[str, ...]) -> int:
    """Write ENV's variables to a .env file (0600) for a CI job.

    \b
    With a command (`vault pull --env ci --dotenv .env -- make test`) the file exists only
    while the command runs and is removed when it ends, fails, or we are terminated.
    Without one, remove it with `vault clear --dotenv FILE` in a step that always runs.
    Variables that make programs load code are refused as for `vault run` (--allow-env NAME).
    """
    from mltrust.vault._childenv import check_child_env
    from mltrust.vault._client import TOKEN_ENV
    from mltrust.vault._dotenv import remove_dotenv, write_dotenv

    values = _client().values(env)
    check_child_env(values, allow_env)
    if not command:
        write_dotenv(dotenv, values)
        click.echo(
            f"{dotenv}: {len(values)} variable(s); remove it with "
            f"`mltrust vault clear --dotenv {dotenv}`",
            err=True,
        )
        return EXIT_CLEAN
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        write_dotenv(dotenv, values)
        try:
            return _run_child(command, {k: v for k, v in os.environ.items() if k != TOKEN_ENV})
        except FileNotFoundError:
            click.echo(f"error: {command[0]}: command not found", err=True)
            return 127
    except _Terminated:
        return 128 + signal.SIGTERM
    finally:
        remove_dotenv(dotenv)
        signal.signal(signal.SIGTERM, previous)


@vault.command()
@click.option(
    "--dotenv",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .env file `vault pull` wrote.",
)
def clear(dotenv: Path) -> int:
    """Remove a .env file written by `vault pull`."""
    from mltrust.vault._dotenv import remove_dotenv

    removed = remove_dotenv(dotenv)
    click.echo(f"{dotenv}: {'removed' if removed else 'not there'}", err=True)
    return EXIT_CLEAN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(EXIT_ERROR)
