"""Backup and restore of the encrypted state (no KEK needed, none revealed).

A backup is one JSON document: every row of the vault tables, binary columns in base64, plus
a SHA-256 over the canonical rows that ``restore`` checks (it catches truncation and accidental
edits; it is not a signature: values are protected by AES-GCM, and names, grants and version
pointers by the rows' integrity tags (``mac``, under the KEK-wrapped row key), but a backup
can still be swapped for an older one, rows and all). A backup from before the tags restores
with empty ``mac`` columns; ``mltrust vault migrate`` tags them. Values stay
ciphertext; restoring needs the same KEK to read them. Backups move between backends
(SQLite → PostgreSQL and back). The file is written mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError, InputError
from mltrust.vault._storage import SCHEMA_VERSION, Storage

__all__ = ["backup", "restore"]

FORMAT = "mltrust-vault-backup/v1"
_TABLES = {
    "vault_meta": ("k", "v"),
    "vault_environments": (
        "id",
        "name",
        "description",
        "created",
        "updated",
        "kek_id",
        "wrapped_key",
        "mac",
    ),
    "vault_variables": (
        "id",
        "env_id",
        "name",
        "secret",
        "created",
        "updated",
        "current_version",
        "max_versions",
        "cas_required",
        "mac",
    ),
    "vault_versions": ("var_id", "version", "ciphertext", "created", "deleted", "destroyed"),
    "vault_tokens": ("id", "digest", "name", "env", "role", "created", "expires", "revoked", "mac"),
}
_BLOBS = {"wrapped_key", "ciphertext"}


def _digest(tables: dict[str, Any]) -> str:
    text = json.dumps(tables, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def backup(storage: Storage, path: Path) -> dict[str, int]:
    tables: dict[str, list[list[Any]]] = {}
    with storage.read() as tx:
        for table, cols in _TABLES.items():
            rows = tx.rows(f"SELECT {', '.join(cols)} FROM {table}")  # noqa: S608 - fixed names
            out = []
            for row in rows:
                out.append(
                    [
                        base64.b64encode(bytes(v)).decode() if c in _BLOBS and v is not None else v
                        for c, v in zip(cols, row, strict=True)
                    ]
                )
            tables[table] = out
    doc = {"format": FORMAT, "tables": tables, "sha256": _digest(tables)}
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, json.dumps(doc).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return {t: len(r) for t, r in tables.items()}


def read_backup(path: Path) -> dict[str, Any]:
    """The tables of a backup file, once its format and checksum are verified."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        tables = doc["tables"]
        ok = doc.get("format") == FORMAT and doc.get("sha256") == _digest(tables)
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a vault backup") from None
    if not ok or not isinstance(tables, dict):
        raise InputError(f"{path}: backup checksum or format does not match (damaged?)")
    return tables


def restore(storage: Storage, path: Path) -> dict[str, int]:
    """Load a backup into a vault that holds no environments yet (one transaction)."""
    tables = read_backup(path)
    counts = {}
    with storage.write() as tx:
        if tx.one("SELECT id FROM vault_environments LIMIT 1") is not None:
            raise ConfigError("the target vault is not empty; restore into a fresh one")
        tx.run("DELETE FROM vault_tokens")
        tx.run("DELETE FROM vault_meta")
        for table, cols in _TABLES.items():
            rows = tables.get(table, [])
            if not isinstance(rows, list):
                raise InputError(f"{path}: table {table} is not a list")
            marks = ", ".join("?" for _ in cols)
            for row in rows:
                if isinstance(row, list) and len(row) == len(cols) - 1 and cols[-1] == "mac":
                    row = [*row, None]  # a backup from before the row tags: `vault migrate`
                if not isinstance(row, list) or len(row) != len(cols):
                    raise InputError(f"{path}: a row of {table} has the wrong shape")
                values = [
                    base64.b64decode(v, validate=True) if c in _BLOBS and v is not None else v
                    for c, v in zip(cols, row, strict=True)
                ]
                tx.run(
                    f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})",  # noqa: S608
                    values,
                )
            counts[table] = len(rows)
        # the tables now have this schema's columns, whatever the backup's vault had
        storage.set_meta(tx, "schema", str(SCHEMA_VERSION))
    return counts
