"""``mltrust vault``: environments and versioned secret variables, encrypted and audited.

Decisions, stated once (details in each module's docstring and in docs/vault.md):

* **Envelope encryption at rest** (:mod:`._crypto`): AES-256-GCM per value under a
  per-environment data key; data keys wrapped by a key-encryption key (key file or scrypt
  passphrase); associated data binds each ciphertext to its environment, variable and version.
  Plaintext exists only in server memory and in answers to authorised reads.
* **Storage** (:mod:`._storage`): one schema on SQLite (default) or PostgreSQL.
* **Semantics** (:mod:`._service`): Vault KV v2 — versions, check-and-set, soft delete,
  undelete, destroy, a kept-version limit.
* **Access** (:mod:`._tokens`): hashed, scoped, expiring tokens; deny by default.
* **HTTP** (:mod:`._app`): every request, allowed or denied, is written to serve's hash-chained
  audit log before the answer; failed authentication is rate-limited per client address.
"""

from __future__ import annotations

from mltrust.vault._service import Environment, NotFound, Sealed, VarConflict, Variable, Vault
from mltrust.vault._state import init_state, open_vault
from mltrust.vault._storage import Storage, open_storage
from mltrust.vault._tokens import TokenStore

__all__ = [
    "Environment",
    "NotFound",
    "Sealed",
    "Storage",
    "TokenStore",
    "VarConflict",
    "Variable",
    "Vault",
    "init_state",
    "open_storage",
    "open_vault",
]
