"""The state folder: ``vault.db`` (SQLite, unless ``--database`` names PostgreSQL) and the
audit log ``.mltrust/audit.db`` (the layout of ``mltrust serve``, so ``mltrust audit verify
STATE`` checks it), created mode 0700/0600. The audit key and the log's signed anchor live
*outside* the state folder (serve's rules: ``--audit-key``, ``$MLTRUST_AUDIT_KEY``, default
``~/.config/mltrust/audit.key``; a key inside the state folder is refused).

The KEK comes from ``MLTRUST_VAULT_PASSPHRASE`` or a key file; ``init`` records the scrypt salt
and, when a KEK is given, its check value. Without a KEK at ``init`` the first KEK given
(``serve`` or ``unseal``) becomes the vault's KEK.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError
from mltrust.vault._crypto import KDF_LOG_N_DEFAULT, kek_from_file
from mltrust.vault._service import Vault
from mltrust.vault._storage import Storage, open_storage

__all__ = [
    "PASSPHRASE_ENV",
    "audit_path",
    "init_state",
    "kek_bytes",
    "open_audit_log",
    "open_vault",
]

PASSPHRASE_ENV = "MLTRUST_VAULT_PASSPHRASE"  # noqa: S105 - a variable name


def audit_path(state: Path) -> Path:
    return state / ".mltrust" / "audit.db"


def init_state(
    state: Path, database: str | None, *, kdf_log_n: int = KDF_LOG_N_DEFAULT
) -> tuple[Storage, bool]:
    """Create the folder, the database schema and the KDF parameters."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not database:
        path = state / "vault.db"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
    storage = open_storage(state, database)
    created = Vault.initialize(storage, kdf_log_n=kdf_log_n)
    (state / ".mltrust").mkdir(mode=0o700, exist_ok=True)
    return storage, created


def open_audit_log(state: Path, *, key_path: Path | None, anchor: Path | None, sync: str) -> Any:
    """Serve's anchored audit log for the vault; key and anchor outside the state folder."""
    from mltrust.store._audit import (
        AuditLog,
        default_anchor_path,
        default_key_path,
        load_audit_key,
    )

    db = audit_path(state)
    key_file = key_path or default_key_path()
    anchor_file = anchor or default_anchor_path(key_file, db)
    forbidden = (state, db.parent)
    key = load_audit_key(key_file, create=True, forbidden=forbidden)
    for folder in forbidden:
        if anchor_file.resolve().is_relative_to(folder.resolve()):
            raise ConfigError(f"audit anchor {anchor_file} lies inside {folder}: keep it outside")
    db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return AuditLog(db, key=key, anchor=anchor_file, sync=sync)


def kek_bytes(vault: Vault, kek_file: Path | None, *, required: bool = True) -> bytes | None:
    """The KEK from ``--kek-file`` or ``MLTRUST_VAULT_PASSPHRASE`` (the file wins)."""
    if kek_file is not None:
        return vault.derive_kek(key=kek_from_file(kek_file))
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if passphrase:
        return vault.derive_kek(passphrase=passphrase)
    if required:
        raise ConfigError(
            "no key-encryption key", hint=f"set {PASSPHRASE_ENV} or pass --kek-file FILE"
        )
    return None


def open_vault(
    state: Path, database: str | None, kek_file: Path | None, *, max_versions: int = 10
) -> Vault:
    """An unsealed vault (raises ConfigError without a KEK or with a wrong one)."""
    storage = open_storage(state, database)
    try:
        vault = Vault(storage, max_versions=max_versions)
        key = kek_bytes(vault, kek_file)
        if key is not None:
            vault.unseal(key)
    except BaseException:
        storage.close()
        raise
    return vault
