"""The vault itself: environments and versioned variables, with Vault-KV-v2 semantics.

No HTTP and no authorization here (the app decides who may call what); this module owns the
data rules:

* every write of a variable makes a new version; versions are numbered from 1 and a number is
  never reused, even after a destroy;
* check-and-set: ``cas=N`` writes only if the current version is N (``cas=0``: only if the
  variable does not exist yet); a variable created with ``cas_required`` refuses writes
  without ``cas``;
* ``max_versions`` versions are kept per variable; older ones are removed on the next write
  (lowering it removes them at once, so callers that may not destroy pass ``may_prune=False``);
* soft delete marks versions deleted (reads say so, ``undelete`` brings them back); destroy
  removes the ciphertext for good; deleting the variable removes it and all its versions;
* the vault is *sealed* until a KEK unwraps the check value; sealed, every data call raises
  :class:`Sealed`. Data keys are unwrapped once per environment and kept in memory;
* every environment and variable row read is checked against its integrity tag (``mac``, see
  ``_crypto``) before its name, id or version numbers are used; a mismatch raises
  :class:`Tampered` (a :class:`~mltrust.errors.VerificationError`: the app answers 500 and
  audits ``integrity: …``). Every write here re-tags the rows it changes.

Errors carry names and ids, never values.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from mltrust.errors import ConfigError, Error, InputError, VerificationError
from mltrust.vault._crypto import (
    CHECK_PLAINTEXT,
    KDF_LOG_N_DEFAULT,
    KeyEncryptionKey,
    LocalKek,
    RowMac,
    check_aad,
    dek_aad,
    generate_key,
    kek_from_passphrase,
    open_value,
    row_key_aad,
    seal_value,
)
from mltrust.vault._storage import Conflict, Storage, Tx

__all__ = [
    "Environment",
    "NotFound",
    "PruneForbidden",
    "Sealed",
    "Tampered",
    "VarConflict",
    "Variable",
    "Vault",
    "Version",
    "check_env_name",
    "check_var_name",
]

ENV_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
ENV_ID = re.compile(r"env_[0-9a-f]{16}")
VAR_ID = re.compile(r"var_[0-9a-f]{16}")
#: Longest description and most versions kept per variable: rules of the vault's stored data
#: (checked again when a store is read), not bounds on work, so not in
#: :class:`~mltrust.config.Limits` (another value would reject stores written under this one).
DESCRIPTION_CHARS = 1024
VERSIONS_CEILING = 1000


class NotFound(InputError):
    """No such environment, variable or version (or it is deleted/destroyed)."""


class VarConflict(InputError):
    """A check-and-set mismatch or a name already taken."""


class PruneForbidden(InputError):
    """Lowering ``max_versions`` would destroy kept versions; the caller may not destroy."""


class Tampered(VerificationError):
    """A row's integrity tag does not match: it was written outside the vault (or never tagged:
    run ``mltrust vault migrate``)."""


class Sealed(Error):
    """The vault holds no key-encryption key yet."""


@dataclass(frozen=True, slots=True)
class Environment:
    id: str
    name: str
    description: str
    created: float
    updated: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "created": self.created,
            "updated": self.updated,
        }


@dataclass(frozen=True, slots=True)
class Variable:
    id: str
    env_id: str
    name: str
    secret: bool
    created: float
    updated: float
    current_version: int
    max_versions: int
    cas_required: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "secret": self.secret,
            "created": self.created,
            "updated": self.updated,
            "current_version": self.current_version,
            "max_versions": self.max_versions,
            "cas_required": self.cas_required,
        }


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    created: float
    deleted: float | None
    destroyed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "created": self.created,
            "deleted": self.deleted,
            "destroyed": self.destroyed,
        }


def check_env_name(name: object) -> str:
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise InputError("environment names are 1-64 of A-Z a-z 0-9 _ . -")
    return name


def check_var_name(name: object) -> str:
    if not isinstance(name, str) or not VAR_NAME.fullmatch(name):
        raise InputError("variable names are environment-variable names (A-Z a-z 0-9 _)")
    return name


_ENV_COLS = "id, name, description, created, updated, mac"
_VAR_COLS = (
    "id, env_id, name, secret, created, updated, current_version, max_versions, cas_required, mac"
)


def env_tag(mac: RowMac, env_id: str, name: str) -> str:
    """The tag of an environment row: its name↔id binding (the grants follow names)."""
    return mac.tag("env", env_id, name)


def var_tag(mac: RowMac, var: Variable) -> str:
    """The tag of a variable row: where it lives, its name, and every field that picks which
    version is served or kept."""
    return mac.tag(
        "var",
        var.id,
        var.env_id,
        var.name,
        int(var.secret),
        var.current_version,
        var.max_versions,
        int(var.cas_required),
    )


def _env(row: tuple[Any, ...]) -> Environment:
    return Environment(str(row[0]), str(row[1]), str(row[2]), float(row[3]), float(row[4]))


def _var(row: tuple[Any, ...]) -> Variable:
    return Variable(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        bool(row[3]),
        float(row[4]),
        float(row[5]),
        int(row[6]),
        int(row[7]),
        bool(row[8]),
    )


def _ver(row: tuple[Any, ...]) -> Version:
    return Version(
        int(row[0]), float(row[1]), None if row[2] is None else float(row[2]), bool(row[3])
    )


class Vault:
    """Environments and variables over a :class:`Storage`, sealed until :meth:`unseal`."""

    def __init__(
        self, storage: Storage, *, max_versions: int = 10, max_value_bytes: int = 65536
    ) -> None:
        if not 1 <= max_versions <= VERSIONS_CEILING:
            raise ConfigError(f"max versions must be 1..{VERSIONS_CEILING}")
        self.storage = storage
        self.max_versions = max_versions
        self.max_value_bytes = max_value_bytes
        self._kek: KeyEncryptionKey | None = None
        self._mac: RowMac | None = None
        self._deks: dict[str, bytes] = {}
        self._lock = threading.Lock()

    # -- KEK lifecycle -------------------------------------------------------------------------
    @staticmethod
    def initialize(storage: Storage, *, kdf_log_n: int = KDF_LOG_N_DEFAULT) -> bool:
        """Record the scrypt salt and cost once; False when the vault was initialised before."""
        with storage.write() as tx:
            if tx.one("SELECT v FROM vault_meta WHERE k = 'kdf'") is not None:
                return False
            doc = {
                "alg": "scrypt",
                "log_n": kdf_log_n,
                "r": 8,
                "p": 1,
                "salt": base64.b64encode(os.urandom(16)).decode(),
            }
            storage.set_meta(tx, "kdf", json.dumps(doc))
        return True

    def derive_kek(self, *, passphrase: str | None = None, key: bytes | None = None) -> bytes:
        """The 32-byte KEK from a passphrase (scrypt with the stored salt) or a raw key."""
        if key is not None and passphrase is None:
            return key
        if passphrase is None or key is not None:
            raise ConfigError("give a passphrase or a key file, not both or neither")
        meta = self.storage.meta()
        try:
            kdf = json.loads(meta["kdf"])
            salt = base64.b64decode(kdf["salt"], validate=True)
            log_n = int(kdf["log_n"])
            if kdf.get("alg") != "scrypt" or kdf.get("r") != 8 or kdf.get("p") != 1:
                raise ValueError("unknown kdf")
        except (KeyError, ValueError, TypeError):
            raise ConfigError("the vault is not initialised (no KDF parameters)") from None
        return kek_from_passphrase(passphrase, salt, log_n)

    def unseal(self, kek_bytes: bytes, *, may_bind: bool = True) -> None:
        """Check the KEK against the stored check value.

        When the vault has no KEK yet (``init`` without one), the first KEK given binds, but
        only with ``may_bind`` (the operator's own command line); the HTTP unseal endpoint
        passes False, so nobody who merely reaches the port can choose the vault's KEK.
        """
        with self.storage.write() as tx:
            row = tx.one("SELECT v FROM vault_meta WHERE k = 'kek'")
            if row is None:
                if not may_bind:
                    raise ConfigError(
                        "this vault has no key-encryption key yet",
                        hint="start `vault serve` once with the KEK to bind it",
                    )
                kek_id = secrets.token_hex(8)
                kek = LocalKek(kek_bytes, kek_id)
                check = kek.wrap(CHECK_PLAINTEXT, check_aad(kek_id))
                doc = {"kek_id": kek_id, "check": base64.b64encode(check).decode()}
                self.storage.set_meta(tx, "kek", json.dumps(doc))
            else:
                kek = _kek_from_doc(str(row[0]), kek_bytes)
            mac = self._row_key(tx, kek)
            # unwrap every data key now: a later `vault rotate` (which rewraps them under a new
            # KEK) then does not interrupt this process for any existing environment
            deks: dict[str, bytes] = {}
            for env_id, wrapped in tx.rows(
                "SELECT id, wrapped_key FROM vault_environments WHERE kek_id = ?", (kek.kek_id,)
            ):
                try:
                    deks[str(env_id)] = kek.unwrap(bytes(wrapped), dek_aad(str(env_id), kek.kek_id))
                except VerificationError:
                    continue  # a damaged row fails that environment alone, when it is used
        with self._lock:
            self._kek = kek
            self._mac = mac
            self._deks = deks

    def _row_key(self, tx: Tx, kek: KeyEncryptionKey) -> RowMac:
        """The row-integrity key, unwrapped; created (wrapped under ``kek``) when the vault has
        none yet: a new vault, or one from before the row tags. A fresh key verifies no existing
        tag, and an untagged row verifies under no key, so creating one never blesses a row;
        only :meth:`migrate_integrity` tags untagged rows."""
        row = tx.one("SELECT v FROM vault_meta WHERE k = 'rowkey'")
        if row is None:
            key = generate_key()
            doc = {
                "kek_id": kek.kek_id,
                "wrapped": base64.b64encode(kek.wrap(key, row_key_aad(kek.kek_id))).decode(),
            }
            self.storage.set_meta(tx, "rowkey", json.dumps(doc))
            return RowMac(key)
        try:
            doc = json.loads(str(row[0]))
            if doc["kek_id"] != kek.kek_id:
                raise ValueError("another KEK")
            wrapped = base64.b64decode(doc["wrapped"], validate=True)
            return RowMac(kek.unwrap(wrapped, row_key_aad(kek.kek_id)))
        except (ValueError, KeyError, TypeError, VerificationError, ConfigError):
            raise ConfigError("the vault's row-integrity key record is damaged") from None

    def seal(self) -> None:
        with self._lock:
            self._kek = None
            self._mac = None
            self._deks.clear()

    @property
    def row_mac(self) -> RowMac:
        """The row-integrity key of the current KEK (raises :class:`Sealed` while sealed)."""
        mac = self._mac
        if mac is None:
            raise Sealed("the vault is sealed", hint="give the key-encryption key to unseal it")
        return mac

    @property
    def sealed(self) -> bool:
        return self._kek is None

    def rotate(self, new_kek_bytes: bytes) -> int:
        """Rewrap every data key under a new KEK in one transaction; returns how many.

        Values are not touched (their data keys do not change), so the transaction is short
        and readers keep going. The new KEK's check value replaces the old one in the same
        transaction. A running server that still holds the old KEK keeps serving every
        environment (it unwrapped all data keys when it was unsealed); it refuses to create
        environments until restarted with the new KEK (its KEK id no longer matches).
        """
        old = self._require()
        new = LocalKek(new_kek_bytes, secrets.token_hex(8))
        count = 0
        with self.storage.write() as tx:
            row = tx.one("SELECT v FROM vault_meta WHERE k = 'kek'")
            if row is None or json.loads(str(row[0])).get("kek_id") != old.kek_id:
                raise ConfigError("the vault's KEK changed meanwhile; unseal again")
            for env_id, kek_id, wrapped in tx.rows(
                "SELECT id, kek_id, wrapped_key FROM vault_environments"
            ):
                dek = old.unwrap(bytes(wrapped), dek_aad(str(env_id), str(kek_id)))
                rewrapped = new.wrap(dek, dek_aad(str(env_id), new.kek_id))
                tx.run(
                    "UPDATE vault_environments SET kek_id = ?, wrapped_key = ? WHERE id = ?",
                    (new.kek_id, rewrapped, env_id),
                )
                count += 1
            check = new.wrap(CHECK_PLAINTEXT, check_aad(new.kek_id))
            doc = {"kek_id": new.kek_id, "check": base64.b64encode(check).decode()}
            self.storage.set_meta(tx, "kek", json.dumps(doc))
            # the row key stays; only its wrapping changes, so every tag stays valid
            row_key = tx.one("SELECT v FROM vault_meta WHERE k = 'rowkey'")
            if row_key is not None:
                key = old.unwrap(
                    base64.b64decode(json.loads(str(row_key[0]))["wrapped"], validate=True),
                    row_key_aad(old.kek_id),
                )
                doc = {
                    "kek_id": new.kek_id,
                    "wrapped": base64.b64encode(new.wrap(key, row_key_aad(new.kek_id))).decode(),
                }
                self.storage.set_meta(tx, "rowkey", json.dumps(doc))
        with self._lock:
            self._kek = new
        return count

    def migrate_integrity(self) -> dict[str, list[str]]:
        """Tag the rows that have no tag yet (a vault from before schema 2, or a restored old
        backup); returns what was tagged. Run by the operator with the KEK, never automatically:
        untagged rows could also be rows an attacker inserted, so review the list (and
        ``vault token list``) it prints. A row with a wrong tag keeps it (and stays refused)."""
        from mltrust.vault._tokens import tag_untagged_tokens

        self._require()
        mac = self.row_mac
        done: dict[str, list[str]] = {"environments": [], "variables": [], "tokens": []}
        with self.storage.write() as tx:
            for row in tx.rows(
                f"SELECT {_ENV_COLS} FROM vault_environments WHERE mac IS NULL"  # noqa: S608
            ):
                env = _env(row)
                tx.run(
                    "UPDATE vault_environments SET mac = ? WHERE id = ?",
                    (env_tag(mac, env.id, env.name), env.id),
                )
                done["environments"].append(env.name)
            for row in tx.rows(
                f"SELECT {_VAR_COLS} FROM vault_variables WHERE mac IS NULL"  # noqa: S608
            ):
                var = _var(row)
                tx.run(
                    "UPDATE vault_variables SET mac = ? WHERE id = ?", (var_tag(mac, var), var.id)
                )
                done["variables"].append(f"{var.env_id}/{var.name}")
            done["tokens"] = tag_untagged_tokens(tx, mac)
        return done

    def _require(self) -> KeyEncryptionKey:
        kek = self._kek
        if kek is None:
            raise Sealed("the vault is sealed", hint="give the key-encryption key to unseal it")
        return kek

    def _dek(self, tx: Tx, env_id: str) -> bytes:
        kek = self._require()
        dek = self._deks.get(env_id)
        if dek is not None:
            return dek
        row = tx.one("SELECT kek_id, wrapped_key FROM vault_environments WHERE id = ?", (env_id,))
        if row is None:
            raise NotFound("no such environment")
        kek_id = str(row[0])
        if kek_id != kek.kek_id:
            raise Sealed("the environment's key is wrapped by another KEK (rotated?)")
        dek = kek.unwrap(bytes(row[1]), dek_aad(env_id, kek_id))
        with self._lock:
            if self._kek is kek:
                self._deks[env_id] = dek
        return dek

    # -- environments --------------------------------------------------------------------------
    def _find_env(self, tx: Tx, ref: str) -> Environment:
        # a reference shaped like an id is an id (ids are random, so a name of that shape
        # stays reachable through its own id); anything else is a name
        column = "id" if ENV_ID.fullmatch(ref) else "name"
        row = tx.one(f"SELECT {_ENV_COLS} FROM vault_environments WHERE {column} = ?", (ref,))  # noqa: S608 - fixed column names
        if row is None:
            raise NotFound("no such environment")
        return self._checked_env(row)

    def _checked_env(self, row: tuple[Any, ...]) -> Environment:
        """The environment of a row whose tag (column 5) verifies; else :class:`Tampered`."""
        env = _env(row)
        if not self.row_mac.check(row[5], "env", env.id, env.name):
            raise Tampered(f"environment {env.id} ({env.name}): row fails its integrity check")
        return env

    def _checked_var(self, row: tuple[Any, ...], env: Environment) -> Variable:
        """The variable of a row (tag in column 9) that verifies and lives in ``env``."""
        var = _var(row)
        if var.env_id != env.id or not hmac_equal(row[9], var_tag(self.row_mac, var)):
            raise Tampered(
                f"variable {var.id} ({env.name}/{var.name}): row fails its integrity check"
            )
        return var

    def get_env(self, ref: str) -> Environment:
        with self.storage.single() as tx:
            return self._find_env(tx, ref)

    def list_envs(self) -> list[Environment]:
        with self.storage.read() as tx:
            return [
                self._checked_env(r)
                for r in tx.rows(f"SELECT {_ENV_COLS} FROM vault_environments ORDER BY name")  # noqa: S608
            ]

    def create_env(self, name: str, description: str = "") -> Environment:
        kek = self._require()
        mac = self.row_mac
        check_env_name(name)
        _check_description(description)
        env_id = "env_" + secrets.token_hex(8)
        now = time.time()
        dek = generate_key()
        try:
            with self.storage.write() as tx:
                self._check_kek_current(tx, kek)
                tx.run(
                    "INSERT INTO vault_environments VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        env_id,
                        name,
                        description,
                        now,
                        now,
                        kek.kek_id,
                        kek.wrap(dek, dek_aad(env_id, kek.kek_id)),
                        env_tag(mac, env_id, name),
                    ),
                )
        except Conflict:
            raise VarConflict("an environment with this name exists") from None
        with self._lock:
            self._deks[env_id] = dek
        return Environment(env_id, name, description, now, now)

    def _check_kek_current(self, tx: Tx, kek: KeyEncryptionKey) -> None:
        row = tx.one("SELECT v FROM vault_meta WHERE k = 'kek'")
        if row is None or json.loads(str(row[0])).get("kek_id") != kek.kek_id:
            raise Sealed("the key-encryption key was rotated; restart with the new key")

    def update_env(
        self, ref: str, *, name: str | None = None, description: str | None = None
    ) -> Environment:
        self._require()
        if name is not None:
            check_env_name(name)
        if description is not None:
            _check_description(description)
        try:
            with self.storage.write() as tx:
                env = self._find_env(tx, ref)
                new_name = env.name if name is None else name
                new_desc = env.description if description is None else description
                now = time.time()
                tx.run(
                    "UPDATE vault_environments SET name = ?, description = ?, updated = ?,"
                    " mac = ? WHERE id = ?",
                    (new_name, new_desc, now, env_tag(self.row_mac, env.id, new_name), env.id),
                )
        except Conflict:
            raise VarConflict("an environment with this name exists") from None
        return Environment(env.id, new_name, new_desc, env.created, now)

    def delete_env(self, ref: str) -> Environment:
        self._require()
        with self.storage.write() as tx:
            env = self._find_env(tx, ref)
            ids = [
                r[0] for r in tx.rows("SELECT id FROM vault_variables WHERE env_id = ?", (env.id,))
            ]
            for var_id in ids:
                tx.run("DELETE FROM vault_versions WHERE var_id = ?", (var_id,))
            tx.run("DELETE FROM vault_variables WHERE env_id = ?", (env.id,))
            tx.run("DELETE FROM vault_environments WHERE id = ?", (env.id,))
        with self._lock:
            self._deks.pop(env.id, None)
        return env

    # -- variables -----------------------------------------------------------------------------
    def _find_var(self, tx: Tx, env: Environment, ref: str) -> Variable:
        column = "id" if VAR_ID.fullmatch(ref) else "name"
        row = tx.one(
            f"SELECT {_VAR_COLS} FROM vault_variables WHERE env_id = ? AND {column} = ?",  # noqa: S608
            (env.id, ref),
        )
        if row is None:
            raise NotFound("no such variable")
        return self._checked_var(row, env)

    def _check_value(self, value: object) -> bytes:
        if not isinstance(value, str):
            raise InputError("a value is a string")
        data = value.encode("utf-8", "surrogatepass")
        if len(data) > self.max_value_bytes:
            raise InputError(f"a value is at most {self.max_value_bytes} bytes")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("a value is valid UTF-8 text") from None
        return data

    def list_vars(
        self, env_ref: str, *, with_values: bool = False
    ) -> tuple[Environment, list[tuple[Variable, str | None]]]:
        self._require()
        with self.storage.read() as tx:
            env = self._find_env(tx, env_ref)
            rows = tx.rows(
                f"SELECT {_VAR_COLS} FROM vault_variables WHERE env_id = ? ORDER BY name",  # noqa: S608
                (env.id,),
            )
            out: list[tuple[Variable, str | None]] = []
            for row in rows:
                var = self._checked_var(row, env)
                value = None
                if with_values:
                    value = self._read_value(tx, env, var, None, missing_ok=True)
                out.append((var, value))
        return env, out

    def create_var(
        self,
        env_ref: str,
        name: str,
        value: str,
        *,
        secret: bool = True,
        max_versions: int | None = None,
        cas_required: bool = False,
    ) -> tuple[Environment, Variable]:
        self._require()
        check_var_name(name)
        data = self._check_value(value)
        keep = self._keep(max_versions)
        var_id = "var_" + secrets.token_hex(8)
        now = time.time()
        try:
            with self.storage.write() as tx:
                env = self._find_env(tx, env_ref)
                blob = seal_value(self._dek(tx, env.id), data, env.id, var_id, 1)
                var = Variable(var_id, env.id, name, secret, now, now, 1, keep, cas_required)
                tx.run(
                    "INSERT INTO vault_variables VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                    (
                        var_id,
                        env.id,
                        name,
                        int(secret),
                        now,
                        now,
                        keep,
                        int(cas_required),
                        var_tag(self.row_mac, var),
                    ),
                )
                tx.run(
                    "INSERT INTO vault_versions VALUES (?, 1, ?, ?, NULL, 0)", (var_id, blob, now)
                )
        except Conflict:
            raise VarConflict("a variable with this name exists") from None
        return env, var

    def _keep(self, max_versions: object) -> int:
        if max_versions is None:
            return self.max_versions
        if (
            not isinstance(max_versions, int)
            or isinstance(max_versions, bool)
            or not 1 <= max_versions <= VERSIONS_CEILING
        ):
            raise InputError(f"max_versions is 1..{VERSIONS_CEILING}")
        return max_versions

    def put_var(
        self,
        env_ref: str,
        var_ref: str,
        value: str,
        *,
        cas: int | None = None,
        secret: bool | None = None,
        max_versions: int | None = None,
        may_prune: bool = True,
    ) -> tuple[Environment, Variable]:
        """Write a new version (check-and-set when ``cas`` is given).

        ``may_prune`` False (a caller without the right to destroy history) refuses a lower
        ``max_versions`` than the variable has: lowering it removes old versions for good.
        """
        self._require()
        data = self._check_value(value)
        keep = None if max_versions is None else self._keep(max_versions)
        for _attempt in range(100):
            with self.storage.write() as tx:
                env = self._find_env(tx, env_ref)
                var = self._find_var(tx, env, var_ref)
                if cas is None and var.cas_required:
                    raise VarConflict("this variable requires check-and-set (cas)")
                if cas is not None and cas != var.current_version:
                    raise VarConflict(
                        f"check-and-set failed: current version is {var.current_version}"
                    )
                version = var.current_version + 1
                now = time.time()
                new_secret = var.secret if secret is None else secret
                new_keep = var.max_versions if keep is None else keep
                if new_keep < var.max_versions and not may_prune:
                    raise PruneForbidden("lowering max_versions destroys history: needs admin")
                new_var = Variable(
                    var.id,
                    env.id,
                    var.name,
                    new_secret,
                    var.created,
                    now,
                    version,
                    new_keep,
                    var.cas_required,
                )
                claimed = tx.run(
                    "UPDATE vault_variables SET current_version = ?, updated = ?, secret = ?,"
                    " max_versions = ?, mac = ? WHERE id = ? AND current_version = ?",
                    (
                        version,
                        now,
                        int(new_secret),
                        new_keep,
                        var_tag(self.row_mac, new_var),
                        var.id,
                        var.current_version,
                    ),
                )
                if claimed != 1:
                    if cas is not None:
                        raise VarConflict("check-and-set failed: another writer was first")
                    continue  # lost the race without cas: read again and retry
                blob = seal_value(self._dek(tx, env.id), data, env.id, var.id, version)
                tx.run(
                    "INSERT INTO vault_versions VALUES (?, ?, ?, ?, NULL, 0)",
                    (var.id, version, blob, now),
                )
                tx.run(
                    "DELETE FROM vault_versions WHERE var_id = ? AND version <= ?",
                    (var.id, version - new_keep),
                )
            return env, new_var
        raise VarConflict("too much contention on this variable; retry")

    def _read_value(
        self,
        tx: Tx,
        env: Environment,
        var: Variable,
        version: int | None,
        *,
        missing_ok: bool = False,
    ) -> str | None:
        number = var.current_version if version is None else version
        row = tx.one(
            "SELECT ciphertext, deleted, destroyed FROM vault_versions"
            " WHERE var_id = ? AND version = ?",
            (var.id, number),
        )
        if (row is None or row[1] is not None or row[2] or row[0] is None) and missing_ok:
            return None
        return self._decrypt(tx, env, var, number, row)

    def _decrypt(
        self,
        tx: Tx,
        env: Environment,
        var: Variable,
        number: int,
        row: tuple[Any, ...] | None,
    ) -> str:
        """``row`` is (ciphertext, deleted, destroyed) or None/all-NULL when there is none."""
        if row is None or (row[0] is None and row[1] is None and not row[2]):
            raise NotFound("no such version (never written or no longer kept)")
        if row[2] or row[0] is None:
            raise NotFound("this version is destroyed")
        if row[1] is not None:
            raise NotFound("this version is deleted")
        try:
            data = open_value(self._dek(tx, env.id), bytes(row[0]), env.id, var.id, number)
        except VerificationError:
            raise VerificationError(
                f"variable {var.name} version {number}: stored ciphertext does not authenticate"
            ) from None
        return data.decode("utf-8")

    def get_var(
        self, env_ref: str, var_ref: str, *, version: int | None = None
    ) -> tuple[Environment, Variable, int, str]:
        self._require()
        env_col = "id" if ENV_ID.fullmatch(env_ref) else "name"
        var_col = "id" if VAR_ID.fullmatch(var_ref) else "name"
        # one statement (one round trip on PostgreSQL, its own consistent snapshot)
        # (only the fixed column names id/name are formatted into it)
        sql = (
            "SELECT e.id, e.name, e.description, e.created, e.updated, e.mac,"  # noqa: S608
            " v.id, v.env_id, v.name, v.secret, v.created, v.updated, v.current_version,"
            " v.max_versions, v.cas_required, v.mac, s.ciphertext, s.deleted, s.destroyed"
            " FROM vault_environments e JOIN vault_variables v ON v.env_id = e.id"
            " LEFT JOIN vault_versions s ON s.var_id = v.id"
            " AND s.version = COALESCE(CAST(? AS INTEGER), v.current_version)"
            f" WHERE e.{env_col} = ? AND v.{var_col} = ?"
        )
        with self.storage.single() as tx:
            row = tx.one(sql, (version, env_ref, var_ref))
            if row is None:
                raise NotFound("no such variable")
            env = self._checked_env(row[0:6])
            var = self._checked_var(row[6:16], env)
            number = var.current_version if version is None else version
            value = self._decrypt(tx, env, var, number, row[16:19])
        return env, var, number, value

    def get_meta(self, env_ref: str, var_ref: str) -> tuple[Environment, Variable, list[Version]]:
        with self.storage.read() as tx:
            env = self._find_env(tx, env_ref)
            var = self._find_var(tx, env, var_ref)
            rows = tx.rows(
                "SELECT version, created, deleted, destroyed FROM vault_versions"
                " WHERE var_id = ? ORDER BY version",
                (var.id,),
            )
        return env, var, [_ver(r) for r in rows]

    def _versions(self, var: Variable, versions: list[int] | None) -> list[int]:
        if versions is None:
            return [var.current_version]
        if (
            not versions
            or len(versions) > VERSIONS_CEILING
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in versions)
        ):
            raise InputError("versions is a non-empty list of version numbers")
        return sorted(set(versions))

    def delete_versions(
        self, env_ref: str, var_ref: str, versions: list[int] | None = None
    ) -> tuple[Environment, Variable, list[int]]:
        """Soft delete (the latest version by default); undone by :meth:`undelete`."""
        self._require()
        with self.storage.write() as tx:
            env = self._find_env(tx, env_ref)
            var = self._find_var(tx, env, var_ref)
            numbers = self._versions(var, versions)
            now = time.time()
            for n in numbers:
                tx.run(
                    "UPDATE vault_versions SET deleted = ? WHERE var_id = ? AND version = ?"
                    " AND deleted IS NULL",
                    (now, var.id, n),
                )
        return env, var, numbers

    def undelete(
        self, env_ref: str, var_ref: str, versions: list[int]
    ) -> tuple[Environment, Variable, list[int]]:
        self._require()
        with self.storage.write() as tx:
            env = self._find_env(tx, env_ref)
            var = self._find_var(tx, env, var_ref)
            numbers = self._versions(var, versions)
            for n in numbers:
                tx.run(
                    "UPDATE vault_versions SET deleted = NULL WHERE var_id = ? AND version = ?"
                    " AND destroyed = 0",
                    (var.id, n),
                )
        return env, var, numbers

    def destroy(
        self, env_ref: str, var_ref: str, versions: list[int]
    ) -> tuple[Environment, Variable, list[int]]:
        """Remove the ciphertext of versions for good (the version numbers stay used)."""
        self._require()
        with self.storage.write() as tx:
            env = self._find_env(tx, env_ref)
            var = self._find_var(tx, env, var_ref)
            numbers = self._versions(var, versions)
            for n in numbers:
                tx.run(
                    "UPDATE vault_versions SET ciphertext = NULL, destroyed = 1"
                    " WHERE var_id = ? AND version = ?",
                    (var.id, n),
                )
        return env, var, numbers

    def delete_var(self, env_ref: str, var_ref: str) -> tuple[Environment, Variable]:
        """Delete the variable with every version (KV v2's metadata delete)."""
        self._require()
        with self.storage.write() as tx:
            env = self._find_env(tx, env_ref)
            var = self._find_var(tx, env, var_ref)
            tx.run("DELETE FROM vault_versions WHERE var_id = ?", (var.id,))
            tx.run("DELETE FROM vault_variables WHERE id = ?", (var.id,))
        return env, var

    def update_var_meta(
        self,
        env_ref: str,
        var_ref: str,
        *,
        secret: bool | None = None,
        max_versions: int | None = None,
        cas_required: bool | None = None,
        may_prune: bool = True,
    ) -> tuple[Environment, Variable]:
        """Change metadata; a lower ``max_versions`` removes the versions past it (for good),
        so ``may_prune`` False refuses that (see :meth:`put_var`)."""
        self._require()
        keep = None if max_versions is None else self._keep(max_versions)
        with self.storage.write() as tx:
            env = self._find_env(tx, env_ref)
            var = self._find_var(tx, env, var_ref)
            if keep is not None and keep < var.max_versions and not may_prune:
                raise PruneForbidden("lowering max_versions destroys history: needs admin")
            new = Variable(
                var.id,
                env.id,
                var.name,
                var.secret if secret is None else secret,
                var.created,
                time.time(),
                var.current_version,
                var.max_versions if keep is None else keep,
                var.cas_required if cas_required is None else cas_required,
            )
            tx.run(
                "UPDATE vault_variables SET secret = ?, max_versions = ?, cas_required = ?,"
                " updated = ?, mac = ? WHERE id = ?",
                (
                    int(new.secret),
                    new.max_versions,
                    int(new.cas_required),
                    new.updated,
                    var_tag(self.row_mac, new),
                    var.id,
                ),
            )
            tx.run(
                "DELETE FROM vault_versions WHERE var_id = ? AND version <= ?",
                (var.id, var.current_version - new.max_versions),
            )
        return env, new


def hmac_equal(tag: object, expected: str) -> bool:
    return isinstance(tag, str) and hmac.compare_digest(tag, expected)


def _check_description(description: object) -> None:
    if not isinstance(description, str) or len(description) > DESCRIPTION_CHARS:
        raise InputError(f"a description is a string of at most {DESCRIPTION_CHARS} characters")


def _kek_from_doc(text: str, kek_bytes: bytes) -> LocalKek:
    try:
        doc = json.loads(text)
        kek_id = str(doc["kek_id"])
        check = base64.b64decode(doc["check"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise ConfigError("the vault's KEK record is damaged") from None
    kek = LocalKek(kek_bytes, kek_id)
    try:
        plain = kek.unwrap(check, check_aad(kek_id))
    except VerificationError:
        raise ConfigError(
            "wrong key-encryption key (passphrase or key file) for this vault"
        ) from None
    if plain != CHECK_PLAINTEXT:
        raise ConfigError("the vault's KEK record is damaged")
    return kek
