"""Red-team findings against the vault, each as the attack that used to work:

* a database writer without the KEK or a token mints a token row, widens or un-expires a token,
  swaps environment or variable names, or rolls ``current_version`` back (row integrity tags);
* ``vault pull --dotenv`` output ran code when sourced by a shell, and python-dotenv read other
  values than the vault holds (quoting);
* a write token erased history by lowering ``max_versions``;
* the client followed redirects and sent its bearer token to the new host.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _vault_helpers import (  # noqa: F401 - fixtures
    Server,
    database,
    init_vault,
    mltrust,
    new_token,
    pg_url,
)
from mltrust.errors import ConfigError, InputError
from mltrust.vault._client import VaultClient, VaultHTTPError
from mltrust.vault._dotenv import parse_dotenv, write_dotenv
from mltrust.vault._service import Tampered, Vault
from mltrust.vault._state import init_state
from mltrust.vault._tokens import TokenStore, TokenTampered

KEY = b"k" * 32


@pytest.fixture
def vault(tmp_path: Path, database: str | None) -> Iterator[Vault]:  # noqa: F811
    storage, _ = init_state(tmp_path / "state", database, kdf_log_n=14)
    v = Vault(storage)
    v.unseal(KEY)
    try:
        yield v
    finally:
        storage.close()


def _tokens(v: Vault) -> TokenStore:
    return TokenStore(v.storage, lambda: v.row_mac, max_age=0.0)


def _sql(v: Vault, sql: str, params: tuple[Any, ...] = ()) -> int:
    """What the attacker has: write access to the database, nothing else."""
    with v.storage.write() as tx:
        return tx.run(sql, params)


def _two_envs(v: Vault) -> None:
    for env, password in (("prod", "PROD-SECRET"), ("dev", "dev-pw")):
        v.create_env(env)
        v.create_var(env, "DB_PASSWORD", password)
        v.create_var(env, "PUBLIC_URL", f"https://{env}.example")


# -- 1. database writer -------------------------------------------------------------------------
def test_attack_dbwrite_forged_token_row(vault: Vault) -> None:
    import hashlib
    import secrets

    store = _tokens(vault)
    real, record = store.create("dev", "read")
    token_id = secrets.token_hex(8)
    forged = f"mltv_{token_id}_" + secrets.token_urlsafe(32)
    digest = hashlib.sha256(forged.encode()).hexdigest()
    # an untagged row, and one carrying a real row's tag
    for mac in (None, record.mac):
        _sql(vault, "DELETE FROM vault_tokens WHERE id = ?", (token_id,))
        _sql(
            vault,
            "INSERT INTO vault_tokens VALUES (?, ?, 'backup-job', '*', 'admin', 0, NULL, NULL, ?)",
            (token_id, digest, mac),
        )
        with pytest.raises(TokenTampered):
            store.authenticate(forged)
    assert store.authenticate(real) is not None  # the real token still works
    listed = {t.id: intact for t, intact in store.list()}
    assert listed == {record.id: True, token_id: False}


def test_attack_dbwrite_token_grant_widened_or_unexpired(vault: Vault) -> None:
    store = _tokens(vault)
    token, record = store.create("dev", "read", ttl=3600)
    _sql(vault, "UPDATE vault_tokens SET env = '*', role = 'admin' WHERE id = ?", (record.id,))
    with pytest.raises(TokenTampered):
        store.authenticate(token)
    _sql(vault, "UPDATE vault_tokens SET env = 'dev', role = 'read' WHERE id = ?", (record.id,))
    assert store.authenticate(token) is not None
    _sql(vault, "UPDATE vault_tokens SET expires = NULL WHERE id = ?", (record.id,))
    with pytest.raises(TokenTampered):
        store.authenticate(token)
    # revocation through the vault keeps the row valid (and refused as revoked)
    _sql(vault, "UPDATE vault_tokens SET expires = ? WHERE id = ?", (record.expires, record.id))
    assert store.revoke(record.id) == 1
    assert store.authenticate(token) is None
    _sql(vault, "UPDATE vault_tokens SET revoked = NULL WHERE id = ?", (record.id,))
    with pytest.raises(TokenTampered):  # un-revoking without the KEK
        store.authenticate(token)


def test_attack_dbwrite_environment_names_swapped(vault: Vault) -> None:
    _two_envs(vault)
    _sql(vault, "UPDATE vault_environments SET name = 'tmp_x' WHERE name = 'prod'")
    _sql(vault, "UPDATE vault_environments SET name = 'prod' WHERE name = 'dev'")
    _sql(vault, "UPDATE vault_environments SET name = 'dev' WHERE name = 'tmp_x'")
    with pytest.raises(Tampered):
        vault.get_var("dev", "DB_PASSWORD")
    with pytest.raises(Tampered):
        vault.get_env("dev")
    with pytest.raises(Tampered):
        vault.list_vars("dev", with_values=True)
    with pytest.raises(Tampered):
        vault.list_envs()
    # swapping the tags along with the names does not help (they bind the id)
    with vault.storage.read() as tx:
        tags = dict(tx.rows("SELECT name, mac FROM vault_environments"))
    _sql(vault, "UPDATE vault_environments SET mac = ? WHERE name = 'dev'", (tags["prod"],))
    _sql(vault, "UPDATE vault_environments SET mac = ? WHERE name = 'prod'", (tags["dev"],))
    with pytest.raises(Tampered):
        vault.get_var("dev", "DB_PASSWORD")


def test_attack_dbwrite_variable_names_swapped(vault: Vault) -> None:
    _two_envs(vault)
    env_id = vault.get_env("dev").id
    for old, new in (
        ("DB_PASSWORD", "TMPX"),
        ("PUBLIC_URL", "DB_PASSWORD"),
        ("TMPX", "PUBLIC_URL"),
    ):
        _sql(
            vault,
            "UPDATE vault_variables SET name = ? WHERE env_id = ? AND name = ?",
            (new, env_id, old),
        )
    with pytest.raises(Tampered):
        vault.get_var("dev", "PUBLIC_URL")
    with pytest.raises(Tampered):
        vault.list_vars("dev")
    with pytest.raises(Tampered):
        vault.get_meta("dev", "DB_PASSWORD")
    assert vault.get_var("prod", "PUBLIC_URL")[3] == "https://prod.example"  # untouched


def test_attack_dbwrite_current_version_rolled_back(vault: Vault) -> None:
    vault.create_env("prod")
    vault.create_var("prod", "DB_PASSWORD", "old-leaked")
    vault.put_var("prod", "DB_PASSWORD", "rotated")
    var_id = vault.get_var("prod", "DB_PASSWORD")[1].id
    _sql(vault, "UPDATE vault_variables SET current_version = 1 WHERE id = ?", (var_id,))
    _sql(vault, "DELETE FROM vault_versions WHERE var_id = ? AND version = 2", (var_id,))
    with pytest.raises(Tampered):
        vault.get_var("prod", "DB_PASSWORD")
    # raising max_versions behind the vault's back is refused as well
    _sql(vault, "UPDATE vault_variables SET current_version = 2 WHERE id = ?", (var_id,))
    _sql(vault, "UPDATE vault_variables SET max_versions = 1000 WHERE id = ?", (var_id,))
    with pytest.raises(Tampered):
        vault.put_var("prod", "DB_PASSWORD", "x")


def test_vault_writes_keep_rows_valid_and_rotation_keeps_tags(vault: Vault) -> None:
    """The vault's own changes re-tag what they change; a running server keeps verifying
    rows after `rotate` (the row key is rewrapped, not replaced)."""
    _two_envs(vault)
    store = _tokens(vault)
    token, _ = store.create("staging", "write")
    vault.update_env("dev", name="staging")
    vault.put_var("staging", "DB_PASSWORD", "v2", max_versions=5)
    vault.update_var_meta("staging", "PUBLIC_URL", secret=False, cas_required=True)
    operator = Vault(vault.storage)
    operator.unseal(KEY)
    operator.rotate(b"r" * 32)
    assert vault.get_var("staging", "DB_PASSWORD")[3] == "v2"  # the old-KEK process
    identity = store.authenticate(token)
    assert identity is not None and identity.grants == frozenset({("staging", "write")})
    fresh = Vault(vault.storage)
    fresh.unseal(b"r" * 32)
    assert [e.name for e in fresh.list_envs()] == ["prod", "staging"]
    assert fresh.list_vars("staging", with_values=True)[1][1][1] == "https://dev.example"


def test_migrate_tags_rows_of_a_schema_1_vault(vault: Vault) -> None:
    _two_envs(vault)
    token, _ = _tokens(vault).create("prod", "read")
    # back to schema 1: no mac column, no row key
    for table in ("vault_environments", "vault_variables", "vault_tokens"):
        _sql(vault, f"ALTER TABLE {table} DROP COLUMN mac")
    _sql(vault, "UPDATE vault_meta SET v = '1' WHERE k = 'schema'")
    _sql(vault, "DELETE FROM vault_meta WHERE k = 'rowkey'")
    target = vault.storage.target
    vault.storage.close()
    from mltrust.vault._storage import Storage

    storage = Storage(target)  # adds the column
    try:
        upgraded = Vault(storage)
        upgraded.unseal(KEY)
        with pytest.raises(Tampered):  # untagged rows are refused until migrated
            upgraded.get_var("prod", "DB_PASSWORD")
        done = upgraded.migrate_integrity()
        assert sorted(done["environments"]) == ["dev", "prod"]
        assert len(done["variables"]) == 4 and len(done["tokens"]) == 1
        assert upgraded.get_var("prod", "DB_PASSWORD")[3] == "PROD-SECRET"
        assert TokenStore(storage, lambda: upgraded.row_mac).authenticate(token) is not None
        assert upgraded.migrate_integrity() == {"environments": [], "variables": [], "tokens": []}
    finally:
        storage.close()


def _api(srv: Server, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        srv.addr + path, method=method, data=None if body is None else json.dumps(body).encode()
    )
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_attack_dbwrite_over_http_is_refused_and_audited(tmp_path: Path) -> None:
    import hashlib
    import secrets
    import sqlite3

    state = init_vault(tmp_path, None)
    admin = new_token(state, None, "*", "admin")
    dev = new_token(state, None, "dev", "read")
    srv = Server(state, None)
    try:
        for env, pw in (("prod", "PROD-SECRET"), ("dev", "dev-pw")):
            assert _api(srv, "POST", "/environments", admin, {"name": env})[0] == 201
            body = {"name": "DB_PASSWORD", "value": pw}
            assert _api(srv, "POST", f"/environments/{env}/variables", admin, body)[0] == 201
        db = sqlite3.connect(state / "vault.db", timeout=30, isolation_level=None)
        token_id = secrets.token_hex(8)
        forged = f"mltv_{token_id}_" + secrets.token_urlsafe(32)
        db.execute(
            "INSERT INTO vault_tokens VALUES (?, ?, 'x', '*', 'admin', 0, NULL, NULL, NULL)",
            (token_id, hashlib.sha256(forged.encode()).hexdigest()),
        )
        status, doc = _api(srv, "GET", "/environments/prod/variables/DB_PASSWORD", forged)
        assert status == 401 and "PROD" not in json.dumps(doc)
        db.execute("UPDATE vault_environments SET name = 'tmp_x' WHERE name = 'prod'")
        db.execute("UPDATE vault_environments SET name = 'prod' WHERE name = 'dev'")
        db.execute("UPDATE vault_environments SET name = 'dev' WHERE name = 'tmp_x'")
        db.close()
        status, doc = _api(srv, "GET", "/environments/dev/variables/DB_PASSWORD", dev)
        assert status == 500 and "PROD" not in json.dumps(doc)
    finally:
        srv.stop()
    listing = mltrust("vault", "token", "list", "--state", str(state), check=False)
    assert listing.returncode == 1 and f"{token_id}  TAMPERED" in listing.stdout
    import sqlite3 as _sqlite

    audit = _sqlite.connect(state / ".mltrust" / "audit.db")
    text = "\n".join(str(r) for r in audit.execute("SELECT entry FROM audit").fetchall())
    audit.close()
    assert "unauthenticated: integrity: token" in text
    assert "integrity: environment" in text


# -- 2. dotenv quoting --------------------------------------------------------------------------
HOSTILE = {
    "BACKTICK": "`touch {marker}`",
    "SUBST": "$(touch {marker})",
    "QUOTE_BACKTICK": "it's`touch {marker}`",
    "QUOTE_SUBST": "a'b$(touch {marker})",
    "BRACED": "${HOME}",
    "QUOTE_BRACED": "a'b${HOME}",
    "DOLLAR": "$HOME and $1 and $$",
    "NEWLINE": "line1\nline2 'x' \"y\"",
    "QUOTES": 'it\'s a "quote"',
    "BACKSLASHES": "a\\b\\\\c\\'d\\",
    "BACKSLASH_N": "C:\\new\\table",
    "BACKSLASH_DOLLAR": "a\\b$HOME",
    "HASH": "value # not a comment",
    "PLAIN": "plain-value",
    "EMPTY": "",
    "UNICODE": "ünï\u2028cødé",
    "CR": "a\r\nb",
}


def _shell_values(path: Path, cwd: Path) -> dict[str, str]:
    out = subprocess.run(
        ["bash", "-c", "set -a; . ./" + path.name + "; env -0"],
        cwd=cwd,
        capture_output=True,
        check=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/home-of-test"},
        timeout=30,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def test_attack_dotenv_backtick_and_hostile_values(tmp_path: Path) -> None:
    dotenv = pytest.importorskip("dotenv")
    marker = tmp_path / "PWNED"
    values = {k: v.replace("{marker}", str(marker)) for k, v in HOSTILE.items()}
    written: dict[str, str] = {}
    refused: list[str] = []
    for name, value in values.items():
        path = tmp_path / f"{name}.env"
        try:
            write_dotenv(path, {name: value})
        except InputError as exc:
            assert f"variable {name}:" in str(exc) and value not in str(exc)
            assert not path.exists()
            refused.append(name)
            continue
        written[name] = value
        assert _shell_values(path, tmp_path)[name] == value, name
        assert dotenv.dotenv_values(path)[name] == value, name
        assert parse_dotenv(path.read_text())[name] == value, name
    assert not marker.exists()
    assert sorted(refused) == [
        "BACKSLASH_DOLLAR",
        "BRACED",
        "CR",
        "QUOTE_BACKTICK",
        "QUOTE_BRACED",
        "QUOTE_SUBST",
    ]
    # the safe ones together in one file, as `vault pull` writes them
    together = tmp_path / ".env"
    write_dotenv(together, written)
    assert {k: _shell_values(together, tmp_path)[k] for k in written} == written
    assert dict(dotenv.dotenv_values(together)) == written
    assert not marker.exists()
    # one refused value refuses the whole file (no half-written .env)
    with pytest.raises(InputError, match="QUOTE_BACKTICK"):
        write_dotenv(
            tmp_path / "mixed.env", {**written, "QUOTE_BACKTICK": values["QUOTE_BACKTICK"]}
        )
    assert not (tmp_path / "mixed.env").exists()


# -- 3. a write token lowering max_versions -----------------------------------------------------
def test_attack_write_token_destroys_history_via_max_versions(tmp_path: Path) -> None:
    state = init_vault(tmp_path, None)
    admin = new_token(state, None, "*", "admin")
    writer = new_token(state, None, "prod", "write")
    srv = Server(state, None)
    try:
        assert _api(srv, "POST", "/environments", admin, {"name": "prod"})[0] == 201
        body = {"name": "K", "value": "v1"}
        assert _api(srv, "POST", "/environments/prod/variables", admin, body)[0] == 201
        for value in ("v2", "v3", "v4"):
            assert (
                _api(srv, "PUT", "/environments/prod/variables/K", admin, {"value": value})[0]
                == 200
            )
        path = "/environments/prod/variables/K"
        assert _api(srv, "DELETE", path + "?versions=1", writer)[0] == 200  # soft delete
        assert _api(srv, "PUT", path, writer, {"max_versions": 1})[0] == 403
        assert _api(srv, "PUT", path, writer, {"value": "v5", "max_versions": 2})[0] == 403
        history = _api(srv, "GET", path + "/versions", admin)[1]
        assert [v["version"] for v in history["versions"]] == [1, 2, 3, 4]
        assert _api(srv, "PUT", path, writer, {"max_versions": 20})[0] == 200  # raising is fine
        assert _api(srv, "PUT", path, writer, {"value": "v5"})[0] == 200
        assert _api(srv, "PUT", path, admin, {"max_versions": 2})[0] == 200  # admin may prune
        history = _api(srv, "GET", path + "/versions", admin)[1]
        assert [v["version"] for v in history["versions"]] == [4, 5]
    finally:
        srv.stop()


# -- 4. redirects -------------------------------------------------------------------------------
def test_attack_client_redirect_leaks_token() -> None:
    got: dict[str, Any] = {}

    class Evil(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            got["auth"] = self.headers.get("Authorization")
            body = b'{"environment":{},"variables":[{"name":"PATH","value":"/tmp/evil"}]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    evil = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    location = f"http://127.0.0.1:{evil.server_address[1]}/stolen"

    class Redirect(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

    front = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    for server in (evil, front):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = VaultClient(
            f"http://127.0.0.1:{front.server_address[1]}", "mltv_0123456789abcdef_" + "A" * 43
        )
        with pytest.raises(ConfigError, match="redirecting to " + location):
            client.values("prod")
        with pytest.raises((ConfigError, VaultHTTPError)):
            client.set("prod", "X", "y")
        assert got == {}  # the other host never saw the token
    finally:
        for server in (evil, front):
            server.shutdown()
            server.server_close()


# -- design note: a write token choosing the loader of every `vault run` child ------------------
def test_attack_write_token_sets_loader_variables_for_run(tmp_path: Path) -> None:
    import sys

    from _vault_helpers import cli_env

    state = init_vault(tmp_path, None)
    admin = new_token(state, None, "*", "admin")
    writer = new_token(state, None, "ci", "write")
    reader = new_token(state, None, "ci", "read")
    srv = Server(state, None)
    try:
        assert _api(srv, "POST", "/environments", admin, {"name": "ci"})[0] == 201
        for name, value in (("LD_PRELOAD", "/tmp/evil.so"), ("PYTHONPATH", "/tmp/evil")):
            body = {"name": name, "value": value}
            assert _api(srv, "POST", "/environments/ci/variables", writer, body)[0] == 201
        env = cli_env(MLTRUST_VAULT_ADDR=srv.addr, MLTRUST_VAULT_TOKEN=reader)
        marker = tmp_path / "child-ran"
        child = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"]
        refused = mltrust("vault", "run", "--env", "ci", "--", *child, env=env, check=False)
        assert refused.returncode == 2 and not marker.exists()
        assert "LD_PRELOAD, PYTHONPATH" in refused.stderr and "/tmp/evil" not in refused.stderr
        target = tmp_path / ".env"
        pulled = mltrust(
            "vault", "pull", "--env", "ci", "--dotenv", str(target), env=env, check=False
        )
        assert pulled.returncode == 2 and not target.exists()
        probe = "import os;print(os.environ.get('PYTHONPATH'))"
        allowed = mltrust(
            "vault",
            "run",
            "--env",
            "ci",
            "--allow-env",
            "PYTHONPATH",
            "--allow-env",
            "LD_PRELOAD",
            "--",
            sys.executable,
            "-c",
            probe,
            env=env,
            check=False,
        )
        assert allowed.returncode == 0 and allowed.stdout.strip() == "/tmp/evil"
    finally:
        srv.stop()


@pytest.mark.parametrize("value", [" \n", "a \nb", "x\t\ny"])
def test_dotenv_value_losing_white_space_at_a_line_break_is_refused(
    tmp_path: Path, value: str
) -> None:
    # Found by the round-trip property test: a space before a line break inside a quoted
    # value is dropped by the reader, so the writer refuses rather than write another value.
    from mltrust.errors import InputError
    from mltrust.vault._dotenv import parse_dotenv, write_dotenv

    path = tmp_path / "x.env"
    try:
        write_dotenv(path, {"A": value})
    except InputError as exc:
        assert "variable A:" in str(exc)
        assert not path.exists()
    else:
        assert parse_dotenv(path.read_text(encoding="utf-8")) == {"A": value}
