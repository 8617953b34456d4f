"""PostgreSQL behind the small part of the sqlite3 interface the audit log uses.

The audit log (:mod:`mltrust.store._audit`) keeps ONE chain implementation; this module only
lets it run on PostgreSQL so that replicas on several hosts append to one chain:

* ``BEGIN IMMEDIATE`` (SQLite: take the write lock before reading the head) becomes ``BEGIN``
  plus ``pg_advisory_xact_lock``: appends from every replica are serialised, each reads the
  head and chains onto it inside the lock, and the lock is released by ``COMMIT``/``ROLLBACK``
  (also when the connection dies, so a ``kill -9``'d replica never holds it);
* ``?`` placeholders become ``%s`` (the SQL is this package's own; values are always bound);
* ``PRAGMA`` statements are SQLite maintenance and do nothing here;
* a broken connection is replaced at the next ``BEGIN IMMEDIATE`` (an outage answers 503 while
  it lasts, then appends resume after the usual head verification).

Durability: ``COMMIT`` returns once PostgreSQL has flushed its WAL (``synchronous_commit`` on;
audit sync ``normal`` turns it off for this session: a PostgreSQL crash may then lose the last
commits, a replica crash never loses an acknowledged one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mltrust.errors import ConfigError

__all__ = ["PgConnection", "is_postgres_url", "redact_url"]

#: pg_advisory_xact_lock key of the audit table's writers (a fixed 63-bit number)
_LOCK = int.from_bytes(hashlib.sha256(b"mltrust audit append").digest()[:8], "big") >> 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS audit (seq BIGINT PRIMARY KEY, entry TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL, mac TEXT)",
    # the log's random identity (bound into v2 anchors; see mltrust.store._audit)
    "CREATE TABLE IF NOT EXISTS audit_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
)


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redact_url(url: str) -> str:
    """The URL without its password (messages, anchor names)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class _Rows:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


class PgConnection:
    """A connection that the audit log can use where it uses ``sqlite3.Connection``."""

    def __init__(self, url: str, *, sync: str = "full", read_only: bool = False) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                "a postgresql:// audit log needs psycopg", hint="pip install 'mltrust[postgres]'"
            ) from None
        self._url = url
        self._sync = sync
        self._read_only = read_only
        self._conn: Any = None
        self._open()

    def _open(self) -> None:
        import psycopg

        try:
            conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ConfigError(
                f"audit database {redact_url(self._url)} unreachable: {type(exc).__name__}"
            ) from None
        if self._sync == "normal":
            conn.execute("SET synchronous_commit = off")
        if self._read_only:
            conn.execute("SET default_transaction_read_only = on")
        else:
            # concurrent first starts: one creates the table, the others wait for it
            conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK,))
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK,))
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        if sql.startswith("PRAGMA"):
            return _Rows([])
        if sql == "BEGIN IMMEDIATE":
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._open()
            self._conn.execute("BEGIN")
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            return _Rows([])
        if sql == "ROLLBACK" and (self._conn.closed or self._conn.broken):
            return _Rows([])  # the server already ended the transaction with the connection
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(params))
        return _Rows(cur.fetchall() if cur.description is not None else [])

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows of a query read in chunks (a server-side cursor): bounded memory for verify."""
        with self._conn.transaction(), self._conn.cursor(name="mltrust_audit_read") as cur:
            cur.itersize = 2000
            cur.execute(sql)
            yield from cur

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
