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

Every token row carries an integrity tag (``mac``: HMAC under the vault's row key, which only
the KEK unwraps, see ``_crypto``) over its id, digest, name, grant, expiry and revocation. A
row whose tag does not verify, one inserted or edited by someone with database access but not
the KEK, is refused with :class:`TokenTampered` (audited as an integrity failure), so creating,
listing and revoking tokens needs the KEK (``--kek-file`` or ``MLTRUST_VAULT_PASSPHRASE``),
and a sealed server authenticates no vault token.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mltrust.errors import ConfigError, VerificationError
from mltrust.identity import Identity
from mltrust.vault._crypto import RowMac
from mltrust.vault._storage import Storage, Tx

__all__ = [
    "ROLES",
    "Token",
    "TokenStore",
    "TokenTampered",
    "parse_ttl",
    "permits",
    "tag_untagged_tokens",
]

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


class TokenTampered(VerificationError):
    """A token row's integrity tag does not match (written outside the vault)."""


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
    #: The row's stored integrity tag (None: never tagged).
    mac: str | None = None

    def tag(self, mac: RowMac) -> str:
        return mac.tag(
            "token",
            self.id,
            self.digest,
            self.name,
            self.env,
            self.role,
            self.expires,
            self.revoked,
        )

    def intact(self, mac: RowMac) -> bool:
        return self.mac is not None and hmac.compare_digest(self.mac, self.tag(mac))


_COLS = "id, name, env, role, created, expires, revoked, digest, mac"


def _token(r: tuple[Any, ...]) -> Token:
    return Token(
        str(r[0]),
        str(r[1]),
        str(r[2]),
        str(r[3]),
        float(r[4]),
        None if r[5] is None else float(r[5]),
        None if r[6] is None else float(r[6]),
        str(r[7]),
        None if r[8] is None else str(r[8]),
    )


def tag_untagged_tokens(tx: Tx, mac: RowMac) -> list[str]:
    """Tag the token rows that have no tag (the schema-1 migration); returns their ids."""
    done = []
    for row in tx.rows(f"SELECT {_COLS} FROM vault_tokens WHERE mac IS NULL"):  # noqa: S608
        record = _token(row)
        tx.run("UPDATE vault_tokens SET mac = ? WHERE id = ?", (record.tag(mac), record.id))
        done.append(record.id)
    return done


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenStore:
    """Tokens in ``storage``; ``row_mac`` gives the current row key (raising
    :class:`~mltrust.vault._service.Sealed` while the vault is sealed)."""

    def __init__(
        self, storage: Storage, row_mac: Callable[[], RowMac], *, max_age: float = 1.0
    ) -> None:
        self.storage = storage
        self._row_mac = row_mac
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
        mac = self._row_mac()
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
                "INSERT INTO vault_tokens VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    record.id,
                    record.digest,
                    record.name,
                    env,
                    role,
                    now,
                    record.expires,
                    record.tag(mac),
                ),
            )
        return token, record

    def list(self) -> list[tuple[Token, bool]]:
        """Every token row with whether its integrity tag verifies."""
        mac = self._row_mac()
        with self.storage.read() as tx:
            rows = tx.rows(f"SELECT {_COLS} FROM vault_tokens ORDER BY created")  # noqa: S608
        return [(t, t.intact(mac)) for t in map(_token, rows)]

    def revoke(self, token_id: str) -> int:
        """Revoke by id or name; a tampered row is marked revoked too (it stays refused)."""
        mac = self._row_mac()
        now = time.time()
        count = 0
        with self.storage.write() as tx:
            rows = tx.rows(
                f"SELECT {_COLS} FROM vault_tokens"  # noqa: S608
                " WHERE (id = ? OR name = ?) AND revoked IS NULL",
                (token_id, token_id),
            )
            for row in rows:
                record = _token(row)
                new = Token(
                    record.id,
                    record.name,
                    record.env,
                    record.role,
                    record.created,
                    record.expires,
                    now,
                    record.digest,
                )
                tag = new.tag(mac) if record.intact(mac) else record.mac
                count += tx.run(
                    "UPDATE vault_tokens SET revoked = ?, mac = ? WHERE id = ?",
                    (now, tag, record.id),
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
            r = tx.one(f"SELECT {_COLS} FROM vault_tokens WHERE id = ?", (token_id,))  # noqa: S608
        record = None if r is None else _token(r)
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[token_id] = (now, record)
        return record

    def authenticate(self, token: str) -> Identity | None:
        """The token's identity when it is valid, unexpired and not revoked; else None.

        Raises :class:`TokenTampered` when the token's row fails its integrity check (and
        ``Sealed`` while the vault is sealed: without the KEK no row can be trusted).
        """
        match = _TOKEN.fullmatch(token)
        digest = _digest(token[:200])
        if match is None:
            return None
        mac = self._row_mac()
        record = self._lookup(match.group(1))
        if record is not None and not record.intact(mac):
            raise TokenTampered(f"token {record.id}: row fails its integrity check")
        if record is None:
            hmac.compare_digest(digest, digest)
            return None
        if not hmac.compare_digest(digest, record.digest) or record.revoked is not None:
            return None
        if record.expires is not None and time.time() >= record.expires:
            return None
        return Identity(f"token:{record.id}:{record.name}", frozenset({(record.env, record.role)}))
