"""Server-side CLI and files: init, key files, token create/list/revoke, rotate, backup and
restore across backends, and the .env reader/writer (hostile input, round-trips)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _vault_helpers import (  # noqa: F401 - fixtures
    PASSPHRASE,
    cli_env,
    database,
    init_vault,
    mltrust,
    new_token,
    pg_url,
)
from mltrust.errors import ConfigError, InputError
from mltrust.vault._crypto import kek_from_file, write_key_file
from mltrust.vault._dotenv import parse_dotenv, remove_dotenv, write_dotenv
from mltrust.vault._service import Vault
from mltrust.vault._state import open_vault
from mltrust.vault._storage import open_storage
from mltrust.vault._tokens import TokenStore


@pytest.fixture(autouse=True)
def _passphrase(monkeypatch):
    """In-process vault calls read the same passphrase the CLI children get."""
    monkeypatch.setenv("MLTRUST_VAULT_PASSPHRASE", PASSPHRASE)


def test_init_creates_private_state(tmp_path):
    state = init_vault(tmp_path, None)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "vault.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((state / ".mltrust").stat().st_mode) == 0o700
    again = mltrust("vault", "init", "--state", str(state), "--kdf-cost", "14")
    assert "already initialised" in again.stderr


def test_key_file_must_be_private_and_32_bytes(tmp_path):
    key = tmp_path / "kek"
    write_key_file(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(kek_from_file(key)) == 32
    with pytest.raises(ConfigError):
        write_key_file(key)  # never overwritten
    os.chmod(key, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        kek_from_file(key)
    short = tmp_path / "short"
    short.write_bytes(b"x" * 16)
    os.chmod(short, 0o600)
    with pytest.raises(ConfigError, match="32 bytes"):
        kek_from_file(short)


def test_key_file_kek_end_to_end(tmp_path):
    state = tmp_path / "state"
    key = tmp_path / "kek"
    env = cli_env()
    env.pop("MLTRUST_VAULT_PASSPHRASE")
    mltrust("vault", "init", "--state", str(state), "--generate-kek-file", str(key), env=env)
    v = open_vault(state, None, key)
    v.create_env("e")
    v.create_var("e", "A", "a")
    v.storage.close()
    # the passphrase is not the KEK of this vault
    with pytest.raises(ConfigError, match="wrong key-encryption key"):
        open_vault(state, None, None)


def test_token_create_list_revoke_cli(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    db = ["--database", database] if database else []
    token = new_token(state, database, "prod", "read", "--ttl", "1h", "--name", "ci")
    assert token.startswith("mltv_")
    listing = mltrust("vault", "token", "list", "--state", str(state), *db, "-f", "json").stdout
    (record,) = json.loads(listing)
    assert record["env"] == "prod" and record["role"] == "read" and record["expires"]
    assert token not in listing and token.split("_", 2)[2] not in listing  # never the secret
    v = open_vault(state, database, None)
    storage = v.storage
    try:
        assert TokenStore(storage, lambda: v.row_mac).authenticate(token) is not None
        rows = storage.meta()  # the token is stored only as a digest
        with storage.read() as tx:
            stored = tx.rows("SELECT * FROM vault_tokens")
        assert token not in repr(stored) and rows
    finally:
        storage.close()
    mltrust("vault", "token", "revoke", "--state", str(state), *db, record["id"])
    v = open_vault(state, database, None)
    try:
        assert TokenStore(v.storage, lambda: v.row_mac).authenticate(token) is None
    finally:
        v.storage.close()
    bad = mltrust(
        "vault",
        "token",
        "create",
        "--state",
        str(state),
        *db,
        "--env",
        "a b",
        "--role",
        "read",
        check=False,
    )
    assert bad.returncode == 2


def test_backup_restore_moves_between_backends(tmp_path, database):  # noqa: F811
    """SQLite → (SQLite or PostgreSQL): values come back with the same KEK only."""
    source = init_vault(tmp_path / "a", None)
    v = open_vault(source, None, None)
    v.create_env("prod")
    v.create_var("prod", "S", "secret-one")
    v.put_var("prod", "S", "secret-two")
    v.storage.close()
    dump = tmp_path / "backup.json"
    mltrust("vault", "backup", "--state", str(source), "-o", str(dump))
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert b"secret-" not in dump.read_bytes()
    target = tmp_path / "b" / "state"
    db = ["--database", database] if database else []
    mltrust("vault", "restore", "--state", str(target), *db, str(dump))
    restored = open_vault(target, database, None)
    try:
        assert restored.get_var("prod", "S")[3] == "secret-two"
        assert restored.get_var("prod", "S", version=1)[3] == "secret-one"
    finally:
        restored.storage.close()
    again = mltrust("vault", "restore", "--state", str(target), *db, str(dump), check=False)
    assert again.returncode == 2 and "not empty" in again.stderr


def test_tampered_backup_is_refused(tmp_path):
    source = init_vault(tmp_path / "a", None)
    dump = tmp_path / "backup.json"
    mltrust("vault", "backup", "--state", str(source), "-o", str(dump))
    doc = json.loads(dump.read_text())
    doc["tables"]["vault_tokens"].append(["0" * 16, "0" * 64, "x", "*", "admin", 0, None, None])
    dump.write_text(json.dumps(doc))
    res = mltrust("vault", "restore", "--state", str(tmp_path / "b"), str(dump), check=False)
    assert res.returncode == 2 and "checksum" in res.stderr


def test_rotate_cli_with_running_data(tmp_path, database):  # noqa: F811
    state = init_vault(tmp_path, database)
    db = ["--database", database] if database else []
    v = open_vault(state, database, None)
    v.create_env("e")
    v.create_var("e", "A", "alpha")
    v.storage.close()
    new_key = tmp_path / "new.kek"
    write_key_file(new_key)
    mltrust("vault", "rotate", "--state", str(state), *db, "--new-kek-file", str(new_key))
    with pytest.raises(ConfigError):
        open_vault(state, database, None)  # the old passphrase no longer unseals
    v = open_vault(state, database, new_key)
    try:
        assert v.get_var("e", "A")[3] == "alpha"
    finally:
        v.storage.close()


# -- .env files ----------------------------------------------------------------------------------
def test_dotenv_parses_common_forms_without_expansion():
    text = (
        "# comment\n\nexport A=1\nB = two words # trailing\nC='single $HOME #x'\n"
        'D="esc\\n\\"q\\" $(id) ${HOME}"\nE="multi\nline"\nF=\n'
    )
    assert parse_dotenv(text) == {
        "A": "1",
        "B": "two words",
        "C": "single $HOME #x",
        "D": 'esc\n"q" $(id) ${HOME}',
        "E": "multi\nline",
        "F": "",
    }


@pytest.mark.parametrize("line", ["NOEQUALS", "1BAD=x", "A='unterminated", 'A="open', "A='x' y"])
def test_dotenv_malformed_line_names_the_line_not_the_value(line):
    with pytest.raises(InputError) as e:
        parse_dotenv("OK=1\n" + line + "\n")
    assert "line 2" in str(e.value)
    assert "unterminated" not in str(e.value) or "quote" in str(e.value)
    assert "x" not in str(e.value).split(":")[0]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r")
        ),
    )
)
def test_dotenv_write_then_read_round_trips(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("env") / "x.env"
    try:
        write_dotenv(path, values)
    except InputError as exc:  # no spelling safe for sh, compose and python-dotenv
        assert any(f"variable {k}:" in str(exc) for k in values)
        assert not path.exists()
        return
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_dotenv(path.read_text(encoding="utf-8")) == values
    assert remove_dotenv(path) and not path.exists()


def test_dotenv_write_replaces_a_planted_symlink_not_its_target(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "job.env"
    link.symlink_to(victim)
    write_dotenv(link, {"A": "secret"})
    assert victim.read_text() == "keep"
    assert not link.is_symlink() and "secret" in link.read_text()


def test_vault_sealed_operations_raise(tmp_path):
    state = init_vault(tmp_path, None)
    storage = open_storage(state, None)
    try:
        from mltrust.vault._service import Sealed

        with pytest.raises(Sealed):
            Vault(storage).create_env("x")
    finally:
        storage.close()


def test_client_side_needs_no_server_dependencies():
    """`vault run/pull/get` run in CI images without the serve extra (starlette, jwt)."""
    import subprocess
    import sys

    code = (
        "import sys, mltrust.cli._vault, mltrust.vault._client, mltrust.vault._dotenv;"
        "print(sorted(m for m in ('mltrust.serve', 'starlette', 'jwt', 'uvicorn', 'psycopg')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True
    ).stdout
    assert out.strip() == "[]"
