"""``mltrust sign`` / ``verify`` / ``keys generate`` on the command line: exit codes and output."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, main


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLTRUST_PASSPHRASE", "correct horse")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "model"
    model.mkdir()
    (model / "w.bin").write_bytes(b"\x01" * 4096)
    (model / "config.json").write_text("{}")
    return tmp_path


def keygen(capsys: pytest.CaptureFixture[str], prefix: str, *extra: str) -> str:
    assert main(["keys", "generate", "--out", prefix, *extra]) == EXIT_CLEAN
    return capsys.readouterr().out.strip()


def test_keys_generate_encrypted_with_mode_0600(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fp = keygen(capsys, "k")
    assert len(fp) == 64 and all(c in "0123456789abcdef" for c in fp)
    key = (env / "k.key").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key
    assert stat.S_IMODE((env / "k.key").stat().st_mode) == 0o600
    assert b"BEGIN PUBLIC KEY" in (env / "k.pub").read_bytes()


def test_keys_generate_default_folder(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--type", "ed25519"]) == EXIT_CLEAN
    fp = capsys.readouterr().out.strip()
    folder = env / "xdg" / "mltrust" / "keys"
    assert (folder / f"mltrust-{fp[:12]}.key").exists()
    assert (folder / f"mltrust-{fp[:12]}.pub").exists()


def test_keys_generate_unencrypted_warns(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--out", "plain", "--unencrypted"]) == EXIT_CLEAN
    captured = capsys.readouterr()
    assert "unencrypted" in captured.err
    assert b"ENCRYPTED" not in (env / "plain.key").read_bytes()


def test_keys_generate_refuses_overwrite(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    assert main(["keys", "generate", "--out", "k"]) == EXIT_ERROR
    assert "refusing to overwrite" in capsys.readouterr().err


def test_sign_verify_roundtrip_and_tamper_report(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keygen(capsys, "k")
    assert main(["sign", "model", "--key", "k.key", "--version", "4"]) == EXIT_CLEAN
    assert capsys.readouterr().out.strip() == str(Path("model") / "model.sig")
    assert main(["verify", "model", "--key", "k.pub"]) == EXIT_CLEAN
    out = capsys.readouterr().out
    assert "verified: model" in out and "version 4" in out
    (env / "model" / "w.bin").write_bytes(b"\x02" * 4096)
    (env / "model" / "config.json").rename(env / "model" / "cfg.json")
    (env / "model" / "extra.txt").write_text("x")
    assert main(["verify", "model", "--key", "k.pub"]) == EXIT_FINDINGS
    out = capsys.readouterr().out
    assert "renamed: config.json -> cfg.json" in out
    assert "added: extra.txt" in out
    assert "modified: w.bin" in out


def test_verify_json_output(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    main(["sign", "model", "--key", "k.key"])
    capsys.readouterr()
    assert main(["verify", "model", "--key", "k.pub", "--format", "json"]) == EXIT_CLEAN
    doc = json.loads(capsys.readouterr().out)
    assert doc["verified"] is True and set(doc["files"]) == {"w.bin", "config.json"}


def test_verify_max_age_and_state(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    main(["sign", "model", "--key", "k.key", "--version", "1"])
    args = ["verify", "model", "--key", "k.pub", "--max-age", "30d", "--state", "st.json"]
    assert main(args) == EXIT_ERROR  # rollback memory needs the expected model name
    args += ["--name", "model"]
    assert main(args) == EXIT_CLEAN
    assert json.loads((env / "st.json").read_text())["models"]["model"]["version"] == 1
    assert main(["verify", "model", "--key", "k.pub", "--max-age", "soon"]) == EXIT_ERROR


def test_wrong_passphrase_is_exit_2(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    keygen(capsys, "k")
    monkeypatch.setenv("MLTRUST_PASSPHRASE", "wrong")
    assert main(["sign", "model", "--key", "k.key"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "wrong passphrase" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2


def test_missing_model_is_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    assert main(["sign", "nope", "--key", "k.key"]) == EXIT_ERROR
    assert "no such file" in capsys.readouterr().err
    assert main(["verify", "nope", "--key", "k.pub"]) == EXIT_ERROR


def test_missing_signature_is_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    assert main(["verify", "model", "--key", "k.pub"]) == EXIT_ERROR
    assert "signature not found" in capsys.readouterr().err


def test_unreadable_keys_are_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (env / "garbage.pem").write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    assert main(["sign", "model", "--key", "missing.key"]) == EXIT_ERROR
    assert "private key not found" in capsys.readouterr().err
    keygen(capsys, "k")
    main(["sign", "model", "--key", "k.key"])
    capsys.readouterr()
    assert main(["verify", "model", "--key", "garbage.pem"]) == EXIT_ERROR
    assert "not a readable public key" in capsys.readouterr().err
    assert main(["verify", "model", "--key", "k.key"]) == EXIT_ERROR
    assert "private key" in capsys.readouterr().err


def test_malformed_bundle_is_exit_2(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    (env / "model" / "model.sig").write_text("{not json")
    assert main(["verify", "model", "--key", "k.pub"]) == EXIT_ERROR
    assert "malformed bundle" in capsys.readouterr().err


def test_signature_by_other_key_is_exit_1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    keygen(capsys, "other")
    main(["sign", "model", "--key", "other.key"])
    capsys.readouterr()
    assert main(["verify", "model", "--key", "k.pub"]) == EXIT_FINDINGS
    assert "pinned key" in capsys.readouterr().out


def test_verify_requires_a_key(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "model"]) == EXIT_ERROR
    assert "--key" in capsys.readouterr().err


def test_sign_with_shards_blake3_and_ignore(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen(capsys, "k")
    (env / "model" / "README.md").write_text("docs")
    args = [
        "sign",
        "model",
        "--key",
        "k.key",
        "--shard-size",
        "1KiB",
        "--hash",
        "blake3",
        "--ignore",
        "README.md",
    ]
    assert main(args) == EXIT_CLEAN
    (env / "model" / "README.md").write_text("changed docs")
    capsys.readouterr()
    assert main(["verify", "model", "--key", "k.pub", "--format", "json"]) == EXIT_CLEAN
    assert "README.md" not in json.loads(capsys.readouterr().out)["files"]


def test_sign_records_statement_in_store_by_root_digest(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mltrust.store import EvidenceStore

    keygen(capsys, "k")
    assert main(["sign", "model", "--key", "k.key", "--store", "ev.db"]) == EXIT_CLEAN
    main(["verify", "model", "--key", "k.pub", "--format", "json"])
    capsys.readouterr()
    from mltrust.attest import PinnedKeys, verify

    root = verify(env / "model", trust=PinnedKeys(env / "k.pub")).root_digest
    with EvidenceStore.open(env / "ev.db") as store:
        records = store.statements(subject_digest=root)
    assert len(records) == 1
    assert records[0].predicate_type == "https://model_signing/signature/v1.0"
    assert records[0].signer is not None and records[0].envelope is not None
