"""The local evidence store (SQLite): signed statements and policy verdicts.

>>> with EvidenceStore.open(EvidenceStore.default_path(".")) as store:  # doctest: +SKIP
...     record_id = store.add_statement(statement, envelope=envelope, signer=fingerprint)
"""

from __future__ import annotations

from mltrust.store._sqlite import VERDICTS, EvidenceStore, StoredStatement, StoredVerdict

__all__ = ["VERDICTS", "EvidenceStore", "StoredStatement", "StoredVerdict"]
