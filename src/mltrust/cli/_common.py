"""Options shared by several commands."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    import logging
    import socket

F = TypeVar("F", bound=Callable[..., Any])


class Format(enum.StrEnum):
    """Every output format a command can write; each command offers the subset it renders."""

    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"
    CSV = "csv"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    HTML = "html"
    #: The bare value and nothing else (``vault get``), for ``$(...)`` in scripts.
    VALUE = "value"


def format_option(*choices: Format, default: Format | None = None) -> Callable[[F], F]:
    """The one ``-f/--format`` option: ``choices`` in the order help lists them, the first (or
    ``default``) chosen when the option is absent. The command receives the value as ``fmt``."""
    if not choices or (default is not None and default not in choices):
        raise ValueError("format_option needs choices that include the default")
    return click.option(
        "-f",
        "--format",
        "fmt",
        type=click.Choice([c.value for c in choices]),
        default=(default or choices[0]).value,
        show_default=True,
        help="Output format.",
    )


#: The one ``--progress/--no-progress`` option (a bar on stderr, by default only on a terminal).
progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: on when stderr is a terminal].",
)


def output_option(f: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True),
        default=None,
        help="Write results to FILE (atomically, once ready) instead of stdout.",
    )(f)


def no_conflict(**given: object) -> None:
    """A usage error (exit 2) when more than one of the given options was set, e.g.
    ``no_conflict(**{"--store": store_path, "--no-store": no_store})``."""
    used = [name for name, value in given.items() if value not in (None, False, (), "")]
    if len(used) > 1:
        raise click.UsageError(f"{' and '.join(used)} cannot be used together")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def ray_options(f: F) -> F:
    """``--ray [ADDRESS|local]`` and ``--ray-retries N`` (scan and sign)."""
    f = click.option(
        "--ray-retries",
        type=click.IntRange(min=0),
        default=3,
        show_default=True,
        help="With --ray: retries of a task whose worker died.",
    )(f)
    return click.option(
        "--ray",
        "ray_address",
        is_flag=False,
        flag_value="local",
        default=None,
        metavar="[ADDRESS|local]",
        help="Run the work on a Ray cluster: `local` (the default when no address is given) "
        "starts one on this machine; `auto` or HOST:PORT joins one. Needs the ray extra.",
    )(f)


def ray_executor(address: str | None, retries: int) -> Any:
    """The executor for ``--ray`` (None without it); close it when done."""
    if address is None:
        return None
    from mltrust.errors import ConfigError
    from mltrust.executors import ray_executor as make

    if address not in ("local", "auto") and Path(address).exists():
        # `--ray PATH`: the bare flag took the first path as its address.
        raise ConfigError(
            f"--ray {address}: that is a path, not a Ray address",
            hint="put --ray after the paths, or give the address: --ray local",
        )

    return make(address, max_retries=retries)


def server_options(*, port: int, auth_failure_rps: float, jwks_help: str) -> Callable[[F], F]:
    """The network, TLS, audit and JWT options every HTTP server command shares (``serve run``,
    ``vault serve``): ``--host --port --auth-failure-rps --audit-sync --audit-key --audit-anchor
    --jwks --jwt-issuer --jwt-audience --ssl-certfile --ssl-keyfile``. Only the defaults that
    differ between the servers are parameters; check the TLS pair with :func:`tls_files`."""

    def decorate(f: F) -> F:
        options = [
            click.option(
                "--host", default="127.0.0.1", show_default=True, help="Interface to bind."
            ),
            click.option(
                "--port",
                default=port,
                show_default=True,
                type=click.IntRange(0, 65535),
                help="TCP port (0: any free port, printed at start).",
            ),
            click.option(
                "--auth-failure-rps",
                type=click.FloatRange(0, min_open=True),
                default=auth_failure_rps,
                show_default=True,
                help="Failed authentications per second per client address before 429.",
            ),
            click.option(
                "--audit-sync",
                type=click.Choice(["full", "normal"]),
                default="full",
                show_default=True,
                help="full: fsync each audit commit (survives power loss); normal: survives "
                "kill -9 only.",
            ),
            click.option(
                "--audit-key",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Ed25519 key that MACs and anchors the audit log, kept outside the state "
                "folder [default: $MLTRUST_AUDIT_KEY or ~/.config/mltrust/audit.key, created if "
                "missing].",
            ),
            click.option(
                "--audit-anchor",
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="Signed head of the audit log [default: next to the audit key].",
            ),
            click.option(
                "--jwks",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=None,
                help=jwks_help,
            ),
            click.option("--jwt-issuer", default=None, help="Required JWT 'iss'."),
            click.option("--jwt-audience", default=None, help="Required JWT 'aud'."),
            click.option(
                "--ssl-certfile",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="Serve HTTPS with this PEM certificate (chain); needs --ssl-keyfile.",
            ),
            click.option(
                "--ssl-keyfile",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="The certificate's private key (PEM, unencrypted); needs --ssl-certfile.",
            ),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def tls_files(
    certfile: str | Path | None,
    keyfile: str | Path | None,
    names: tuple[str, str] = ("--ssl-certfile", "--ssl-keyfile"),
) -> bool:
    """Check ``--ssl-certfile``/``--ssl-keyfile`` before anything starts: both or neither, and
    a certificate and key that load together (a clear error, not a failure after "listening").
    Returns whether TLS is on."""
    from mltrust.errors import ConfigError

    if (certfile is None) != (keyfile is None):
        raise ConfigError(f"{names[0]} and {names[1]} go together")
    if certfile is None or keyfile is None:
        return False
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"cannot use {names[0]} {certfile} with {names[1]} {keyfile}: {exc.reason or exc}",
            hint="both must be PEM, the key unencrypted and matching the certificate",
        ) from None
    return True


def warn_if_exposed(host: str, tls: bool, log: logging.Logger) -> None:
    """Warn when a server binds a non-loopback interface without TLS."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not tls:
        log.warning(
            "binding a non-loopback interface without TLS", extra={"fields": {"host": host}}
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on HOST:PORT, or a one-line error (port in use, unknown host)
    before the server says it started."""
    import socket

    from mltrust.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without
    # it every answer waits ~40 ms for Nagle and delayed ACKs
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
