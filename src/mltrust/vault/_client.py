"""A small HTTP client for the vault API (standard library only, so CI images need nothing).

``MLTRUST_VAULT_ADDR`` (default ``http://127.0.0.1:8200``) and ``MLTRUST_VAULT_TOKEN`` configure
it; ``MLTRUST_VAULT_CACERT`` names a CA bundle for a TLS server with a private CA. Errors carry
the server's fixed error body and the HTTP status, never a request body.

Redirects are refused, not followed: urllib would resend ``Authorization: Bearer`` to whatever
host and scheme the ``Location`` names (https → http included), handing the token and the
trust in the answer to another server. The error names the ``Location`` so the operator can
point ``MLTRUST_VAULT_ADDR`` at the real address.
"""

from __future__ import annotations

import builtins
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mltrust.errors import ConfigError, InputError

__all__ = ["ADDR_ENV", "TOKEN_ENV", "VaultClient", "VaultHTTPError"]

ADDR_ENV = "MLTRUST_VAULT_ADDR"
TOKEN_ENV = "MLTRUST_VAULT_TOKEN"  # noqa: S105 - a variable name
CACERT_ENV = "MLTRUST_VAULT_CACERT"
DEFAULT_ADDR = "http://127.0.0.1:8200"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        shown = "".join(ch if ch.isprintable() else "?" for ch in newurl)[:300]
        raise ConfigError(
            f"the vault at {req.full_url.split('?')[0]} answered {code} redirecting to {shown};"
            " refusing to follow (the token would be sent along)",
            hint=f"set {ADDR_ENV} to the vault's real address",
        )


class VaultHTTPError(InputError):
    def __init__(self, status: int, doc: dict[str, Any]) -> None:
        detail = f" ({doc['detail']})" if isinstance(doc.get("detail"), str) else ""
        super().__init__(f"vault answered {status}: {doc.get('error', 'error')}{detail}")
        self.status = status
        self.doc = doc


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")


class VaultClient:
    def __init__(
        self, addr: str | None = None, token: str | None = None, *, timeout: float = 30.0
    ) -> None:
        self.addr = (addr or os.environ.get(ADDR_ENV) or DEFAULT_ADDR).rstrip("/")
        if not self.addr.startswith(("http://", "https://")):
            raise ConfigError(f"{ADDR_ENV} must be an http:// or https:// URL")
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")
        if not self.token:
            raise ConfigError("no vault token", hint=f"set {TOKEN_ENV}")
        self.timeout = timeout
        cafile = os.environ.get(CACERT_ENV)
        context = ssl.create_default_context(cafile=cafile) if cafile else None
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _RefuseRedirects()
        )

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        url = self.addr + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) only
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                doc = json.loads(exc.read())
            except ValueError:
                doc = {}
            raise VaultHTTPError(exc.code, doc if isinstance(doc, dict) else {}) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError(f"cannot reach the vault at {self.addr}: {reason}") from None

    # -- environments ------------------------------------------------------------------------
    def env_create(self, name: str, description: str = "") -> Any:
        return self.request("POST", "/environments", {"name": name, "description": description})

    def env_list(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/environments")["environments"])

    def env_delete(self, env: str) -> Any:
        return self.request("DELETE", f"/environments/{_q(env)}")

    # -- variables ---------------------------------------------------------------------------
    def _var(self, env: str, name: str) -> str:
        return f"/environments/{_q(env)}/variables/{_q(name)}"

    def list(self, env: str, *, values: bool = False) -> dict[str, Any]:
        query = {"values": "true"} if values else None
        return dict(self.request("GET", f"/environments/{_q(env)}/variables", query=query))

    def values(self, env: str) -> dict[str, str]:
        doc = self.list(env, values=True)
        return {v["name"]: v["value"] for v in doc["variables"] if v.get("value") is not None}

    def get(self, env: str, name: str, version: int | None = None) -> dict[str, Any]:
        query = None if version is None else {"version": str(version)}
        return dict(self.request("GET", self._var(env, name), query=query))

    def set(
        self,
        env: str,
        name: str,
        value: str,
        *,
        secret: bool | None = None,
        cas: int | None = None,
    ) -> dict[str, Any]:
        """A new version, or the variable itself when it does not exist yet."""
        body: dict[str, Any] = {"value": value}
        if secret is not None:
            body["secret"] = secret
        if cas is not None:
            body["cas"] = cas
        try:
            return dict(self.request("PUT", self._var(env, name), body))
        except VaultHTTPError as exc:
            if exc.status != 404 or cas not in (None, 0):
                raise
        create: dict[str, Any] = {"name": name, "value": value}
        if secret is not None:
            create["secret"] = secret
        return dict(self.request("POST", f"/environments/{_q(env)}/variables", create))

    def history(self, env: str, name: str) -> dict[str, Any]:
        return dict(self.request("GET", self._var(env, name) + "/versions"))

    def delete(
        self,
        env: str,
        name: str,
        versions: builtins.list[int] | None = None,
        *,
        purge: bool = False,
    ) -> Any:
        query: dict[str, str] = {}
        if versions:
            query["versions"] = ",".join(str(v) for v in versions)
        if purge:
            query["purge"] = "true"
        return self.request("DELETE", self._var(env, name), query=query or None)

    def undelete(self, env: str, name: str, versions: builtins.list[int]) -> Any:
        return self.request("POST", self._var(env, name) + "/undelete", {"versions": versions})

    def destroy(self, env: str, name: str, versions: builtins.list[int]) -> Any:
        return self.request("POST", self._var(env, name) + "/destroy", {"versions": versions})

    def rollback(self, env: str, name: str, version: int) -> dict[str, Any]:
        """Write version ``version``'s value as a new version (check-and-set on the current)."""
        old = self.get(env, name, version)
        return dict(
            self.request(
                "PUT", self._var(env, name), {"value": old["value"], "cas": old["current_version"]}
            )
        )
