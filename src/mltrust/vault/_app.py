"""The vault's HTTP API: a Starlette app served by uvicorn.

Every request goes through one path (:meth:`VaultApp._handle`):

1. authenticate (``Authorization: Bearer TOKEN``; vault tokens, or JWTs when a JWKS is
   configured). A failure answers ``401 {"error": "unauthorized"}``; failures per client
   address are rate-limited (token bucket), beyond which the answer is ``429``;
2. while sealed, ``503 {"error": "sealed"}``;
3. resolve the environment and check the role the operation declares (deny by default: an
   operation without a declared role does not exist). An identity that may not see an
   environment gets ``403`` whether it exists or not;
4. run the operation in a worker thread (database and crypto are blocking);
5. append the audit entry (who, what, environment, variable, version, status, allow/deny,
   reason) to serve's hash-chained audit log and wait until it is durable, and only then
   answer. If the audit log cannot be written the answer is ``503`` (fail closed).

Error bodies are fixed (``{"error": ...}`` plus, for 400/409, a ``detail`` we wrote ourselves);
request bodies and values never reach the logs, the audit log or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mltrust import __version__
from mltrust.errors import ConfigError, InputError, VerificationError
from mltrust.serve._auth import AuthError, Identity, JwtVerifier
from mltrust.serve._metrics import VaultMetrics
from mltrust.serve._ratelimit import TokenBuckets
from mltrust.store._audit import AuditLog
from mltrust.vault._openapi import openapi_document
from mltrust.vault._service import (
    Environment,
    NotFound,
    PruneForbidden,
    Sealed,
    VarConflict,
    Vault,
)
from mltrust.vault._tokens import TokenStore, permits

__all__ = ["VaultApp", "VaultAppConfig"]

log = logging.getLogger("mltrust.vault")

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]


@dataclass(frozen=True, slots=True)
class VaultAppConfig:
    #: Largest request body (413 above).
    max_body_bytes: int = 1024 * 1024
    #: Failed authentications per second per client address before 429 (burst: twice that).
    auth_failure_rps: float = 5.0
    #: Serve ``GET /sys/metrics`` without authentication (else: an admin token on ``*``).
    metrics_public: bool = False

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError("max body must be at least 1024 bytes")
        if not self.auth_failure_rps > 0:
            raise ConfigError("the auth-failure rate must be positive")


class _Reject(Exception):
    def __init__(
        self, status: int, reason: str, *, detail: str | None = None, retry_after: float = 0.0
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


_ERRORS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    413: "request too large",
    429: "too many requests",
    500: "internal error",
    503: "unavailable",
}


@dataclass(slots=True)
class _Call:
    """What one operation receives (parsed in the event loop, used in a worker thread)."""

    identity: Identity | None
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]
    entry: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[_Call], tuple[int, Any]]

_METRICS_TYPE = "text/plain; version=0.0.4"


class _Text(str):
    """A handler result sent as Prometheus text, not JSON."""


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _bool(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise _Reject(400, f"bad query {name}", detail=f"{name} is true or false")


def _int(value: Any, name: str, *, minimum: int = 0) -> int:
    if isinstance(value, str) and value.isdigit() and len(value) < 10:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value < 2**31:
        raise _Reject(400, f"bad {name}", detail=f"{name} is an integer >= {minimum}")
    return value


def _opt_bool(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _Reject(400, f"bad {name}", detail=f"{name} is true or false")


def _str(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Reject(400, f"bad {name}", detail=f"{name} is a string")
    return value


def _who(call: _Call) -> Identity:
    if call.identity is None:
        raise _Reject(401, "unauthenticated")
    return call.identity


def _versions_list(value: Any) -> list[int]:
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise _Reject(400, "bad versions", detail="versions is a list of integers") from None
    if not isinstance(value, list) or not value or len(value) > 1000:
        raise _Reject(400, "bad versions", detail="versions is a non-empty list of integers")
    return [_int(v, "versions", minimum=1) for v in value]


def _only(
    method: str, endpoint: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """A 405 with ``allow`` for any other method (HEAD goes with GET)."""
    allowed = {method, "HEAD"} if method == "GET" else {method}

    async def wrapped(request: Request) -> Response:
        if request.method not in allowed:
            return Response(
                _dumps({"error": _ERRORS[405]}),
                status_code=405,
                media_type="application/json",
                headers={"allow": method},
            )
        return await endpoint(request)

    return wrapped


class VaultApp:
    """Holds the vault, the tokens, the audit log and the limiter; ``.app`` is the ASGI app."""

    def __init__(
        self,
        vault: Vault,
        tokens: TokenStore,
        audit: AuditLog,
        *,
        config: VaultAppConfig | None = None,
        jwt: JwtVerifier | None = None,
    ) -> None:
        self.vault = vault
        self.tokens = tokens
        self.audit = audit
        self.config = config or VaultAppConfig()
        self.jwt = jwt
        self.buckets = TokenBuckets(evict_debt=True)  # per address: unauthenticated
        self.metrics = VaultMetrics()
        self._unseal_lock = asyncio.Lock()
        self.openapi = _dumps(openapi_document())
        ops: dict[str, dict[str, tuple[str | None, Handler]]] = {
            "/environments": {"GET": (None, self._envs_list), "POST": (None, self._env_create)},
            "/environments/{env_id}": {
                "GET": ("read", self._env_get),
                "PUT": ("admin", self._env_update),
                "DELETE": ("admin", self._env_delete),
            },
            "/environments/{env_id}/variables": {
                "GET": ("read", self._vars_list),
                "POST": ("write", self._var_create),
            },
            "/environments/{env_id}/variables/{var_id}": {
                "GET": ("read", self._var_get),
                "PUT": ("write", self._var_put),
                "DELETE": ("write", self._var_delete),
            },
            "/environments/{env_id}/variables/{var_id}/versions": {
                "GET": ("read", self._var_history),
            },
            "/environments/{env_id}/variables/{var_id}/undelete": {
                "POST": ("write", self._var_undelete),
            },
            "/environments/{env_id}/variables/{var_id}/destroy": {
                "POST": ("admin", self._var_destroy),
            },
            "/sys/seal": {"POST": (None, self._seal)},
            "/sys/metrics": {"GET": (None, self._metrics)},
        }
        routes = [
            Route("/openapi.json", _only("GET", self._openapi), methods=_METHODS),
            Route("/sys/health", _only("GET", self._health), methods=_METHODS),
            Route("/sys/unseal", _only("POST", self._unseal_endpoint), methods=_METHODS),
        ]
        for template, table in ops.items():
            routes.append(Route(template, self._endpoint(template, table), methods=_METHODS))
        routes.append(Route("/{rest:path}", self._endpoint("*", {}), methods=_METHODS))
        self.app = Starlette(routes=routes)

    # -- plumbing ------------------------------------------------------------------------------
    def _endpoint(
        self, template: str, table: dict[str, tuple[str | None, Handler]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._handle(request, template, table)

        return endpoint

    def _peer(self, request: Request) -> str:
        return request.client.host if request.client else "-"

    def _identity(self, request: Request, entry: dict[str, Any]) -> Identity:
        try:
            header = request.headers.get("authorization")
            if header is None:
                raise AuthError("no credentials")
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise AuthError("malformed authorization header")
            if token.startswith("mltv_"):
                try:
                    identity = self.tokens.authenticate(token)
                except VerificationError as exc:  # a forged or edited token row
                    log.error(
                        "token row failed authentication", extra={"fields": {"why": str(exc)}}
                    )
                    raise AuthError(f"integrity: {exc}") from None
                if identity is None:
                    raise AuthError("unknown, expired or revoked token")
            elif self.jwt is not None:
                identity = self.jwt.verify(token)
            else:
                raise AuthError("not a vault token")
        except AuthError as exc:
            self._auth_failure(request)
            raise _Reject(401, f"unauthenticated: {exc.reason}") from None
        entry["identity"] = identity.name
        return identity

    def _auth_failure(self, request: Request) -> None:
        rate = self.config.auth_failure_rps
        wait = self.buckets.take(("auth-failures", self._peer(request)), rate, 2 * rate)
        if wait:
            raise _Reject(429, "auth failures: rate limit", retry_after=wait)

    async def _body(self, request: Request) -> dict[str, Any]:
        if request.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return {}
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise _Reject(413, "body too large")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "body too large")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Reject(400, "body is not JSON", detail="the body is a JSON object") from None
        if not isinstance(doc, dict):
            raise _Reject(400, "body is not an object", detail="the body is a JSON object")
        return doc

    async def _handle(
        self, request: Request, template: str, table: dict[str, tuple[str | None, Handler]]
    ) -> Response:
        if template == "/sys/metrics" and self.config.metrics_public and request.method == "GET":
            return Response(self._metrics_text(), media_type=_METRICS_TYPE)
        started = time.perf_counter()
        request_id = secrets.token_hex(8)
        entry: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "kind": "vault",
            "request_id": request_id,
            "method": request.method,
            "route": template,
            "peer": self._peer(request),
            "identity": "-",
        }
        status, doc = 500, {"error": _ERRORS[500]}
        headers: dict[str, str] = {"x-request-id": request_id}
        reason: str | None = None
        try:
            if template == "*":
                raise _Reject(404, "no such route")
            identity = self._identity(request, entry)
            op = table.get(request.method)
            if op is None:
                headers["allow"] = ", ".join(table)
                raise _Reject(405, "method not allowed")
            if self.vault.sealed and template not in ("/sys/seal", "/sys/metrics"):
                raise _Reject(503, "sealed")
            body = await self._body(request)
            role, handler = op
            call = _Call(
                identity, dict(request.path_params), dict(request.query_params), body, entry
            )
            status, doc = await run_in_threadpool(self._run, call, role, handler)
        except _Reject as rej:
            status, reason = rej.status, rej.reason
            doc = {"error": "sealed" if reason == "sealed" else _ERRORS.get(status, "error")}
            if rej.detail:
                doc["detail"] = rej.detail
            if rej.retry_after:
                headers["retry-after"] = str(max(1, math.ceil(rej.retry_after)))
        except NotFound as exc:
            status, reason, doc = 404, f"not found: {exc}", {"error": _ERRORS[404]}
        except VarConflict as exc:
            status, reason = 409, f"conflict: {exc}"
            doc = {"error": _ERRORS[409], "detail": str(exc)}
        except Sealed as exc:
            status, reason, doc = 503, f"sealed: {exc}", {"error": "sealed"}
        except InputError as exc:
            status, reason = 400, f"bad request: {exc}"
            doc = {"error": _ERRORS[400], "detail": str(exc)}
        except VerificationError as exc:
            status, reason = 500, f"integrity: {exc}"
            log.error("stored data failed authentication", extra={"fields": {"why": str(exc)}})
        except Exception as exc:  # noqa: BLE001 - never a traceback (or a value) to the client
            reason = f"internal: {type(exc).__name__}"
            log.error("request failed", extra={"fields": {"exc": type(exc).__name__}})
        entry["status"] = status
        entry["decision"] = "allow" if status < 400 else "deny"
        if reason is not None:
            entry["reason"] = reason[:300]
        elapsed = time.perf_counter() - started
        entry["latency_ms"] = round(elapsed * 1000, 3)
        try:
            await self.audit.append(entry)
        except Exception as exc:  # noqa: BLE001 - fail closed: no durable audit, no answer
            log.error("audit append failed", extra={"fields": {"exc": type(exc).__name__}})
            status, doc = 503, {"error": _ERRORS[503]}
        self.metrics.observe(
            template,
            request.method if request.method in _METHODS else "other",
            status,
            elapsed,
            reason.split(":")[0] if reason and status >= 400 else None,
        )
        if isinstance(doc, _Text):
            return Response(str(doc), status_code=status, media_type=_METRICS_TYPE, headers=headers)
        return Response(
            _dumps(doc), status_code=status, media_type="application/json", headers=headers
        )

    def _run(self, call: _Call, role: str | None, handler: Handler) -> tuple[int, Any]:
        """Authorization and the operation in one worker-thread hop."""
        if role is not None:
            self._authorize(call, role)
        return handler(call)

    def _authorize(self, call: _Call, role: str) -> Environment:
        """Resolve the environment of the path and require ``role`` on it."""
        identity = call.identity
        if identity is None:
            raise _Reject(401, "unauthenticated")
        ref = call.params["env_id"]
        call.entry["env"] = ref[:128]
        try:
            env = self.vault.get_env(ref)
        except NotFound:
            # only an identity that could see any environment learns that this one is missing
            if permits(identity, None, role):
                raise
            raise _Reject(403, f"forbidden: no {role} role on {ref[:64]}") from None
        call.entry["env"] = env.name
        if not permits(identity, env.name, role):
            raise _Reject(403, f"forbidden: no {role} role on {env.name}")
        if "var_id" in call.params:
            call.entry["var"] = call.params["var_id"][:128]
        return env

    # -- unauthenticated endpoints -------------------------------------------------------------
    async def _openapi(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")

    async def _health(self, request: Request) -> Response:
        doc = {"sealed": self.vault.sealed, "version": __version__}
        return Response(_dumps(doc), media_type="application/json")

    async def _unseal_endpoint(self, request: Request) -> Response:
        """``{"passphrase": ...}`` or ``{"key": base64}``.

        scrypt costs 128 MiB and a fraction of a second, so unsealing is a denial-of-service
        lever: every attempt (not only failures) takes a token from the client address's
        failed-authentication bucket, and attempts run one at a time.
        """

        async def run() -> tuple[int, Any]:
            body = await self._body(request)
            passphrase = body.get("passphrase")
            key_text = body.get("key")
            self._auth_failure(request)  # counts the attempt; 429 when the bucket is empty
            async with self._unseal_lock:
                return await attempt(passphrase, key_text)

        async def attempt(passphrase: Any, key_text: Any) -> tuple[int, Any]:
            try:
                if isinstance(passphrase, str) and passphrase and key_text is None:
                    kek = await run_in_threadpool(self.vault.derive_kek, passphrase=passphrase)
                elif isinstance(key_text, str) and passphrase is None:
                    try:
                        key = base64.b64decode(key_text, validate=True)
                    except (binascii.Error, ValueError):
                        key = b""
                    if len(key) != 32:
                        raise _Reject(400, "bad key", detail="key is 32 bytes in base64")
                    kek = key
                else:
                    raise _Reject(400, "bad unseal body", detail="give passphrase or key")
                await run_in_threadpool(partial(self.vault.unseal, kek, may_bind=False))
            except ConfigError:
                raise _Reject(403, "unseal: wrong key-encryption key") from None
            return 200, {"sealed": False}

        return await self._wrap_plain(request, "/sys/unseal", run)

    async def _wrap_plain(
        self, request: Request, template: str, run: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> Response:
        """Audit and answer for an endpoint that does its own checks (unseal)."""
        entry: dict[str, Any] = {
            "ts": round(time.time(), 3),
            "kind": "vault",
            "request_id": secrets.token_hex(8),
            "method": request.method,
            "route": template,
            "peer": self._peer(request),
            "identity": "-",
        }
        reason = None
        headers = {"x-request-id": entry["request_id"]}
        try:
            status, doc = await run()
        except _Reject as rej:
            status, reason = rej.status, rej.reason
            doc = {"error": _ERRORS.get(status, "error")}
            if rej.detail:
                doc["detail"] = rej.detail
            if rej.retry_after:
                headers["retry-after"] = str(max(1, math.ceil(rej.retry_after)))
        except Exception as exc:  # noqa: BLE001
            status, reason, doc = 500, f"internal: {type(exc).__name__}", {"error": _ERRORS[500]}
        entry.update(status=status, decision="allow" if status < 400 else "deny")
        if reason:
            entry["reason"] = reason
        try:
            await self.audit.append(entry)
        except Exception:  # noqa: BLE001
            status, doc = 503, {"error": _ERRORS[503]}
        return Response(
            _dumps(doc), status_code=status, media_type="application/json", headers=headers
        )

    # -- operations (worker threads) -----------------------------------------------------------
    def _metrics_text(self) -> str:
        return self.metrics.render(sealed=self.vault.sealed, audit=self.audit)

    def _metrics(self, call: _Call) -> tuple[int, Any]:
        """Prometheus metrics: an admin role on every environment (``*``)."""
        if not permits(_who(call), None, "admin"):
            raise _Reject(403, "forbidden: metrics need admin on *")
        return 200, _Text(self._metrics_text())

    def _seal(self, call: _Call) -> tuple[int, Any]:
        if call.identity is None or not permits(call.identity, None, "admin"):
            raise _Reject(403, "forbidden: sealing needs admin on *")
        self.vault.seal()
        return 200, {"sealed": True}

    def _envs_list(self, call: _Call) -> tuple[int, Any]:
        identity = _who(call)
        envs = [e.to_dict() for e in self.vault.list_envs() if permits(identity, e.name, "read")]
        return 200, {"environments": envs}

    def _env_create(self, call: _Call) -> tuple[int, Any]:
        name = _str(call.body, "name")
        description = _str(call.body, "description", required=False) or ""
        call.entry["env"] = str(name)[:128]
        if name is None or not permits(_who(call), name, "admin"):
            raise _Reject(403, "forbidden: creating an environment needs admin on its name")
        env = self.vault.create_env(name, description)
        return 201, env.to_dict()

    def _env_get(self, call: _Call) -> tuple[int, Any]:
        return 200, self.vault.get_env(call.params["env_id"]).to_dict()

    def _env_update(self, call: _Call) -> tuple[int, Any]:
        name = _str(call.body, "name", required=False)
        description = _str(call.body, "description", required=False)
        if name is not None and (
            call.identity is None or not permits(call.identity, name, "admin")
        ):
            raise _Reject(403, "forbidden: renaming needs admin on the new name")
        env = self.vault.update_env(call.params["env_id"], name=name, description=description)
        return 200, env.to_dict()

    def _env_delete(self, call: _Call) -> tuple[int, Any]:
        env = self.vault.delete_env(call.params["env_id"])
        return 200, {"deleted": env.to_dict()}

    def _vars_list(self, call: _Call) -> tuple[int, Any]:
        with_values = _bool(call.query, "values")
        env, items = self.vault.list_vars(call.params["env_id"], with_values=with_values)
        out = []
        for var, value in items:
            doc = var.to_dict()
            if with_values:
                doc["value"] = value
            out.append(doc)
        call.entry["values"] = with_values
        return 200, {"environment": env.to_dict(), "variables": out}

    def _var_create(self, call: _Call) -> tuple[int, Any]:
        body = call.body
        name = _str(body, "name") or ""
        value = _str(body, "value") or ""
        call.entry["var"] = name[:128]
        max_versions = body.get("max_versions")
        if max_versions is not None:
            max_versions = _int(max_versions, "max_versions", minimum=1)
        secret = _opt_bool(body, "secret")
        _, var = self.vault.create_var(
            call.params["env_id"],
            name,
            value,
            secret=True if secret is None else secret,
            max_versions=max_versions,
            cas_required=bool(_opt_bool(body, "cas_required")),
        )
        call.entry["version"] = 1
        return 201, {**var.to_dict(), "version": 1}

    def _var_get(self, call: _Call) -> tuple[int, Any]:
        raw = call.query.get("version")
        version = None if raw is None else _int(raw, "version", minimum=1)
        _, var, number, value = self.vault.get_var(
            call.params["env_id"], call.params["var_id"], version=version
        )
        call.entry["var"] = var.name
        call.entry["version"] = number
        return 200, {**var.to_dict(), "version": number, "value": value}

    def _var_put(self, call: _Call) -> tuple[int, Any]:
        body = call.body
        cas = body.get("cas")
        if cas is not None:
            cas = _int(cas, "cas")
        max_versions = body.get("max_versions")
        if max_versions is not None:
            max_versions = _int(max_versions, "max_versions", minimum=1)
        secret = _opt_bool(body, "secret")
        value = _str(body, "value", required=False)
        # lowering max_versions removes old (even soft-deleted) versions for good: that is
        # destroy's power, which needs admin
        may_prune = call.identity is not None and permits(
            call.identity, call.entry.get("env"), "admin"
        )
        try:
            return self._var_put_checked(call, cas, max_versions, secret, value, may_prune)
        except PruneForbidden:
            raise _Reject(403, "forbidden: lowering max_versions needs admin") from None

    def _var_put_checked(
        self,
        call: _Call,
        cas: int | None,
        max_versions: int | None,
        secret: bool | None,
        value: str | None,
        may_prune: bool,
    ) -> tuple[int, Any]:
        body = call.body
        env_ref, var_ref = call.params["env_id"], call.params["var_id"]
        if value is None:  # metadata only; cas, when given, must still match
            if cas is not None:
                current = self.vault.get_meta(env_ref, var_ref)[1].current_version
                if cas != current:
                    raise VarConflict(f"check-and-set failed: current version is {current}")
            _, var = self.vault.update_var_meta(
                env_ref,
                var_ref,
                secret=secret,
                max_versions=max_versions,
                cas_required=_opt_bool(body, "cas_required"),
                may_prune=may_prune,
            )
            call.entry["var"] = var.name
            return 200, {**var.to_dict(), "version": var.current_version}
        _, var = self.vault.put_var(
            env_ref,
            var_ref,
            value,
            cas=cas,
            secret=secret,
            max_versions=max_versions,
            may_prune=may_prune,
        )
        call.entry["var"] = var.name
        call.entry["version"] = var.current_version
        return 200, {**var.to_dict(), "version": var.current_version}

    def _var_delete(self, call: _Call) -> tuple[int, Any]:
        env_ref, var_ref = call.params["env_id"], call.params["var_id"]
        if _bool(call.query, "purge"):
            if call.identity is None or not permits(call.identity, call.entry.get("env"), "admin"):
                raise _Reject(403, "forbidden: purge needs admin")
            _, var = self.vault.delete_var(env_ref, var_ref)
            call.entry["var"] = var.name
            call.entry["action"] = "purge"
            return 200, {"deleted": var.to_dict()}
        raw = call.query.get("versions")
        versions = None if raw is None else _versions_list(raw)
        _, var, numbers = self.vault.delete_versions(env_ref, var_ref, versions)
        call.entry["var"] = var.name
        call.entry["versions"] = numbers
        return 200, {"deleted_versions": numbers}

    def _var_history(self, call: _Call) -> tuple[int, Any]:
        _, var, versions = self.vault.get_meta(call.params["env_id"], call.params["var_id"])
        call.entry["var"] = var.name
        return 200, {**var.to_dict(), "versions": [v.to_dict() for v in versions]}

    def _var_undelete(self, call: _Call) -> tuple[int, Any]:
        versions = _versions_list(call.body.get("versions"))
        _, var, numbers = self.vault.undelete(
            call.params["env_id"], call.params["var_id"], versions
        )
        call.entry["var"] = var.name
        call.entry["versions"] = numbers
        return 200, {"undeleted_versions": numbers}

    def _var_destroy(self, call: _Call) -> tuple[int, Any]:
        versions = _versions_list(call.body.get("versions"))
        _, var, numbers = self.vault.destroy(call.params["env_id"], call.params["var_id"], versions)
        call.entry["var"] = var.name
        call.entry["versions"] = numbers
        return 200, {"destroyed_versions": numbers}
