"""API keys: ``mlt_<key id>_<secret>``, stored only as HMAC-SHA256(server secret, key).

Why HMAC and not a slow KDF: keys are 256-bit random values (``secrets.token_urlsafe(32)``), so
they cannot be brute-forced and a slow KDF would only cost every request tens of milliseconds.
The HMAC key (the *server secret*, 32 random bytes in ``REPO/.mltrust/secret``, mode 0600) keeps a
stolen database from being usable to check guesses offline. Comparison is constant-time
(``hmac.compare_digest``). The key id (public, 12 hex chars) selects the row; the plaintext key
is printed once at creation and never stored.

The store is ``REPO/.mltrust/serve.db`` (SQLite). A running server re-reads it at most once a
second, so ``mltrust serve keys revoke`` takes effect within about a second.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from mltrust.errors import ConfigError

__all__ = ["ApiKey", "KeyStore", "is_key_id", "load_or_create_secret", "state_dir"]

KEY_PREFIX = "mlt_"
ROLES = ("infer", "metadata", "admin")
_KEY_ID_BYTES = 6  # secrets.token_hex: 12 lowercase hex characters


def is_key_id(text: str) -> bool:
    """Whether ``text`` has the shape of a key id. A key is both ``key:<name>`` and
    ``key:<key id>`` to ``policy.roles``, so a name of this shape could take the grant meant
    for the key with that id: such names are refused (and never used as a principal)."""
    return len(text) == 2 * _KEY_ID_BYTES and all(c in "0123456789abcdef" for c in text)


def state_dir(repo: Path) -> Path:
    return repo / ".mltrust"


def load_or_create_secret(repo: Path) -> bytes:
    """The server secret (HMAC key for API keys and the audit head). Created once, mode 0600."""
    folder = state_dir(repo)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "secret"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = secrets.token_bytes(32)
        tmp = folder / f".secret.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process won the race
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        data = path.read_bytes()
    if len(data) < 32:
        raise ConfigError(f"{path}: server secret is too short")
    return data


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    grants: tuple[tuple[str, str], ...]  # (model or "*", role)
    created: float
    revoked: float | None
    digest: bytes


class KeyStore:
    """The API-key table. Safe to share between threads; each call opens its own connection."""

    def __init__(self, repo: Path, *, secret: bytes | None = None) -> None:
        self.path = state_dir(repo) / "serve.db"
        self._secret = secret if secret is not None else load_or_create_secret(repo)
        self._cache: dict[str, ApiKey] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()
        with closing(self._connect()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
                " grants TEXT NOT NULL, created REAL NOT NULL, revoked REAL, digest BLOB NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _digest(self, key: str) -> bytes:
        return hmac.new(self._secret, key.encode("utf-8"), hashlib.sha256).digest()

    def create(self, name: str, grants: list[tuple[str, str]]) -> tuple[str, ApiKey]:
        if not name or len(name) > 128:
            raise ConfigError("key name must be 1-128 characters")
        if is_key_id(name):
            raise ConfigError(
                f"key name {name!r} looks like a key id (12 hex characters): choose another"
            )
        if not grants:
            raise ConfigError("a key needs at least one --model/--role grant")
        for model, role in grants:
            if role not in ROLES:
                raise ConfigError(f"unknown role {role!r} (infer, metadata, admin)")
            if not model or ":" in model or "," in model:
                raise ConfigError(f"bad model name {model!r}")
        key_id = secrets.token_hex(_KEY_ID_BYTES)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, name, tuple(grants), time.time(), None, self._digest(key))
        text = ",".join(f"{m}:{r}" for m, r in grants)
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, NULL, ?)",
                (key_id, name, text, record.created, record.digest),
            )
        self._loaded = 0.0
        return key, record

    def list(self) -> list[ApiKey]:
        with closing(self._connect()) as db, db:
            rows = db.execute(
                "SELECT key_id, name, grants, created, revoked, digest"
                " FROM api_keys ORDER BY created"
            ).fetchall()
        out = []
        for key_id, name, grants, created, revoked, digest in rows:
            pairs = tuple((m, r) for m, _, r in (g.partition(":") for g in grants.split(",")) if r)
            out.append(ApiKey(key_id, name, pairs, created, revoked, bytes(digest)))
        return out

    def revoke(self, key_id_or_name: str) -> int:
        with closing(self._connect()) as db, db:
            cur = db.execute(
                "UPDATE api_keys SET revoked = ?"
                " WHERE (key_id = ? OR name = ?) AND revoked IS NULL",
                (time.time(), key_id_or_name, key_id_or_name),
            )
            count = cur.rowcount
        self._loaded = 0.0
        return count

    def refresh(self, *, max_age: float = 1.0) -> None:
        now = time.monotonic()
        if now - self._loaded < max_age:
            return
        with self._lock:
            if now - self._loaded < max_age:
                return
            self._cache = {k.key_id: k for k in self.list()}
            self._loaded = time.monotonic()

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record when ``key`` is valid and not revoked, else None."""
        if not key.startswith(KEY_PREFIX) or len(key) > 200:
            return None
        key_id, sep, _ = key[len(KEY_PREFIX) :].partition("_")
        if not sep:
            return None
        self.refresh()
        record = self._cache.get(key_id)
        digest = self._digest(key)
        if record is None:
            hmac.compare_digest(digest, digest)  # same work whether or not the id exists
            return None
        if not hmac.compare_digest(digest, record.digest) or record.revoked is not None:
            return None
        return record
