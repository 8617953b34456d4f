"""Vault tokens and the access policy.

A token is ``mltv_<id>_<secret>`` with a 256-bit random secret; only its SHA-256 is stored
(``vault_tokens.digest``). Why not serve's HMAC with a server secret: the tokens live in the
vault database, which PostgreSQL replicas share, and a per-replica secret file would not be;
with 256-bit random secrets a stolen digest cannot be turned back into a token anyway, so the
HMAC key would add nothing. Comparison is constant-time and an unknown id costs the same hash.

A token grants one role on one environment *name* (or ``*``, every environment). Roles nest:
``admin`` ⊇ ``write`` ⊇ ``read``. Grants follow the name: renaming an environment (which needs
admin on both names) moves it under the tokens of its new name. Tokens may expire
(``--ttl``); expired or revoked tokens fail like unknown ones. A server re-reads a token's row
at most once a second, so revocation takes effect within about a second on every replica.

JWT bearer tokens are accepted when the server is given a JWKS (serve's verifier): a
``roles`` claim of ``"ENV:role"`` strings carries the grants.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from mltrust.errors import ConfigError
from mltrust.serve._auth import Identity
from mltrust.vault._storage import Storage

__all__ = ["ROLES", "Token", "TokenStore", "parse_ttl", "permits"]

PREFIX = "mltv_"
ROLES = ("read", "write", "admin")
_IMPLIES = {
    "admin": frozenset(ROLES),
    "write": frozenset({"read", "write"}),
    "read": frozenset({"read"}),
}
_TOKEN = re.compile(r"mltv_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")


def permits(identity: Identity, env_name: str | None, role: str) -> bool:
    """Whether ``identity`` holds ``role`` on ``env_name`` (None: every environment, ``*``)."""
    for granted_env, granted_role in identity.grants:
        if role not in _IMPLIES.get(granted_role, frozenset()):
            continue
        if granted_env == "*" or (env_name is not None and granted_env == env_name):
            return True
    return False


def parse_ttl(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``7d`` → seconds."""
    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhd])\s*", text)
    if match is None:
        raise ConfigError(f"bad ttl {text!r} (e.g. 90s, 15m, 1h, 7d)")
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    if seconds <= 0:
        raise ConfigError("the ttl must be positive")
    return float(seconds)


@dataclass(frozen=True, slots=True)
class Token:
    id: str
    name: str
    env: str
    role: str
    created: float
    expires: float | None
    revoked: float | None
    digest: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    def __init__(self, storage: Storage, *, max_age: float = 1.0) -> None:
        self.storage = storage
        self._max_age = max_age
        self._cache: dict[str, tuple[float, Token | None]] = {}
        self._lock = threading.Lock()

    def create(
        self, env: str, role: str, *, ttl: float | None = None, name: str = ""
    ) -> tuple[str, Token]:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r} (read, write, admin)")
        if env != "*":
            from mltrust.vault._service import check_env_name

            try:
                check_env_name(env)
            except Exception:  # noqa: BLE001 - reworded as a usage error
                raise ConfigError(f"bad environment name {env!r}") from None
        if len(name) > 128:
            raise ConfigError("a token name is at most 128 characters")
        token_id = secrets.token_hex(8)
        token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        now = time.time()
        record = Token(
            token_id,
            name or f"{env}:{role}",
            env,
            role,
            now,
            None if ttl is None else now + ttl,
            None,
            _digest(token),
        )
        with self.storage.write() as tx:
            tx.run(
                "INSERT INTO vault_tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (record.id, record.digest, record.name, env, role, now, record.expires),
            )
        return token, record

    def list(self) -> list[Token]:
        with self.storage.read() as tx:
            rows = tx.rows(
                "SELECT id, name, env, role, created, expires, revoked, digest"
                " FROM vault_tokens ORDER BY created"
            )
        return [
            Token(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                float(r[4]),
                None if r[5] is None else float(r[5]),
                None if r[6] is None else float(r[6]),
                str(r[7]),
            )
            for r in rows
        ]

    def revoke(self, token_id: str) -> int:
        with self.storage.write() as tx:
            count = tx.run(
                "UPDATE vault_tokens SET revoked = ? WHERE (id = ? OR name = ?)"
                " AND revoked IS NULL",
                (time.time(), token_id, token_id),
            )
        with self._lock:
            self._cache.clear()
        return count

    def _lookup(self, token_id: str) -> Token | None:
        now = time.monotonic()
        cached = self._cache.get(token_id)
        if cached is not None and now - cached[0] < self._max_age:
            return cached[1]
        with self.storage.read() as tx:
            r = tx.one(
                "SELECT id, name, env, role, created, expires, revoked, digest"
                " FROM vault_tokens WHERE id = ?",
                (token_id,),
            )
        record = (
            None
            if r is None
            else Token(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                float(r[4]),
                None if r[5] is None else float(r[5]),
                None if r[6] is None else float(r[6]),
                str(r[7]),
            )
        )
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[token_id] = (now, record)
        return record

    def authenticate(self, token: str) -> Identity | None:
        """The token's identity when it is valid, unexpired and not revoked; else None."""
        match = _TOKEN.fullmatch(token)
        digest = _digest(token[:200])
        if match is None:
            return None
        record = self._lookup(match.group(1))
        if record is None:
            hmac.compare_digest(digest, digest)
            return None
        if not hmac.compare_digest(digest, record.digest) or record.revoked is not None:
            return None
        if record.expires is not None and time.time() >= record.expires:
            return None
        return Identity(f"token:{record.id}:{record.name}", frozenset({(record.env, record.role)}))
