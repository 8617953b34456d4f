"""Authentication and authorization abuse: API keys and JWT bearer tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mltrust.serve import KeyStore
from test_serve_support import (
    ROW,
    add_python_model,
    audit_entries,
    infer_body,
    make_server,
    new_key,
    plugin_dir,
    served_namespace,
)

ISS = "https://issuer.test"
AUD = "mltrust-serve"
UNAUTHORIZED = {"error": "unauthorized"}
FORBIDDEN = {"error": "forbidden"}


@pytest.fixture
def served(tmp_path):
    yield from served_namespace(tmp_path)


# -- API keys ----------------------------------------------------------------------------------
def test_missing_credentials_401_fixed_body(served):
    r = served.client.post("/v2/models/calc/infer", json=infer_body([ROW]))
    assert r.status_code == 401 and r.json() == UNAUTHORIZED


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer mlt_nothex_xxx"},
        {"Authorization": "Bearer mlt_"},
        {"X-API-Key": "mlt_000000000000_" + "A" * 43},
        {"Authorization": "Bearer not-a-jwt-either"},
    ],
)
def test_malformed_or_unknown_credentials_401(served, headers):
    r = served.client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=headers)
    assert r.status_code == 401 and r.json() == UNAUTHORIZED


def test_x_api_key_header_accepted(served):
    key = served.infer["Authorization"].split(" ", 1)[1]
    r = served.client.post(
        "/v2/models/calc/infer", json=infer_body([ROW]), headers={"X-API-Key": key}
    )
    assert r.status_code == 200


def test_key_with_one_wrong_character_rejected(served):
    key = served.infer["Authorization"].split(" ", 1)[1]
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    r = served.client.post(
        "/v2/models/calc/infer",
        json=infer_body([ROW]),
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert r.status_code == 401


def test_revoked_key_rejected(served):
    c = served.client
    assert c.get("/v2/models/calc", headers=served.infer).status_code == 200
    assert KeyStore(served.repo).revoke("alice") == 1
    served.app.keys.refresh(max_age=0)
    r = c.get("/v2/models/calc", headers=served.infer)
    assert r.status_code == 401 and r.json() == UNAUTHORIZED
    reasons = [e.get("reason") for e in audit_entries(served.repo)]
    assert "unauthenticated: unknown or revoked api key" in reasons


def test_key_stored_only_as_hmac(served):
    key = served.infer["Authorization"].split(" ", 1)[1]
    raw = (served.repo / ".mltrust" / "serve.db").read_bytes()
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw


def test_another_models_role_is_403(served, tmp_path):
    other = new_key(served.repo, "onnx-only", [("iris-onnx", "infer")])
    served.app.keys.refresh(max_age=0)
    r = served.client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=other)
    assert r.status_code == 403 and r.json() == FORBIDDEN
    assert served.client.get("/v2/models/calc", headers=other).status_code == 403


def test_metadata_role_cannot_infer(served):
    c = served.client
    assert c.get("/v2/models/calc", headers=served.meta).status_code == 200
    r = c.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=served.meta)
    assert r.status_code == 403 and r.json() == FORBIDDEN


def test_admin_endpoints_need_admin(served):
    c = served.client
    assert c.get("/v2/admin/models", headers=served.infer).status_code == 403
    assert c.get("/metrics", headers=served.infer).status_code == 403
    r = c.get("/v2/admin/models", headers=served.admin)
    assert r.status_code == 200 and {m["name"] for m in r.json()["models"]} >= {"calc"}
    m = c.get("/metrics", headers=served.admin)
    assert m.status_code == 200 and "mltrust_requests_total" in m.text


def test_policy_roles_grant_named_identity(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total", policy={"roles": {"key:carol": ["infer"]}})
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        carol = new_key(repo, "carol", [("unrelated", "metadata")])
        dave = new_key(repo, "dave", [("unrelated", "metadata")])
        app.keys.refresh(max_age=0)
        assert (
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=carol).status_code
            == 200
        )
        assert (
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=dave).status_code
            == 403
        )
    finally:
        client.close()


# -- JWT -------------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def jwt_env(tmp_path: Path):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    rsa_jwk.update(kid="rsa-1", use="sig")
    ec_jwk.update(kid="ec-1", use="sig")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    partner_roles = {"key:partner-svc": ["infer"], f"jwt:{ISS}:svc-b": ["infer"]}
    add_python_model(repo, "partner", "total", policy={"roles": partner_roles})
    client, app = make_server(
        repo,
        plugin_path=plugin_dir(tmp_path),
        jwks=jwks,
        jwt_issuer=ISS,
        jwt_audience=AUD,
        jwt_leeway_s=5.0,
    )

    def token(key=rsa_key, alg="RS256", kid="rsa-1", **claims):
        now = int(time.time())
        payload = {
            "iss": ISS,
            "aud": AUD,
            "sub": "svc-a",
            "iat": now,
            "nbf": now - 1,
            "exp": now + 300,
            "roles": ["calc:infer"],
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(payload, key, algorithm=alg, headers=headers)

    class NS:
        pass

    ns = NS()
    ns.client, ns.app, ns.token, ns.rsa, ns.ec, ns.repo = client, app, token, rsa_key, ec_key, repo
    yield ns
    client.close()


def _call(env, tok):
    return env.client.post(
        "/v2/models/calc/infer", json=infer_body([ROW]), headers={"Authorization": f"Bearer {tok}"}
    )


def test_jwt_rs256_and_es256_accepted(jwt_env):
    assert _call(jwt_env, jwt_env.token()).status_code == 200
    assert _call(jwt_env, jwt_env.token(key=jwt_env.ec, alg="ES256", kid="ec-1")).status_code == 200
    entries = audit_entries(jwt_env.repo)
    assert entries[-1]["identity"] == f"jwt:{ISS}:svc-a"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "jwt: expired"),
        ({"nbf": int(time.time()) + 3600}, "jwt: not yet valid"),
        ({"aud": "someone-else"}, "jwt: wrong audience"),
        ({"iss": "https://evil.test"}, "jwt: wrong issuer"),
        ({"exp": None}, "jwt: MissingRequiredClaimError"),
    ],
)
def test_jwt_claim_checks(jwt_env, claims, reason):
    r = _call(jwt_env, jwt_env.token(**claims))
    assert r.status_code == 401 and r.json() == UNAUTHORIZED
    assert audit_entries(jwt_env.repo)[-1]["reason"] == f"unauthenticated: {reason}"


def test_jwt_alg_none_rejected(jwt_env):
    now = int(time.time())
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = _b64(
        json.dumps(
            {"iss": ISS, "aud": AUD, "sub": "x", "exp": now + 60, "roles": ["*:admin"]}
        ).encode()
    )
    for tok in (f"{header}.{body}.", f"{header}.{body}"):
        r = _call(jwt_env, tok)
        assert r.status_code == 401 and r.json() == UNAUTHORIZED


def test_jwt_hs256_with_public_key_confusion_rejected(jwt_env):
    pem = jwt_env.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = _b64(
        json.dumps(
            {"iss": ISS, "aud": AUD, "sub": "x", "exp": now + 60, "roles": ["*:admin"]}
        ).encode()
    )
    sig = _b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    r = _call(jwt_env, f"{header}.{body}.{sig}")
    assert r.status_code == 401
    assert (
        audit_entries(jwt_env.repo)[-1]["reason"]
        == "unauthenticated: jwt: algorithm 'HS256' not accepted"
    )


def test_jwt_es256_header_on_rsa_key_rejected(jwt_env):
    tok = jwt_env.token(key=jwt_env.ec, alg="ES256", kid="rsa-1")
    assert _call(jwt_env, tok).status_code == 401


def test_jwt_unknown_kid_rejected(jwt_env):
    assert _call(jwt_env, jwt_env.token(kid="who")).status_code == 401
    assert audit_entries(jwt_env.repo)[-1]["reason"] == "unauthenticated: jwt: unknown kid"


def test_jwt_missing_kid_with_several_keys_rejected(jwt_env):
    assert _call(jwt_env, jwt_env.token(kid=None)).status_code == 401
    assert (
        audit_entries(jwt_env.repo)[-1]["reason"] == "unauthenticated: jwt: no kid and several keys"
    )


def test_jwt_signed_by_unknown_key_rejected(jwt_env):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _call(jwt_env, jwt_env.token(key=other)).status_code == 401


def test_jwt_role_for_another_model_is_403(jwt_env):
    r = _call(jwt_env, jwt_env.token(roles=["other:infer"]))
    assert r.status_code == 403 and r.json() == FORBIDDEN


def test_credential_guessing_is_rate_limited_per_client(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, _ = make_server(repo, plugin_path=plugin_dir(tmp_path), auth_failure_rps=1.0)
    try:
        codes = [
            client.get("/v2/models/calc", headers={"X-API-Key": f"mlt_{i:012x}_guess"}).status_code
            for i in range(4)
        ]
        assert codes == [401, 401, 429, 429]
        assert audit_entries(repo)[-1]["reason"] == "auth failures: rate limit"
    finally:
        client.close()


# -- identity confusion ------------------------------------------------------------------------
def _partner(env, headers):
    return env.client.post("/v2/models/partner/infer", json=infer_body([ROW]), headers=headers)


def test_jwt_sub_equal_to_a_key_name_does_not_inherit_its_grant(jwt_env):
    tok = jwt_env.token(sub="partner-svc", roles=[])
    r = _partner(jwt_env, {"Authorization": f"Bearer {tok}"})
    assert r.status_code == 403 and r.json() == FORBIDDEN
    key = new_key(jwt_env.repo, "partner-svc", [("unrelated", "metadata")])
    jwt_env.app.keys.refresh(max_age=0)
    assert _partner(jwt_env, key).status_code == 200  # the grant still works for its key


def test_key_named_like_a_jwt_principal_does_not_inherit_its_grant(jwt_env):
    tok = jwt_env.token(sub="svc-b", roles=[])
    assert _partner(jwt_env, {"Authorization": f"Bearer {tok}"}).status_code == 200
    for name in ("svc-b", f"{ISS}:svc-b", f"jwt:{ISS}:svc-b"):
        key = new_key(jwt_env.repo, name, [("unrelated", "metadata")])
        jwt_env.app.keys.refresh(max_age=0)
        assert _partner(jwt_env, key).status_code == 403, name


def test_token_from_another_issuer_name_does_not_match(jwt_env):
    tok = jwt_env.token(sub="svc-b", roles=[], iss="https://evil.test")
    assert _partner(jwt_env, {"Authorization": f"Bearer {tok}"}).status_code == 401


def test_bare_principal_in_policy_roles_refuses_the_model(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total", policy={"roles": {"carol": ["infer"]}})
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        carol = new_key(repo, "carol", [("unrelated", "metadata")])
        admin = new_key(repo, "root", [("*", "admin")])
        app.keys.refresh(max_age=0)
        r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=carol)
        assert r.status_code == 403
        (model,) = client.get("/v2/admin/models", headers=admin).json()["models"]
        assert not model["ready"] and "key:NAME" in model["reason"]
    finally:
        client.close()
