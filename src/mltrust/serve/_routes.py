"""The gateway's routes: one table of (method, path pattern, access, handler), matched here and
authorised by one decision.

The table itself is ``mltrust.serve._app.ROUTES`` (next to its handlers); this module holds what
it is made of and what every request goes through, in this order:

1. the path *as sent* is split on ``/`` and only then is each segment percent-decoded, so an
   encoded ``%2F`` is data inside a segment, never a separator (no route matches a segment that
   holds ``/``: what a proxy, a WAF or the audit log sees is the route the gateway serves); it
   is matched against every pattern (one trailing ``/`` is ignored); a route whose
   access is :attr:`Access.PUBLIC` is answered at once, without credentials or an audit entry
   (health probes, the OpenAPI document, ``/metrics`` with ``--metrics-public``), and so is a
   wrong method on a path that only public routes serve (405);
2. every other request is authenticated first (401/429), so that a caller without credentials
   learns nothing but that: not which paths exist, not which methods they take;
   a request that will not reach infer admission (which charges rows) costs one token of the
   caller's request bucket (429);
3. no pattern matches: 404; a pattern matches but not for this method: 405 with ``Allow``;
4. :func:`authorize` -- the one authorisation decision, keyed by the route's :class:`Access`
   and the ``{model}`` in the path: 403;
5. only then is the model looked up (404 for an unknown model or version), so whoever lacks the
   role on a name cannot tell whether a model of that name exists.

``{model}`` and ``{version}`` each match one non-empty path segment.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, assert_never
from urllib.parse import quote, unquote

from mltrust.identity import Identity
from mltrust.serve._authz import allowed
from mltrust.serve._settings import ModelPolicy

__all__ = [
    "PRINCIPALS",
    "Access",
    "Route",
    "authorize",
    "check_table",
    "effective_access",
    "match",
    "matrix_markdown",
    "sent_path",
    "split_path",
]

H = TypeVar("H")

_PARAMS = ("{model}", "{version}")


class Access(enum.StrEnum):
    """Who may call a route. Model roles nest: admin implies infer implies metadata."""

    PUBLIC = "public"
    """Anyone, without credentials; not audited."""
    AUTHENTICATED = "authenticated"
    """Any valid credential (what the answer shows may still depend on the caller's roles)."""
    METADATA = "metadata"
    """The ``metadata`` role (or higher) on the model named in the path, or on ``*``."""
    INFER = "infer"
    """The ``infer`` role (or higher) on the model named in the path, or on ``*``."""
    ADMIN = "admin"
    """The ``admin`` role on ``*`` (a server-wide action)."""
    METRICS = "metrics"
    """As :attr:`ADMIN`; as :attr:`PUBLIC` when the server runs with ``--metrics-public``."""

    @property
    def describe(self) -> str:
        return _DESCRIBE[self]


_DESCRIBE = {
    Access.PUBLIC: "anyone, no credentials (not audited)",
    Access.AUTHENTICATED: "any valid credential",
    Access.METADATA: "`metadata` on the model (or `*`)",
    Access.INFER: "`infer` on the model (or `*`)",
    Access.ADMIN: "`admin` on `*`",
    Access.METRICS: "`admin` on `*`; anyone with `--metrics-public`",
}


@dataclass(frozen=True)
class Route(Generic[H]):
    """One endpoint. ``pattern`` is a path whose segments are literals, ``{model}`` or
    ``{version}``; a route that names a model role has a ``{model}`` segment."""

    method: str
    pattern: str
    access: Access
    handler: H
    segments: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.pattern.startswith("/") or self.pattern.endswith("/"):
            raise ValueError(f"route {self.pattern!r}: a pattern starts and does not end with /")
        segments = tuple(self.pattern[1:].split("/"))
        for seg in segments:
            if not seg or (("{" in seg or "}" in seg) and seg not in _PARAMS):
                raise ValueError(f"route {self.pattern!r}: bad segment {seg!r}")
        if len({s for s in segments if s in _PARAMS}) != sum(s in _PARAMS for s in segments):
            raise ValueError(f"route {self.pattern!r}: a parameter named twice")
        per_model = self.access in (Access.METADATA, Access.INFER)
        if per_model != ("{model}" in segments):
            raise ValueError(
                f"route {self.method} {self.pattern}: access {self.access.value!r} "
                + ("needs a {model} segment" if per_model else "cannot name a model")
            )
        if "{version}" in segments and "{model}" not in segments:
            raise ValueError(f"route {self.pattern!r}: a version needs a model")
        if self.method != self.method.upper() or not self.method.isalpha():
            raise ValueError(f"route {self.pattern!r}: bad method {self.method!r}")
        object.__setattr__(self, "segments", segments)

    def bind(self, parts: Sequence[str]) -> dict[str, str] | None:
        """The path parameters when ``parts`` (a path split on ``/``) matches, else None."""
        if len(parts) != len(self.segments):
            return None
        params: dict[str, str] = {}
        for seg, part in zip(self.segments, parts, strict=True):
            if seg in _PARAMS:
                if not part:
                    return None
                params[seg[1:-1]] = part
            elif seg != part:
                return None
        return params


def check_table(routes: Sequence[Route[H]]) -> tuple[Route[H], ...]:
    """Refuse a table in which one request could match two routes (first match would win
    silently), or one path that public and protected routes share (rule 1 above)."""
    for i, a in enumerate(routes):
        for b in routes[i + 1 :]:
            overlap = len(a.segments) == len(b.segments) and all(
                x == y or x in _PARAMS or y in _PARAMS
                for x, y in zip(a.segments, b.segments, strict=True)
            )
            if not overlap:
                continue
            if a.method == b.method:
                raise ValueError(f"routes overlap: {a.method} {a.pattern} and {b.pattern}")
            # under either --metrics-public setting (METRICS is public with it, ADMIN without)
            if any(
                (effective_access(a.access, metrics_public=flag) is Access.PUBLIC)
                != (effective_access(b.access, metrics_public=flag) is Access.PUBLIC)
                for flag in (False, True)
            ):
                raise ValueError(f"{a.pattern}: public and protected methods on one path")
    return tuple(routes)


def sent_path(scope: dict[str, object]) -> str:
    """The request's path as the client sent it (percent-encoded, without the query string).

    ``scope["path"]`` is already decoded, so ``/a%2Fb`` and ``/a/b`` are one string there;
    ``raw_path`` (optional in ASGI) keeps them apart. Without it the decoded path is re-encoded,
    so that :func:`split_path` decodes it exactly once."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes) and raw:
        return raw.decode("latin-1").partition("?")[0]
    return quote(str(scope["path"]), safe="/")


def split_path(path: str) -> tuple[str, ...] | None:
    """The segments of ``path`` (as sent), split on ``/`` first and decoded one by one (UTF-8,
    as the ASGI server decodes ``scope["path"]``); one trailing ``/`` is ignored. None when the
    path does not start with ``/`` or a segment decodes to one holding ``/`` (``%2F``)."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if not path.startswith("/"):
        return None
    parts = tuple(unquote(raw, errors="replace") for raw in path[1:].split("/"))
    if any("/" in part for part in parts):
        return None
    return parts


def match(routes: Iterable[Route[H]], path: str) -> list[tuple[Route[H], dict[str, str]]]:
    """Every route whose pattern matches ``path`` (as sent, see :func:`split_path`; any
    method), with its parameters."""
    parts = split_path(path)
    if parts is None:
        return []
    found = []
    for route in routes:
        params = route.bind(parts)
        if params is not None:
            found.append((route, params))
    return found


def effective_access(access: Access, *, metrics_public: bool) -> Access:
    """The access a route has on this server (resolves :attr:`Access.METRICS`)."""
    if access is Access.METRICS:
        return Access.PUBLIC if metrics_public else Access.ADMIN
    return access


def authorize(
    access: Access, identity: Identity, model: str | None, policy: ModelPolicy | None
) -> bool:
    """The one authorisation decision: may ``identity`` call a route of this ``access`` on
    ``model`` (the ``{model}`` of the path; None for server-wide routes)? Deny by default."""
    if access is Access.PUBLIC or access is Access.AUTHENTICATED:
        return True
    if access is Access.METADATA or access is Access.INFER:
        return model is not None and allowed(identity, model, access.value, policy)
    if access is Access.ADMIN or access is Access.METRICS:
        return allowed(identity, None, "admin")
    assert_never(access)


# -- the authorisation matrix, as docs/threat-model-serve.md shows it -----------------------------
PRINCIPALS: tuple[tuple[str, frozenset[tuple[str, str]]], ...] = (
    ("`infer` on another model", frozenset({("other", "infer")})),
    ("`metadata` on M", frozenset({("M", "metadata")})),
    ("`infer` on M", frozenset({("M", "infer")})),
    ("`admin` on M", frozenset({("M", "admin")})),
    ("`admin` on `*`", frozenset({("*", "admin")})),
)
"""The callers the matrix shows, as grants; M is the model named in the path."""


def matrix_markdown(routes: Iterable[Route[H]]) -> str:
    """The authorisation matrix of ``routes``: one row per route, one column per caller, each
    cell computed by :func:`authorize` (``--metrics-public`` off)."""
    head = ["method", "path", "who may call it", "no credentials", *(p for p, _ in PRINCIPALS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for route in routes:
        access = effective_access(route.access, metrics_public=False)
        model = "M" if "{model}" in route.segments else None
        cells = ["yes" if access is Access.PUBLIC else "401"]
        for _, grants in PRINCIPALS:
            who = Identity("matrix", grants)
            cells.append("yes" if authorize(access, who, model, None) else "403")
        pattern = route.pattern.replace("{model}", "M").replace("{version}", "V")
        row = [route.method, f"`{pattern}`", route.access.describe, *cells]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
