"""The state folder: ``vault.db`` (SQLite, unless ``--database`` names PostgreSQL), the audit
log ``.mltrust/audit.db`` with its head-MAC secret ``.mltrust/secret`` (the layout of
``mltrust serve``, so ``mltrust audit verify STATE`` checks it), all created mode 0700/0600.

The KEK comes from ``MLTRUST_VAULT_PASSPHRASE`` or a key file; ``init`` records the scrypt salt
and, when a KEK is given, its check value. Without a KEK at ``init`` the first KEK given
(``serve`` or ``unseal``) becomes the vault's KEK.
"""

from __future__ import annotations

import os
from pathlib import Path

from mltrust.errors import ConfigError
from mltrust.serve._keys import load_or_create_secret
from mltrust.vault._crypto import KDF_LOG_N_DEFAULT, kek_from_file
from mltrust.vault._service import Vault
from mltrust.vault._storage import Storage, open_storage

__all__ = ["PASSPHRASE_ENV", "audit_path", "init_state", "kek_bytes", "open_vault"]

PASSPHRASE_ENV = "MLTRUST_VAULT_PASSPHRASE"  # noqa: S105 - a variable name


def audit_path(state: Path) -> Path:
    return state / ".mltrust" / "audit.db"


def init_state(
    state: Path, database: str | None, *, kdf_log_n: int = KDF_LOG_N_DEFAULT
) -> tuple[Storage, bool]:
    """Create the folder, the database schema, KDF parameters and the audit secret."""
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not database:
        path = state / "vault.db"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
    storage = open_storage(state, database)
    created = Vault.initialize(storage, kdf_log_n=kdf_log_n)
    load_or_create_secret(state)
    return storage, created


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
