"""Key generation and loading through the Python API."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from mltrust.attest import (
    fingerprint,
    generate_keypair,
    key_hint,
    load_private_key,
    load_public_key,
)
from mltrust.errors import ConfigError, InputError


def test_fingerprint_is_sha256_of_der_spki(tmp_path: Path) -> None:
    pair = generate_keypair(tmp_path / "k", passphrase=b"pw")
    pub = load_public_key(pair.public_path)
    der = pub.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pair.fingerprint == hashlib.sha256(der).hexdigest() == fingerprint(pub)
    assert key_hint(pub) == hashlib.sha256(pair.public_path.read_bytes()).hexdigest()


def test_encrypted_key_needs_the_right_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLTRUST_PASSPHRASE", raising=False)
    pair = generate_keypair(tmp_path / "k", key_type="ed25519", passphrase=b"right")
    assert fingerprint(load_private_key(pair.private_path, b"right")) == pair.fingerprint
    with pytest.raises(InputError, match="wrong passphrase"):
        load_private_key(pair.private_path, b"wrong")
    with pytest.raises(ConfigError, match="encrypted"):
        load_private_key(pair.private_path)
    monkeypatch.setenv("MLTRUST_PASSPHRASE", "right")
    assert fingerprint(load_private_key(pair.private_path)) == pair.fingerprint


def test_empty_passphrase_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        generate_keypair(tmp_path / "k", passphrase=b"")


def test_unsupported_key_type_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key type"):
        generate_keypair(tmp_path / "k", key_type="rsa-1024", passphrase=None)


def test_garbage_keys_are_input_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x00\x01garbage")
    junk.chmod(0o600)
    with pytest.raises(InputError):
        load_public_key(junk)
    with pytest.raises(InputError):
        load_private_key(junk, None)
    with pytest.raises(InputError, match="not found"):
        load_public_key(tmp_path / "missing.pub")
    with pytest.raises(InputError, match="folder"):
        load_public_key(tmp_path)


def test_key_generation_never_writes_through_a_link(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.pem"
    (tmp_path / "k.pub").symlink_to(target)  # dangling: exists() is False
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        generate_keypair(tmp_path / "k", passphrase=None)
    assert not target.exists()
    pair = generate_keypair(tmp_path / "new", passphrase=None)
    assert pair.private_path.stat().st_mode & 0o777 == 0o600
    assert pair.public_path.stat().st_mode & 0o777 == 0o644
