"""``mltrust keys generate``: create a signing key pair."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from mltrust.cli._main import EXIT_CLEAN


def read_new_passphrase() -> bytes:
    """The passphrase for a new key: MLTRUST_PASSPHRASE, else asked twice at a prompt."""
    env = os.environ.get("MLTRUST_PASSPHRASE")
    if env is not None:
        return env.encode("utf-8")
    if not sys.stdin.isatty():  # no one to ask (CI, a pipe): say what to do, do not hang or echo
        from mltrust.errors import ConfigError

        raise ConfigError(
            "no passphrase for the new private key and no terminal to ask for one",
            hint="set MLTRUST_PASSPHRASE, or pass --unencrypted for a key kept in a secret store",
        )
    text: str = click.prompt(
        "Passphrase for the new private key",
        hide_input=True,
        confirmation_prompt=True,
        err=True,
    )
    return text.encode("utf-8")


@click.group()
def keys() -> None:
    """Manage signing keys."""


@keys.command("generate")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write PREFIX.key and PREFIX.pub [default: a new pair in ~/.config/mltrust/keys].",
)
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["ecdsa-p256", "ed25519"]),
    default="ecdsa-p256",
    show_default=True,
    help="Key algorithm (model-signing interoperates with ecdsa-p256 only).",
)
@click.option(
    "--unencrypted",
    is_flag=True,
    help="Store the private key without a passphrase (not recommended).",
)
def generate(out: Path | None, key_type: str, unencrypted: bool) -> int:
    """Generate a key pair and print the public key's fingerprint (SHA-256 of its DER).

    The private key is encrypted with the passphrase in MLTRUST_PASSPHRASE, or one asked at
    a prompt, and written with mode 0600.
    """
    from mltrust.attest import generate_keypair

    if unencrypted:
        click.echo("warning: the private key will be stored unencrypted", err=True)
        passphrase = None
    else:
        passphrase = read_new_passphrase()
    pair = generate_keypair(out, key_type=key_type, passphrase=passphrase)
    click.echo(f"private key: {pair.private_path}", err=True)
    click.echo(f"public key:  {pair.public_path}", err=True)
    click.echo(pair.fingerprint)
    return EXIT_CLEAN
