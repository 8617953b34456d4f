"""Interoperability with OpenSSF model-signing (``model_signing`` 1.x), both directions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mltrust.attest import PinnedKeys, generate_keypair, read_bundle, sign, verify
from mltrust.errors import VerificationError

model_signing = pytest.importorskip("model_signing")

MODEL_SIGNING_CLI = Path(sys.executable).with_name("model_signing")


@pytest.fixture(scope="module")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pair = generate_keypair(tmp_path_factory.mktemp("k") / "signer", passphrase=None)
    return pair.private_path, pair.public_path


def make_model(root: Path) -> Path:
    model = root / "model"
    (model / "layers").mkdir(parents=True)
    (model / "layers" / "0.bin").write_bytes(b"\x01" * 5000)
    (model / "layers" / "1.bin").write_bytes(b"\x02" * 7000)
    (model / "a.b").write_bytes(b"sorts after a/ in component order")
    (model / "config.json").write_text("{}")
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return model


def their_verify(model: Path, sig: Path, pub: Path) -> None:
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)


def their_sign(model: Path, sig: Path, key: Path, *, ignore: list[str], shard: int = 0) -> None:
    hashing = model_signing.hashing.Config()
    if shard:
        hashing = hashing.use_shard_serialization(shard_size=shard)
    hashing = hashing.set_ignored_paths(paths=ignore)
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(
        hashing
    ).sign(model, sig)


def test_our_signature_verified_by_model_signing_api(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    sig = sign(model, key=key, version=1)
    their_verify(model, sig, pub)
    (model / "config.json").write_text('{"evil": 1}')
    with pytest.raises(ValueError):
        their_verify(model, sig, pub)


def test_our_sharded_signature_verified_by_model_signing(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    sig = sign(model, key=key, shard_size=2048)
    their_verify(model, sig, pub)


def test_our_single_file_signature_verified_by_model_signing(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    key, pub = keypair
    f = tmp_path / "weights.safetensors"
    f.write_bytes(b"\x07" * 3000)
    their_verify(f, sign(f, key=key), pub)


def test_our_signature_verified_by_model_signing_cli(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    sig = sign(model, key=key)
    ok = subprocess.run(
        [
            str(MODEL_SIGNING_CLI),
            "verify",
            "key",
            str(model),
            "--signature",
            str(sig),
            "--public_key",
            str(pub),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (model / "layers" / "0.bin").write_bytes(b"\x00" * 5000)
    bad = subprocess.run(
        [
            str(MODEL_SIGNING_CLI),
            "verify",
            "key",
            str(model),
            "--signature",
            str(sig),
            "--public_key",
            str(pub),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0


def test_their_signature_verified_by_us(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    sig = model / "model.sig"
    their_sign(model, sig, key, ignore=["model.sig"])
    result = verify(model, trust=PinnedKeys(pub))
    assert set(result.files) == {"layers/0.bin", "layers/1.bin", "a.b", "config.json"}
    assert result.signed_at is None and result.version is None  # model-signing has no freshness
    assert result.compat_digest == read_bundle_subject(sig)
    (model / "layers" / "0.bin").rename(model / "layers" / "9.bin")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(pub))
    assert err.value.differences == ["renamed: layers/0.bin -> layers/9.bin"]


def test_their_sharded_signature_verified_by_us(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    sig = tmp_path / "their.sig"
    their_sign(model, sig, key, ignore=[], shard=3000)
    verify(model, trust=PinnedKeys(pub), signature=sig)
    with open(model / "layers" / "1.bin", "r+b") as fh:
        fh.seek(6500)
        fh.write(b"\xff")
    with pytest.raises(VerificationError, match="difference"):
        verify(model, trust=PinnedKeys(pub), signature=sig)


def test_their_single_file_signature_verified_by_us(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    key, pub = keypair
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\x05" * 4096)
    sig = tmp_path / "their.sig"
    their_sign(f, sig, key, ignore=[])
    assert verify(f, trust=PinnedKeys(pub), signature=sig).files.keys() == {"weights.bin"}


def test_their_cli_signature_verified_by_us(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    sig = tmp_path / "cli.sig"
    done = subprocess.run(
        [
            str(MODEL_SIGNING_CLI),
            "sign",
            "key",
            str(model),
            "--signature",
            str(sig),
            "--private_key",
            str(key),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    verify(model, trust=PinnedKeys(pub), signature=sig)


def test_their_signature_with_another_key_rejected(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    _key, pub = keypair
    other = generate_keypair(tmp_path / "other", passphrase=None)
    model = make_model(tmp_path)
    sig = tmp_path / "their.sig"
    their_sign(model, sig, other.private_path, ignore=[])
    with pytest.raises(VerificationError, match="pinned key"):
        verify(model, trust=PinnedKeys(pub), signature=sig)


def read_bundle_subject(sig: Path) -> str:
    import base64

    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    digest: str = statement["subject"][0]["digest"]["sha256"]
    assert read_bundle(sig).envelope.payload_type == "application/vnd.in-toto+json"
    return digest


def test_their_signature_still_verifies_after_mltrust_attestation(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    from mltrust.attest import attest_scan

    key, pub = keypair
    model = make_model(tmp_path)
    their_sign(model, model / "model.sig", key, ignore=["model.sig"])
    attest_scan(model, key=key)
    result = verify(model, trust=PinnedKeys(pub), attestations=True)
    assert len(result.attestations) == 1


def test_blake3_both_ways(tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    model = make_model(tmp_path)
    their_verify(model, sign(model, key=key, hash_algorithm="blake3"), pub)
    sig = tmp_path / "their-blake3.sig"
    hashing = model_signing.hashing.Config().use_file_serialization(hashing_algorithm="blake3")
    model_signing.signing.Config().use_elliptic_key_signer(private_key=key).set_hashing_config(
        hashing.set_ignored_paths(paths=["model.sig"])
    ).sign(model, sig)
    verify(model, trust=PinnedKeys(pub), signature=sig)


def test_their_signature_over_a_folder_with_dot_mltrust_verifies(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    """model_signing hashes ``.mltrust/`` like any folder; so do we (nothing silently left out)."""
    from mltrust.attest import attest_scan

    key, pub = keypair
    model = make_model(tmp_path)
    (model / ".mltrust").mkdir()
    (model / ".mltrust" / "notes.txt").write_text("kept by the model's authors\n")
    attest_scan(model, key=key)  # an attestation that exists before model_signing signs
    their_sign(model, model / "model.sig", key, ignore=["model.sig"])
    verify(model, trust=PinnedKeys(pub))
    (model / ".mltrust" / "notes.txt").write_text("changed\n")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(pub))
    assert err.value.differences == ["modified: .mltrust/notes.txt"]
    (model / ".mltrust" / "notes.txt").write_text("kept by the model's authors\n")
    (model / ".mltrust" / "evil.py").write_text("import os\n")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(pub))
    assert err.value.differences == ["added: .mltrust/evil.py"]


def test_our_signature_verified_by_model_signing_after_attestations(
    tmp_path: Path, keypair: tuple[Path, Path]
) -> None:
    from mltrust.attest import attest_provenance, attest_scan

    key, pub = keypair
    model = make_model(tmp_path)
    sig = sign(model, key=key, version=1)
    attest_scan(model, key=key)
    attest_provenance(model, key=key, datasets=[], code_commit=None, params=["epochs=3"])
    their_verify(model, sig, pub)
    verify(model, trust=PinnedKeys(pub), attestations=True)
    (model / ".mltrust" / "payload.pkl").write_bytes(b"\x80\x04.")
    with pytest.raises(ValueError):
        their_verify(model, sig, pub)
    with pytest.raises(VerificationError):
        verify(model, trust=PinnedKeys(pub))
