"""A tamper-evident audit log anchored outside the folder that holds it.

What is stored, per entry (SQLite table ``audit``, WAL, fsync on every commit):

* ``entry``: canonical JSON (sorted keys, no spaces) naming its own ``seq`` and the previous
  entry's hash ``prev``; ``entry_hash = sha256(prev_hash || entry)`` (entry 1 chains from 64
  zeros), so editing, deleting, inserting or reordering rows breaks the chain;
* ``mac``: ``HMAC-SHA256(mac key, "<seq>:<entry_hash>")``. The MAC key is derived from the
  **audit key**, an Ed25519 private key that must live *outside* the state folder
  (``--audit-key``, ``$MLTRUST_AUDIT_KEY``, default ``$XDG_CONFIG_HOME/mltrust/audit.key``;
  a key inside the repository, its ``.mltrust`` or the log's folder is refused). Someone who can
  write the database but not read that key cannot forge, edit or append an entry that
  verifies, even by re-chaining every hash after it.

And the **anchor**: after each group commit (before any client of that commit is answered) the
writer signs ``{seq, hash, ts, key_id}`` of the new head with the audit key and writes it to
an anchor file, also outside the state folder (default
``<key folder>/audit-anchors/<sha256 of the database path>.json``), never moving it backwards.
The anchor makes truncation visible: cutting the tail, emptying the table or replacing the
database leaves a signed head that the log no longer reaches.

The writer trusts nothing it reads back. Before every append, inside the ``BEGIN IMMEDIATE``
transaction, it reads the anchor (signature checked whenever the file changed), requires the
row at the anchored seq to carry the anchored hash and every row after it to link and carry a
valid MAC, and only then chains new entries onto the tail. Otherwise it refuses to append
(``AuditTampered``): the server answers 503 and never blesses a rewritten chain. At start the
same check runs, and a log with entries but no anchor refuses to start.

``checkpoint_export`` copies the verified anchor to a file the operator keeps elsewhere (a
ticket, WORM storage, another host); ``verify_chain(..., checkpoint=...)`` then proves the log
still contains that exact head, which also catches a rollback of database *and* anchor to an
older pair.

What an attacker who can write the state folder (database, WAL, ``.mltrust``) can and cannot
do -- stated in full in ``docs/threat-model-serve.md``:

* cannot: edit, insert, reorder or append entries that verify; cut the tail or empty the table
  unnoticed; make a running server sign a rewritten chain; delete the anchor (it is not there);
* can: destroy the log (deletion, corruption) -- detected, not prevented: the server refuses to
  start or answer and ``audit verify`` fails; read every entry (the log is not encrypted).

With write access to the anchor folder as well (but not the key) they can additionally roll the
log and the anchor back together to an older consistent pair; only an exported checkpoint newer
than that pair catches it. With the audit key, everything can be rewritten: protect it like a
signing key.

Durability: one writer thread per process batches waiting entries (group commit, at most
``batch_max``), commits with ``synchronous=FULL`` and writes the anchor before resolving the
callers' futures; the server answers only after that, so an acknowledged request is never lost
by ``kill -9`` and is always covered by the anchor. ``sync="normal"`` skips the fsync (a killed
process loses nothing acknowledged; a power failure may lose the last commits, and the anchor
may then name a head the database lost: ``verify`` reports that as truncation).
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import hashlib
import hmac
import json
import os
import queue
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError, InputError, VerificationError
from mltrust.store._postgres import PgConnection, is_postgres_url, redact_url

__all__ = [
    "GENESIS",
    "AuditKey",
    "AuditLog",
    "AuditTampered",
    "ChainReport",
    "canonical",
    "checkpoint_export",
    "default_anchor_path",
    "default_key_path",
    "iter_entries",
    "load_audit_key",
    "verify_chain",
]

GENESIS = "0" * 64
KEY_ENV = "MLTRUST_AUDIT_KEY"
_STOP = object()
_ANCHOR_CONTEXT = b"mltrust-audit-anchor-v1\n"
_MAC_CONTEXT = b"mltrust-audit-entry-mac-v1"
_ANCHOR_FIELDS = {"v", "seq", "hash", "ts", "key_id", "sig"}


def _is_log_id(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)
    )


def anchor_log_id(doc: Any) -> str | None:
    """The log identity a (checked) anchor is bound to; None for a v1 anchor (before log ids)."""
    log = doc.get("log") if isinstance(doc, dict) else None
    return log if _is_log_id(log) else None


def refuse_linked(path: Path) -> None:
    """Refuse an audit database (or its WAL/SHM/journal) that is a symbolic link or not a file.

    The anchor is found by the database's path; a link would let whoever writes the state folder
    point that path at another (empty) file. Checked with ``lstat`` (links are not followed)
    before every open. What is not covered: a swap between this check and SQLite's ``open``
    (the log-id check below catches a swapped-in log that is not this one).
    """
    for suffix in ("", "-wal", "-shm", "-journal"):
        part = path.with_name(path.name + suffix)
        try:
            st = os.lstat(part)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISREG(st.st_mode):
            raise AuditTampered(
                f"{part} is a symbolic link or not a regular file: refusing an audit log "
                "that may have been moved or swapped"
            )


class AuditTampered(VerificationError):
    """The log no longer matches its signed anchor (or entries fail their MAC): refuse to go on."""


def canonical(entry: dict[str, Any]) -> str:
    return json.dumps(
        entry,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=str,
    )


def chain_hash(prev_hash: str, text: str) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + text.encode("utf-8")).hexdigest()


SYNC_MODES = ("full", "normal")


# -- the audit key --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AuditKey:
    """An Ed25519 key pair (signs anchors) and the entry-MAC key derived from its private half.

    Loaded from a public key only, it verifies anchors and checkpoints but not entry MACs.
    """

    public: Any  # Ed25519PublicKey
    private: Any = None  # Ed25519PrivateKey | None
    mac_key: bytes | None = None

    @property
    def key_id(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return hashlib.sha256(raw).hexdigest()[:16]

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return str(
            self.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        )

    def mac(self, seq: int, digest: str) -> str:
        if self.mac_key is None:
            raise ConfigError("entry MACs need the audit private key")
        return hmac.new(self.mac_key, f"{seq}:{digest}".encode(), hashlib.sha256).hexdigest()

    def sign_anchor(self, seq: int, digest: str, log: str | None = None) -> dict[str, Any]:
        """A signed head; ``log`` (the log's random identity) makes it a v2 anchor bound to it."""
        if self.private is None:
            raise ConfigError("signing an audit anchor needs the audit private key")
        doc: dict[str, Any] = {
            "v": 1,
            "seq": seq,
            "hash": digest,
            "ts": round(time.time(), 3),
            "key_id": self.key_id,
        }
        if log is not None:
            doc["v"] = 2
            doc["log"] = log
        sig = self.private.sign(_ANCHOR_CONTEXT + canonical(doc).encode())
        doc["sig"] = base64.b64encode(sig).decode("ascii")
        return doc

    def check_anchor(self, doc: Any, what: str = "anchor") -> tuple[int, str]:
        """(seq, hash) of a signed anchor or checkpoint; raises AuditTampered otherwise."""
        from cryptography.exceptions import InvalidSignature

        if not isinstance(doc, dict) or set(doc) - {"log"} != _ANCHOR_FIELDS:
            raise AuditTampered(f"{what} is malformed")
        seq, digest, sig = doc.get("seq"), doc.get("hash"), doc.get("sig")
        log = doc.get("log")
        if (
            doc.get("v") != (2 if "log" in doc else 1)
            or ("log" in doc and not _is_log_id(log))
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or seq < 0
            or not isinstance(digest, str)
            or len(digest) != 64
            or not isinstance(sig, str)
        ):
            raise AuditTampered(f"{what} is malformed")
        if doc.get("key_id") != self.key_id:
            raise AuditTampered(f"{what} was signed by another key ({doc.get('key_id')!r})")
        body = {k: v for k, v in doc.items() if k != "sig"}
        try:
            self.public.verify(
                base64.b64decode(sig, validate=True), _ANCHOR_CONTEXT + canonical(body).encode()
            )
        except (InvalidSignature, ValueError):
            raise AuditTampered(f"{what} signature does not verify (forged)") from None
        return seq, digest


def default_key_path() -> Path:
    """``$MLTRUST_AUDIT_KEY``, else ``$XDG_CONFIG_HOME/mltrust/audit.key`` (~/.config)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mltrust" / "audit.key"


def default_anchor_path(key_path: Path, db: Path | str) -> Path:
    """The anchor of ``db``: next to the key, named after the database's path (or its
    PostgreSQL URL without the password).

    The folder is resolved but the file name is not: a symbolic link planted at the database's
    name (by someone who writes the state folder) cannot move the log onto another anchor, and
    such a link is refused anyway (:func:`refuse_linked`).
    """
    if isinstance(db, str):
        ident = redact_url(db)
    else:
        path = Path(os.path.abspath(db))
        ident = str(path.parent.resolve() / path.name)
    name = hashlib.sha256(ident.encode()).hexdigest()[:24]
    return key_path.resolve().parent / "audit-anchors" / f"{name}.json"


def _inside(path: Path, folders: tuple[Path, ...]) -> Path | None:
    real = path.resolve()
    for folder in folders:
        if real.is_relative_to(folder.resolve()):
            return folder
    return None


def load_audit_key(
    path: Path, *, create: bool = False, forbidden: tuple[Path, ...] = ()
) -> AuditKey:
    """Load (or create, mode 0600) the Ed25519 audit key; a PEM public key loads verify-only.

    ``forbidden`` folders (the state folder, the log's folder) may not hold the key: a key
    beside the log protects nothing against whoever can write the log.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    bad = _inside(path, forbidden)
    if bad is not None:
        raise ConfigError(
            f"audit key {path} lies inside {bad}: keep it outside the folder that holds the log "
            "(--audit-key or $MLTRUST_AUDIT_KEY)"
        )
    if not path.exists() and create:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # another process may have won the race: use its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"audit key {path}: {exc.strerror or exc}") from None
    try:
        if b"PRIVATE KEY" in data:
            mode = path.stat().st_mode
            if os.name == "posix" and mode & 0o077:
                raise ConfigError(
                    f"audit key {path} is readable by other users (mode {mode & 0o777:o}): "
                    f"chmod 600 {path}"
                )
            private = serialization.load_pem_private_key(data, password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError("not an Ed25519 key")
            raw = private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            mac_key = hmac.new(raw, _MAC_CONTEXT, hashlib.sha256).digest()
            return AuditKey(public=private.public_key(), private=private, mac_key=mac_key)
        public = serialization.load_pem_public_key(data)
        if not isinstance(public, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return AuditKey(public=public)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"audit key {path}: not an unencrypted Ed25519 PEM key ({exc})") from None


def _read_json(path: Path) -> tuple[bytes | None, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        return data, json.loads(data)
    except ValueError:
        return data, None


# -- the log --------------------------------------------------------------------------------------
def _log_id(db: Any) -> str | None:
    try:
        row = db.execute("SELECT v FROM audit_meta WHERE k = 'log_id'").fetchone()
    except sqlite3.OperationalError:  # no such table: a log written before log ids
        return None
    return str(row[0]) if row is not None else None


def _connect(path: Path | str, sync: str = "full") -> Any:
    """SQLite (a path) or PostgreSQL (``postgresql://`` URL: replicas on several hosts share one
    chain; see :mod:`mltrust.store._postgres`). The chain logic below is the same for both."""
    if sync not in SYNC_MODES:
        raise ValueError(f"audit sync mode must be one of {SYNC_MODES}")
    if is_postgres_url(path):
        return PgConnection(str(path), sync=sync)
    path = Path(path)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync.upper()}")
    db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the critical path
    db.execute("PRAGMA busy_timeout=30000")
    db.execute(
        "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL,"
        " prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL, mac TEXT)"
    )
    db.execute("CREATE TABLE IF NOT EXISTS audit_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
    columns = {row[1] for row in db.execute("PRAGMA table_info(audit)")}
    if "mac" not in columns:  # a log written before entry MACs: old entries stay unMACed
        db.execute("ALTER TABLE audit ADD COLUMN mac TEXT")
    return db


class AuditLog:
    """Append-only audit log. ``append`` (async) returns once the entry is durable and anchored.

    Raises :class:`AuditTampered` at construction when the log does not match its anchor.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        key: AuditKey,
        anchor: Path,
        batch_max: int = 64,
        sync: str = "full",
    ) -> None:
        if key.private is None or key.mac_key is None:
            raise ConfigError("the audit log needs the audit private key")
        if is_postgres_url(path):
            self.path: Path | str = redact_url(str(path))
        else:
            self.path = Path(path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            refuse_linked(self.path)
        self.anchor_path = Path(anchor)
        self.anchor_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._key = key
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._db = _connect(path, sync)
        self._log: str | None = None
        self._anchor_seen: tuple[bytes, int, str] | None = None
        self._head: tuple[int, str] | None = None
        self._commits = 0
        self.failed: BaseException | None = None
        #: health counters for ``/metrics`` (written by the writer thread only)
        self.appended = 0
        self.append_failures = 0
        #: commits refused because the chain no longer extends its anchor (tampering)
        self.verify_failures = 0
        #: when the chain was last proven to extend its anchor (start, then every commit)
        self.verified_at = 0.0
        self._closed = False
        try:
            self._startup_check()
        except BaseException:
            self._db.close()
            raise
        self.verified_at = time.time()
        self._thread = threading.Thread(target=self._run, name="mltrust-audit", daemon=True)
        self._thread.start()

    # -- public --------------------------------------------------------------------------------
    async def append(self, entry: dict[str, Any]) -> int:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self._submit(entry, _LoopWaiter(loop, fut))
        return await fut

    def append_sync(self, entry: dict[str, Any], timeout: float = 30.0) -> int:
        event = threading.Event()
        box: list[Any] = [None, None]

        def done(seq: int | None, exc: BaseException | None) -> None:
            box[0], box[1] = seq, exc
            event.set()

        self._submit(entry, done)
        if not event.wait(timeout):
            raise TimeoutError("audit log did not commit in time")
        if box[1] is not None:
            raise box[1]
        return int(box[0])

    def close(self) -> None:
        """Flush everything queued, then stop the writer (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout=30)
        self._db.close()

    @property
    def chain_ok(self) -> bool:
        """False once a commit found the chain no longer extends its signed anchor."""
        return not isinstance(self.failed, AuditTampered)

    @property
    def head_seq(self) -> int:
        """Sequence number of the newest entry this process committed (0: none yet)."""
        return self._head[0] if self._head is not None else 0

    # -- anchor --------------------------------------------------------------------------------
    def _startup_check(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # one process at a time (``--workers N``)
        ok = False
        try:
            self._log = _log_id(db)
            data, doc = _read_json(self.anchor_path)
            empty = db.execute("SELECT 1 FROM audit LIMIT 1").fetchone() is None
            if data is None:
                if not empty:
                    raise AuditTampered(
                        f"{self.path} holds entries but its anchor {self.anchor_path} is missing: "
                        "refusing to extend a log that cannot be proven complete"
                    )
                # PostgreSQL: one chain shared by replicas on several hosts, each anchoring it
                # next to its own key; a host joining a log that is still empty anchors that
                # emptiness under the log's existing id. SQLite (one file per host): the anchor
                # of an identified log was deleted.
                joining = isinstance(db, PgConnection)
                if self._log is not None and not joining:
                    raise AuditTampered(
                        f"{self.path} was anchored before (log id {self._log}) but its anchor "
                        f"{self.anchor_path} is missing"
                    )
            fresh = data is None or (
                # a start that died between anchoring a new log and committing its id: the
                # anchor names nothing (seq 0), so nothing can be lost by starting afresh
                empty and self._log is None and self._key.check_anchor(doc)[0] == 0
            )
            if fresh:
                if self._log is None:
                    self._new_log_id(db)
                self._anchor_seen = None
                self._write_anchor(0, GENESIS, force=True)  # a fresh log: anchor its emptiness
            seq, digest = self._verified_tail(db)
            if self._log is None:  # a log from before log ids: bind it from now on
                self._new_log_id(db)
            ok = True
        finally:
            # the new log id commits only with a verified log; other workers wait for it
            db.execute("COMMIT" if ok else "ROLLBACK")
        self._write_anchor(seq, digest)

    def _new_log_id(self, db: Any) -> None:
        """Give the log its random identity (inside the caller's transaction)."""
        self._log = secrets.token_hex(16)
        db.execute(
            "INSERT INTO audit_meta VALUES ('log_id', ?)"
            " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            (self._log,),
        )

    def _verified_tail(self, db: Any) -> tuple[int, str]:
        """The (seq, hash) to chain from, after proving the log still extends its anchor.

        Runs inside the writer's transaction: rows at and after the anchored head must carry the
        anchored hash, link, hash correctly and carry valid MACs.
        """
        data, doc = _read_json(self.anchor_path)
        if data is None:
            raise AuditTampered(f"audit anchor {self.anchor_path} is missing")
        seen = self._anchor_seen
        if seen is not None and seen[0] == data:
            a_seq, a_hash = seen[1], seen[2]
        else:
            a_seq, a_hash = self._key.check_anchor(doc)
            self._anchor_seen = (data, a_seq, a_hash)
        anchored_log = anchor_log_id(doc)
        log = _log_id(db)
        if anchored_log is not None and log != anchored_log:
            raise AuditTampered(
                f"audit log {self.path} is not the log its anchor names "
                f"(log id {log!r}, anchored {anchored_log!r}): replaced"
            )
        if log != self._log:
            raise AuditTampered(f"audit log {self.path} changed its identity while open")
        rows = db.execute(
            "SELECT seq, entry, prev_hash, entry_hash, mac FROM audit WHERE seq >= ? ORDER BY seq",
            (max(a_seq, 1),),
        ).fetchall()
        seq, prev = a_seq, a_hash
        if a_seq == 0:
            if db.execute("SELECT 1 FROM audit WHERE seq < 1 LIMIT 1").fetchone():
                raise AuditTampered("audit log holds rows before seq 1")
        else:
            if (
                not rows
                or rows[0][0] != a_seq
                or rows[0][3] != a_hash
                # the anchored row's text too (a live edit of the head): its hash is signed,
                # so recomputing it proves the text and its prev link
                or chain_hash(rows[0][2], rows[0][1]) != a_hash
            ):
                raise AuditTampered(
                    f"audit log {self.path} no longer holds the anchored head seq {a_seq}: "
                    "truncated or rewritten (if the log was removed on purpose, archive it and "
                    f"its anchor {self.anchor_path} before starting a new one)"
                )
            rows = rows[1:]
        for r_seq, text, r_prev, r_hash, r_mac in rows:
            if (
                r_seq != seq + 1
                or r_prev != prev
                or chain_hash(r_prev, text) != r_hash
                or not isinstance(r_mac, str)
                or not hmac.compare_digest(r_mac, self._key.mac(r_seq, r_hash))
            ):
                raise AuditTampered(f"audit entry {r_seq} after the anchor does not verify")
            seq, prev = r_seq, r_hash
        return seq, prev

    def _write_anchor(self, seq: int, digest: str, *, force: bool = False) -> None:
        lock_path = self.anchor_path.with_name(self.anchor_path.name + ".lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data, doc = _read_json(self.anchor_path)
            if data is not None:
                try:
                    current, _ = self._key.check_anchor(doc)
                except AuditTampered:
                    current = -1  # unreadable: the next append's check decides
                if not force and (
                    current > seq
                    or (current == seq and seq > 0 and anchor_log_id(doc) == self._log)
                ):
                    return  # never move the anchor backwards
            signed = self._key.sign_anchor(seq, digest, self._log)
            text = json.dumps(signed, sort_keys=True).encode()
            tmp = self.anchor_path.with_name(f".{self.anchor_path.name}.{os.getpid()}.tmp")
            tmp.write_bytes(text)
            os.replace(tmp, self.anchor_path)
            self._anchor_seen = (text, seq, digest)

    # -- writer thread -------------------------------------------------------------------------
    def _submit(
        self, entry: dict[str, Any], done: Callable[[int | None, BaseException | None], None]
    ) -> None:
        if self._closed:
            done(None, RuntimeError("audit log is closed"))
            return
        self._queue.put((entry, done))

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            batch = []
            if item is _STOP:
                stop = True
            else:
                batch.append(item)
            while len(batch) < self._batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    continue
                batch.append(item)
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[tuple[dict[str, Any], Callable[..., None]]]) -> None:
        try:
            seqs = self._write(batch)
            if self._head is not None:
                # the anchor covers the commit before anyone is answered
                self._write_anchor(*self._head)
            self.failed = None
            self.appended += len(batch)
            self.verified_at = time.time()
        except BaseException as exc:  # noqa: BLE001 - reported to every waiting caller
            self.failed = exc
            self.append_failures += 1
            if isinstance(exc, AuditTampered):
                self.verify_failures += 1
            for _, done in batch:
                done(None, exc)
            return
        # one wake-up per event loop for the whole batch, not one per entry
        by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[Any]]] = {}
        for (_, done), seq in zip(batch, seqs, strict=True):
            if isinstance(done, _LoopWaiter):
                by_loop.setdefault(id(done.loop), (done.loop, []))[1].append((done.future, seq))
            else:
                done(seq, None)
        for loop, items in by_loop.values():
            try:
                loop.call_soon_threadsafe(_settle_many, items)
            except RuntimeError:  # the loop was closed: nobody is waiting any more
                pass
        # WAL checkpoints happen here, after the answers, instead of inside a commit
        self._commits += 1
        if self._commits % 256 == 0:
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError:  # (PostgreSQL: PRAGMA is a no-op)
                pass  # busy: the next round (or another worker) checkpoints

    def _write(self, batch: list[tuple[dict[str, Any], Callable[..., None]]]) -> list[int]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            seq, prev = self._verified_tail(db)
            rows = []
            seqs = []
            for entry, _ in batch:
                seq += 1
                text = canonical({**entry, "seq": seq, "prev": prev})
                digest = chain_hash(prev, text)
                rows.append((seq, text, prev, digest, self._key.mac(seq, digest)))
                seqs.append(seq)
                prev = digest
            db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._head = (seq, prev)
        return seqs


class _LoopWaiter:
    """A caller waiting on an event loop; settled in bulk by the writer thread."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[int]) -> None:
        self.loop = loop
        self.future = future

    def __call__(self, seq: int | None, exc: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(_settle, self.future, seq, exc)
        except RuntimeError:
            pass


def _settle_many(items: list[tuple[asyncio.Future[int], int]]) -> None:
    for fut, seq in items:
        if not fut.done():
            fut.set_result(seq)


def _settle(fut: asyncio.Future[int], seq: int | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(int(seq or 0))


# -- verification ---------------------------------------------------------------------------------
@dataclass(slots=True)
class ChainReport:
    entries: int = 0
    last_seq: int = 0
    anchor_seq: int | None = None
    checkpoint_seq: int | None = None
    macs_checked: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "last_seq": self.last_seq,
            "anchor_seq": self.anchor_seq,
            "checkpoint_seq": self.checkpoint_seq,
            "macs_checked": self.macs_checked,
            "problems": self.problems,
        }


def _open_readonly(path: Path) -> sqlite3.Connection:
    refuse_linked(path)
    if not path.is_file():
        raise InputError(f"{path}: no audit database")
    # as_uri() percent-encodes, so '?' or '#' in a folder name cannot alter the URI
    db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def _read_log_id(path: Path | str) -> str | None:
    if is_postgres_url(path):
        pg = PgConnection(str(path), read_only=True)
        try:
            return _log_id(pg)
        except Exception:  # noqa: BLE001 - psycopg: no audit_meta table (a log before log ids)
            return None
        finally:
            pg.close()
    path = Path(path)
    db = _open_readonly(path)
    try:
        return _log_id(db)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not an audit database: {exc}") from None
    finally:
        db.close()


def iter_entries(path: Path | str) -> Iterator[tuple[int, str, str, str]]:
    for seq, text, prev, digest, _mac in _iter_rows(path):
        yield seq, text, prev, digest


def _iter_rows(path: Path | str) -> Iterator[tuple[int, str, str, str, str | None]]:
    if is_postgres_url(path):
        pg = PgConnection(str(path), read_only=True)
        try:
            yield from pg.stream(
                "SELECT seq, entry, prev_hash, entry_hash, mac FROM audit ORDER BY seq"
            )
        except Exception as exc:  # noqa: BLE001 - psycopg errors: not an audit database
            raise InputError(
                f"{redact_url(str(path))}: not an audit database: {type(exc).__name__}"
            ) from None
        finally:
            pg.close()
        return
    path = Path(path)
    db = _open_readonly(path)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(audit)")}
        query = (
            "SELECT seq, entry, prev_hash, entry_hash, mac FROM audit ORDER BY seq"
            if "mac" in columns
            else "SELECT seq, entry, prev_hash, entry_hash, NULL FROM audit ORDER BY seq"
        )
        yield from db.execute(query)
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not an audit database: {exc}") from None
    finally:
        db.close()


def verify_chain(
    path: Path | str,
    *,
    key: AuditKey,
    anchor: Path | None,
    checkpoint: Any = None,
    max_problems: int = 100,
) -> ChainReport:
    """Check every link and entry MAC, the signed anchor and, if given, an external checkpoint.

    With a public key only, entry MACs are not checked (``macs_checked`` is False); the anchor
    and the checkpoint still are. ``anchor=None`` skips the anchor (then only a checkpoint
    proves completeness).
    """
    report = ChainReport(macs_checked=key.mac_key is not None)
    prev = GENESIS
    expected_seq = 1
    wanted: dict[int, str] = {}

    def problem(text: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(text)

    if not is_postgres_url(path):
        try:
            refuse_linked(Path(path))
        except AuditTampered as exc:
            problem(str(exc))
            return report
    anchored: tuple[int, str] | None = None
    anchor_missing = False
    log = _read_log_id(path)
    if anchor is not None:
        data, doc = _read_json(anchor)
        anchor_missing = data is None
        if data is not None:
            try:
                anchored = key.check_anchor(doc)
                report.anchor_seq = anchored[0]
                wanted[anchored[0]] = anchored[1]
                anchored_log = anchor_log_id(doc)
                if anchored_log is not None and anchored_log != log:
                    problem(
                        f"the anchor names log {anchored_log} but the database is log {log}: "
                        "the database was replaced"
                    )
            except AuditTampered as exc:
                problem(str(exc))
    pinned: tuple[int, str] | None = None
    if checkpoint is not None:
        try:
            pinned = key.check_anchor(checkpoint, "checkpoint")
            report.checkpoint_seq = pinned[0]
        except AuditTampered as exc:
            problem(str(exc))

    hashes: dict[int, str] = {}
    for seq, text, prev_hash, entry_hash, mac in _iter_rows(path):
        report.entries += 1
        if seq != expected_seq:
            problem(f"seq {seq}: expected seq {expected_seq} (entries deleted or inserted)")
        if prev_hash != prev:
            problem(f"seq {seq}: prev_hash does not match the previous entry's hash")
        try:
            doc = json.loads(text)
        except ValueError:
            problem(f"seq {seq}: entry is not JSON")
            doc = {}
        if not isinstance(doc, dict) or doc.get("seq") != seq or doc.get("prev") != prev_hash:
            problem(f"seq {seq}: entry does not name its own position (reordered or moved)")
        if chain_hash(prev_hash, text) != entry_hash:
            problem(f"seq {seq}: entry_hash does not match the entry (edited)")
        if key.mac_key is not None and (
            not isinstance(mac, str) or not hmac.compare_digest(mac, key.mac(seq, entry_hash))
        ):
            problem(f"seq {seq}: entry MAC does not verify (forged, re-chained or unkeyed)")
        if (anchored and seq == anchored[0]) or (pinned and seq == pinned[0]):
            hashes[seq] = entry_hash
        prev = entry_hash
        expected_seq = seq + 1
        report.last_seq = seq
    if anchor_missing and (report.entries or log is not None):
        problem(f"anchor {anchor} is missing: the log cannot be proven complete")
    for what, pin in (("anchor", anchored), ("checkpoint", pinned)):
        if pin is None or pin[0] == 0:
            continue
        seq, digest = pin
        if report.last_seq < seq:
            problem(
                f"log ends at seq {report.last_seq} but the {what} records seq {seq}: "
                "entries were removed from the tail"
            )
        elif hashes.get(seq) != digest:
            problem(f"seq {seq}: hash differs from the {what} (log rewritten)")
    if anchored is not None and pinned is not None and anchored[0] < pinned[0]:
        problem(
            f"anchor seq {anchored[0]} is older than the checkpoint seq {pinned[0]}: "
            "log and anchor were rolled back"
        )
    return report


def checkpoint_export(path: Path | str, *, key: AuditKey, anchor: Path) -> dict[str, Any]:
    """The signed anchor of a log that verifies, to be kept outside this host."""
    report = verify_chain(path, key=key, anchor=anchor)
    if not report.ok:
        raise AuditTampered(f"{path}: refusing to checkpoint a log that does not verify")
    _, doc = _read_json(anchor)
    if doc is None:
        raise AuditTampered(f"{path}: no anchor to export")
    key.check_anchor(doc)
    return dict(doc)
