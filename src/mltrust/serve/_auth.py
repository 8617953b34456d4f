"""Authentication: API keys and JWT bearer tokens (RS256/ES256 against a JWKS file).

An :class:`Identity` carries the grants ``(model or "*", role)`` the credential holds. Failures
raise :class:`AuthError` whose ``reason`` goes to the audit log only; clients always see
``401 {"error": "unauthorized"}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt

from mltrust.errors import AuthError, ConfigError
from mltrust.identity import Identity
from mltrust.serve._keys import KeyStore, is_key_id

__all__ = ["AuthError", "Authenticator", "Identity", "JwtVerifier"]

_ASYMMETRIC = {"RSA": ("RS256",), "EC": ("ES256",)}


class JwtVerifier:
    def __init__(
        self, jwks_path: Path, *, issuer: str, audience: str, leeway: float = 30.0
    ) -> None:
        try:
            doc = json.loads(jwks_path.read_text(encoding="utf-8"))
            keys = doc["keys"]
            if not isinstance(keys, list) or not keys:
                raise ValueError("no keys")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{jwks_path}: not a JWKS document: {exc}") from None
        self._keys: dict[str | None, tuple[Any, tuple[str, ...]]] = {}
        for jwk in keys:
            kty = jwk.get("kty")
            if kty not in _ASYMMETRIC:
                raise ConfigError(f"{jwks_path}: only RSA and EC keys are accepted, got {kty!r}")
            if "d" in jwk:
                raise ConfigError(f"{jwks_path}: the JWKS holds a private key")
            allowed = _ASYMMETRIC[kty]
            if jwk.get("alg") is not None and jwk["alg"] not in allowed:
                raise ConfigError(f"{jwks_path}: key alg {jwk['alg']!r} is not accepted")
            try:
                key = jwt.PyJWK.from_dict(jwk, algorithm=allowed[0]).key
            except jwt.PyJWTError as exc:
                raise ConfigError(f"{jwks_path}: bad key: {exc}") from None
            kid = jwk.get("kid")
            if kid in self._keys:
                raise ConfigError(f"{jwks_path}: duplicate kid {kid!r}")
            self._keys[kid] = (key, allowed)
        if not issuer or not audience:
            raise ConfigError("JWT needs both an issuer and an audience")
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("jwt: malformed") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if kid is None:
            if len(self._keys) != 1:
                raise AuthError("jwt: no kid and several keys")
            key, allowed = next(iter(self._keys.values()))
        else:
            found = self._keys.get(kid)
            if found is None:
                raise AuthError("jwt: unknown kid")
            key, allowed = found
        if alg not in allowed:  # rejects none, HS256 (key confusion) and mismatched families
            raise AuthError(f"jwt: algorithm {alg!r} not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(allowed),
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("jwt: expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("jwt: not yet valid") from None
        except jwt.InvalidAudienceError:
            raise AuthError("jwt: wrong audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("jwt: wrong issuer") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"jwt: {type(exc).__name__}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthError("jwt: bad sub")
        grants: set[tuple[str, str]] = set()
        roles = claims.get("roles", [])
        if isinstance(roles, list):
            for item in roles:
                if isinstance(item, str) and ":" in item:
                    model, _, role = item.partition(":")
                    grants.add((model, role))
        principal = f"jwt:{self._issuer}:{sub}"
        return Identity(principal, frozenset(grants), frozenset({principal}))


class Authenticator:
    def __init__(self, keys: KeyStore | None, jwt_verifier: JwtVerifier | None) -> None:
        self._keys = keys
        self._jwt = jwt_verifier

    def authenticate(self, authorization: str | None, api_key: str | None) -> Identity:
        token: str | None = None
        if api_key is not None:
            token = api_key.strip()
        elif authorization is not None:
            scheme, _, value = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise AuthError("malformed authorization header")
            token = value.strip()
        if not token:
            raise AuthError("no credentials")
        if token.startswith("mlt_"):
            if self._keys is None:
                raise AuthError("api keys disabled")
            record = self._keys.authenticate(token)
            if record is None:
                raise AuthError("unknown or revoked api key")
            principals = {f"key:{record.key_id}"}
            if not is_key_id(record.name):  # else it would name another key (see is_key_id)
                principals.add(f"key:{record.name}")
            return Identity(
                f"key:{record.key_id}:{record.name}",
                frozenset(record.grants),
                frozenset(principals),
            )
        if self._jwt is None:
            raise AuthError("jwt disabled")
        return self._jwt.verify(token)
