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

import importlib
from typing import Any

#: name -> module; imported on first use, so the client side (``vault run``, ``vault pull``:
#: ``mltrust.vault._client``) needs neither the server's dependencies nor their import time.
_EXPORTS = {
    "Environment": "mltrust.vault._service",
    "NotFound": "mltrust.vault._service",
    "Sealed": "mltrust.vault._service",
    "VarConflict": "mltrust.vault._service",
    "Variable": "mltrust.vault._service",
    "Vault": "mltrust.vault._service",
    "init_state": "mltrust.vault._state",
    "open_vault": "mltrust.vault._state",
    "Storage": "mltrust.vault._storage",
    "open_storage": "mltrust.vault._storage",
    "TokenStore": "mltrust.vault._tokens",
    "VaultClient": "mltrust.vault._client",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mltrust.vault' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Environment",
    "NotFound",
    "Sealed",
    "Storage",
    "TokenStore",
    "VarConflict",
    "Variable",
    "Vault",
    "VaultClient",
    "init_state",
    "open_storage",
    "open_vault",
]
