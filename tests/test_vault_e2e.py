"""End to end over real HTTP (uvicorn on 127.0.0.1, a random port) on SQLite and PostgreSQL:
the CLI client workflow, token scopes and expiry, deny by default, the failed-auth limit,
sealing, and the audit chain."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request

import pytest

from _net_helpers import self_signed_cert
from _vault_helpers import (  # noqa: F401 - fixtures
    PASSPHRASE,
    Server,
    cli_env,
    database,
    init_vault,
    mltrust,
    new_token,
    pg_url,
)
from mltrust.vault._client import VaultClient, VaultHTTPError


@pytest.fixture
def server(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    srv = Server(state, database)
    yield srv
    srv.stop()


def _raw(srv: Server, method: str, path: str, token: str | None, body=None):
    req = urllib.request.Request(
        srv.addr + path, method=method, data=None if body is None else json.dumps(body).encode()
    )
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture
def sqlite_server(tmp_path):
    state = init_vault(tmp_path, None)
    srv = Server(state, None)
    yield srv
    srv.stop()


def test_cli_workflow_set_get_history_rollback_run_pull(sqlite_server, tmp_path):
    """The client commands, once (backend-independent: PostgreSQL runs the HTTP tests)."""
    server = sqlite_server
    admin = new_token(server.state, None, "*", "admin")
    env = cli_env(MLTRUST_VAULT_ADDR=server.addr, MLTRUST_VAULT_TOKEN=admin)
    mltrust("vault", "env", "create", "production", "--description", "prod", env=env)
    assert "production" in mltrust("vault", "env", "list", env=env).stdout
    mltrust("vault", "set", "production", "DB_PASSWORD", "--stdin", input="first", env=env)
    value_file = tmp_path / "v.txt"
    value_file.write_text("second")
    mltrust("vault", "set", "production", "DB_PASSWORD", "--from-file", str(value_file), env=env)
    assert mltrust("vault", "get", "production", "DB_PASSWORD", env=env).stdout == "second\n"
    got = mltrust("vault", "get", "production", "DB_PASSWORD", "--version", "1", env=env)
    assert got.stdout == "first\n"
    hist = mltrust("vault", "history", "production", "DB_PASSWORD", env=env).stdout
    assert "v1" in hist and "*v2" in hist
    mltrust("vault", "rollback", "production", "DB_PASSWORD", "--version", "1", env=env)
    assert mltrust("vault", "get", "production", "DB_PASSWORD", env=env).stdout == "first\n"
    listing = mltrust("vault", "list", "production", env=env).stdout
    assert "DB_PASSWORD" in listing and "first" not in listing  # no values unless asked

    # .env import, then run: variables reach the child's environment only
    dotenv = tmp_path / "in.env"
    dotenv.write_text("export API_KEY='abc def'\nMULTI=\"l1\\nl2\"\n# comment\nPLAIN=x # c\n")
    mltrust("vault", "import", "--env", "production", str(dotenv), env=env)
    probe = "import os,json;print(json.dumps({k:os.environ.get(k) for k in "
    probe += "['DB_PASSWORD','API_KEY','MULTI','PLAIN','MLTRUST_VAULT_TOKEN']}))"
    out = mltrust(
        "vault", "run", "--env", "production", "--", sys.executable, "-c", probe, env=env
    ).stdout
    assert json.loads(out) == {
        "DB_PASSWORD": "first",
        "API_KEY": "abc def",
        "MULTI": "l1\nl2",
        "PLAIN": "x",
        "MLTRUST_VAULT_TOKEN": None,
    }
    failing = mltrust(
        "vault",
        "run",
        "--env",
        "production",
        "--",
        sys.executable,
        "-c",
        "raise SystemExit(7)",
        env=env,
        check=False,
    )
    assert failing.returncode == 7

    # pull with a command: the file is 0600 while the job runs and gone after it FAILS
    target = tmp_path / "job.env"
    job = (
        "import os,stat,sys;p=sys.argv[1];m=stat.S_IMODE(os.stat(p).st_mode);"
        "print(oct(m), open(p).read().count('DB_PASSWORD'));sys.exit(3)"
    )
    res = mltrust(
        "vault",
        "pull",
        "--env",
        "production",
        "--dotenv",
        str(target),
        "--",
        sys.executable,
        "-c",
        job,
        str(target),
        env=env,
        check=False,
    )
    assert res.returncode == 3
    assert res.stdout.split() == ["0o600", "1"]
    assert not target.exists()
    # pull then clear (the two-step CI form)
    mltrust("vault", "pull", "--env", "production", "--dotenv", str(target), env=env)
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    from mltrust.vault._dotenv import parse_dotenv

    assert parse_dotenv(target.read_text())["MULTI"] == "l1\nl2"
    mltrust("vault", "clear", "--dotenv", str(target), env=env)
    assert not target.exists()

    mltrust("vault", "env", "delete", "production", env=env)
    assert "production" not in mltrust("vault", "env", "list", env=env).stdout
    verify = mltrust("audit", "verify", str(server.state), "-f", "json", env=env)
    assert json.loads(verify.stdout)["ok"] is True


def test_kv2_versions_over_http(server, database):  # noqa: F811
    c = VaultClient(server.addr, new_token(server.state, database, "*", "admin"))
    c.env_create("dev")
    c.set("dev", "K", "v1")
    c.set("dev", "K", "v2")
    with pytest.raises(VaultHTTPError) as e:
        c.set("dev", "K", "lost", cas=1)
    assert e.value.status == 409
    c.set("dev", "K", "v3", cas=2)
    c.delete("dev", "K")
    with pytest.raises(VaultHTTPError) as e:
        c.get("dev", "K")
    assert e.value.status == 404
    c.undelete("dev", "K", [3])
    assert c.get("dev", "K")["value"] == "v3"
    c.destroy("dev", "K", [1])
    hist = c.history("dev", "K")
    assert [(v["version"], v["destroyed"]) for v in hist["versions"]] == [
        (1, True),
        (2, False),
        (3, False),
    ]
    c.delete("dev", "K", purge=True)
    with pytest.raises(VaultHTTPError):
        c.history("dev", "K")


def test_token_scopes_deny_by_default(server, database):  # noqa: F811
    admin = VaultClient(server.addr, new_token(server.state, database, "*", "admin"))
    admin.env_create("dev")
    admin.env_create("prod")
    admin.set("prod", "SECRET", "p")
    admin.set("dev", "SECRET", "d")
    dev_read = VaultClient(server.addr, new_token(server.state, database, "dev", "read"))
    dev_write = VaultClient(server.addr, new_token(server.state, database, "dev", "write"))
    assert dev_read.get("dev", "SECRET")["value"] == "d"
    assert [e["name"] for e in dev_read.env_list()] == ["dev"]  # prod stays invisible
    for call in (
        lambda: dev_read.get("prod", "SECRET"),  # other environment
        lambda: dev_read.set("dev", "SECRET", "x"),  # write with a read token
        lambda: dev_write.env_delete("dev"),  # admin with a write token
        lambda: dev_write.destroy("dev", "SECRET", [1]),
        lambda: dev_read.get("nonexistent", "SECRET"),  # 403, not 404: no existence oracle
        lambda: dev_write.env_create("dev2"),
    ):
        with pytest.raises(VaultHTTPError) as e:
            call()
        assert e.value.status == 403
    status, body = _raw(server, "GET", "/environments/dev/variables/SECRET", None)
    assert (status, body) == (401, {"error": "unauthorized"})
    status, _ = _raw(server, "GET", "/environments", "mltv_0000000000000000_" + "A" * 43)
    assert status == 401
    status, _ = _raw(server, "GET", "/nope", dev_read.token)
    assert status == 404
    # denials are in the audit log, values are not
    from mltrust.store._audit import iter_entries

    entries = [json.loads(t) for _, t, _, _ in iter_entries(server.state / ".mltrust/audit.db")]
    denied = [e for e in entries if e["decision"] == "deny"]
    assert any(e["status"] == 403 and e.get("env") == "prod" for e in denied)
    assert any(e["status"] == 401 for e in denied)
    assert not any(e.get("value") == "d" for e in entries)


def test_expired_and_revoked_tokens_fail(server, database):  # noqa: F811
    admin = VaultClient(server.addr, new_token(server.state, database, "*", "admin"))
    admin.env_create("e")
    t0 = time.monotonic()
    short = VaultClient(server.addr, new_token(server.state, database, "e", "read", "--ttl", "4s"))
    if time.monotonic() - t0 < 3:  # still well inside its lifetime (a loaded machine is slow)
        short.list("e")
    # The token was created inside the command, between t0 and now: it has expired 4 s after
    # now at the latest (plus the second a server may keep a token it read).
    time.sleep(5.2)
    with pytest.raises(VaultHTTPError) as e:
        short.list("e")
    assert e.value.status == 401
    token = new_token(server.state, database, "e", "read", "--name", "ci-job")
    VaultClient(server.addr, token).list("e")
    args = ["vault", "token", "revoke", "--state", str(server.state), "ci-job"]
    mltrust(*args, *(["--database", database] if database else []))
    time.sleep(1.1)  # servers re-read a token within a second
    with pytest.raises(VaultHTTPError) as e:
        VaultClient(server.addr, token).list("e")
    assert e.value.status == 401


def test_credential_guessing_is_rate_limited(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    valid = new_token(state, database, "*", "read")
    srv = Server(state, database, "--auth-failure-rps", "1")  # burst 2
    try:
        statuses = [
            _raw(srv, "GET", "/environments", f"mltv_{i:016x}_" + "B" * 43)[0] for i in range(12)
        ]
        assert statuses[0] == 401
        assert 429 in statuses and set(statuses) <= {401, 429}
        assert _raw(srv, "GET", "/environments", valid)[0] == 200  # no lock-out of real tokens
    finally:
        srv.stop()


def test_sealed_until_unsealed(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    token = new_token(state, database, "*", "admin")
    srv = Server(state, database, "--sealed")
    try:
        assert _raw(srv, "GET", "/sys/health", None)[1]["sealed"] is True
        assert _raw(srv, "GET", "/environments", token) == (503, {"error": "sealed"})
        assert _raw(srv, "POST", "/sys/unseal", None, {"passphrase": "wrong"})[0] == 403
        assert _raw(srv, "POST", "/sys/unseal", None, {"passphrase": PASSPHRASE})[0] == 200
        assert _raw(srv, "GET", "/environments", token)[0] == 200
        assert _raw(srv, "POST", "/sys/seal", token)[0] == 200
        assert _raw(srv, "GET", "/environments", token)[0] == 503
    finally:
        srv.stop()


def test_unseal_guessing_is_rate_limited(tmp_path):
    """Passphrase guessing (and scrypt as a CPU/memory lever) is limited per address."""
    state = init_vault(tmp_path, None)
    srv = Server(state, None, "--sealed", "--auth-failure-rps", "0.5")  # burst 1
    try:
        guesses = [
            _raw(srv, "POST", "/sys/unseal", None, {"passphrase": f"g{i}"})[0] for i in range(5)
        ]
        assert guesses[0] == 403
        assert 429 in guesses and set(guesses) <= {403, 429}
        assert _raw(srv, "GET", "/sys/health", None)[1]["sealed"] is True
    finally:
        srv.stop()


def test_wrong_passphrase_refuses_to_start(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    args = ["vault", "serve", "--state", str(state), "--port", "0"]
    if database:
        args += ["--database", database]
    res = mltrust(*args, env=cli_env(MLTRUST_VAULT_PASSPHRASE="not it"), check=False)
    assert res.returncode == 2
    assert "wrong key-encryption key" in res.stderr
    assert "not it" not in res.stderr


def test_http_unseal_cannot_choose_the_kek_of_an_unbound_vault(tmp_path):
    """init without a KEK: someone who reaches /sys/unseal first must not bind theirs."""
    state = tmp_path / "state"
    env = cli_env()
    env.pop("MLTRUST_VAULT_PASSPHRASE")
    mltrust("vault", "init", "--state", str(state), "--kdf-cost", "14", env=env)
    srv = Server(state, None, "--sealed", env=env)
    try:
        status, _ = _raw(srv, "POST", "/sys/unseal", None, {"passphrase": "attacker's choice"})
        assert status == 403
        assert _raw(srv, "GET", "/sys/health", None)[1]["sealed"] is True
    finally:
        srv.stop()
    # the operator's own start binds the KEK; the attacker's passphrase is still refused
    srv = Server(state, None)
    srv.stop()
    srv = Server(state, None, "--sealed")
    try:
        assert _raw(srv, "POST", "/sys/unseal", None, {"passphrase": "attacker's choice"})[0] == 403
        assert _raw(srv, "POST", "/sys/unseal", None, {"passphrase": PASSPHRASE})[0] == 200
    finally:
        srv.stop()


def test_tls_and_jwt_bearer_tokens(tmp_path, monkeypatch):
    jwt = pytest.importorskip("jwt")
    from cryptography.hazmat.primitives.asymmetric import ec

    cert, key = self_signed_cert(tmp_path)
    signing = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(signing.public_key()))
    jwk["kid"] = "k1"
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}))
    state = init_vault(tmp_path, None)
    srv = Server(
        state,
        None,
        "--ssl-certfile",
        str(cert),
        "--ssl-keyfile",
        str(key),
        "--jwks",
        str(jwks),
        "--jwt-issuer",
        "https://idp",
        "--jwt-audience",
        "vault",
    )
    try:
        assert srv.addr.startswith("https://")

        def token(roles, **extra):
            now = int(time.time())
            claims = {
                "iss": "https://idp",
                "aud": "vault",
                "sub": "pipeline",
                "iat": now,
                "exp": now + 300,
                "roles": roles,
                **extra,
            }
            return jwt.encode(claims, signing, algorithm="ES256", headers={"kid": "k1"})

        monkeypatch.setenv("MLTRUST_VAULT_CACERT", str(cert))
        admin = VaultClient(srv.addr, token(["*:admin"]))
        admin.env_create("dev")
        admin.set("dev", "K", "v")
        assert VaultClient(srv.addr, token(["dev:read"])).get("dev", "K")["value"] == "v"
        with pytest.raises(VaultHTTPError) as e:
            VaultClient(srv.addr, token(["dev:read"])).set("dev", "K", "w")
        assert e.value.status == 403
        with pytest.raises(VaultHTTPError) as e:
            VaultClient(srv.addr, token(["dev:admin"], aud="other")).get("dev", "K")
        assert e.value.status == 401
        # a client that does not trust the certificate does not talk to the server
        monkeypatch.delenv("MLTRUST_VAULT_CACERT")
        from mltrust.errors import ConfigError

        with pytest.raises(ConfigError, match="cannot reach"):
            VaultClient(srv.addr, token(["dev:read"])).get("dev", "K")
    finally:
        srv.stop()
