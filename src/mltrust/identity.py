"""Who is asking: the identity a credential resolves to, shared by the gateway and the vault.

It lives in the core so that the vault's token store (storage) and the gateway's authenticators
(interfaces) name the same type without the lower layer importing the upper one.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking. ``principals`` are the names a model's ``policy.roles`` may grant to.

    Namespaced so that one kind of credential can never borrow another's grant: an API key is
    ``key:<name>`` (and ``key:<key id>``), a JWT is ``jwt:<issuer>:<sub>`` (one issuer is
    configured per server, so the split is never ambiguous). A token whose ``sub`` equals a
    key's name therefore matches nothing meant for that key.
    """

    name: str  # "key:<id>:<name>" or "jwt:<issuer>:<sub>" (audit log, limits)
    grants: frozenset[tuple[str, str]]
    principals: frozenset[str] = frozenset()
