"""Tamper suite: each test is an attack on a signed model that verification must stop."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltrust.attest import (
    PinnedKeys,
    build_manifest,
    generate_keypair,
    load_private_key,
    pae,
    sign,
    sign_statement,
    verify,
)
from mltrust.attest._keys import sign_bytes
from mltrust.errors import InputError, VerificationError


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    good = generate_keypair(d / "good", passphrase=None)
    evil = generate_keypair(d / "evil", passphrase=None)
    ed = generate_keypair(d / "ed", key_type="ed25519", passphrase=None)
    return {
        "key": good.private_path,
        "pub": good.public_path,
        "evil_key": evil.private_path,
        "evil_pub": evil.public_path,
        "ed_key": ed.private_path,
        "ed_pub": ed.public_path,
    }


def make_model(root: Path) -> Path:
    model = root / "model"
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (model / "config.json").write_text('{"layers": 3}')
    (model / "sub" / "tokenizer.txt").write_text("a b c\n")
    return model


@pytest.fixture
def signed(tmp_path: Path, keys: dict[str, Path]) -> Path:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=2)
    return model


def differences(model: Path, pub: Path, **kw: Any) -> list[str]:
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(pub), **kw)
    return err.value.differences or [str(err.value)]


def read_bundle(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def statement_of(bundle: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    return doc


def resign(bundle_path: Path, key_path: Path, edit: Any) -> None:
    """Rewrite the bundle's statement with ``edit`` and sign it again with ``key_path``."""
    bundle = read_bundle(bundle_path)
    statement = statement_of(bundle)
    edit(statement)
    bundle_path.write_text(json.dumps(sign_statement(statement, load_private_key(key_path))))


def test_untampered_model_verifies(signed: Path, keys: dict[str, Path]) -> None:
    result = verify(signed, trust=PinnedKeys(keys["pub"]))
    assert set(result.files) == {"weights.bin", "config.json", "sub/tokenizer.txt"}
    assert result.version == 2 and result.model_name == "model"
    assert result.root_digest == build_manifest(signed, ignore=["model.sig"]).root_digest


def test_byte_flip(signed: Path, keys: dict[str, Path]) -> None:
    p = signed / "weights.bin"
    data = bytearray(p.read_bytes())
    data[5000] ^= 0x01
    p.write_bytes(bytes(data))
    assert differences(signed, keys["pub"]) == ["modified: weights.bin"]


def test_append(signed: Path, keys: dict[str, Path]) -> None:
    with open(signed / "config.json", "ab") as fh:
        fh.write(b" ")
    assert differences(signed, keys["pub"]) == ["modified: config.json"]


def test_truncate(signed: Path, keys: dict[str, Path]) -> None:
    p = signed / "weights.bin"
    p.write_bytes(p.read_bytes()[:-1])
    assert differences(signed, keys["pub"]) == ["modified: weights.bin"]


def test_file_added(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "sub" / "backdoor.py").write_text("import os")
    assert differences(signed, keys["pub"]) == ["added: sub/backdoor.py"]


def test_file_removed(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "config.json").unlink()
    assert differences(signed, keys["pub"]) == ["removed: config.json"]


def test_file_renamed(signed: Path, keys: dict[str, Path]) -> None:
    (signed / "config.json").rename(signed / "config2.json")
    assert differences(signed, keys["pub"]) == ["renamed: config.json -> config2.json"]


def test_rename_changes_root_digest_but_not_model_signing_digest(tmp_path: Path) -> None:
    model = make_model(tmp_path)
    before = build_manifest(model)
    (model / "config.json").rename(model / "zconfig.json")
    (model / "sub" / "tokenizer.txt").rename(model / "sub" / "atokenizer.txt")
    after = build_manifest(model)
    assert before.root_digest != after.root_digest
    # model-signing's digest does not bind names: same contents, same order -> same digest.
    (model / "zconfig.json").rename(model / "config.json")
    (model / "sub" / "atokenizer.txt").rename(model / "sub" / "tokenizer.txt")
    (model / "config.json").rename(model / "config-renamed.json")
    renamed = build_manifest(model)
    assert renamed.compat_digest == before.compat_digest
    assert renamed.root_digest != before.root_digest


def test_contents_swapped_between_two_files(signed: Path, keys: dict[str, Path]) -> None:
    a, b = signed / "config.json", signed / "sub" / "tokenizer.txt"
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    assert sorted(differences(signed, keys["pub"])) == [
        "modified: config.json",
        "modified: sub/tokenizer.txt",
    ]


def test_symlink_swapped_in(signed: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    outside = tmp_path / "evil.bin"
    outside.write_bytes((signed / "weights.bin").read_bytes())
    (signed / "weights.bin").unlink()
    os.symlink(outside, signed / "weights.bin")
    diffs = differences(signed, keys["pub"])
    assert any("symbolic link" in d and "weights.bin" in d for d in diffs)


def test_symlink_refused_when_signing(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    os.symlink(model / "config.json", model / "link.json")
    with pytest.raises(InputError, match="symbolic link"):
        sign(model, key=keys["key"])


def test_symlink_outside_root_refused_even_when_allowed(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", model / "link")
    with pytest.raises(InputError, match="outside"):
        sign(model, key=keys["key"], allow_symlinks=True)


def test_signature_by_another_key(signed: Path, keys: dict[str, Path]) -> None:
    sign(signed, key=keys["evil_key"], version=2)
    diffs = differences(signed, keys["pub"])
    assert "does not verify with the pinned key" in diffs[0]


def test_key_substitution_in_bundle(signed: Path, keys: dict[str, Path]) -> None:
    """The attacker signs a tampered model and puts their own key in verificationMaterial."""
    (signed / "weights.bin").write_bytes(b"evil")
    sig = signed / "model.sig"
    sign(signed, key=keys["evil_key"], version=2)
    bundle = read_bundle(sig)
    evil_pem = keys["evil_pub"].read_bytes()
    bundle["verificationMaterial"]["publicKey"] = {
        "hint": "attacker",
        "rawBytes": base64.b64encode(evil_pem).decode(),
    }
    sig.write_text(json.dumps(bundle))
    diffs = differences(signed, keys["pub"])
    assert "pinned key" in diffs[0]


def test_bundle_for_a_different_subject(tmp_path: Path, keys: dict[str, Path]) -> None:
    a = make_model(tmp_path / "a")
    b = make_model(tmp_path / "b")
    (b / "weights.bin").write_bytes(b"other weights")
    sign(b, key=keys["key"])
    (a / "model.sig").write_bytes((b / "model.sig").read_bytes())
    assert differences(a, keys["pub"]) == ["modified: weights.bin"]


def test_replayed_older_signature_rollback(
    signed: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    old_bundle = (signed / "model.sig").read_bytes()
    old_weights = (signed / "weights.bin").read_bytes()
    verify(signed, trust=PinnedKeys(keys["pub"]), state=state, name="model")  # version 2 recorded
    (signed / "weights.bin").write_bytes(b"patched weights v3")
    sign(signed, key=keys["key"], version=3)
    assert verify(signed, trust=PinnedKeys(keys["pub"]), state=state, name="model").version == 3
    # the attacker restores the old, validly signed release
    (signed / "weights.bin").write_bytes(old_weights)
    (signed / "model.sig").write_bytes(old_bundle)
    verify(signed, trust=PinnedKeys(keys["pub"]))  # still a valid signature without state
    with pytest.raises(VerificationError, match="rollback"):
        verify(signed, trust=PinnedKeys(keys["pub"]), state=state, name="model")


def test_same_version_other_content_refused_with_state(
    signed: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    verify(signed, trust=PinnedKeys(keys["pub"]), state=state, name="model")
    (signed / "weights.bin").write_bytes(b"different")
    sign(signed, key=keys["key"], version=2)
    with pytest.raises(VerificationError, match="seen before with other content"):
        verify(signed, trust=PinnedKeys(keys["pub"]), state=state, name="model")


def test_unversioned_signature_refused_with_state(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    with pytest.raises(VerificationError, match="no version"):
        verify(model, trust=PinnedKeys(keys["pub"]), state=tmp_path / "state.json", name="model")


def test_expired_max_age(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], issued_at=datetime.now(UTC) - timedelta(days=40))
    with pytest.raises(VerificationError, match="expired"):
        verify(model, trust=PinnedKeys(keys["pub"]), max_age=timedelta(days=30))
    assert (
        verify(model, trust=PinnedKeys(keys["pub"]), max_age=timedelta(days=41)).signed_at
        is not None
    )


def test_future_dated_signature(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], issued_at=datetime.now(UTC) + timedelta(days=1))
    with pytest.raises(VerificationError, match="future"):
        verify(model, trust=PinnedKeys(keys["pub"]))


def test_payload_type_confusion(signed: Path, keys: dict[str, Path]) -> None:
    sig = signed / "model.sig"
    bundle = read_bundle(sig)
    env = bundle["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    other = "application/json"
    signature = sign_bytes(load_private_key(keys["key"]), pae(other, payload))
    env["payloadType"] = other
    env["signatures"] = [{"sig": base64.b64encode(signature).decode(), "keyid": ""}]
    sig.write_text(json.dumps(bundle))
    assert "payloadType" in differences(signed, keys["pub"])[0]


def test_predicate_type_confusion(signed: Path, keys: dict[str, Path]) -> None:
    resign(
        signed / "model.sig",
        keys["key"],
        lambda s: s.update(predicateType="https://mltrust.dev/scan/v1"),
    )
    assert "predicateType" in differences(signed, keys["pub"])[0]


def test_statement_type_confusion(signed: Path, keys: dict[str, Path]) -> None:
    resign(
        signed / "model.sig",
        keys["key"],
        lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"),
    )
    assert "_type" in differences(signed, keys["pub"])[0]


def test_signed_manifest_inconsistent_with_subject(signed: Path, keys: dict[str, Path]) -> None:
    def edit(s: dict[str, Any]) -> None:
        s["subject"][0]["digest"]["sha256"] = "0" * 64

    resign(signed / "model.sig", keys["key"], edit)
    assert "inconsistent" in differences(signed, keys["pub"])[0]


def test_extra_signatures_in_envelope_rejected(signed: Path, keys: dict[str, Path]) -> None:
    sig = signed / "model.sig"
    bundle = read_bundle(sig)
    env = bundle["dsseEnvelope"]
    payload = base64.b64decode(env["payload"])
    evil = sign_bytes(load_private_key(keys["evil_key"]), pae(env["payloadType"], payload))
    env["signatures"].append({"sig": base64.b64encode(evil).decode(), "keyid": "evil"})
    sig.write_text(json.dumps(bundle))
    assert "exactly one" in differences(signed, keys["pub"])[0]


def test_malformed_base64_payload(signed: Path, keys: dict[str, Path]) -> None:
    sig = signed / "model.sig"
    bundle = read_bundle(sig)
    bundle["dsseEnvelope"]["payload"] = "not base64!!"
    sig.write_text(json.dumps(bundle))
    with pytest.raises(InputError, match="base64"):
        verify(signed, trust=PinnedKeys(keys["pub"]))


def test_malformed_base64_signature(signed: Path, keys: dict[str, Path]) -> None:
    sig = signed / "model.sig"
    bundle = read_bundle(sig)
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = "%%%"
    sig.write_text(json.dumps(bundle))
    with pytest.raises(InputError, match="base64"):
        verify(signed, trust=PinnedKeys(keys["pub"]))


def test_malformed_json_bundle(signed: Path, keys: dict[str, Path]) -> None:
    sig = signed / "model.sig"
    sig.write_text(sig.read_text()[:-20])
    with pytest.raises(InputError, match="JSON"):
        verify(signed, trust=PinnedKeys(keys["pub"]))


def test_malformed_json_payload(signed: Path, keys: dict[str, Path]) -> None:
    sig = signed / "model.sig"
    bundle = read_bundle(sig)
    payload = b'{"_type": '
    signature = sign_bytes(
        load_private_key(keys["key"]), pae("application/vnd.in-toto+json", payload)
    )
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    bundle["dsseEnvelope"]["signatures"] = [{"sig": base64.b64encode(signature).decode()}]
    sig.write_text(json.dumps(bundle))
    with pytest.raises(InputError, match="JSON"):
        verify(signed, trust=PinnedKeys(keys["pub"]))


def test_unsafe_ignore_path_in_payload(signed: Path, keys: dict[str, Path]) -> None:
    def edit(s: dict[str, Any]) -> None:
        s["predicate"]["serialization"]["ignore_paths"] = ["../outside"]

    resign(signed / "model.sig", keys["key"], edit)
    assert "ignore path" in differences(signed, keys["pub"])[0]


def test_ignore_rules_are_signed(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    (model / "notes.md").write_text("unsigned notes")
    sign(model, key=keys["key"], ignore=["notes.md"])
    (model / "notes.md").write_text("changed notes")
    verify(model, trust=PinnedKeys(keys["pub"]))  # ignored file may change
    # widening the ignore list in the bundle breaks the signature
    bundle = read_bundle(model / "model.sig")
    statement = statement_of(bundle)
    statement["predicate"]["serialization"]["ignore_paths"].append("weights.bin")
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    (model / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="pinned key"):
        verify(model, trust=PinnedKeys(keys["pub"]))


def test_ed25519_keys_sign_and_verify(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["ed_key"])
    verify(model, trust=PinnedKeys(keys["ed_pub"]))
    with pytest.raises(VerificationError):
        verify(model, trust=PinnedKeys(keys["pub"]))


def test_any_of_several_pinned_keys(signed: Path, keys: dict[str, Path]) -> None:
    result = verify(signed, trust=PinnedKeys(keys["evil_pub"], keys["pub"]))
    assert result.key_fingerprint


def test_single_file_model(tmp_path: Path, keys: dict[str, Path]) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"\x00" * 1000)
    bundle = sign(f, key=keys["key"])
    assert bundle == tmp_path / "model.safetensors.sig"
    assert verify(f, trust=PinnedKeys(keys["pub"])).files.keys() == {"model.safetensors"}
    f.write_bytes(b"\x00" * 999 + b"\x01")
    assert differences(f, keys["pub"]) == ["modified: model.safetensors"]


def test_sharded_manifest_detects_change_in_one_shard(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], shard_size=1000)
    manifest = build_manifest(model, shard_size=1000)
    assert len(manifest.by_name()["weights.bin"].digests) == 11
    verify(model, trust=PinnedKeys(keys["pub"]))
    p = model / "weights.bin"
    data = bytearray(p.read_bytes())
    data[9999] ^= 0xFF
    p.write_bytes(bytes(data))
    assert differences(model, keys["pub"]) == ["modified: weights.bin"]


def test_blake3_manifest(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], hash_algorithm="blake3")
    assert (
        verify(model, trust=PinnedKeys(keys["pub"])).root_digest
        != build_manifest(model).root_digest
    )
    (model / "config.json").write_text("{}")
    assert differences(model, keys["pub"]) == ["modified: config.json"]


def test_reuse_rehashes_only_changed_files(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltrust.attest import _manifest

    model = make_model(tmp_path)
    first = sign(model, key=keys["key"], output=tmp_path / "v1.sig")
    (model / "config.json").write_text('{"layers": 4}')
    hashed: list[str] = []
    real = _manifest._Hasher.hash_range

    def spy(self: Any, job: Any) -> tuple[str, int]:
        hashed.append(job.name)
        result: tuple[str, int] = real(self, job)
        return result

    monkeypatch.setattr(_manifest._Hasher, "hash_range", spy)
    sign(model, key=keys["key"], output=tmp_path / "v2.sig", reuse=first)
    assert hashed == ["config.json"]
    verify(model, trust=PinnedKeys(keys["pub"]), signature=tmp_path / "v2.sig")


def test_reuse_refuses_bundle_signed_by_another_key(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    forged = sign(model, key=keys["evil_key"], output=tmp_path / "forged.sig")
    with pytest.raises(VerificationError):
        sign(model, key=keys["key"], reuse=forged)


_MUTATIONS = st.sampled_from(
    [
        "flip",
        "append",
        "truncate",
        "add",
        "remove",
        "rename",
        "swap",
        "empty",
        "add_dir",
        "chmod",
        "symlink_replace",
        "symlink_add",
        "hidden_add",
        "fifo_add",
    ]
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(mutation=_MUTATIONS, which=st.integers(0, 2), offset=st.integers(0, 10_000))
def test_property_any_mutation_fails_verification(
    tmp_path_factory: pytest.TempPathFactory,
    keys: dict[str, Path],
    mutation: str,
    which: int,
    offset: int,
) -> None:
    model = make_model(tmp_path_factory.mktemp("prop"))
    sign(model, key=keys["key"])
    files = sorted(p for p in model.rglob("*") if p.is_file() and p.name != "model.sig")
    target = files[which % len(files)]
    data = target.read_bytes()
    if mutation == "flip":
        i = offset % len(data)
        target.write_bytes(data[:i] + bytes([data[i] ^ 0x80]) + data[i + 1 :])
    elif mutation == "append":
        target.write_bytes(data + b"\x00")
    elif mutation == "truncate":
        target.write_bytes(data[: offset % len(data)])
    elif mutation == "add":
        (model / f"new{offset}.bin").write_bytes(b"x")
    elif mutation == "remove":
        target.unlink()
    elif mutation == "rename":
        target.rename(target.with_name(target.name + ".moved"))
    elif mutation == "swap":
        other = files[(which + 1) % len(files)]
        od = other.read_bytes()
        target.write_bytes(od)
        other.write_bytes(data)
    elif mutation == "empty":
        target.write_bytes(b"")
    elif mutation == "chmod":
        target.chmod(target.stat().st_mode ^ 0o111)  # the executable bit is signed
    elif mutation == "symlink_replace":  # same bytes, now behind a link
        copy = model.parent / f"copy{offset}"
        copy.write_bytes(data)
        target.unlink()
        target.symlink_to(copy)
    elif mutation == "symlink_add":
        (model / f"link{offset}").symlink_to(target)
    elif mutation == "hidden_add":  # .git/ itself is left out only as the signature says
        name = (".mltrust/x.py", f".gitx{offset}", ".mltrust/attestations/x.bundle.json")[which]
        hidden = model / name
        hidden.parent.mkdir(parents=True, exist_ok=True)
        hidden.write_bytes(b"import os")
    elif mutation == "fifo_add":
        os.mkfifo(model / f"pipe{offset}")
    else:
        (model / "sub" / "deeper").mkdir()
        (model / "sub" / "deeper" / "x").write_bytes(b"")
    with pytest.raises((VerificationError, InputError)):
        verify(model, trust=PinnedKeys(keys["pub"]))


def test_ignore_glob_expanded_at_signing(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    (model / "README.md").write_text("docs")
    (model / "sub" / "notes.md").write_text("notes")
    sign(model, key=keys["key"], ignore=["*.md"])
    statement = statement_of(read_bundle(model / "model.sig"))
    ignored = statement["predicate"]["serialization"]["ignore_paths"]
    assert "README.md" in ignored and "sub/notes.md" in ignored
    (model / "README.md").write_text("changed docs")
    assert "README.md" not in verify(model, trust=PinnedKeys(keys["pub"])).files
    (model / "CHANGELOG.md").write_text("a file created after signing is not ignored")
    assert differences(model, keys["pub"]) == ["added: CHANGELOG.md"]


def test_single_file_renamed(tmp_path: Path, keys: dict[str, Path]) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(b"\x01" * 100)
    sig = sign(f, key=keys["key"])
    moved = f.rename(tmp_path / "other.safetensors")
    assert differences(moved, keys["pub"], signature=sig) == [
        "renamed: model.safetensors -> other.safetensors"
    ]


def test_reuse_not_fooled_by_restored_mtime(tmp_path: Path, keys: dict[str, Path]) -> None:
    """Same size, same inode, mtime put back with utime: ctime still betrays the write."""
    import time

    model = make_model(tmp_path)
    first = sign(model, key=keys["key"], output=tmp_path / "v1.sig")
    p = model / "config.json"
    st = p.stat()
    time.sleep(0.01)
    with open(p, "r+b") as fh:  # same inode, same size
        fh.write(b'{"layers": 9}')
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert p.stat().st_mtime_ns == st.st_mtime_ns and p.stat().st_ino == st.st_ino
    second = sign(model, key=keys["key"], output=tmp_path / "v2.sig", reuse=first)
    verify(model, trust=PinnedKeys(keys["pub"]), signature=second)  # the new content was hashed
    with pytest.raises(VerificationError):
        verify(model, trust=PinnedKeys(keys["pub"]), signature=first)
