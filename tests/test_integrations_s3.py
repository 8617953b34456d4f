"""`mltrust s3 push|pull` with real boto3 against moto's S3 server on loopback.

The bucket is the attacker's: each `test_attack_*` writes hostile objects straight into it and
checks that the pull fails with exit 1, leaves nothing at the destination (nor its staging
folder beside it) and writes nothing outside it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from _check_helpers import MALICIOUS_PICKLE
from _net_helpers import free_port
from mltrust.attest import (
    PinnedKeys,
    attest_scan,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign,
    verify,
)
from mltrust.cli import main
from mltrust.config import Limits
from mltrust.errors import InputError, UnsafeModelError, VerificationError
from mltrust.integrations._common import scan_clean
from mltrust.integrations.s3 import parse_s3_uri, pull, push, unsafe_key_reason

PREFIX = "iris/3"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Credentials for moto only; no profile, config file or instance metadata is consulted."""
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_S3"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture()
def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


@pytest.fixture()
def bucket(s3: Any) -> str:
    name = f"models-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path_factory.mktemp("keys") / "release", passphrase=None)
    return pair.private_path, pair.public_path


@pytest.fixture(scope="module")
def other_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path_factory.mktemp("keys") / "other", passphrase=None)
    return pair.private_path, pair.public_path


def _model(folder: Path, key: Path, *, pickle: bytes | None = None) -> Path:
    """A signed, attested model folder (a safetensors file, a config, a nested file)."""
    import numpy as np
    from safetensors.numpy import save_file

    (folder / "tokenizer").mkdir(parents=True)
    save_file(
        {"w": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(folder / "model.safetensors")
    )
    (folder / "config.json").write_text('{"hidden": 4}')
    (folder / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    if pickle is not None:
        (folder / "model.pkl").write_bytes(pickle)
    private = load_private_key(key)
    sign(folder, key=private, model_name="iris", version=3)
    attest_scan(folder, key=private)
    return folder


@pytest.fixture()
def model(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    return _model(tmp_path / "model", keys[0])


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["s3", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _keys_in(s3: Any, bucket: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def _pushed(model: Path, bucket: str, endpoint: str, pub: Path) -> str:
    uri = f"s3://{bucket}/{PREFIX}"
    push(model, uri, key=pub, endpoint_url=endpoint)
    return uri


def _nothing_left(dest: Path) -> None:
    assert not os.path.lexists(dest)
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    assert leftovers == [], leftovers


def _pull_fails(
    capsys: pytest.CaptureFixture[str], uri: str, dest: Path, pub: Path, endpoint: str
) -> str:
    code, out, err = _cli(capsys, "pull", uri, str(dest), "--key", str(pub),
                          "--endpoint-url", endpoint)  # fmt: skip
    assert code == 1, (out, err)
    assert out.startswith(f"NOT PULLED: {uri}")
    _nothing_left(dest)
    return out


# -- the happy path -----------------------------------------------------------------------------


def test_push_then_pull_round_trip(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, pub = keys
    # local-only files the signature leaves out are not uploaded
    (model / ".git").mkdir()
    (model / ".git" / "config").write_text("[core]\n")
    uri = f"s3://{bucket}/{PREFIX}"
    code, out, err = _cli(capsys, "push", str(model), uri, "--key", str(pub),
                          "--endpoint-url", endpoint, "-f", "json")  # fmt: skip
    assert code == 0, (out, err)
    doc = json.loads(out)
    assert doc["ok"] is True and doc["objects"] == 5 and doc["root_digest"]
    assert _keys_in(s3, bucket) == {
        f"{PREFIX}/{name}"
        for name in (
            "model.safetensors",
            "config.json",
            "tokenizer/vocab.txt",
            "model.sig",
            ".mltrust/attestations/scan.bundle.json",
        )
    }
    dest = tmp_path / "pulled"
    code, out, err = _cli(capsys, "pull", uri, str(dest), "--key", str(pub), "--endpoint-url",
                          endpoint, "--name", "iris", "--version", "3")  # fmt: skip
    assert code == 0, (out, err)
    assert "verified, scanned clean" in out and "attestation" in out
    for rel in ("model.safetensors", "config.json", "tokenizer/vocab.txt"):
        assert (dest / rel).read_bytes() == (model / rel).read_bytes()
    assert not (dest / ".git").exists()
    # what landed verifies on its own, with the same root digest as the pushed folder
    assert verify(dest, trust=PinnedKeys(pub), attestations=True).root_digest == doc["root_digest"]
    # no staging folder left beside it
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pulled.")]


def test_pull_into_an_existing_destination_or_missing_parent_is_a_setup_error(
    model: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    code, _, err = _cli(capsys, "pull", uri, str(existing), "--key", str(keys[1]),
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 2 and "already exists" in err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    code, _, err = _cli(capsys, "pull", uri, str(tmp_path / "no" / "dest"), "--key",
                        str(keys[1]), "--endpoint-url", endpoint)  # fmt: skip
    assert code == 2 and "is not a folder" in err


def test_folder_markers_and_a_sibling_prefix_do_not_disturb_a_pull(
    model: Path, bucket: str, endpoint: str, s3: Any, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/", Body=b"")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/tokenizer/", Body=b"")
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}0/evil.pkl", Body=MALICIOUS_PICKLE)
    result = pull(uri, tmp_path / "m", trust=[load_public_key(keys[1])], endpoint_url=endpoint)
    assert sorted(result.verified.files) == [
        "config.json", "model.safetensors", "tokenizer/vocab.txt"
    ]  # fmt: skip
    assert result.dest == (tmp_path / "m").absolute()
    assert result.verified.path == result.dest


def test_endpoint_and_credentials_from_the_usual_aws_settings(
    model: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """AWS_ENDPOINT_URL_S3 instead of --endpoint-url; a named profile's credentials file."""
    creds = tmp_path / "credentials"
    creds.write_text("[minio]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    uri = f"s3://{bucket}/{PREFIX}"
    code, out, err = _cli(capsys, "push", str(model), uri, "--key", str(keys[1]),
                          "--profile", "minio")  # fmt: skip
    assert code == 0, (out, err)
    monkeypatch.setenv("AWS_PROFILE", "minio")
    code, out, err = _cli(capsys, "pull", uri, str(tmp_path / "d"), "--key", str(keys[1]))
    assert code == 0, (out, err)
    code, _, err = _cli(capsys, "pull", uri, str(tmp_path / "e"), "--key", str(keys[1]),
                        "--profile", "nobody")  # fmt: skip
    assert code == 2 and "nobody" in err
    _nothing_left(tmp_path / "e")


# -- push refusals ------------------------------------------------------------------------------


def test_push_refuses_an_unsigned_folder_unless_allowed(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "unsigned"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    uri = f"s3://{bucket}/{PREFIX}"
    code, out, _ = _cli(capsys, "push", str(folder), uri, "--key", str(keys[1]),
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 1 and out.startswith("NOT PUSHED")
    assert _keys_in(s3, bucket) == set()
    code, _, err = _cli(capsys, "push", str(folder), uri, "--endpoint-url", endpoint)
    assert code == 2 and "--key" in err
    code, out, _ = _cli(capsys, "push", str(folder), uri, "--allow-unsigned",
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 0 and "UNSIGNED" in out
    assert _keys_in(s3, bucket) == {f"{PREFIX}/config.json"}
    # ... and what was pushed unsigned does not pull
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "not signed" in out


def test_push_refuses_a_folder_changed_after_signing(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    (model / "config.json").write_text('{"hidden": 5}')
    code, out, _ = _cli(capsys, "push", str(model), f"s3://{bucket}/{PREFIX}", "--key",
                        str(keys[1]), "--endpoint-url", endpoint)  # fmt: skip
    assert code == 1 and "modified" in out
    assert _keys_in(s3, bucket) == set()


def _during_first_upload(monkeypatch: pytest.MonkeyPatch, move: Any) -> None:
    """Run ``move`` (the attacker's) while the first object of a push is being uploaded."""
    from mltrust.integrations import s3 as s3mod

    real = s3mod._client

    def client(*args: Any, **kwargs: Any) -> Any:
        c = real(*args, **kwargs)
        upload, calls = c.upload_fileobj, []

        def racing(*a: Any, **k: Any) -> Any:
            calls.append(1)
            if len(calls) == 1:
                move()
            return upload(*a, **k)

        c.upload_fileobj = racing
        return c

    monkeypatch.setattr(s3mod, "_client", client)


def test_attack_push_symlink_race_swaps_a_folder_for_a_link_to_secrets(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """After verification, tokenizer/ becomes a link to the pusher's ~/.ssh-like folder."""
    secrets = tmp_path / "home_ssh"
    secrets.mkdir()
    # a key-shaped line, assembled at run time so the repository holds none
    # mltrust: ignore[MLT-CODE-009] a planted test secret, assembled from pieces
    (secrets / "vocab.txt").write_text("-----BEGIN OPENSSH " + "PRIVATE KEY----- victim\n")

    def swap() -> None:
        import shutil

        shutil.rmtree(model / "tokenizer")
        (model / "tokenizer").symlink_to(secrets)

    _during_first_upload(monkeypatch, swap)
    code, out, _ = _cli(capsys, "push", str(model), f"s3://{bucket}/{PREFIX}", "--key",
                        str(keys[1]), "--endpoint-url", endpoint)  # fmt: skip
    assert code == 1, out
    assert "changed after it was verified" in out and "symbolic link" in out
    assert _keys_in(s3, bucket) == set()  # what was uploaded before the swap is deleted


def test_attack_push_file_rewritten_during_upload(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A signed file's content changes between verification and its upload."""
    _during_first_upload(
        monkeypatch, lambda: (model / "tokenizer" / "vocab.txt").write_text("x\ny\n")
    )
    code, out, _ = _cli(capsys, "push", str(model), f"s3://{bucket}/{PREFIX}", "--key",
                        str(keys[1]), "--endpoint-url", endpoint)  # fmt: skip
    assert code == 1, out
    assert "digest differs: tokenizer/vocab.txt" in out
    assert _keys_in(s3, bucket) == set()


def test_attack_push_signature_swapped_during_upload(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """model.sig replaced by something that is not a bundle signed by the pinned key."""
    _during_first_upload(monkeypatch, lambda: (model / "model.sig").write_text("{}"))
    with pytest.raises(VerificationError, match="changed after it was verified"):
        push(model, f"s3://{bucket}/{PREFIX}", key=keys[1], endpoint_url=endpoint)
    assert _keys_in(s3, bucket) == set()


def test_push_with_the_private_key_checks_against_its_public_half(
    model: Path, bucket: str, endpoint: str, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    result = push(model, f"s3://{bucket}/a", key=keys[0], endpoint_url=endpoint)
    assert result.root_digest
    with pytest.raises(VerificationError):
        push(model, f"s3://{bucket}/b", key=other_keys[0], endpoint_url=endpoint)


def test_push_refuses_a_non_empty_prefix_unless_replace_which_removes_stale_objects(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = f"s3://{bucket}/{PREFIX}"
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/old-weights.bin", Body=b"old")
    code, _, err = _cli(capsys, "push", str(model), uri, "--key", str(keys[1]),
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 2 and "already holds 1 object" in err and "--replace" in err
    code, out, _ = _cli(capsys, "push", str(model), uri, "--key", str(keys[1]), "--replace",
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 0 and "deleted 1 old object" in out
    assert f"{PREFIX}/old-weights.bin" not in _keys_in(s3, bucket)
    assert pull(uri, tmp_path / "d", trust=keys[1], endpoint_url=endpoint).objects == 5


def test_push_refuses_names_a_pull_would_refuse(
    tmp_path: Path, bucket: str, endpoint: str, s3: Any, keys: tuple[Path, Path]
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "a\\b.bin").write_bytes(b"x")
    with pytest.raises(InputError, match="cannot be stored"):
        push(folder, f"s3://{bucket}/p", allow_unsigned=True, endpoint_url=endpoint)
    assert _keys_in(s3, bucket) == set()


# -- pull refusals: keys and signatures ---------------------------------------------------------


def test_pull_with_another_key_fails_verification(
    model: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    other_keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    out = _pull_fails(capsys, uri, tmp_path / "dest", other_keys[1], endpoint)
    assert "does not verify with the pinned key" in out


def test_attack_object_replaced_in_the_bucket(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/config.json", Body=b'{"hidden": 5}')  # same size
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "modified: config.json" in out


def test_attack_signature_resigned_by_the_attacker(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    other_keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    evil = _model(tmp_path / "evil", other_keys[0], pickle=MALICIOUS_PICKLE)
    for rel in ("model.pkl", "model.sig"):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{rel}", Body=(evil / rel).read_bytes())
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "does not verify with the pinned key" in out


def test_attack_forged_attestation(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    other_keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    forged = tmp_path / "forged"
    attest_scan(model, key=load_private_key(other_keys[0]), output=forged)
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/.mltrust/attestations/scan.bundle.json",
                  Body=forged.read_bytes())  # fmt: skip
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "attestation scan.bundle.json did not verify" in out


def test_attack_other_model_signed_by_the_same_key(
    model: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    code, out, _ = _cli(capsys, "pull", uri, str(tmp_path / "d"), "--key", str(keys[1]),
                        "--endpoint-url", endpoint, "--name", "resnet")  # fmt: skip
    assert code == 1 and "not the expected 'resnet'" in out
    _nothing_left(tmp_path / "d")
    code, out, _ = _cli(capsys, "pull", uri, str(tmp_path / "d"), "--key", str(keys[1]),
                        "--endpoint-url", endpoint, "--min-version", "4")  # fmt: skip
    assert code == 1 and "older than the minimum" in out
    _nothing_left(tmp_path / "d")


def test_attack_rollback_to_an_older_signed_version(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An older, genuinely signed version put back in place of the current one."""
    uri = f"s3://{bucket}/{PREFIX}"
    state = tmp_path / "seen.json"
    args = ["--key", str(keys[1]), "--endpoint-url", endpoint, "--name", "iris", "--state",
            str(state)]  # fmt: skip
    push(_model(tmp_path / "v3", keys[0]), uri, key=keys[1], endpoint_url=endpoint)
    code, out, _ = _cli(capsys, "pull", uri, str(tmp_path / "a"), *args)
    assert code == 0, out
    old = tmp_path / "v2"
    old.mkdir()
    (old / "config.json").write_text('{"hidden": 2}')
    sign(old, key=load_private_key(keys[0]), model_name="iris", version=2)
    push(old, uri, key=keys[1], endpoint_url=endpoint, replace=True)
    code, out, _ = _cli(capsys, "pull", uri, str(tmp_path / "b"), *args)
    assert code == 1 and "rollback" in out
    _nothing_left(tmp_path / "b")


def test_signed_model_with_findings_is_verified_but_not_pulled(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    canary: Path,
) -> None:
    evil = _model(tmp_path / "evil", keys[0], pickle=MALICIOUS_PICKLE)
    uri = _pushed(evil, bucket, endpoint, keys[1])
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "MLT-PKL" in out
    # --no-scan is the caller's explicit choice; the folder verifies and lands
    code, out, _ = _cli(capsys, "pull", uri, str(tmp_path / "dest"), "--key", str(keys[1]),
                        "--endpoint-url", endpoint, "--no-scan")  # fmt: skip
    assert code == 0 and "NOT scanned" in out


#: A pickle that calls an import outside the allowlist (a "high", not "critical", finding).
UNKNOWN_IMPORT_PICKLE = (
    b"\x80\x02cevilpkg.tools\nrun\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
)


def test_attack_model_ships_a_scan_config_that_weakens_the_gate(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A config file inside the model (signed or not) never configures the scan of that model:
    the gate uses the operator's configuration (from the current folder)."""
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(UNKNOWN_IMPORT_PICKLE)
    (folder / "mltrust.toml").write_text('[scan]\nfail_on = "critical"\n')
    sign(folder, key=load_private_key(keys[0]), model_name="evil", version=1)
    uri = _pushed(folder, bucket, endpoint, keys[1])
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = _pull_fails(capsys, uri, work / "dest", keys[1], endpoint)
    assert "MLT-PKL-004" in out
    # the shared gate itself (also used by `mltrust mlflow sign|promote`)
    with pytest.raises(UnsafeModelError, match="MLT-PKL-004"):
        scan_clean(folder)


# -- pull refusals: hostile object names --------------------------------------------------------


HOSTILE_NAMES = {
    "dotdot": "../escape.txt",
    "dotdot_deep": "tokenizer/../../../escape.txt",
    "absolute": "/tmp/escape.txt",
    "backslash": "..\\..\\escape.txt",
    "backslash_plain": "tokenizer\\vocab.txt",
    "dot": "./config.json",
    "empty_component": "tokenizer//vocab2.txt",
    "control_character": "config\x1b[2J.json",  # a terminal escape
    "drive_letter": "C:/escape.txt",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_NAMES))
def test_attack_hostile_object_name(
    name: str,
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    rel = HOSTILE_NAMES[name]
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{rel}", Body=b"pwned")
    assert f"{PREFIX}/{rel}" in _keys_in(s3, bucket)  # the server kept the name as written
    work = tmp_path / "work"
    work.mkdir()
    out = _pull_fails(capsys, uri, work / "dest", keys[1], endpoint)
    assert "unsafe object name" in out
    written = [p for p in tmp_path.rglob("*") if p.name.endswith("escape.txt")]
    assert written == [] and not Path("/tmp/escape.txt").exists()


def test_attack_names_differing_only_by_case(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/Config.json", Body=b"{}")
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "name the same file" in out and "Config.json" in out


def test_attack_names_differing_only_by_unicode_normalisation(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    for form in ("NFC", "NFD"):
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}/" + unicodedata.normalize(form, "café.txt"),
                      Body=b"x")  # fmt: skip
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "name the same file" in out


def test_attack_name_that_is_both_a_file_and_a_folder(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/config.json/x", Body=b"x")
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "which is a file" in out


# -- pull refusals: objects the signature does not cover, and sizes -----------------------------


@pytest.mark.parametrize(
    "rel",
    ["extra.pkl", ".git/hooks/post-checkout", ".mltrust/evidence.db", ".mltrust/policy.yaml",
     "tokenizer/extra.json"],
)  # fmt: skip
def test_attack_extra_object_not_covered_by_the_signature(
    rel: str,
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{rel}", Body=MALICIOUS_PICKLE)
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert f"not covered by the signature: {rel}" in out


def test_attack_signed_object_deleted(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.delete_object(Bucket=bucket, Key=f"{PREFIX}/tokenizer/vocab.txt")
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert "missing: tokenizer/vocab.txt" in out


def test_attack_huge_object_in_place_of_a_signed_file(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/config.json", Body=b"\0" * (8 << 20))
    out = _pull_fails(capsys, uri, tmp_path / "dest", keys[1], endpoint)
    assert f"size differs: config.json ({8 << 20} bytes" in out


def test_attack_huge_signature_object(
    model: Path, bucket: str, endpoint: str, s3: Any, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.put_object(Bucket=bucket, Key=f"{PREFIX}/model.sig", Body=b"{" * 4096)
    with pytest.raises(VerificationError, match="more than a signature"):
        pull(uri, tmp_path / "d", trust=keys[1], endpoint_url=endpoint,
             limits=Limits().replace(max_bundle_bytes=1024))  # fmt: skip
    _nothing_left(tmp_path / "d")


def test_signed_file_over_the_object_size_cap_is_not_pulled(
    model: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    code, _, err = _cli(capsys, "pull", uri, str(tmp_path / "d"), "--key", str(keys[1]),
                        "--endpoint-url", endpoint, "--max-object-bytes", "64")  # fmt: skip
    assert code == 2 and "model.safetensors" in err and "64-byte cap" in err
    _nothing_left(tmp_path / "d")


# -- setup errors -------------------------------------------------------------------------------


def test_setup_errors_exit_2(
    model: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pub = str(keys[1])
    dest = tmp_path / "d"

    def pull_err(*args: str) -> str:
        code, _, err = _cli(capsys, "pull", *args, str(dest), "--key", pub,
                            "--endpoint-url", endpoint)  # fmt: skip
        assert code == 2, err
        _nothing_left(dest)
        return err

    assert "not an S3 URI" in pull_err("https://example.invalid/x")
    assert "prefix has a '..' path component" in pull_err(f"s3://{bucket}/a/../b")
    assert "NoSuchBucket" in pull_err("s3://no-such-bucket-here/x")
    assert "holds no objects" in pull_err(f"s3://{bucket}/empty")
    code, _, err = _cli(capsys, "pull", f"s3://{bucket}/x", str(dest), "--key", str(keys[0]),
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 2 and "private key" in err
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert "no usable AWS credentials" in pull_err(f"s3://{bucket}/x")
    code, _, err = _cli(capsys, "push", str(model), f"s3://{bucket}/x", "--key", pub,
                        "--endpoint-url", endpoint)  # fmt: skip
    assert code == 2 and "no usable AWS credentials" in err


def test_unsafe_key_rule_and_uri_parsing() -> None:
    assert unsafe_key_reason("tokenizer/vocab.txt") is None
    assert unsafe_key_reason("a" * 256) is not None
    assert unsafe_key_reason("x/" + "a" * 1030) is not None
    assert parse_s3_uri("s3://bucket").key_prefix == ""
    assert parse_s3_uri("s3://bucket/a/b/").key("c") == "a/b/c"


# -- a hostile server: what moto never does -----------------------------------------------------


class _Hostile:
    """A minimal S3 endpoint that serves a folder, with the lies a hostile server can tell."""

    def __init__(self, folder: Path, *, prefix: str = PREFIX) -> None:
        self.files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        self.prefix = prefix
        self.extra_keys: list[tuple[str, int]] = []
        self.endless_empty_pages = False
        #: name -> bytes sent instead of the file, without a Content-Length (chunked)
        self.chunked: dict[str, bytes] = {}
        #: name -> seconds between single bytes of that object (a trickling server)
        self.trickle: dict[str, float] = {}
        #: seconds the listing response waits after its headers before its body
        self.stall_listing = 0.0
        #: bogus entries appended to the listing (a listing far larger than any model)
        self.bogus_entries = 0
        #: request paths in the order they came
        self.requests: list[str] = []

    def listing(self, token: str | None) -> bytes:
        from xml.sax.saxutils import escape

        entries = [(f"{self.prefix}/{n}", len(b)) for n, b in self.files.items()]
        entries += self.extra_keys
        entries += [(f"{self.prefix}/bogus/{'A' * 200}{i}", 1) for i in range(self.bogus_entries)]
        if self.endless_empty_pages:
            nxt = str(int(token or "0") + 1)
            items, more = "", f"<IsTruncated>true</IsTruncated><NextContinuationToken>{nxt}"
            more += "</NextContinuationToken>"
        else:
            items = "".join(
                f"<Contents><Key>{escape(k)}</Key><Size>{s}</Size></Contents>" for k, s in entries
            )
            more = "<IsTruncated>false</IsTruncated>"
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>hostile</Name><Prefix>{self.prefix}/</Prefix>{more}{items}"
            "</ListBucketResult>"
        ).encode()


@pytest.fixture()
def hostile(model: Path) -> Iterator[tuple[_Hostile, str]]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, unquote, urlsplit

    state = _Hostile(model)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            key = unquote(url.path).removeprefix("/hostile").lstrip("/")
            state.requests.append(key or "(listing)")
            if not key:
                token = parse_qs(url.query).get("continuation-token", [None])[0]
                body = state.listing(token)
                if state.stall_listing:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.flush()
                    time.sleep(state.stall_listing)
                    self.wfile.write(body)
                    return
                self._send(body, "application/xml")
                return
            rel = key.removeprefix(f"{state.prefix}/")
            if rel in state.trickle:
                data = state.files[rel]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for byte in data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(state.trickle[rel])
                except OSError:
                    pass  # the client hung up, as it should
                return
            if rel in state.chunked:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                data = state.chunked[rel]
                for i in range(0, len(data), 65536):
                    part = data[i : i + 65536]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self._send(state.files[rel], "application/octet-stream")

        def _send(self, body: bytes, ctype: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a trickling or stalled response is not waited for
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hostile_server_serving_the_folder_as_is_pulls(
    hostile: tuple[_Hostile, str], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """The stand-in server is faithful unless told to lie (so the tests below test the lie)."""
    _, url = hostile
    result = pull(f"s3://hostile/{PREFIX}", tmp_path / "d", trust=keys[1], endpoint_url=url)
    assert result.objects == 5


def test_attack_server_streams_more_than_the_signed_size(
    hostile: tuple[_Hostile, str],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = hostile
    state.chunked["config.json"] = b"\0" * (4 << 20)
    out = _pull_fails(capsys, f"s3://hostile/{PREFIX}", tmp_path / "d", keys[1], url)
    assert "config.json: more than the expected" in out


def test_attack_server_lists_keys_outside_the_prefix(
    hostile: tuple[_Hostile, str],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = hostile
    state.extra_keys = [("elsewhere/escape.txt", 3), (f"{PREFIX}/config.json", 13)]
    out = _pull_fails(capsys, f"s3://hostile/{PREFIX}", tmp_path / "d", keys[1], url)
    assert "'elsewhere/escape.txt', which is outside the prefix" in out
    assert "listed 'iris/3/config.json' twice" in out


def test_attack_server_never_ends_its_listing(
    hostile: tuple[_Hostile, str],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = hostile
    state.endless_empty_pages = True
    code, _, err = _cli(capsys, "pull", f"s3://hostile/{PREFIX}", str(tmp_path / "d"), "--key",
                        str(keys[1]), "--endpoint-url", url)  # fmt: skip
    assert code == 2 and "empty listing pages" in err
    _nothing_left(tmp_path / "d")


def test_attack_s3_trickle_hang_is_cut_by_the_pull_deadline(
    hostile: tuple[_Hostile, str],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """model.sig arrives one byte every 0.5 s: each read is inside botocore's read timeout,
    so only a deadline for the whole pull ends it."""
    state, url = hostile
    state.trickle["model.sig"] = 0.5
    started = time.monotonic()
    code, _, err = _cli(capsys, "pull", f"s3://hostile/{PREFIX}", str(tmp_path / "d"), "--key",
                        str(keys[1]), "--endpoint-url", url, "--timeout", "2")  # fmt: skip
    assert code == 2 and "did not finish within 2 s" in err, err
    assert time.monotonic() - started < 15
    _nothing_left(tmp_path / "d")


def test_attack_s3_trickle_below_the_minimum_rate_per_object(
    hostile: tuple[_Hostile, str],
    keys: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mltrust.errors import LimitExceeded
    from mltrust.integrations import s3 as s3mod

    monkeypatch.setattr(s3mod, "_OBJECT_GRACE_S", 1.0)
    state, url = hostile
    state.trickle["config.json"] = 0.5
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match=r"config\.json arrives slower than 1000 bytes/s"):
        pull(f"s3://hostile/{PREFIX}", tmp_path / "d", trust=keys[1], endpoint_url=url,
             min_rate=1000)  # fmt: skip
    assert time.monotonic() - started < 10
    _nothing_left(tmp_path / "d")


def test_attack_s3_trickle_hang_in_the_listing_is_cut_by_the_cli_deadline(
    hostile: tuple[_Hostile, str], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    """A listing that stalls after its headers: the CLI (main thread) is interrupted by the
    hard deadline (SIGALRM), which in-process tests cannot show under pytest-timeout."""
    state, url = hostile
    state.stall_listing = 30.0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "mltrust", "s3", "pull", f"s3://hostile/{PREFIX}",
         str(tmp_path / "d"), "--key", str(keys[1]), "--endpoint-url", url, "--timeout", "2"],
        capture_output=True, text=True, env=env, timeout=25,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "did not finish within 2 s" in proc.stderr
    assert time.monotonic() - started < 20
    _nothing_left(tmp_path / "d")


def test_attack_s3_listing_memory_is_bounded_by_the_signed_manifest(
    hostile: tuple[_Hostile, str],
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A listing of 20,000 objects for a 3-file model: refused before botocore parses the
    page, and model.sig was fetched by name before anything was listed."""
    state, url = hostile
    state.bogus_entries = 20_000
    out = _pull_fails(capsys, f"s3://hostile/{PREFIX}", tmp_path / "d", keys[1], url)
    assert "holds more objects than its signature covers" in out
    assert "listing page of" in out
    assert state.requests[0] == f"{PREFIX}/model.sig"
    assert state.requests[1:] == ["(listing)"]


def test_attack_s3_listing_with_a_few_extra_objects_beyond_the_cap(
    hostile: tuple[_Hostile, str], keys: tuple[Path, Path], tmp_path: Path
) -> None:
    state, url = hostile
    state.bogus_entries = 40  # small entries, more than the manifest + slack
    with pytest.raises(VerificationError, match="more objects than its signature covers"):
        pull(f"s3://hostile/{PREFIX}", tmp_path / "d", trust=keys[1], endpoint_url=url)
    _nothing_left(tmp_path / "d")


def test_attack_s3_state_poison_by_a_refused_pull(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    canary: Path,
) -> None:
    """A genuinely signed v5 that is refused (findings) must not make the good v3 a rollback."""
    bad = tmp_path / "v5"
    bad.mkdir()
    (bad / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    sign(bad, key=load_private_key(keys[0]), model_name="iris", version=5)
    push(bad, f"s3://{bucket}/iris/5", key=keys[1], endpoint_url=endpoint)
    good = _pushed(_model(tmp_path / "v3", keys[0]), bucket, endpoint, keys[1])
    state = tmp_path / "seen.json"
    args = ["--key", str(keys[1]), "--endpoint-url", endpoint, "--name", "iris", "--state",
            str(state)]  # fmt: skip
    code, out, _ = _cli(capsys, "pull", f"s3://{bucket}/iris/5", str(tmp_path / "o5"), *args)
    assert code == 1 and "MLT-PKL" in out
    assert not state.exists() or '"version": 5' not in state.read_text()
    code, out, _ = _cli(capsys, "pull", good, str(tmp_path / "o3"), *args)
    assert code == 0, out
    assert '"version": 3' in state.read_text()


def test_state_is_recorded_only_after_the_move_and_still_refuses_rollback(
    tmp_path: Path,
    bucket: str,
    endpoint: str,
    keys: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mltrust.integrations import s3 as s3mod

    uri = _pushed(_model(tmp_path / "v3", keys[0]), bucket, endpoint, keys[1])
    state = tmp_path / "seen.json"

    def failing_rename(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(s3mod.os, "rename", failing_rename)
        with pytest.raises(Exception, match="cannot move the model"):
            pull(uri, tmp_path / "a", trust=keys[1], endpoint_url=endpoint, name="iris",
                 state=state)  # fmt: skip
    assert not state.exists()
    _nothing_left(tmp_path / "a")
    pull(uri, tmp_path / "b", trust=keys[1], endpoint_url=endpoint, name="iris", state=state)
    assert '"version": 3' in state.read_text()


def test_pull_removes_staging_folders_of_killed_pulls_but_not_live_ones(
    model: Path, bucket: str, endpoint: str, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    import fcntl

    uri = _pushed(model, bucket, endpoint, keys[1])
    dead = tmp_path / ".d.pull-dead"
    live = tmp_path / ".d.pull-live"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"unverified")
        os.utime(folder, (time.time() - 3600, time.time() - 3600))
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        pull(uri, tmp_path / "d", trust=keys[1], endpoint_url=endpoint)
        assert not dead.exists()
        assert live.exists()
    finally:
        os.close(fd)


def test_pull_fails_when_the_signature_object_is_missing_or_the_prefix_is_empty(
    model: Path, bucket: str, endpoint: str, s3: Any, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.delete_object(Bucket=bucket, Key=f"{PREFIX}/model.sig")
    with pytest.raises(VerificationError, match="is not signed"):
        pull(uri, tmp_path / "d", trust=keys[1], endpoint_url=endpoint)
    with pytest.raises(InputError, match="holds no objects"):
        pull(f"s3://{bucket}/nothing", tmp_path / "d", trust=keys[1], endpoint_url=endpoint)
    _nothing_left(tmp_path / "d")


def test_attack_attestation_deleted_from_the_bucket_fails_when_required(
    model: Path,
    bucket: str,
    endpoint: str,
    s3: Any,
    keys: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    uri = _pushed(model, bucket, endpoint, keys[1])
    s3.delete_object(Bucket=bucket, Key=f"{PREFIX}/.mltrust/attestations/scan.bundle.json")
    code, out, _ = _cli(capsys, "pull", uri, str(tmp_path / "d"), "--key", str(keys[1]),
                        "--endpoint-url", endpoint, "--require-attestations")  # fmt: skip
    assert code == 1 and "no attestations found" in out, out
    _nothing_left(tmp_path / "d")
