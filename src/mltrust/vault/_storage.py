"""Storage: one schema on SQLite (embedded default) or PostgreSQL (several replicas).

Both backends hold the same tables and columns; only the column types are spelled per dialect
(``BLOB``/``BYTEA``, ``REAL``/``DOUBLE PRECISION``). SQL is written once with ``?`` parameters.

* ``vault_meta``: KEK check value, scrypt salt and cost, schema version.
* ``vault_environments``: id, unique name, description, the environment's data key *wrapped*
  by the KEK, and the id of that KEK.
* ``vault_variables``: id, environment, unique-per-environment name, ``secret`` flag,
  ``current_version`` (the highest version ever written; never reused), ``max_versions``,
  ``cas_required``.
* ``vault_versions``: one row per kept version: AES-GCM ciphertext (nonce || ciphertext || tag),
  soft-delete time, destroyed flag.
* ``vault_tokens``: token id, SHA-256 of the token, grant (environment name or ``*``, role),
  expiry, revocation.
* ``mac`` (environments, variables, tokens; schema 2): the row's integrity tag, HMAC under a
  row key that only the KEK unwraps (see ``_crypto``). A schema-1 database gains the column,
  NULL, when opened; ``mltrust vault migrate`` tags the existing rows.

Concurrency: a new version is claimed with ``UPDATE ... SET current_version = current_version
+ 1 WHERE id = ? AND current_version = ?``; the row count says whether another writer got there
first. That one statement is atomic on both databases, so check-and-set needs no table lock
and two writers can never both write version N.

Durability (SQLite): WAL, ``synchronous=FULL`` (each commit fsynced before it returns),
``secure_delete`` (freed pages are zeroed). A process killed mid-transaction leaves the whole
transaction or nothing. PostgreSQL brings its own WAL.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError, InputError

__all__ = ["Conflict", "Storage", "Tx", "open_storage"]

SCHEMA_VERSION = 2
#: Tables that gained the ``mac`` column (row integrity tag) in schema 2.
MAC_TABLES = ("vault_environments", "vault_variables", "vault_tokens")

_TABLES = """
CREATE TABLE IF NOT EXISTS vault_meta (
  k TEXT PRIMARY KEY,
  v TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vault_environments (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL,
  created {real} NOT NULL,
  updated {real} NOT NULL,
  kek_id TEXT NOT NULL,
  wrapped_key {blob} NOT NULL,
  mac TEXT
);
CREATE TABLE IF NOT EXISTS vault_variables (
  id TEXT PRIMARY KEY,
  env_id TEXT NOT NULL REFERENCES vault_environments(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  secret INTEGER NOT NULL,
  created {real} NOT NULL,
  updated {real} NOT NULL,
  current_version INTEGER NOT NULL,
  max_versions INTEGER NOT NULL,
  cas_required INTEGER NOT NULL,
  mac TEXT,
  UNIQUE (env_id, name)
);
CREATE TABLE IF NOT EXISTS vault_versions (
  var_id TEXT NOT NULL REFERENCES vault_variables(id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  ciphertext {blob},
  created {real} NOT NULL,
  deleted {real},
  destroyed INTEGER NOT NULL,
  PRIMARY KEY (var_id, version)
);
CREATE TABLE IF NOT EXISTS vault_tokens (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL,
  name TEXT NOT NULL,
  env TEXT NOT NULL,
  role TEXT NOT NULL,
  created {real} NOT NULL,
  expires {real},
  revoked {real},
  mac TEXT
)
"""

_TYPES = {
    "sqlite": {"real": "REAL", "blob": "BLOB"},
    "postgresql": {"real": "DOUBLE PRECISION", "blob": "BYTEA"},
}


class Conflict(InputError):
    """A uniqueness constraint refused the write (a name already taken)."""


class Tx:
    """One transaction's statements; ``?`` parameters on both dialects."""

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cur = cursor
        self._pg = dialect == "postgresql"

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._pg else sql

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(self._sql(sql), tuple(params))
        return [tuple(r) for r in self._cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._cur.execute(self._sql(sql), tuple(params))
        row = self._cur.fetchone()
        return tuple(row) if row is not None else None

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._sql(sql), tuple(params))
        return int(self._cur.rowcount)


class Storage:
    """A connection per thread; ``write()`` and ``read()`` give a transaction."""

    dialect: str

    def __init__(self, target: str) -> None:
        self.target = target
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        if target.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            try:
                import psycopg
            except ImportError:
                raise ConfigError(
                    "PostgreSQL needs psycopg",
                    hint="pip install 'mltrust[vault-postgres]'",
                ) from None
            self._psycopg = psycopg
            self._integrity: tuple[type[BaseException], ...] = (psycopg.errors.IntegrityError,)
        else:
            self.dialect = "sqlite"
            self._integrity = (sqlite3.IntegrityError,)
        self._create_schema()

    @property
    def description(self) -> str:
        """Where the data lives, without any password in a URL."""
        if self.dialect == "sqlite":
            return self.target
        return re.sub(r"//[^@/]*@", "//***@", self.target)

    # -- connections -------------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            db = sqlite3.connect(
                self.target, timeout=30, isolation_level=None, check_same_thread=False
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA secure_delete=ON")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            return db
        try:
            return self._psycopg.connect(self.target, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as exc:
            # the message names host and database, never the password
            raise ConfigError(
                f"cannot connect to PostgreSQL at {self.description}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or (self.dialect == "postgresql" and conn.closed):
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - closing is best effort
                pass
        self._local = threading.local()

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A read-write transaction (SQLite: ``BEGIN IMMEDIATE``, one writer at a time)."""
        conn = self._conn()
        try:
            if self.dialect == "sqlite":
                cur = conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield Tx(cur, "sqlite")
                    cur.execute("COMMIT")
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
            else:
                with conn.transaction(), conn.cursor() as cur:
                    yield Tx(cur, "postgresql")
        except self._integrity as exc:
            raise Conflict(type(exc).__name__) from None

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent read-only snapshot."""
        conn = self._conn()
        if self.dialect == "sqlite":
            cur = conn.cursor()
            cur.execute("BEGIN")
            try:
                yield Tx(cur, "sqlite")
            finally:
                cur.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as cur:
                yield Tx(cur, "postgresql")

    @contextmanager
    def single(self) -> Iterator[Tx]:
        """Statements each in their own implicit transaction: one round trip for a one-query
        read (consistent by itself), no BEGIN/COMMIT."""
        conn = self._conn()
        if self.dialect == "sqlite":
            yield Tx(conn.cursor(), "sqlite")
        else:
            with conn.cursor() as cur:
                yield Tx(cur, "postgresql")

    # -- schema and metadata -----------------------------------------------------------------
    def _create_schema(self) -> None:
        ddl = _TABLES.format(**_TYPES[self.dialect])
        with self.write() as tx:
            if self.dialect == "postgresql":
                # replicas starting together: CREATE TABLE IF NOT EXISTS is not race-free
                tx.run("SELECT pg_advisory_xact_lock(7312016)")
            for statement in ddl.split(";"):
                if statement.strip():
                    tx.run(statement)
            tx.run(
                "INSERT INTO vault_meta (k, v) VALUES ('schema', ?) ON CONFLICT (k) DO NOTHING",
                (str(SCHEMA_VERSION),),
            )
            row = tx.one("SELECT v FROM vault_meta WHERE k = 'schema'")
            if row is not None and row[0] == "1":
                # schema 1 → 2: the row integrity tags; existing rows get NULL, which every
                # read refuses until `mltrust vault migrate` (with the KEK) tags them
                for table in MAC_TABLES:
                    tx.run(f"ALTER TABLE {table} ADD COLUMN mac TEXT")
                self.set_meta(tx, "schema", str(SCHEMA_VERSION))
                row = (str(SCHEMA_VERSION),)
        if row is None or row[0] != str(SCHEMA_VERSION):
            raise ConfigError(f"{self.description}: vault schema {row} is not {SCHEMA_VERSION}")

    def meta(self) -> dict[str, str]:
        with self.read() as tx:
            return {str(k): str(v) for k, v in tx.rows("SELECT k, v FROM vault_meta")}

    def set_meta(self, tx: Tx, key: str, value: str) -> None:
        tx.run(
            "INSERT INTO vault_meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = ?",
            (key, value, value),
        )


def open_storage(state: Path, database: str | None) -> Storage:
    """The vault database: ``database`` (a PostgreSQL URL) or ``STATE/vault.db``."""
    if database:
        if not database.startswith(("postgresql://", "postgres://")):
            raise ConfigError("--database takes a postgresql://… URL")
        return Storage(database)
    path = state / "vault.db"
    if not path.is_file():
        raise ConfigError(f"{state}: no vault here", hint=f"mltrust vault init --state {state}")
    return Storage(str(path))
