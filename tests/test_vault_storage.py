"""The vault's data rules on both backends: KV-v2 versions, check-and-set, deletes, sealing,
and attacks on the stored ciphertext (swapping, editing, a wrong KEK)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from _vault_helpers import database, pg_url  # noqa: F401 - fixtures
from mltrust.errors import ConfigError, InputError, VerificationError
from mltrust.vault._service import NotFound, Sealed, VarConflict, Vault
from mltrust.vault._state import init_state

KEY = b"k" * 32


@pytest.fixture
def make(tmp_path: Path, database: str | None):  # noqa: F811
    """Vault(**kw) on a fresh state; every storage is closed after the test."""
    opened = []

    def factory(**kw) -> Vault:
        storage, _ = init_state(tmp_path / "state", database, kdf_log_n=14)
        opened.append(storage)
        vault = Vault(storage, **kw)
        vault.unseal(KEY)
        return vault

    yield factory
    for storage in opened:
        storage.close()


def test_versions_cas_and_max_versions(make):
    v = make(max_versions=3)
    v.create_env("prod", "production")
    _, var = v.create_var("prod", "DB_PASSWORD", "one")
    assert var.current_version == 1
    for value in ("two", "three", "four"):
        v.put_var("prod", "DB_PASSWORD", value)
    assert v.get_var("prod", "DB_PASSWORD")[3] == "four"
    assert v.get_var("prod", var.id, version=2)[3] == "two"
    with pytest.raises(NotFound):  # version 1 fell out of the 3 kept
        v.get_var("prod", "DB_PASSWORD", version=1)
    with pytest.raises(VarConflict):
        v.put_var("prod", "DB_PASSWORD", "stale", cas=3)
    _, var = v.put_var("prod", "DB_PASSWORD", "five", cas=4)
    assert var.current_version == 5
    _, _, history = v.get_meta("prod", "DB_PASSWORD")
    assert [h.version for h in history] == [3, 4, 5]


def test_soft_delete_undelete_destroy(make):
    v = make()
    v.create_env("dev")
    v.create_var("dev", "TOKEN", "a")
    v.put_var("dev", "TOKEN", "b")
    v.delete_versions("dev", "TOKEN")
    with pytest.raises(NotFound, match="deleted"):
        v.get_var("dev", "TOKEN")
    v.undelete("dev", "TOKEN", [2])
    assert v.get_var("dev", "TOKEN")[3] == "b"
    v.destroy("dev", "TOKEN", [1])
    with pytest.raises(NotFound, match="destroyed"):
        v.get_var("dev", "TOKEN", version=1)
    v.undelete("dev", "TOKEN", [1])  # a destroyed version cannot come back
    with pytest.raises(NotFound, match="destroyed"):
        v.get_var("dev", "TOKEN", version=1)
    _, var = v.put_var("dev", "TOKEN", "c")
    assert var.current_version == 3  # numbers are never reused
    v.delete_var("dev", "TOKEN")
    with pytest.raises(NotFound):
        v.get_var("dev", "TOKEN")


def test_names_are_unique_and_validated(make):
    v = make()
    v.create_env("ci")
    with pytest.raises(VarConflict):
        v.create_env("ci")
    with pytest.raises(InputError):
        v.create_env("../etc")
    shadow = v.create_env("env_0123456789abcdef")  # shaped like an id: reached by its id
    assert v.get_env(shadow.id).name == "env_0123456789abcdef"
    v.create_var("ci", "A", "x")
    with pytest.raises(VarConflict):
        v.create_var("ci", "A", "y")
    with pytest.raises(InputError):
        v.create_var("ci", "BAD-NAME", "y")
    v.update_env("ci", name="ci2", description="renamed")
    assert v.get_var("ci2", "A")[3] == "x"


def test_two_writers_with_cas_lose_no_update(make):
    v = make(max_versions=1000)
    v.create_env("e")
    v.create_var("e", "COUNTER", "0")
    rounds = 25
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(rounds):
                while True:
                    _, _var, version, value = v.get_var("e", "COUNTER")
                    try:
                        v.put_var("e", "COUNTER", str(int(value) + 1), cas=version)
                        break
                    except VarConflict:
                        continue
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert v.get_var("e", "COUNTER")[3] == str(2 * rounds)


def test_sealed_until_the_right_kek(make):
    v = make()
    v.create_env("p")
    v.create_var("p", "S", "value")
    fresh = Vault(v.storage)
    with pytest.raises(Sealed):
        fresh.get_var("p", "S")
    with pytest.raises(ConfigError, match="wrong key-encryption key"):
        fresh.unseal(b"x" * 32)
    assert fresh.sealed
    fresh.unseal(KEY)
    assert fresh.get_var("p", "S")[3] == "value"


def test_rotate_rewraps_and_old_kek_no_longer_unseals(make):
    v = make()
    v.create_env("p")
    v.create_var("p", "S", "value")
    assert v.rotate(b"n" * 32) == 1
    fresh = Vault(v.storage)
    with pytest.raises(ConfigError):
        fresh.unseal(KEY)
    fresh.unseal(b"n" * 32)
    assert fresh.get_var("p", "S")[3] == "value"


def test_ciphertext_swapped_between_variables_does_not_decrypt(make):
    v = make()
    v.create_env("p")
    _, a = v.create_var("p", "A", "alpha")
    _, b = v.create_var("p", "B", "bravo")
    with v.storage.write() as tx:
        blob = tx.one("SELECT ciphertext FROM vault_versions WHERE var_id = ?", (a.id,))[0]
        tx.run("UPDATE vault_versions SET ciphertext = ? WHERE var_id = ?", (blob, b.id))
    with pytest.raises(VerificationError):
        v.get_var("p", "B")


def test_edited_ciphertext_is_refused(make):
    v = make()
    v.create_env("p")
    _, _a = v.create_var("p", "A", "alpha")
    with v.storage.write() as tx:
        blob = bytearray(tx.one("SELECT ciphertext FROM vault_versions")[0])
        blob[-1] ^= 1
        tx.run("UPDATE vault_versions SET ciphertext = ?", (bytes(blob),))
    with pytest.raises(VerificationError):
        v.get_var("p", "A")


def test_passphrase_kek_is_derived_with_stored_salt(make):
    v = make()
    storage = v.storage
    k1 = v.derive_kek(passphrase="correct horse")
    assert k1 == Vault(storage).derive_kek(passphrase="correct horse")
    assert k1 != v.derive_kek(passphrase="correct horsf")
    with storage.write() as tx:  # a tampered cost must not make unsealing eat all memory
        tx.run(
            "UPDATE vault_meta SET v = replace(v, '\"log_n\": 14', '\"log_n\": 30') WHERE k = 'kdf'"
        )
    with pytest.raises(ConfigError, match="scrypt cost"):
        v.derive_kek(passphrase="correct horse")


def test_rotation_does_not_interrupt_a_running_server(make):
    server = make()
    server.create_env("a")
    server.create_var("a", "X", "x")
    server.create_env("b")
    server.create_var("b", "Y", "y")
    server.unseal(KEY)  # a fresh start: nothing touched yet
    operator = Vault(server.storage)
    operator.unseal(KEY)
    operator.rotate(b"r" * 32)
    assert server.get_var("b", "Y")[3] == "y"  # every data key was unwrapped at unseal
    with pytest.raises(Sealed, match="rotated"):
        server.create_env("c")  # new keys need the new KEK: restart with it


def test_damaged_wrapped_key_fails_only_its_environment(make):
    v = make()
    v.create_env("good")
    v.create_var("good", "A", "a")
    bad = v.create_env("bad")
    v.create_var("bad", "B", "b")
    with v.storage.write() as tx:
        tx.run("UPDATE vault_environments SET wrapped_key = ? WHERE id = ?", (b"\0" * 60, bad.id))
    fresh = Vault(v.storage)
    fresh.unseal(KEY)
    assert fresh.get_var("good", "A")[3] == "a"
    with pytest.raises(VerificationError):
        fresh.get_var("bad", "B")
