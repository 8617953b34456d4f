"""A tamper-evident audit log: a SHA-256 hash chain in SQLite (WAL, fsync on every commit).

Each entry is canonical JSON (sorted keys, no spaces) holding its own ``seq`` and the previous
entry's hash ``prev``; ``entry_hash = sha256(prev_hash || canonical entry)``. Entry 1 chains from
64 zeros. Editing, deleting, inserting or reordering rows breaks the chain, which
:func:`verify_chain` reports.

Durability: one writer thread per process batches whatever entries are waiting (group commit,
at most ``batch_max``), appends them in one ``BEGIN IMMEDIATE`` transaction that first reads the
current head from the database (so several worker processes extend *one* chain), commits with
``synchronous=FULL`` (the WAL is fsynced) and only then resolves the callers' futures. The server
answers a client only after that, so an acknowledged request is never lost by ``kill -9``.
``sync="normal"`` (``--audit-sync normal``) skips the fsync: the commit still reaches the
operating system before the answer, so a killed *process* loses nothing acknowledged, but a
power failure or kernel crash may lose the last commits (the chain stays verifiable).

Truncation of the tail: after each commit the writer records the head ``(seq, hash)`` with an
HMAC (server secret) in ``<db>.head``, never moving it backwards. ``verify`` reports a database
whose chain ends before the recorded head. Limits, stated honestly: an attacker who can write
the database *and* read the server secret can rewrite everything; one who restores an older copy
of both the database and the head file together is not detected; entries committed in the
moment between the commit and the head update are covered only by the chain, not the head.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import hmac
import json
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mltrust.errors import InputError

__all__ = ["GENESIS", "AuditLog", "ChainReport", "canonical", "iter_entries", "verify_chain"]

GENESIS = "0" * 64
_STOP = object()


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


def _connect(path: Path, sync: str = "full") -> sqlite3.Connection:
    if sync not in SYNC_MODES:
        raise ValueError(f"audit sync mode must be one of {SYNC_MODES}")
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={sync.upper()}")
    db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run off the critical path
    db.execute("PRAGMA busy_timeout=30000")
    db.execute(
        "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, entry TEXT NOT NULL,"
        " prev_hash TEXT NOT NULL, entry_hash TEXT NOT NULL)"
    )
    return db


def _head_mac(secret: bytes, seq: int, digest: str) -> str:
    return hmac.new(secret, f"{seq}:{digest}".encode(), hashlib.sha256).hexdigest()


class AuditLog:
    """Append-only audit log. ``append`` (async) returns once the entry is durable."""

    def __init__(
        self,
        path: Path,
        *,
        secret: bytes | None = None,
        batch_max: int = 64,
        sync: str = "full",
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.head_path = self.path.with_name(self.path.name + ".head")
        self._secret = secret
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._db = _connect(self.path, sync)
        self._thread = threading.Thread(target=self._run, name="mltrust-audit", daemon=True)
        self._closed = False
        self._head: tuple[int, str] | None = None
        self._commits = 0
        self.failed: BaseException | None = None
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
        except BaseException as exc:  # noqa: BLE001 - reported to every waiting caller
            self.failed = exc
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
        # the entries are durable now; the head record (tail-truncation evidence) follows,
        # off the clients' critical path
        if self._secret is not None and self._head is not None:
            self._write_head(self._secret, *self._head)
        # WAL checkpoints also happen here, after the answers, instead of inside a commit
        self._commits += 1
        if self._commits % 256 == 0:
            try:
                self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.OperationalError:
                pass  # busy: the next round (or another worker) checkpoints

    def _write(self, batch: list[tuple[dict[str, Any], Callable[..., None]]]) -> list[int]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT seq, entry_hash FROM audit ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (int(row[0]), str(row[1])) if row else (0, GENESIS)
            rows = []
            seqs = []
            for entry, _ in batch:
                seq += 1
                text = canonical({**entry, "seq": seq, "prev": prev})
                digest = chain_hash(prev, text)
                rows.append((seq, text, prev, digest))
                seqs.append(seq)
                prev = digest
            db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?)", rows)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._head = (seq, prev)
        return seqs

    def _write_head(self, secret: bytes, seq: int, digest: str) -> None:
        lock_path = self.head_path.with_name(self.head_path.name + ".lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = read_head(self.head_path)
            if current is not None and int(current.get("seq", 0)) >= seq:
                return
            doc = {"seq": seq, "hash": digest, "mac": _head_mac(secret, seq, digest)}
            tmp = self.head_path.with_name(f".{self.head_path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(doc), encoding="ascii")
            os.replace(tmp, self.head_path)


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


def read_head(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"invalid": True}
    return doc if isinstance(doc, dict) else {"invalid": True}


@dataclass(slots=True)
class ChainReport:
    entries: int = 0
    last_seq: int = 0
    head_seq: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "last_seq": self.last_seq,
            "head_seq": self.head_seq,
            "problems": self.problems,
        }


def _open_readonly(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise InputError(f"{path}: no audit database")
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


def iter_entries(path: Path) -> Iterator[tuple[int, str, str, str]]:
    db = _open_readonly(path)
    try:
        yield from db.execute("SELECT seq, entry, prev_hash, entry_hash FROM audit ORDER BY seq")
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not an audit database: {exc}") from None
    finally:
        db.close()


def verify_chain(
    path: Path, *, secret: bytes | None = None, max_problems: int = 100
) -> ChainReport:
    """Check every link of the chain and, with the secret, the head record."""
    report = ChainReport()
    prev = GENESIS
    expected_seq = 1
    hashes: dict[int, str] = {}
    head = read_head(path.with_name(path.name + ".head"))
    head_seq = int(head["seq"]) if head and isinstance(head.get("seq"), int) else None

    def problem(text: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(text)

    for seq, text, prev_hash, entry_hash in iter_entries(path):
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
        if head_seq is not None and seq == head_seq:
            hashes[seq] = entry_hash
        prev = entry_hash
        expected_seq = seq + 1
        report.last_seq = seq
    if head is not None:
        if head.get("invalid") or head_seq is None or not isinstance(head.get("hash"), str):
            problem("head record is unreadable")
        else:
            report.head_seq = head_seq
            if secret is not None and not hmac.compare_digest(
                str(head.get("mac", "")), _head_mac(secret, head_seq, str(head["hash"]))
            ):
                problem("head record MAC does not verify (forged or wrong secret)")
            if report.last_seq < head_seq:
                problem(
                    f"log ends at seq {report.last_seq} but the head records seq {head_seq}: "
                    "entries were removed from the tail"
                )
            elif hashes.get(head_seq) != head["hash"]:
                problem(f"seq {head_seq}: hash differs from the recorded head")
    return report
