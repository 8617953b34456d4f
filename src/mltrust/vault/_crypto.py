"""Envelope encryption: values under per-environment data keys, data keys under the KEK.

* **Values** are sealed with AES-256-GCM under the environment's 256-bit *data key* (DEK), a
  fresh 96-bit random nonce each time, and associated data that binds the ciphertext to its
  place: ``mltrust-vault/value/v1|<env id>|<var id>|<version>``. A ciphertext copied to another
  variable, environment or version does not decrypt (GCM authentication fails), so an attacker
  with write access to the database cannot move a ciphertext to another place unnoticed.
* **Rows that decide who reads what** carry an HMAC-SHA256 tag (column ``mac``) under the
  vault's *row key*: 32 random bytes stored only wrapped by the KEK (associated data
  ``mltrust-vault/row-key/v1|<kek id>``), exactly like a data key. Why a wrapped random key and
  not one derived from the KEK: ``vault rotate`` rewraps it, so the tags stay valid and a
  running server that holds the old KEK keeps verifying rows; a derived key would change with
  the KEK and every replica would refuse every row until restarted. The tags cover
  an environment's name↔id binding; a variable's id, environment, name, ``current_version``,
  ``max_versions``, ``secret`` and ``cas_required``; a token's id, digest, name, grant
  (environment, role), expiry and revocation. Every read verifies the tag and refuses the row
  (an integrity error, audited) when it does not match. So a database writer without the KEK
  cannot mint a token, widen a grant, un-expire a token, swap environment or variable names or
  point ``current_version`` at an older version. What such a writer *can* still do: delete
  rows or versions (denial of service, lost data), soft-undelete a version whose ciphertext is
  still kept, and replay a whole row (tag included) it saw earlier, e.g. restore a token row
  from before its revocation or a variable row from before a write: rolling the database back
  is not detectable from inside it (keep tokens short-lived; the audit log, anchored outside,
  records every revocation and write).
* **Data keys** are wrapped (AES-256-GCM again) by the *key-encryption key* (KEK) with associated
  data ``mltrust-vault/dek/v1|<env id>|<kek id>``; only wrapped keys are stored.
* **The KEK** comes from a key file (32 random bytes: raw, hex or base64 text) or from a
  passphrase stretched with scrypt (salt and cost stored in the database; the cost read back is
  bounded so a tampered database cannot make unsealing exhaust memory). An external KMS fits
  the same :class:`KeyEncryptionKey` interface (``wrap``/``unwrap``); none ships yet.
* A *check value* (a fixed string sealed under the KEK) tells a wrong KEK from a damaged
  database at unseal time, before anything is decrypted.

Nonce reuse: GCM with random 96-bit nonces stays within NIST's 2^-32 collision bound for up to
2^32 encryptions per key; a data key encrypts one environment's writes, far fewer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import stat
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mltrust.errors import ConfigError, VerificationError

__all__ = [
    "KDF_LOG_N_DEFAULT",
    "KDF_LOG_N_RANGE",
    "KeyEncryptionKey",
    "LocalKek",
    "RowMac",
    "generate_key",
    "kek_from_file",
    "kek_from_passphrase",
    "open_value",
    "seal_value",
]

KEY_BYTES = 32
NONCE_BYTES = 12
#: scrypt cost (log2 N). 2^17 with r=8 is OWASP's recommendation (128 MiB, ~0.3 s).
KDF_LOG_N_DEFAULT = 17
#: Accepted cost range when reading it back from the database (bounds memory and time).
KDF_LOG_N_RANGE = (14, 20)
CHECK_PLAINTEXT = b"mltrust-vault-kek-check-v1"


class KeyEncryptionKey(Protocol):
    """What wraps data keys: a local key, or a KMS plug-in implementing the same two calls."""

    @property
    def kek_id(self) -> str: ...

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...


def generate_key() -> bytes:
    return os.urandom(KEY_BYTES)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + 16:
        raise VerificationError("ciphertext is truncated")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise VerificationError("ciphertext does not authenticate") from None


class LocalKek:
    """A KEK held in this process's memory."""

    def __init__(self, key: bytes, kek_id: str) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError("a key-encryption key is 32 bytes")
        self._key = key
        self._kek_id = kek_id

    @property
    def kek_id(self) -> str:
        return self._kek_id

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        return _seal(self._key, plaintext, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        return _open(self._key, blob, aad)

    def __repr__(self) -> str:  # never the key
        return f"LocalKek(kek_id={self._kek_id!r})"


class RowMac:
    """HMAC-SHA256 tags over a row's security-relevant fields (see the module docstring).

    The message is the JSON array ``[kind, *fields]`` (compact, ASCII): field boundaries are
    unambiguous, and ``kind`` keeps a token's tag from verifying as an environment's.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError("a row key is 32 bytes")
        self._key = key

    def tag(self, kind: str, *fields: str | int | float | None) -> str:
        message = json.dumps([kind, *fields], separators=(",", ":"), ensure_ascii=True)
        return hmac.new(self._key, message.encode("ascii"), hashlib.sha256).hexdigest()

    def check(self, tag: object, kind: str, *fields: str | int | float | None) -> bool:
        return isinstance(tag, str) and hmac.compare_digest(tag, self.tag(kind, *fields))

    def __repr__(self) -> str:  # never the key
        return "RowMac()"


def check_aad(kek_id: str) -> bytes:
    return f"mltrust-vault/kek-check/v1|{kek_id}".encode()


def row_key_aad(kek_id: str) -> bytes:
    return f"mltrust-vault/row-key/v1|{kek_id}".encode()


def dek_aad(env_id: str, kek_id: str) -> bytes:
    return f"mltrust-vault/dek/v1|{env_id}|{kek_id}".encode()


def value_aad(env_id: str, var_id: str, version: int) -> bytes:
    return f"mltrust-vault/value/v1|{env_id}|{var_id}|{version}".encode()


def seal_value(dek: bytes, plaintext: bytes, env_id: str, var_id: str, version: int) -> bytes:
    return _seal(dek, plaintext, value_aad(env_id, var_id, version))


def open_value(dek: bytes, blob: bytes, env_id: str, var_id: str, version: int) -> bytes:
    return _open(dek, blob, value_aad(env_id, var_id, version))


def kek_from_passphrase(passphrase: str, salt: bytes, log_n: int) -> bytes:
    low, high = KDF_LOG_N_RANGE
    if not low <= log_n <= high:
        raise ConfigError(f"scrypt cost 2^{log_n} is outside 2^{low}..2^{high}")
    if not passphrase:
        raise ConfigError("the vault passphrase is empty")
    return hashlib.scrypt(
        passphrase.encode("utf-8"),
        salt=salt,
        n=1 << log_n,
        r=8,
        p=1,
        maxmem=(1 << log_n) * 8 * 128 + (1 << 20),
        dklen=KEY_BYTES,
    )


def kek_from_file(path: Path) -> bytes:
    """32 bytes from a key file: raw bytes, 64 hex characters, or base64 text.

    The file must be readable by its owner only (like an SSH private key); otherwise refused.
    """
    try:
        info = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the key file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: the key file is not a regular file")
    if info.st_mode & 0o077:
        raise ConfigError(f"{path}: the key file is readable by others", hint=f"chmod 600 {path}")
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) == KEY_BYTES:
        return decoded
    raise ConfigError(f"{path}: a key file holds 32 bytes (raw, 64 hex digits or base64)")


def write_key_file(path: Path) -> None:
    """Create a new random key file (base64 text, mode 0600); refuses to overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path}: exists; refusing to overwrite a key file") from None
    try:
        os.write(fd, base64.b64encode(generate_key()) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
