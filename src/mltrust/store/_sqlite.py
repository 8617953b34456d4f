"""The evidence store: signed statements and verdicts in one SQLite file.

Durability choices:

* WAL journal, so readers never block the writer and the writer never blocks readers;
* ``synchronous=FULL``: each commit is fsynced before it returns, so a record acknowledged to
  the caller survives power loss, not only a process crash (records are small, the cost is one
  fsync per record);
* each record is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction: a process killed
  mid-write leaves either the whole record or nothing, and the file still opens;
* ``busy_timeout`` makes concurrent writers (threads or processes) wait for the lock instead
  of failing.

Record ids are the hex SHA-256 of the canonical JSON of what was stored, so adding the same
statement twice is a no-op that returns the same id.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from mltrust.errors import ConfigError, InputError

__all__ = ["VERDICTS", "EvidenceStore", "StoredStatement", "StoredVerdict"]

SCHEMA_VERSION = 1
VERDICTS: tuple[str, ...] = ("pass", "fail", "error")
_BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS statements (
    id TEXT PRIMARY KEY,
    subject_digest TEXT NOT NULL,
    subject_name TEXT,
    predicate_type TEXT NOT NULL,
    signer TEXT,
    created_at TEXT NOT NULL,
    statement TEXT NOT NULL,
    envelope TEXT
);
CREATE INDEX IF NOT EXISTS statements_subject ON statements(subject_digest);
CREATE INDEX IF NOT EXISTS statements_type ON statements(predicate_type);
CREATE TABLE IF NOT EXISTS verdicts (
    id TEXT PRIMARY KEY,
    subject_digest TEXT NOT NULL,
    profile TEXT NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'error')),
    created_at TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_subject ON verdicts(subject_digest);
"""


def _canonical(doc: object) -> str:
    try:
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"evidence is not JSON-serialisable: {exc}") from exc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredStatement:
    """An in-toto statement held by the store (``envelope`` is its DSSE envelope if signed)."""

    id: str
    subject_digest: str
    subject_name: str | None
    predicate_type: str
    signer: str | None
    created_at: str
    statement: Mapping[str, Any]
    envelope: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "statement",
            "id": self.id,
            "subject_digest": self.subject_digest,
            "subject_name": self.subject_name,
            "predicate_type": self.predicate_type,
            "signer": self.signer,
            "created_at": self.created_at,
            "statement": self.statement,
            "envelope": self.envelope,
        }


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """A policy verdict about a subject."""

    id: str
    subject_digest: str
    profile: str
    verdict: str
    created_at: str
    document: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "verdict",
            "id": self.id,
            "subject_digest": self.subject_digest,
            "profile": self.profile,
            "verdict": self.verdict,
            "created_at": self.created_at,
            "document": self.document,
        }


def _first_subject(statement: Mapping[str, Any]) -> tuple[str, str | None]:
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects or not isinstance(subjects[0], Mapping):
        raise InputError("statement has no subject")
    first = subjects[0]
    digest = first.get("digest")
    if not isinstance(digest, Mapping) or not isinstance(digest.get("sha256"), str):
        raise InputError("statement subject has no sha256 digest")
    name = first.get("name")
    return str(digest["sha256"]), name if isinstance(name, str) else None


class EvidenceStore:
    """SQLite evidence store; safe to share between threads, and between processes by path."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self._lock = threading.RLock()
        self.path = path

    @staticmethod
    def default_path(root: str | Path) -> Path:
        """``<root>/.mltrust/evidence.db``."""
        return Path(root) / ".mltrust" / "evidence.db"

    @classmethod
    def open(cls, path: str | Path) -> EvidenceStore:
        """Open (creating parents and schema when missing) a store in WAL mode."""
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create {p.parent}: {exc.strerror or exc}") from exc
        try:
            db = sqlite3.connect(
                p, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open evidence store {p}: {exc}") from exc
        try:
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cls._retry(lambda: db.execute("PRAGMA journal_mode=WAL").fetchone())
            db.execute("PRAGMA synchronous=FULL")

            def init() -> None:
                db.execute("BEGIN IMMEDIATE")
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
                db.execute("COMMIT")

            cls._retry(init, rollback=db)
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            db.close()
            raise InputError(f"evidence store {p} is not a usable SQLite database: {exc}") from exc
        if row is None or row[0] != str(SCHEMA_VERSION):
            db.close()
            raise ConfigError(f"evidence store {p} has an unsupported schema version")
        return cls(db, p)

    @staticmethod
    def _retry(fn: Any, *, rollback: sqlite3.Connection | None = None) -> Any:
        delay = 0.01
        deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if rollback is not None and rollback.in_transaction:
                    rollback.execute("ROLLBACK")
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        def tx() -> None:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(sql, params)
            self._db.execute("COMMIT")

        with self._lock:
            self._retry(tx, rollback=self._db)

    def add_statement(
        self,
        statement: Mapping[str, Any],
        *,
        envelope: Mapping[str, Any] | None = None,
        signer: str | None = None,
        subject_digest: str | None = None,
    ) -> str:
        """Store an in-toto statement; returns its id (sha256 of its canonical JSON).

        ``subject_digest`` overrides the first subject's sha256 as the index key (model
        signatures are indexed by mltrust's root digest, which their subject does not carry).
        """
        if not isinstance(statement, Mapping):
            raise InputError("a statement must be a JSON object")
        digest, name = _first_subject(statement)
        ptype = statement.get("predicateType")
        if not isinstance(ptype, str):
            raise InputError("statement has no predicateType")
        text = _canonical(statement)
        env_text = _canonical(envelope) if envelope is not None else None
        record_id = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self._write(
            "INSERT INTO statements(id, subject_digest, subject_name, predicate_type, signer,"
            " created_at, statement, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET"
            " envelope = COALESCE(statements.envelope, excluded.envelope),"
            " signer = COALESCE(statements.signer, excluded.signer)",
            (record_id, subject_digest or digest, name, ptype, signer, _now(), text, env_text),
        )
        return record_id

    def add_verdict(self, verdict: Mapping[str, Any], *, subject_digest: str, profile: str) -> str:
        """Store a policy verdict document; ``verdict["verdict"]`` is pass, fail or error."""
        if not isinstance(verdict, Mapping):
            raise InputError("a verdict must be a JSON object")
        value = verdict.get("verdict", verdict.get("status"))
        if value not in VERDICTS:
            raise ConfigError(f"verdict must be one of {', '.join(VERDICTS)}, not {value!r}")
        text = _canonical(verdict)
        record_id = hashlib.sha256(
            _canonical(
                {"document": verdict, "subject_digest": subject_digest, "profile": profile}
            ).encode("utf-8")
        ).hexdigest()
        self._write(
            "INSERT OR IGNORE INTO verdicts(id, subject_digest, profile, verdict, created_at,"
            " document) VALUES (?, ?, ?, ?, ?, ?)",
            (record_id, subject_digest, profile, value, _now(), text),
        )
        return record_id

    # -- reading ---------------------------------------------------------------------------

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            rows: list[tuple[Any, ...]] = self._retry(
                lambda: self._db.execute(sql, params).fetchall()
            )
        return rows

    @staticmethod
    def _statement(row: tuple[Any, ...]) -> StoredStatement:
        return StoredStatement(
            id=row[0],
            subject_digest=row[1],
            subject_name=row[2],
            predicate_type=row[3],
            signer=row[4],
            created_at=row[5],
            statement=json.loads(row[6]),
            envelope=json.loads(row[7]) if row[7] is not None else None,
        )

    @staticmethod
    def _verdict(row: tuple[Any, ...]) -> StoredVerdict:
        return StoredVerdict(
            id=row[0],
            subject_digest=row[1],
            profile=row[2],
            verdict=row[3],
            created_at=row[4],
            document=json.loads(row[5]),
        )

    _S_COLS = (
        "id, subject_digest, subject_name, predicate_type, signer, created_at, statement, envelope"
    )
    _V_COLS = "id, subject_digest, profile, verdict, created_at, document"

    def statements(
        self, *, subject_digest: str | None = None, predicate_type: str | None = None
    ) -> list[StoredStatement]:
        """Statements, oldest first, optionally filtered by subject digest and predicate type."""
        where, params = [], []
        if subject_digest is not None:
            where.append("subject_digest = ?")
            params.append(subject_digest)
        if predicate_type is not None:
            where.append("predicate_type = ?")
            params.append(predicate_type)
        sql = f"SELECT {self._S_COLS} FROM statements"  # noqa: S608 (constant columns)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, id"
        return [self._statement(r) for r in self._query(sql, tuple(params))]

    def verdicts(self, *, subject_digest: str | None = None) -> list[StoredVerdict]:
        """Verdicts, oldest first, optionally for one subject."""
        sql = f"SELECT {self._V_COLS} FROM verdicts"  # noqa: S608 (constant columns)
        params: tuple[Any, ...] = ()
        if subject_digest is not None:
            sql += " WHERE subject_digest = ?"
            params = (subject_digest,)
        sql += " ORDER BY created_at, id"
        return [self._verdict(r) for r in self._query(sql, params)]

    def get(self, record_id: str) -> StoredStatement | StoredVerdict:
        """A record by id, or by a unique prefix of at least 8 hex characters."""
        rid = record_id.strip().lower()
        if len(rid) < 8 or any(c not in "0123456789abcdef" for c in rid):
            raise InputError(f"not a record id: {record_id!r} (give at least 8 hex characters)")
        pattern = rid + "%"
        found: list[StoredStatement | StoredVerdict] = [
            self._statement(r)
            for r in self._query(
                f"SELECT {self._S_COLS} FROM statements WHERE id LIKE ? LIMIT 2",  # noqa: S608
                (pattern,),
            )
        ]
        found += [
            self._verdict(r)
            for r in self._query(
                f"SELECT {self._V_COLS} FROM verdicts WHERE id LIKE ? LIMIT 2",  # noqa: S608
                (pattern,),
            )
        ]
        if not found:
            raise InputError(f"no evidence record {record_id}")
        if len(found) > 1:
            raise InputError(f"record id prefix {record_id} is ambiguous; give more characters")
        return found[0]

    def records(self) -> Iterator[StoredStatement | StoredVerdict]:
        """Every record, statements then verdicts."""
        yield from self.statements()
        yield from self.verdicts()

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when healthy)."""
        rows = self._query("PRAGMA integrity_check", ())
        return "; ".join(str(r[0]) for r in rows)

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> EvidenceStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
