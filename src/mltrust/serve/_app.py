"""The ASGI application: the Open Inference Protocol, routed by one table (:data:`ROUTES`).

Written as a raw ASGI callable (no framework in the hot path): every request goes through the
same fixed sequence -- match a route, authenticate, authorize by the route's access (see
:mod:`._routes`), rate-limit, read the body under a size limit, parse, decode, validate, detect,
infer (thread pool, timeout), harden outputs, audit (durable), respond. Every decision is
audited before the client hears about it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mltrust import __version__
from mltrust.errors import ConfigError
from mltrust.serve._auth import Authenticator, AuthError, Identity, JwtVerifier
from mltrust.serve._authz import allowed
from mltrust.serve._batching import Batcher
from mltrust.serve._codec import (
    PD_INPUT,
    ProtocolError,
    decode_infer_request,
    encode_tensor,
    input_digest,
)
from mltrust.serve._config import ServerConfig
from mltrust.serve._keys import KeyStore, load_or_create_secret, state_dir
from mltrust.serve._logging import log
from mltrust.serve._metrics import Metrics
from mltrust.serve._openapi import openapi_document
from mltrust.serve._repository import AdmissionOptions, ServedModel, load_repository
from mltrust.serve._routes import (
    Access,
    Route,
    authorize,
    check_table,
    effective_access,
    match,
    sent_path,
)
from mltrust.serve._settings import RateLimitSettings
from mltrust.serve._validation import ValidationFailed
from mltrust.state import Limit, StateUnavailable, client_group, open_state
from mltrust.store._audit import (
    AuditLog,
    AuditTampered,
    default_anchor_path,
    default_key_path,
    load_audit_key,
)

__all__ = ["ROUTES", "MltrustServer", "app_from_env", "create_app"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_EXTENSIONS = ["model_repository_metadata", "mltrust_security"]
CONFIG_ENV = "MLTRUST_SERVE_CONFIG"
_DEFAULT_RATES = RateLimitSettings()


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


_ERR = {
    400: b'{"error":"bad request"}',
    401: b'{"error":"unauthorized"}',
    403: b'{"error":"forbidden"}',
    404: b'{"error":"not found"}',
    405: b'{"error":"method not allowed"}',
    413: b'{"error":"request body too large"}',
    429: b'{"error":"too many requests"}',
    500: b'{"error":"inference failed"}',
    503: b'{"error":"unavailable"}',
    504: b'{"error":"inference timed out"}',
}


def _binary_header_length(scope: Scope, body_len: int) -> int | None:
    """``Inference-Header-Content-Length`` (binary tensor extension): the JSON part's size."""
    for k, v in scope["headers"]:
        if k == b"inference-header-content-length":
            try:
                n = int(v)
            except ValueError:
                n = -1
            if not 0 <= n <= body_len:
                raise _Reject(400, "bad inference-header-content-length")
            return n
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Call:
    """What a route handler gets: the request, its audit entry, the caller (None on a PUBLIC
    route) and the model of a ``{model}`` route (authorised and found)."""

    scope: Scope
    receive: Receive
    entry: dict[str, Any]
    identity: Identity | None
    model: ServedModel | None


# status, body, extra headers, the metrics label (a served model's name or "-")
_Answer = tuple[int, bytes, list[tuple[bytes, bytes]] | None, str]
_Handler = Callable[["MltrustServer", _Call], Awaitable[_Answer]]
_Route = Route[_Handler]


def _allow(found: list[tuple[_Route, dict[str, str]]]) -> bytes:
    """The ``Allow`` header of a path: the methods its routes take."""
    return ", ".join(sorted({r.method for r, _ in found})).encode()


class _Reject(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        *,
        body: bytes | None = None,
        retry_after: float = 0.0,
        allow: bytes | None = None,
    ) -> None:
        super().__init__(reason)
        self.allow = allow
        self.status = status
        self.reason = reason
        self.body = body if body is not None else _ERR[status]
        self.retry_after = retry_after


class MltrustServer:
    """The application object; callable as an ASGI app."""

    def __init__(
        self, config: ServerConfig, *, models: dict[str, ServedModel] | None = None
    ) -> None:
        self.config = config
        self.secret = load_or_create_secret(config.repo)
        # first: a log that does not match its anchor stops the server before anything loads
        self.audit = open_audit_log(config)
        self.keys = KeyStore(config.repo, secret=self.secret) if config.api_keys else None
        verifier = None
        if config.jwks is not None:
            verifier = JwtVerifier(
                config.jwks,
                issuer=str(config.jwt_issuer),
                audience=str(config.jwt_audience),
                leeway=config.jwt_leeway_s,
            )
        self.auth = Authenticator(self.keys, verifier)
        self.models = (
            models
            if models is not None
            else load_repository(
                config.repo,
                AdmissionOptions(
                    trusted_keys=config.trusted_keys,
                    model_keys=config.model_keys,
                    allow_unsigned=config.allow_unsigned,
                    plugin_path=config.plugin_path,
                    check_profile=config.check_profile,
                    min_versions=config.min_versions,
                    state=config.state,
                ),
            )
        )
        self.metrics = Metrics(replica=config.replica)
        self.stats: dict[str, list[int]] = {}
        # rate limits, quotas, extraction blocks: in-process or shared (--state redis://...);
        # an unreachable server stops the start, a later outage answers 503 (fail closed).
        # In-process, unauthenticated state (auth failures per address) lives apart from
        # identity state, bounded and LRU; identity buckets in debt are never dropped.
        self.state = open_state(config.state_url, check=True)
        self.executor = ThreadPoolExecutor(
            max_workers=config.inference_threads, thread_name_prefix="mltrust-infer"
        )
        for m in self.models.values():
            if m.runtime is not None and m.settings is not None:
                m.batcher = Batcher(
                    m.runtime,
                    self.executor,
                    timeout_s=m.settings.policy.timeout_s,
                    max_rows=m.settings.policy.max_batch_rows,
                )
            gap = _monitoring_gap(m)
            if gap is not None:
                log.warning("model %s: %s", m.name, gap, extra={"fields": {"model": m.name}})
        self.openapi = _dumps(openapi_document())
        self.server_metadata = _dumps(
            {"name": "mltrust", "version": __version__, "extensions": _EXTENSIONS}
        )
        self.ready = True
        self._closed = False
        self._pid = os.getpid()

    # -- ASGI ----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                log.info(
                    "server started",
                    extra={
                        "fields": {
                            "pid": os.getpid(),
                            "models": {n: m.ready for n, m in self.models.items()},
                            "state": self.state.describe(),
                        }
                    },
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose_state()
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose_state(self) -> None:
        """Close the state back end's connections (on the loop that opened them)."""
        try:
            await self.state.aclose()
        except Exception:  # noqa: BLE001 - shutting down: log, go on flushing the audit log
            log.exception("closing the state back end failed")

    def close(self) -> None:
        """Flush the audit log and stop the inference pool (in-flight requests drained first)."""
        if self._closed:
            return
        self._closed = True
        self.executor.shutdown(wait=True)
        self.audit.close()
        log.info("server stopped; audit log flushed")

    async def _send(
        self, send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        h = list(headers) if headers else []
        if not any(k == b"content-type" for k, _ in h):
            h.extend(_JSON)
        h.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": h})
        await send({"type": "http.response.body", "body": body})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # matched and audited as sent: an encoded "/" (%2F) never becomes a separator
        path = sent_path(scope)
        method: str = scope["method"]
        found = match(ROUTES, path)
        hit = next(((r, p) for r, p in found if r.method == method), None)
        public = [r for r, _ in found if self._access(r) is Access.PUBLIC]
        if public and len(public) == len(found):
            # probes, documentation (and /metrics with --metrics-public): no credentials, no
            # audit entry, a wrong method included
            if hit is None:
                return await self._send(send, 405, _ERR[405], [(b"allow", _allow(found))])
            call = _Call(scope, receive, {}, None, None)
            status, body, headers, _ = await hit[0].handler(self, call)
            return await self._send(send, status, body, headers)
        await self._audited(scope, receive, send, path, method, found, hit)

    def _access(self, route: _Route) -> Access:
        return effective_access(route.access, metrics_public=self.config.metrics_public)

    def _metric_label(self, name: str) -> str:
        """A metrics label: a served model's name, ``-`` for no model, else ``unknown``.

        The name in a URL is chosen by the client, before authorisation: used as a label it
        would let anyone grow ``/metrics`` without bound (one series per random name).
        """
        if name == "-" or name in self.models:
            return name
        return "unknown"

    def _metrics_text(self, *, identities: bool) -> bytes:
        ready = {n: m.ready for n, m in self.models.items()}
        return self.metrics.render(ready, audit=self.audit, identities=identities).encode()

    async def _audited(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        path: str,
        method: str,
        found: list[tuple[_Route, dict[str, str]]],
        hit: tuple[_Route, dict[str, str]] | None,
    ) -> None:
        started = time.perf_counter()
        entry: dict[str, Any] = {
            "ts": time.time(),
            "pid": self._pid,
            "method": method,
            "path": path[:512],
        }
        status = 500
        body = _ERR[500]
        extra_headers: list[tuple[bytes, bytes]] | None = None
        reason: str | None = None
        model_label = "-"
        try:
            status, body, extra_headers, model_label = await self._route(
                scope, receive, entry, found, hit
            )
        except _Reject as rej:
            status, body, reason = rej.status, rej.body, rej.reason
            if rej.retry_after:
                extra_headers = [(b"retry-after", str(max(1, math.ceil(rej.retry_after))).encode())]
            if rej.allow is not None:
                extra_headers = [(b"allow", rej.allow)]
            model_label = entry.get("model", "-")
        except Exception as exc:  # noqa: BLE001 - never leak a traceback to the client
            reason = f"internal: {type(exc).__name__}"
            log.exception("request failed", extra={"fields": {"path": path}})
            model_label = entry.get("model", "-")
        elapsed = time.perf_counter() - started
        entry["status"] = status
        entry["decision"] = "allow" if status < 400 else "deny"
        if reason is not None:
            entry["reason"] = reason
        entry["latency_ms"] = round(elapsed * 1000, 3)
        try:
            await self.audit.append(entry)
        except Exception:  # noqa: BLE001 - fail closed: no durable audit entry, no answer
            log.exception("audit log append failed")
            status, body, extra_headers = 503, _ERR[503], None
        if (
            hit is not None
            and hit[0].handler is MltrustServer._h_model_infer
            and entry.get("model") in self.models
        ):
            self._count(str(entry["model"]), status, elapsed, int(entry.get("rows", 0)))
        self.metrics.observe(
            self._metric_label(model_label),
            status,
            elapsed,
            reason.split(":")[0] if reason and status >= 400 else None,
            identity=entry.get("identity"),
        )
        await self._send(send, status, body, extra_headers)

    # -- routing -------------------------------------------------------------------------------
    async def _limits(self, limits: list[Limit], *, mode: str) -> tuple[int, float]:
        """Admit (all or nothing) or charge limits in one call to the state back end; 503 when
        it is down."""
        try:
            if mode == "admit":
                return await self.state.admit(limits)
            return await self.state.charge(limits)
        except StateUnavailable as exc:
            log.error("state back end unavailable", extra={"fields": {"error": str(exc)}})
            raise _Reject(503, "state unavailable") from None

    async def _identity(self, scope: Scope, entry: dict[str, Any]) -> Identity:
        authorization = api_key = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                authorization = v.decode("latin-1")
            elif k == b"x-api-key":
                api_key = v.decode("latin-1")
        try:
            identity = self.auth.authenticate(authorization, api_key)
        except AuthError as exc:
            # credential guessing and unauthenticated floods: a bucket per client address
            client = scope.get("client")
            peer = client[0] if client else "-"
            entry["peer"] = peer
            rate = self.config.auth_failure_rps
            limit = Limit.bucket(
                ("auth-failures", client_group(peer)), rate, 2 * rate, evictable=True
            )
            _, wait = await self._limits([limit], mode="charge")
            if wait:
                raise _Reject(429, "auth failures: rate limit", retry_after=wait) from None
            raise _Reject(401, f"unauthenticated: {exc.reason}") from None
        entry["identity"] = identity.name
        return identity

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        entry: dict[str, Any],
        found: list[tuple[_Route, dict[str, str]]],
        hit: tuple[_Route, dict[str, str]] | None,
    ) -> _Answer:
        """Steps 2-5 of :mod:`._routes`: authenticate, 404/405, authorize, find the model.

        Infer admission charges rows to the caller's buckets; every other authenticated request
        (refusals included) costs one token of the caller's request bucket, so that no valid
        credential can send unlimited requests, each a durable audit entry."""
        identity = await self._identity(scope, entry)
        try:
            route, model = self._resolve(identity, entry, found, hit)
        except _Reject:
            await self._charge_request(identity)
            raise
        if route.access is not Access.INFER or model is None or not model.ready:
            await self._charge_request(identity)
        return await route.handler(self, _Call(scope, receive, entry, identity, model))

    async def _charge_request(self, identity: Identity) -> None:
        """One token of the caller's request bucket (``identity_rps``/``identity_burst`` of the
        server, else the default row rates): 429 once it is empty."""
        rps = self.config.identity_rps or _DEFAULT_RATES.identity_rps
        burst = self.config.identity_burst or _DEFAULT_RATES.identity_burst
        limit = Limit.bucket(("requests", identity.name), rps, burst)
        _, wait = await self._limits([limit], mode="charge")
        if wait:
            raise _Reject(429, "rate limit: requests", retry_after=wait)

    def _resolve(
        self,
        identity: Identity,
        entry: dict[str, Any],
        found: list[tuple[_Route, dict[str, str]]],
        hit: tuple[_Route, dict[str, str]] | None,
    ) -> tuple[_Route, ServedModel | None]:
        """The route and its model, or the refusal: 404, 405, 403, 404 (in that order)."""
        if not found:
            raise _Reject(404, "no such route")
        if hit is None:
            raise _Reject(405, "method not allowed", allow=_allow(found))
        route, params = hit
        name = params.get("model")
        model = policy = None
        if name is not None:
            entry["model"] = name[:128]
            model = self.models.get(name)
            policy = model.settings.policy if model is not None and model.settings else None
        access = self._access(route)
        if not authorize(access, identity, name, policy):
            raise _Reject(403, f"forbidden: needs {access.value} on {name or '*'}")
        if name is not None:
            if model is None:
                raise _Reject(404, "unknown model")
            version = params.get("version")
            if version is not None and (
                model.settings is None or version != model.settings.version
            ):
                raise _Reject(404, "unknown version")
            entry["version"] = model.version
        return route, model

    # -- handlers (one per route of ROUTES) ----------------------------------------------------
    def _ready_model(self, call: _Call) -> ServedModel:
        model = call.model
        if model is None:  # a model route always carries its model (see _route)
            raise _Reject(500, "internal: model route without a model")
        if not model.ready:
            raise _Reject(503, f"model not ready: {model.reason}")
        return model

    def _caller(self, call: _Call) -> Identity:
        if call.identity is None:  # only PUBLIC routes run without one
            raise _Reject(500, "internal: protected route without an identity")
        return call.identity

    async def _h_live(self, call: _Call) -> _Answer:
        return 200, b'{"live":true}', None, "-"

    async def _h_ready(self, call: _Call) -> _Answer:
        ok = self.ready and not self._closed and not isinstance(self.audit.failed, AuditTampered)
        return 200 if ok else 503, b'{"ready":%s}' % (b"true" if ok else b"false"), None, "-"

    async def _h_openapi(self, call: _Call) -> _Answer:
        return 200, self.openapi, None, "-"

    async def _h_metrics(self, call: _Call) -> _Answer:
        # who calls which model only for an authorised caller, never on the public route
        text = self._metrics_text(identities=call.identity is not None)
        return 200, text, [(b"content-type", b"text/plain; version=0.0.4")], "-"

    async def _h_server_metadata(self, call: _Call) -> _Answer:
        return 200, self.server_metadata, None, "-"

    async def _h_repository_index(self, call: _Call) -> _Answer:
        index = await self._repository_index(call.scope, call.receive, self._caller(call))
        return 200, _dumps(index), None, "-"

    async def _h_admin_models(self, call: _Call) -> _Answer:
        return 200, _dumps(self._admin_models()), None, "-"

    async def _h_model_metadata(self, call: _Call) -> _Answer:
        model = self._ready_model(call)
        return 200, _dumps(model.metadata), None, model.name

    async def _h_model_ready(self, call: _Call) -> _Answer:
        model = call.model
        if model is None:
            raise _Reject(500, "internal: model route without a model")
        ready = model.ready
        return 200 if ready else 503, _dumps({"name": model.name, "ready": ready}), None, model.name

    async def _h_model_stats(self, call: _Call) -> _Answer:
        model = self._ready_model(call)
        return 200, _dumps(self._statistics(model)), None, model.name

    async def _h_model_infer(self, call: _Call) -> _Answer:
        model = self._ready_model(call)
        return await self._infer(call.scope, call.receive, self._caller(call), model, call.entry)

    def _count(self, name: str, status: int, seconds: float, rows: int) -> None:
        """Per-model statistics (Triton's statistics extension), this process only."""
        st = self.stats.setdefault(name, [0, 0, 0, 0, 0, 0])
        ns = int(seconds * 1e9)
        if status == 200:
            st[0] += 1  # success count
            st[1] += ns
            st[4] += rows  # inferences (rows)
            st[5] = int(time.time() * 1000)  # last inference, ms
        else:
            st[2] += 1
            st[3] += ns

    def _statistics(self, model: ServedModel) -> dict[str, Any]:
        ok, ok_ns, fail, fail_ns, rows, last = self.stats.get(model.name, [0, 0, 0, 0, 0, 0])
        return {
            "model_stats": [
                {
                    "name": model.name,
                    "version": model.version,
                    "last_inference": last,
                    "inference_count": rows,
                    "execution_count": ok,
                    "inference_stats": {
                        "success": {"count": ok, "ns": ok_ns},
                        "fail": {"count": fail, "ns": fail_ns},
                    },
                }
            ]
        }

    async def _repository_index(
        self, scope: Scope, receive: Receive, identity: Identity
    ) -> list[dict[str, Any]]:
        """The models this identity may see (metadata role); reasons only with admin on one."""
        raw = await self._read_body(scope, receive)
        ready_only = False
        if raw.strip():
            try:
                doc = json.loads(raw)
            except (ValueError, RecursionError):
                raise _Reject(400, "malformed json", body=b'{"error":"malformed JSON"}') from None
            if not isinstance(doc, dict) or not isinstance(doc.get("ready", False), bool):
                raise _Reject(400, "protocol: index request", body=b'{"error":"bad request"}')
            ready_only = bool(doc.get("ready", False))
        out = []
        for name, m in sorted(self.models.items()):
            policy = m.settings.policy if m.settings else None
            if not allowed(identity, name, "metadata", policy):
                continue
            if ready_only and not m.ready:
                continue
            item: dict[str, Any] = {
                "name": name,
                "version": m.version,
                "state": "READY" if m.ready else "UNAVAILABLE",
            }
            if not m.ready and allowed(identity, name, "admin", policy):
                item["reason"] = m.reason or ""
            out.append(item)
        return out

    def _admin_models(self) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": m.name,
                    "version": m.version,
                    "ready": m.ready,
                    "reason": m.reason,
                    "folder": m.folder.name,
                    "sha256": m.artifact_sha256,
                    "signed_by": m.signed_by,
                    "runtime": m.settings.runtime if m.settings else None,
                    "monitoring_gap": _monitoring_gap(m),
                }
                for m in self.models.values()
            ]
        }

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.config.max_body_bytes
        for k, v in scope["headers"]:
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    raise _Reject(400, "bad content-length") from None
                if declared > limit:
                    raise _Reject(413, "body too large (declared)")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Reject(400, "client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Reject(413, "body too large (streamed)")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks) if len(chunks) != 1 else chunks[0]

    def _rates(self, model: ServedModel) -> tuple[float, float, Any]:
        settings = model.settings
        if settings is None:
            raise _Reject(503, "model not ready")
        policy = settings.policy
        rl = policy.rate_limit
        rps = self.config.identity_rps if self.config.identity_rps is not None else rl.identity_rps
        burst = (
            self.config.identity_burst
            if self.config.identity_burst is not None
            else rl.identity_burst
        )
        return rps, burst, policy

    def _admission_limits(self, identity: Identity, model: ServedModel) -> list[tuple[Limit, str]]:
        """The limits one request is held to at admission, in order, each with its refusal
        reason: one unit on each (one row, one request against the quota), the bytes bucket
        only checked (cost 0; the body is charged once it is read).

        Keys start with what they count, so an identity can never share a key of another kind
        (an identity named ``model`` does not drain the model-wide bucket).
        """
        rps, burst, policy = self._rates(model)
        rl = policy.rate_limit
        who = (identity.name, model.name)
        limits = [
            (Limit.bucket(("identity", *who), rps, burst), "rate limit: identity"),
            (
                Limit.bucket(("model", model.name), rl.model_rps, rl.model_burst),
                "rate limit: model",
            ),
        ]
        if rl.identity_bytes_per_s:
            bps = rl.identity_bytes_per_s
            limits.append((Limit.bucket(("bytes", *who), bps, bps, 0.0), "rate limit: bytes"))
        if policy.quota.requests:
            quota = Limit.quota(("quota", *who), policy.quota.requests, policy.quota.window_s)
            limits.append((quota, "quota exhausted"))
        return limits

    async def _admit(self, identity: Identity, model: ServedModel) -> None:
        """Before the body is read: refuse an identity that is in debt, over quota or blocked;
        otherwise charge the admission unit -- every admitted request costs one row, whether or
        not it turns out valid (a 400 or 422 is not free).

        One call to the state back end (one round trip with Redis), all or nothing: a refused
        request charges nothing.
        """
        if model.extraction is not None:
            wait = model.extraction.blocked(identity.name)
            if wait:
                raise _Reject(429, "extraction: blocked", retry_after=wait)
        limits = self._admission_limits(identity, model)
        if model.extraction is not None and model.extraction.settings.mode == "block":
            # a block another replica's monitor set (shared state); this one's is checked above
            key = ("extraction", identity.name, model.name)
            limits.append((Limit.blocked(key), "extraction: blocked"))
        index, wait = await self._limits([lim for lim, _ in limits], mode="admit")
        if wait:
            raise _Reject(429, limits[index][1], retry_after=wait)

    async def _charge_bytes(self, identity: Identity, model: ServedModel, nbytes: int) -> None:
        """Right after the body is read, before any decoding: its full length (the binary
        tensor part included) against ``identity_bytes_per_s``."""
        _, _, policy = self._rates(model)
        bps = policy.rate_limit.identity_bytes_per_s
        if bps:
            limit = Limit.bucket(("bytes", identity.name, model.name), bps, bps, float(nbytes))
            _, wait = await self._limits([limit], mode="charge")
            if wait:
                raise _Reject(429, "rate limit: bytes", retry_after=wait)

    async def _charge(self, identity: Identity, model: ServedModel, rows: int) -> None:
        """Once the rows are known: the rows beyond the one charged at admission.

        The quota (first) refuses a batch that would take the window past its limit (nothing
        more is counted then); the token buckets take the rest as debt.
        """
        rps, burst, policy = self._rates(model)
        rl = policy.rate_limit
        rest = float(max(rows, 1) - 1)
        if rest <= 0:
            return
        who = (identity.name, model.name)
        limits: list[tuple[Limit, str]] = []
        if policy.quota.requests:
            quota = Limit.quota(("quota", *who), policy.quota.requests, policy.quota.window_s, rest)
            limits.append((quota, "quota exhausted"))
        limits.append((Limit.debit(("identity", *who), rps, burst, rest), "rate limit: identity"))
        limits.append(
            (
                Limit.debit(("model", model.name), rl.model_rps, rl.model_burst, rest),
                "rate limit: model",
            )
        )
        index, wait = await self._limits([lim for lim, _ in limits], mode="charge")
        if wait:
            raise _Reject(429, limits[index][1], retry_after=wait)

    async def _infer(
        self,
        scope: Scope,
        receive: Receive,
        identity: Identity,
        model: ServedModel,
        entry: dict[str, Any],
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None, str]:
        await self._admit(identity, model)
        raw = await self._read_body(scope, receive)
        await self._charge_bytes(identity, model, len(raw))
        header_len = _binary_header_length(scope, len(raw))
        binary = None
        if header_len is not None:
            raw, binary = raw[:header_len], raw[header_len:]
        try:
            doc = json.loads(raw)
        except RecursionError:
            raise _Reject(
                400, "json nested too deeply", body=b'{"error":"JSON nested too deeply"}'
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise _Reject(400, "malformed json", body=b'{"error":"malformed JSON"}') from None
        schema = model.schema
        if schema is None:
            raise _Reject(503, "model not ready")
        try:
            # datatype, rows and element count against the model before any element is decoded
            schema.precheck(doc)
        except ValidationFailed as exc:
            raise _Reject(
                422, f"validation: {exc.detail}", body=_dumps({"error": str(exc)})
            ) from None
        try:
            request = decode_infer_request(doc, binary)
        except ProtocolError as exc:
            raise _Reject(400, f"protocol: {exc}", body=_dumps({"error": str(exc)})) from None
        except RecursionError:
            raise _Reject(
                400, "data nested too deeply", body=b'{"error":"data nested too deeply"}'
            ) from None
        if request.id is not None:
            entry["request_id"] = request.id
        entry["input_sha256"] = input_digest(request.inputs, request.datatypes)
        if self.config.log_inputs or (
            model.settings is not None and model.settings.policy.log_inputs
        ):
            entry["inputs"] = {k: v.tolist() for k, v in request.inputs.items()}
        schema = model.schema
        runtime = model.runtime
        settings = model.settings
        if schema is None or runtime is None or settings is None:
            raise _Reject(503, "model not ready")
        if request.pd_columns:
            # MLServer pd codec: the columns form the model's one input, in request order
            target = schema.single_input
            if target is None:
                raise _Reject(
                    422,
                    "validation: pd codec needs a single-input model",
                    body=b'{"error":"the pd codec needs a model with one input"}',
                )
            request.inputs[target] = request.inputs.pop(PD_INPUT)
            request.datatypes[target] = request.datatypes.pop(PD_INPUT)
        try:
            rows = schema.validate(request.inputs, request.datatypes)
        except ValidationFailed as exc:
            admin = allowed(identity, model.name, "admin", settings.policy)
            shown = exc.detail if admin else str(exc)
            raise _Reject(422, f"validation: {exc.detail}", body=_dumps({"error": shown})) from None
        entry["rows"] = rows
        await self._charge(identity, model, rows)
        outputs = model.outputs
        if request.requested_outputs is not None:
            unknown = [o for o in request.requested_outputs if o not in model.output_names]
            if unknown or not request.requested_outputs:
                raise _Reject(
                    400, "unknown output", body=_dumps({"error": f"unknown outputs: {unknown}"})
                )
            outputs = tuple(dict.fromkeys(request.requested_outputs))
        features = _row_features(request.inputs, rows)
        if features is not None:
            await self._detect(identity, model, features, entry)
        batcher = model.batcher
        if batcher is None:
            raise _Reject(503, "model not ready")
        try:
            result = await batcher.predict(request.inputs, outputs, rows)
        except TimeoutError:
            raise _Reject(504, "inference timeout") from None
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "inference error", extra={"fields": {"model": model.name, "error": repr(exc)}}
            )
            raise _Reject(500, f"inference error: {type(exc).__name__}") from None
        chunks: list[bytes] = []
        response: dict[str, Any] = {
            "model_name": model.name,
            "model_version": model.version,
            "outputs": self._harden(model, result, outputs, request, chunks),
        }
        if request.id is not None:
            response["id"] = request.id
        body = _dumps(response)
        if chunks:
            headers = [
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", str(len(body)).encode()),
            ]
            return 200, b"".join([body, *chunks]), headers, model.name
        return 200, body, None, model.name

    async def _detect(
        self, identity: Identity, model: ServedModel, X: np.ndarray, entry: dict[str, Any]
    ) -> None:
        scores: dict[str, float] = {}
        blocked: str | None = None
        Xf = X.astype(np.float64, copy=False)
        for det in model.detectors:
            try:
                s = det.score(Xf)
            except ValueError:
                # the features differ from the detector's reference (width): recorded, not hidden
                entry.setdefault("detectors_skipped", []).append(det.name)
                continue
            top = float(np.max(s))
            scores[det.name] = round(top, 6)
            self.metrics.score(model.name, det.name, top, float(det.threshold))
            if top > det.threshold:
                self.metrics.alert(model.name, det.name)
                if det.mode == "block":
                    blocked = det.name
        if model.extraction is not None:
            w, alert = model.extraction.observe(identity.name, Xf)
            if w is not None:
                scores["extraction_w"] = round(w, 6)
            if model.extraction.campaign_alert:
                # model-wide: many identities together look like one campaign (never blocks)
                self.metrics.alert(model.name, "campaign")
                entry["extraction_campaign"] = True
            if alert:
                self.metrics.alert(model.name, "extraction")
                entry["extraction_alert"] = True
                if model.extraction.settings.mode == "block":
                    entry["detector_scores"] = scores
                    # other replicas refuse this identity for as long as this one does
                    try:
                        await self.state.block(
                            ("extraction", identity.name, model.name),
                            model.extraction.settings.block_s,
                        )
                    except StateUnavailable:
                        raise _Reject(503, "state unavailable") from None
                    raise _Reject(
                        429,
                        "extraction: alert",
                        retry_after=model.extraction.blocked(identity.name) or 1.0,
                    )
        if scores:
            entry["detector_scores"] = scores
        if blocked is not None:
            raise _Reject(
                422, f"detector: {blocked}", body=b'{"error":"input rejected by a detector"}'
            )

    def _harden(
        self,
        model: ServedModel,
        result: dict[str, np.ndarray],
        outputs: tuple[str, ...],
        request: Any = None,
        chunks: list[bytes] | None = None,
    ) -> list[dict[str, Any]]:
        settings = model.settings
        policy = settings.policy.output if settings else None
        encoded = []
        for name in outputs:
            arr = result[name]
            binary = chunks if request is not None and request.wants_binary(name) else None
            if policy is not None and arr.dtype.kind == "f":
                if policy.top_k and arr.ndim == 2:
                    k = min(policy.top_k, arr.shape[1])
                    idx = np.argsort(-arr, axis=1, kind="stable")[:, :k]
                    labels = (
                        model.labels[idx]
                        if model.labels is not None and model.labels.shape[0] == arr.shape[1]
                        else idx
                    )
                    encoded.append(
                        encode_tensor(f"{name}_top{k}", np.asarray(labels), binary=binary)
                    )
                    continue
                if policy.round >= 0:
                    arr = np.round(arr, policy.round)
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                arr = np.nan_to_num(arr)
            encoded.append(encode_tensor(name, arr, binary=binary))
        return encoded


_MODEL = "/v2/models/{model}"
_VERSION = "/v2/models/{model}/versions/{version}"

ROUTES: tuple[_Route, ...] = check_table(
    [
        # Route(method, path pattern, who may call it, handler)
        Route("GET", "/v2/health/live", Access.PUBLIC, MltrustServer._h_live),
        Route("GET", "/v2/health/ready", Access.PUBLIC, MltrustServer._h_ready),
        Route("GET", "/v2/openapi.json", Access.PUBLIC, MltrustServer._h_openapi),
        Route("GET", "/metrics", Access.METRICS, MltrustServer._h_metrics),
        Route("GET", "/v2", Access.AUTHENTICATED, MltrustServer._h_server_metadata),
        # the index lists only the models the caller holds metadata on (reasons: admin on one)
        Route(
            "POST", "/v2/repository/index", Access.AUTHENTICATED, MltrustServer._h_repository_index
        ),
        Route("GET", "/v2/admin/models", Access.ADMIN, MltrustServer._h_admin_models),
        Route("GET", _MODEL, Access.METADATA, MltrustServer._h_model_metadata),
        Route("GET", _MODEL + "/ready", Access.METADATA, MltrustServer._h_model_ready),
        Route("GET", _MODEL + "/stats", Access.METADATA, MltrustServer._h_model_stats),
        Route("POST", _MODEL + "/infer", Access.INFER, MltrustServer._h_model_infer),
        Route("GET", _VERSION, Access.METADATA, MltrustServer._h_model_metadata),
        Route("GET", _VERSION + "/ready", Access.METADATA, MltrustServer._h_model_ready),
        Route("GET", _VERSION + "/stats", Access.METADATA, MltrustServer._h_model_stats),
        Route("POST", _VERSION + "/infer", Access.INFER, MltrustServer._h_model_infer),
    ]
)
"""Every endpoint of the gateway and who may call it (see :mod:`._routes` for the order of
checks). docs/threat-model-serve.md shows it as a matrix (``scripts/serve_routes.py``)."""


def _row_features(inputs: dict[str, np.ndarray], rows: int) -> np.ndarray | None:
    """What the extraction monitor and the detectors see: one row per prediction, the numeric
    inputs flattened per row and concatenated in input-name order (so a model with several
    inputs, or 1-D / 3-D inputs, is monitored like a 2-D one). Non-numeric inputs (BYTES) are
    left out; None when no input is numeric (see :func:`_monitoring_gap`)."""
    parts = [
        inputs[name].reshape(rows, -1)
        for name in sorted(inputs)
        if inputs[name].dtype.kind in "fiub" and inputs[name].size
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _monitoring_gap(model: ServedModel) -> str | None:
    """Why monitoring configured for ``model`` sees less than every input (None if it sees all).

    Shown in ``/v2/admin/models`` and logged at load."""
    settings, schema = model.settings, model.schema
    if settings is None or schema is None:
        return None
    if model.extraction is None and not model.detectors:
        return None
    blind = schema.unmonitored_inputs
    if not blind:
        return None
    return f"extraction/detectors do not see the non-numeric inputs {list(blind)}" + (
        " (nothing is monitored)" if len(blind) == len(settings.inputs) else ""
    )


def audit_locations(
    config: ServerConfig,
) -> tuple[Path | str, Path, Path, tuple[Path, ...]]:
    """(database path or URL, audit key, anchor, folders the key and anchor may not live in)."""
    key_path = config.audit_key or default_key_path()
    # the whole repository: whoever may publish a model folder must not reach the key either
    forbidden = (config.repo, state_dir(config.repo))
    if config.audit_url is not None:
        # PostgreSQL: one chain for every replica; each host anchors it next to its key
        return (
            config.audit_url,
            key_path,
            config.audit_anchor or default_anchor_path(key_path, config.audit_url),
            forbidden,
        )
    db = config.resolved_audit_path
    anchor = config.audit_anchor or default_anchor_path(key_path, db)
    return db, key_path, anchor, (*forbidden, db.parent)


def open_audit_log(config: ServerConfig) -> AuditLog:
    """The server's audit log, anchored outside the state folder (refuses a tampered log)."""
    db, key_path, anchor, forbidden = audit_locations(config)
    key = load_audit_key(key_path, create=True, forbidden=forbidden)
    for folder in forbidden:
        if anchor.resolve().is_relative_to(folder.resolve()):
            raise ConfigError(f"audit anchor {anchor} lies inside {folder}: keep it outside")
    return AuditLog(db, key=key, anchor=anchor, sync=config.audit_sync)


def create_app(config: ServerConfig) -> MltrustServer:
    """Admit the repository's models and return the ASGI application."""
    return MltrustServer(config)


def app_from_env() -> MltrustServer:
    """uvicorn factory for ``--workers N``: the config travels in an environment variable."""
    from mltrust.serve._logging import configure_logging

    configure_logging()
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise RuntimeError(f"{CONFIG_ENV} is not set")
    config = ServerConfig.from_json(text)
    # several workers behind one port: each worker's series carry its own replica label
    name = f"{config.replica or 'worker'}-{os.getpid()}"
    return create_app(dataclasses.replace(config, replica=name))
