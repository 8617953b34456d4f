"""Authorization: roles per model, deny by default.

Roles nest: ``admin`` implies ``infer``, which implies ``metadata``. A grant names a model or
``*`` (every model). Server-wide endpoints (``/v2/admin/*``, ``/metrics``) need ``admin`` on
``*``. A model's settings may add grants for named principals (``policy.roles``), always
namespaced: ``key:NAME`` for an API key, ``jwt:ISSUER:SUB`` for a token (see
:class:`~mltrust.serve.Identity`); bare names are refused when the settings load.
"""

from __future__ import annotations

from mltrust.serve._auth import Identity
from mltrust.serve._settings import ModelPolicy

__all__ = ["ROLE_IMPLIES", "allowed"]

ROLE_IMPLIES: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "infer", "metadata"}),
    "infer": frozenset({"infer", "metadata"}),
    "metadata": frozenset({"metadata"}),
}


def allowed(
    identity: Identity, model: str | None, role: str, policy: ModelPolicy | None = None
) -> bool:
    """Whether ``identity`` holds ``role`` on ``model`` (None: a server-wide action)."""
    for granted_model, granted_role in identity.grants:
        if role not in ROLE_IMPLIES.get(granted_role, frozenset()):
            continue
        if granted_model == "*" or (model is not None and granted_model == model):
            return True
    if policy is not None and model is not None and policy.roles:
        for who, roles in policy.roles:
            if who in identity.principals and any(
                role in ROLE_IMPLIES.get(r, frozenset()) for r in roles
            ):
                return True
    return False
