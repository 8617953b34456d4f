"""``mltrust serve REPO`` and ``mltrust serve keys create|list|revoke`` / ``serve schema``.

``serve`` is a group: when its first argument is not a subcommand name, the arguments go to the
hidden ``run`` command, so ``mltrust serve REPO --port 8080`` and ``mltrust serve keys list
--repo REPO`` both work.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
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

__all__ = ["serve"]


class _ServeGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ServeGroup)
def serve() -> None:
    """Serve models over the Open Inference Protocol, with security built in.

    \b
    mltrust serve REPO [--host 127.0.0.1] [--port 8080] [--workers N] [--trusted-key PUB ...]
    mltrust serve keys create --repo REPO --name NAME --model MODEL --role infer

    Options of the server itself: `mltrust serve run --help` (REPO may follow `serve` directly).
    """


def _trusted(values: tuple[str, ...]) -> tuple[tuple[Path, ...], tuple[tuple[str, Path], ...]]:
    global_keys: list[Path] = []
    per_model: list[tuple[str, Path]] = []
    for value in values:
        model, sep, path = value.partition("=")
        if sep and not Path(value).exists():
            per_model.append((model, Path(path)))
        else:
            global_keys.append(Path(value))
    for p in [*global_keys, *(p for _, p in per_model)]:
        if not p.is_file():
            raise ConfigError(f"trusted key {p} does not exist")
    return tuple(global_keys), tuple(per_model)


def _min_versions(values: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    out: dict[str, int] = {}
    for value in values:
        model, sep, raw = value.partition("=")
        if not sep or not model or not raw.isdigit():
            raise ConfigError(f"--min-version {value!r} must look like MODEL=V (V an integer)")
        out[model] = int(raw)
    return tuple(sorted(out.items()))


@serve.command("run", hidden=True)
@click.argument("repo", type=click.Path(exists=True, file_okay=False, path_type=Path))
@server_options(
    port=8080,
    auth_failure_rps=20.0,
    jwks_help="JWKS file of keys that sign JWT bearer tokens (RS256/ES256).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes (rate limits and metrics are per process).",
)
@click.option(
    "--trusted-key",
    "trusted_key",
    multiple=True,
    metavar="[MODEL=]PUB",
    help="Public key trusted to sign models (repeatable; MODEL=PUB for one model).",
)
@click.option(
    "--allow-unsigned",
    is_flag=True,
    help="Serve models without signature verification (development only).",
)
@click.option(
    "--plugin-path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of trusted Python code for 'python' runtimes.",
)
@click.option("--check-profile", default=None, help="mltrust check profile every model must pass.")
@click.option(
    "--version-state",
    "state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rollback memory outside REPO: refuse a signed version lower than one already admitted.",
)
@click.option(
    "--min-version",
    "min_version",
    multiple=True,
    metavar="MODEL=V",
    help="Refuse MODEL when its signed version is lower than V (repeatable).",
)
@click.option(
    "--audit-db",
    default=None,
    metavar="PATH|URL",
    help="Audit log: a SQLite file, or postgresql://USER@HOST:PORT/DB for one chain shared by "
    "replicas on several hosts [default: REPO/.mltrust/audit.db].",
)
@click.option(
    "--max-body",
    default=4 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request body in bytes (413 above).",
)
@click.option(
    "--threads",
    default=2,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Inference threads per worker.",
)
@click.option(
    "--identity-rps",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Override every model's per-identity rate limit (requests/s); also each identity's "
    "rate of other requests (metadata, refusals; default 100/s).",
)
@click.option(
    "--identity-burst",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Override the burst size.",
)
@click.option(
    "--max-header-bytes",
    default=16 * 1024,
    show_default=True,
    type=click.IntRange(1024),
    help="Request line plus headers, in bytes (431 above).",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds to receive a request's headers (408 after).",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds to receive a request's body (408 after).",
)
@click.option(
    "--keep-alive",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds an idle keep-alive connection stays open.",
)
@click.option(
    "--max-connections",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections per worker (503 above).",
)
@click.option(
    "--max-connections-per-client",
    default=64,
    show_default=True,
    type=click.IntRange(1),
    help="Open connections per client address (503 above).",
)
@click.option(
    "--state",
    "state_url",
    default=None,
    metavar="URL",
    help="Share rate limits, quotas and extraction blocks between workers and replicas: "
    "redis://HOST:PORT/DB [default: in-process, per worker]. Fail closed: 503 while Redis "
    "is unreachable.",
)
@click.option(
    "--replica",
    default=None,
    metavar="NAME",
    help="Label every metric series replica=NAME (with --workers N: NAME-<pid>).",
)
@click.option("--metrics-public", is_flag=True, help="Serve /metrics without authentication.")
@click.option("--log-inputs", is_flag=True, help="Store raw inputs in the audit log.")
def run(
    repo: Path,
    host: str,
    port: int,
    workers: int,
    trusted_key: tuple[str, ...],
    allow_unsigned: bool,
    plugin_path: Path | None,
    check_profile: str | None,
    state: Path | None,
    min_version: tuple[str, ...],
    jwks: Path | None,
    jwt_issuer: str | None,
    jwt_audience: str | None,
    audit_db: str | None,
    audit_key: Path | None,
    audit_anchor: Path | None,
    max_body: int,
    threads: int,
    identity_rps: float | None,
    identity_burst: float | None,
    auth_failure_rps: float,
    audit_sync: str,
    max_header_bytes: int,
    header_timeout: float,
    body_timeout: float,
    keep_alive: float,
    max_connections: int,
    max_connections_per_client: int,
    state_url: str | None,
    replica: str | None,
    metrics_public: bool,
    log_inputs: bool,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> int:
    """Serve every model folder under REPO."""
    import uvicorn

    from mltrust.serve._app import CONFIG_ENV, create_app
    from mltrust.serve._config import ServerConfig
    from mltrust.serve._logging import configure_logging, log
    from mltrust.serve._net import uvicorn_options

    configure_logging()
    keys, per_model = _trusted(trusted_key)
    tls = tls_files(ssl_certfile, ssl_keyfile)
    pg_audit = bool(audit_db) and str(audit_db).startswith(("postgresql://", "postgres://"))
    config = ServerConfig(
        repo=repo.resolve(),
        trusted_keys=tuple(k.resolve() for k in keys),
        model_keys=tuple((m, p.resolve()) for m, p in per_model),
        allow_unsigned=allow_unsigned,
        plugin_path=plugin_path.resolve() if plugin_path else None,
        check_profile=check_profile,
        state=state.resolve() if state else None,
        min_versions=_min_versions(min_version),
        jwks=jwks.resolve() if jwks else None,
        jwt_issuer=jwt_issuer,
        jwt_audience=jwt_audience,
        audit_path=Path(audit_db).resolve() if audit_db and not pg_audit else None,
        audit_url=audit_db if pg_audit else None,
        audit_key=audit_key.resolve() if audit_key else None,
        audit_anchor=audit_anchor.resolve() if audit_anchor else None,
        max_body_bytes=max_body,
        inference_threads=threads,
        metrics_public=metrics_public,
        identity_rps=identity_rps,
        identity_burst=identity_burst,
        log_inputs=log_inputs,
        auth_failure_rps=auth_failure_rps,
        audit_sync=audit_sync,
        max_header_bytes=max_header_bytes,
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        keep_alive_s=keep_alive,
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
        state_url=state_url,
        replica=replica,
    )
    warn_if_exposed(host, tls, log)
    options: dict[str, Any] = {
        **uvicorn_options(config),
        "host": host,
        "port": port,
        "ssl_certfile": ssl_certfile,
        "ssl_keyfile": ssl_keyfile,
    }
    # uvicorn binds after the app has started and exits 3 on failure: try the address first so
    # that a port in use or an unknown host is one line and exit 2 (released before uvicorn binds)
    if port:
        bind_socket(host, port).close()
    if workers == 1:
        uvicorn.run(create_app(config), **options)
    else:
        os.environ[CONFIG_ENV] = config.to_json()
        uvicorn.run("mltrust.serve._app:app_from_env", factory=True, workers=workers, **options)
    return EXIT_CLEAN


@serve.group("keys")
def keys() -> None:
    """Create, list and revoke API keys (stored hashed in REPO/.mltrust/serve.db)."""


_repo_option = click.option(
    "--repo",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The model repository.",
)


@keys.command("create")
@_repo_option
@click.option("--name", required=True, help="Who holds the key (shown in the audit log).")
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="Model the key may use ('*' for all; repeatable).",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    default=("infer",),
    show_default=True,
    type=click.Choice(["infer", "metadata", "admin"]),
    help="Role (repeatable).",
)
def keys_create(repo: Path, name: str, models: tuple[str, ...], roles: tuple[str, ...]) -> int:
    """Create an API key and print it once (it is stored only as an HMAC)."""
    from mltrust.serve._keys import KeyStore

    key, record = KeyStore(repo).create(name, [(m, r) for m in models for r in roles])
    click.echo(key)
    click.echo(f"key id {record.key_id} for {name}: store it now, it is not shown again", err=True)
    return EXIT_CLEAN


@keys.command("list")
@_repo_option
@format_option(Format.TEXT, Format.JSON)
def keys_list(repo: Path, fmt: str) -> int:
    """List keys (ids, names, grants; never the keys)."""
    from mltrust.serve._keys import KeyStore

    records = KeyStore(repo).list()
    if fmt == "json":
        docs = [
            {
                "key_id": r.key_id,
                "name": r.name,
                "grants": [list(g) for g in r.grants],
                "created": r.created,
                "revoked": r.revoked,
            }
            for r in records
        ]
        click.echo(json.dumps(docs, indent=2))
        return EXIT_CLEAN
    for r in records:
        state = "revoked" if r.revoked else "active"
        grants = ",".join(f"{m}:{role}" for m, role in r.grants)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.created))
        click.echo(f"{r.key_id}  {state:7}  {created}  {r.name}  {grants}")
    return EXIT_CLEAN


@keys.command("revoke")
@_repo_option
@click.argument("key")
def keys_revoke(repo: Path, key: str) -> int:
    """Revoke a key by id or name (running servers notice within a second)."""
    from mltrust.serve._keys import KeyStore

    count = KeyStore(repo).revoke(key)
    if not count:
        click.echo(f"no active key {key!r}", err=True)
        return EXIT_FINDINGS
    click.echo(f"revoked {count} key(s)", err=True)
    return EXIT_CLEAN


@serve.command("schema")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--from-csv",
    "csv_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Training data (numeric CSV, optional header row).",
)
@click.option("--input", "input_name", default=None, help="Input to update [default: the first].")
def schema(model_dir: Path, csv_path: Path, input_name: str | None) -> int:
    """Learn per-feature value ranges from training data into the model's settings file.

    Run it before signing: the settings file is part of what the signature covers.
    """
    import numpy as np
    import yaml

    from mltrust.serve._settings import NATIVE_SETTINGS_FILES

    path = next((model_dir / n for n in NATIVE_SETTINGS_FILES if (model_dir / n).is_file()), None)
    if path is None:
        raise ConfigError(f"{model_dir}: needs a mltrust-model.yaml/.json to update")
    from mltrust.serve.detectors._reference import load_reference

    data = load_reference(csv_path.parent, csv_path.name)
    text = path.read_text(encoding="utf-8")
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    inputs = doc.get("inputs") if isinstance(doc, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise ConfigError(f"{path}: declare the input (name, datatype, shape) first")
    target = (
        next((i for i in inputs if i.get("name") == input_name), None) if input_name else inputs[0]
    )
    if target is None:
        raise ConfigError(f"{path}: no input named {input_name!r}")
    target["min"] = [float(v) for v in np.min(data, axis=0)]
    target["max"] = [float(v) for v in np.max(data, axis=0)]
    out = (
        json.dumps(doc, indent=2)
        if path.suffix == ".json"
        else yaml.safe_dump(doc, sort_keys=False)
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(out, encoding="utf-8")
    os.replace(tmp, path)
    click.echo(f"{path}: ranges for {data.shape[1]} features from {data.shape[0]} rows", err=True)
    return EXIT_CLEAN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(EXIT_ERROR)
