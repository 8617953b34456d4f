"""Signing keys: generation, loading, fingerprints, signing and verification of raw bytes.

Supported: ECDSA P-256 (SHA-256, DER signatures; the only kind OpenSSF model-signing verifies
with ``verify key``) and Ed25519. Private keys are PKCS#8 PEM, encrypted with a passphrase
unless the user asked otherwise; public keys are SubjectPublicKeyInfo PEM.

* fingerprint: hex SHA-256 of the DER SubjectPublicKeyInfo (what ``keys generate`` prints);
* hint: hex SHA-256 of the PEM SubjectPublicKeyInfo (model-signing's
  ``verificationMaterial.publicKey.hint``). A hint only *names* a key; verification always
  uses the pinned key the verifier was given, never one taken from a bundle.

Key files are read with :func:`mltrust.files.read_bounded` (regular files only, at most
``Limits.max_key_bytes``; a link is followed because the user named the file, as Kubernetes
secret mounts need). A private key file that its group or others may read or write is refused,
as ``ssh`` does, unless the caller passes ``insecure_permissions=True``
(``--insecure-key-permissions``): such a key may already be someone else's. New private keys
are created with mode 0600 (``O_EXCL``, never replacing a file).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from mltrust.config import Limits
from mltrust.errors import ConfigError, InputError
from mltrust.files import read_bounded

__all__ = [
    "KEY_TYPES",
    "KeyPair",
    "PrivateKey",
    "PublicKey",
    "check_private_key_permissions",
    "default_key_dir",
    "fingerprint",
    "generate_keypair",
    "key_hint",
    "load_private_key",
    "load_public_key",
    "public_key_of",
    "sign_bytes",
    "verify_bytes",
]

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
KEY_TYPES: tuple[str, ...] = ("ecdsa-p256", "ed25519")
_LIMITS = Limits()
_EC_HASHES: dict[str, hashes.HashAlgorithm] = {
    "secp256r1": hashes.SHA256(),
    "secp384r1": hashes.SHA384(),
    "secp521r1": hashes.SHA512(),
}


@dataclass(frozen=True, slots=True)
class KeyPair:
    """Where ``generate_keypair`` wrote the keys, and the public key's fingerprint."""

    private_path: Path
    public_path: Path
    fingerprint: str


def default_key_dir() -> Path:
    """``$XDG_CONFIG_HOME/mltrust/keys`` or ``~/.config/mltrust/keys``."""
    base = os.environ.get("XDG_CONFIG_HOME")
    root = Path(base) if base else Path.home() / ".config"
    return root / "mltrust" / "keys"


def public_key_of(key: PrivateKey) -> PublicKey:
    return key.public_key()


def _spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _spki_pem(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def fingerprint(key: PublicKey | PrivateKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
    pub = key.public_key() if _is_private(key) else key  # type: ignore[union-attr]
    return hashlib.sha256(_spki_der(pub)).hexdigest()  # type: ignore[arg-type]


def key_hint(key: PublicKey) -> str:
    """model-signing's key hint: hex SHA-256 of the PEM SubjectPublicKeyInfo."""
    return hashlib.sha256(_spki_pem(key)).hexdigest()


def _is_private(key: object) -> bool:
    return isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey))


def _check_public(key: object, source: str) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_HASHES:
            raise InputError(f"{source}: unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise InputError(f"{source}: unsupported key type (use ECDSA P-256/384/521 or Ed25519)")


def _read_key_file(path: Path, what: str) -> bytes:
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if path.is_dir():
        raise InputError(f"{what} is a folder, not a key file: {path}")
    return read_bounded(path, _LIMITS.max_key_bytes, what=what, follow_links=True)


def check_private_key_permissions(path: Path, *, insecure_permissions: bool = False) -> None:
    """Refuse a private key file that group or others may read or write (like ``ssh``)."""
    if insecure_permissions or os.name == "nt":
        return
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(f"cannot read private key {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) and mode & 0o077:
        raise ConfigError(
            f"private key {path} is accessible by others (mode {stat.S_IMODE(mode):04o}); "
            "refusing to use it",
            hint=f"chmod 600 {path}, or pass --insecure-key-permissions",
        )


def load_public_key(path: str | Path | bytes) -> PublicKey:
    """Load a PEM (or DER) public key: SubjectPublicKeyInfo, or the public half of a cert."""
    if isinstance(path, bytes):
        data, source = path, "public key"
    else:
        data, source = _read_key_file(Path(path), "public key"), str(path)
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            from cryptography import x509

            return _check_public(x509.load_pem_x509_certificate(data).public_key(), source)
        if data.lstrip().startswith(b"-----"):
            if b"PRIVATE KEY" in data:
                raise InputError(
                    f"{source} is a private key; verification needs the public key (.pub)"
                )
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source} is not a readable public key: {exc}") from exc
    return _check_public(key, source)


def load_private_key(
    path: str | Path,
    passphrase: bytes | None = None,
    *,
    insecure_permissions: bool = False,
) -> PrivateKey:
    """Load a PEM private key; an encrypted key needs ``passphrase`` (or MLTRUST_PASSPHRASE).

    The file must not be readable or writable by group or others unless
    ``insecure_permissions`` (see the module docstring).
    """
    source = str(path)
    data = _read_key_file(Path(path), "private key")
    check_private_key_permissions(Path(path), insecure_permissions=insecure_permissions)
    if passphrase is None and b"ENCRYPTED" in data:
        env = os.environ.get("MLTRUST_PASSPHRASE")
        if env is None:
            raise ConfigError(
                f"private key {source} is encrypted and no passphrase was given",
                hint="set MLTRUST_PASSPHRASE or pass the passphrase",
            )
        passphrase = env.encode("utf-8")
    if b"ENCRYPTED" not in data:
        passphrase = None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except ValueError as exc:
        if b"ENCRYPTED" in data:
            raise InputError(
                f"cannot decrypt private key {source}: wrong passphrase or damaged key"
            ) from exc
        raise InputError(f"{source} is not a readable PEM private key") from exc
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source} is not a readable private key: {exc}") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _EC_HASHES:
            raise InputError(f"{source}: unsupported elliptic curve {key.curve.name}")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise InputError(f"{source}: unsupported key type (use ECDSA P-256 or Ed25519)")


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data``: ECDSA with the curve's hash (DER signature), or Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_EC_HASHES[key.curve.name]))
    return key.sign(data)


def verify_bytes(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True when ``signature`` over ``data`` verifies under ``key``."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_EC_HASHES[key.curve.name]))
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _new_private(key_type: str) -> PrivateKey:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ConfigError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` (never an existing file, nor through a link) with ``mode``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as exc:
        raise ConfigError(f"refusing to overwrite existing key {path}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), mode)  # whatever the umask
        fh.write(data)


def generate_keypair(
    out_prefix: Path | str | None,
    *,
    key_type: str = "ecdsa-p256",
    passphrase: bytes | None,
) -> KeyPair:
    """Write ``PREFIX.key`` (PKCS#8 PEM, encrypted unless ``passphrase`` is None; mode 0600)
    and ``PREFIX.pub`` (SubjectPublicKeyInfo PEM). Without a prefix, keys go to
    :func:`default_key_dir` as ``mltrust-<fingerprint[:12]>``. Existing files are not replaced.
    """
    key = _new_private(key_type)
    pub = key.public_key()
    fp = fingerprint(pub)
    if out_prefix is None:
        folder = default_key_dir()
        prefix = folder / f"mltrust-{fp[:12]}"
    else:
        prefix = Path(out_prefix)
        folder = prefix.parent
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"cannot create key folder {folder}: {exc.strerror or exc}") from exc
    private_path = prefix.with_name(prefix.name + ".key")
    public_path = prefix.with_name(prefix.name + ".pub")
    if public_path.exists() or public_path.is_symlink():
        raise ConfigError(f"refusing to overwrite existing key {public_path}")
    if passphrase is not None and not passphrase:
        raise ConfigError("the passphrase must not be empty")
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase is not None
        else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    _write_new(private_path, pem, 0o600)
    _write_new(public_path, _spki_pem(pub), 0o644)
    return KeyPair(private_path=private_path, public_path=public_path, fingerprint=fp)
