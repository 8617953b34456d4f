"""Attestations (scan, SLSA provenance), ``verify --attestations`` and keyless bundles."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mltrust.attest import (
    PROVENANCE_PREDICATE,
    SCAN_PREDICATE,
    KeylessPolicy,
    PinnedKeys,
    attest_provenance,
    attest_scan,
    attestation_path,
    build_manifest,
    generate_keypair,
    model_manifest,
    pae,
    sign,
    verify,
)
from mltrust.attest._bundle import canonical_json
from mltrust.attest._sign import manifest_statement
from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS, main
from mltrust.errors import ConfigError, VerificationError
from mltrust.store import EvidenceStore


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    good = generate_keypair(d / "good", passphrase=None)
    evil = generate_keypair(d / "evil", passphrase=None)
    return {"key": good.private_path, "pub": good.public_path, "evil_key": evil.private_path}


def make_model(root: Path) -> Path:
    model = root / "model"
    model.mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (model / "config.json").write_text('{"a": 1}')
    return model


def test_scan_attestation_written_stored_and_verified(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)
    with EvidenceStore.open(tmp_path / "e.db") as store:
        out = attest_scan(model, key=keys["key"], store=store)
        assert out == model / ".mltrust" / "attestations" / "scan.bundle.json"
        root = model_manifest(model).root_digest
        stored = store.statements(subject_digest=root, predicate_type=SCAN_PREDICATE)
        assert len(stored) == 1 and stored[0].envelope is not None
        predicate = stored[0].statement["predicate"]
        assert predicate["summary"]["files"] == 2
        assert {f["path"] for f in predicate["files"]} == {"weights.bin", "config.json"}
    result = verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    assert result.root_digest == root
    assert [a.predicate_type for a in result.attestations] == [SCAN_PREDICATE]


def test_provenance_attestation(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("x,y\n1,2\n")
    single = tmp_path / "extra.parquet"
    single.write_bytes(b"PAR1")
    sign(model, key=keys["key"])
    out = attest_provenance(
        model,
        key=keys["key"],
        datasets=[data, single],
        code_commit="0123456789abcdef0123456789abcdef01234567",
        params=["lr=0.01", "epochs=3"],
    )
    bundle = json.loads(out.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["predicateType"] == PROVENANCE_PREDICATE
    build = statement["predicate"]["buildDefinition"]
    external = build["externalParameters"]
    assert external["parameters"] == {"lr": "0.01", "epochs": "3"}
    assert external["model"] == "model" and len(external["datasets"]) == 2
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["data"]["digest"]["sha256"] == build_manifest(data).root_digest
    assert deps["extra.parquet"]["digest"]["sha256"] == build_manifest(single).root_digest
    assert deps["code"]["digest"]["gitCommit"].startswith("01234567")
    assert statement["predicate"]["runDetails"]["builder"]["id"]
    result = verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    assert [a.predicate_type for a in result.attestations] == [PROVENANCE_PREDICATE]


def test_provenance_rejects_bad_commit_and_param(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    with pytest.raises(ConfigError):
        attest_provenance(model, key=keys["key"], datasets=[], code_commit="main;rm", params=[])
    with pytest.raises(ConfigError):
        attest_provenance(model, key=keys["key"], datasets=[], code_commit=None, params=["x"])


@pytest.mark.parametrize("commit", ["abc1234", "0123456789abcdef0123456789abcdef0123456", "g" * 40])
def test_provenance_refuses_abbreviated_or_non_hex_commit(
    tmp_path: Path, keys: dict[str, Path], commit: str
) -> None:
    model = make_model(tmp_path)
    with pytest.raises(ConfigError, match="full git commit"):
        attest_provenance(model, key=keys["key"], datasets=[], code_commit=commit, params=[])


def test_provenance_external_parameters_never_empty(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    out = attest_provenance(model, key=keys["key"], datasets=[], code_commit="a" * 64, params=[])
    statement = json.loads(base64.b64decode(json.loads(out.read_text())["dsseEnvelope"]["payload"]))
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"model": "model"}
    assert build["resolvedDependencies"][0]["digest"] == {"gitCommit": "a" * 64}
    out = attest_provenance(
        model,
        key=keys["key"],
        datasets=[],
        code_commit=None,
        params=[],
        entry_point="python train.py --epochs 3",
    )
    statement = json.loads(base64.b64decode(json.loads(out.read_text())["dsseEnvelope"]["payload"]))
    external = statement["predicate"]["buildDefinition"]["externalParameters"]
    assert external["entryPoint"] == "python train.py --epochs 3"


def test_attestation_for_old_model_content_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    """An attestation made before the model changed (then re-signed) no longer applies."""
    model = make_model(tmp_path)
    attest_scan(model, key=keys["key"])
    (model / "weights.bin").write_bytes(b"new weights")
    sign(model, key=keys["key"])
    with pytest.raises(VerificationError, match="attestation"):
        verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    verify(model, trust=PinnedKeys(keys["pub"]))  # the signature alone is fine


def test_attestation_by_another_key_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    attest_scan(model, key=keys["evil_key"])
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    assert "pinned key" in err.value.differences[0]


def test_missing_attestations_fail_when_required(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    with pytest.raises(VerificationError, match="no attestations"):
        verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)


def test_file_model_attestation_path(tmp_path: Path, keys: dict[str, Path]) -> None:
    f = tmp_path / "m.onnx"
    f.write_bytes(b"\x08\x07" * 10)
    sign(f, key=keys["key"])
    out = attest_scan(f, key=keys["key"])
    assert (
        out
        == attestation_path(f, "scan")
        == tmp_path / ".mltrust/attestations/m.onnx.scan.bundle.json"
    )
    assert len(verify(f, trust=PinnedKeys(keys["pub"]), attestations=True).attestations) == 1


def test_attest_cli(
    tmp_path: Path,
    keys: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    model = make_model(tmp_path)
    (tmp_path / "d.csv").write_text("1\n")
    assert main(["sign", "model", "--key", str(keys["key"])]) == EXIT_CLEAN
    assert main(["attest", "scan", "model", "--key", str(keys["key"])]) == EXIT_CLEAN
    args = [
        "attest",
        "provenance",
        "model",
        "--key",
        str(keys["key"]),
        "--dataset",
        "d.csv",
        "--code-commit",
        "abcdef1",
        "--param",
        "lr=1",
    ]
    assert main(args) == 2  # an abbreviated commit id is not a digest
    args[args.index("abcdef1")] = "abcdef1" * 5 + "abcde"
    assert main([*args, "--entry-point", "python train.py"]) == EXIT_CLEAN
    capsys.readouterr()
    assert main(["verify", "model", "--key", str(keys["pub"]), "--attestations"]) == EXIT_CLEAN
    out = capsys.readouterr().out
    assert SCAN_PREDICATE in out and PROVENANCE_PREDICATE in out
    assert main(["evidence", "list"]) == EXIT_CLEAN
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    (model / "weights.bin").write_bytes(b"changed")
    assert main(["verify", "model", "--key", str(keys["pub"]), "--attestations"]) == EXIT_FINDINGS


# -- keyless ---------------------------------------------------------------------------------

ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _der_utf8(text: str) -> bytes:
    raw = text.encode()
    return bytes([0x0C, len(raw)]) + raw


def ca_usage(*, cert_sign: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


class Pki:
    def __init__(self, tmp: Path, *, leaf_days: float = 1.0) -> None:
        now = datetime.now(UTC)
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(_name("test root"))
            .issuer_name(_name("test root"))
            .public_key(self.ca_key.public_key())
            .serial_number(1)
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(ca_usage(), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_path = tmp / "root.pem"
        self.ca_path.write_bytes(self.ca.public_bytes(serialization.Encoding.PEM))
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = self.make_leaf(
            "signer@example.com", "https://accounts.example.com", now, leaf_days
        )
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_path = tmp / "rekor.pub"
        self.rekor_path.write_bytes(
            self.rekor_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def make_leaf(
        self,
        email: str,
        issuer: str | None,
        start: datetime,
        days: float,
        signer: Any = None,
        *,
        issuer_name: x509.Name | None = None,
        usage: Any = ExtendedKeyUsageOID.CODE_SIGNING,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer_name or self.ca.subject)
            .public_key(self.leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - timedelta(minutes=1))
            .not_valid_after(start + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(ISSUER_V2, _der_utf8(issuer)), False
            )
        return builder.sign(signer or self.ca_key, hashes.SHA256())

    def make_ca(
        self,
        cn: str,
        issuer_key: Any,
        issuer_name: x509.Name,
        *,
        path_length: int | None = None,
        cert_sign: bool = True,
    ) -> tuple[Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(ca_usage(cert_sign=cert_sign), critical=True)
            .sign(issuer_key, hashes.SHA256())
        )
        return key, cert

    def bundle(
        self,
        model: Path,
        leaf: x509.Certificate,
        *,
        tlog: bool = False,
        proof: bool = False,
        intermediates: tuple[x509.Certificate, ...] = (),
    ) -> dict[str, Any]:
        manifest = build_manifest(model, ignore=["model.sig"])
        statement = manifest_statement(
            manifest,
            model_name="model",
            version=None,
            issued_at=datetime.now(UTC),
            signer_fingerprint="",
        )
        payload = canonical_json(statement)
        sig = self.leaf_key.sign(
            pae("application/vnd.in-toto+json", payload), ec.ECDSA(hashes.SHA256())
        )

        def raw(cert: x509.Certificate) -> dict[str, str]:
            return {
                "rawBytes": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
            }

        material: dict[str, Any] = {"certificate": raw(leaf), "tlogEntries": []}
        if intermediates:
            del material["certificate"]
            material["x509CertificateChain"] = {
                "certificates": [raw(leaf), *(raw(c) for c in intermediates)]
            }
        if tlog:
            material["tlogEntries"] = [self.tlog_entry(payload, proof=proof)]
        return {
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": base64.b64encode(payload).decode(),
                "payloadType": "application/vnd.in-toto+json",
                "signatures": [{"sig": base64.b64encode(sig).decode(), "keyid": ""}],
            },
        }

    def tlog_entry(self, payload: bytes, *, proof: bool = False) -> dict[str, Any]:
        body = json.dumps(
            {
                "kind": "dsse",
                "spec": {
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    }
                },
            }
        ).encode()
        body_b64 = base64.b64encode(body).decode()
        log_id = hashlib.sha256(
            self.rekor_key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        ).digest()
        integrated = int(datetime.now(UTC).timestamp())
        signed = json.dumps(
            {"body": body_b64, "integratedTime": integrated, "logID": log_id.hex(), "logIndex": 42},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        set_sig = self.rekor_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        entry: dict[str, Any] = {
            "logIndex": "42",
            "logId": {"keyId": base64.b64encode(log_id).decode()},
            "kindVersion": {"kind": "dsse", "version": "0.0.1"},
            "integratedTime": str(integrated),
            "inclusionPromise": {"signedEntryTimestamp": base64.b64encode(set_sig).decode()},
            "canonicalizedBody": body_b64,
        }
        if proof:
            entry["inclusionProof"] = self.inclusion_proof(body, log_id)
        return entry

    def inclusion_proof(self, body: bytes, log_id: bytes) -> dict[str, Any]:
        leaves = [hashlib.sha256(b"\x00other%d" % i).digest() for i in range(6)]
        index = 3
        leaves[index] = hashlib.sha256(b"\x00" + body).digest()
        root = mth(leaves)
        text = f"rekor.test - 1\n{len(leaves)}\n{base64.b64encode(root).decode()}\n"
        sig = self.rekor_key.sign(text.encode(), ec.ECDSA(hashes.SHA256()))
        note = text + "\n" + f"\u2014 rekor.test {base64.b64encode(log_id[:4] + sig).decode()}\n"
        return {
            "logIndex": str(index),
            "rootHash": base64.b64encode(root).decode(),
            "treeSize": str(len(leaves)),
            "hashes": [base64.b64encode(h).decode() for h in audit_path(index, leaves)],
            "checkpoint": {"envelope": note},
        }


def _node(a: bytes, b: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + a + b).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle tree hash over leaf hashes (reference implementation for tests)."""
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(mth(leaves[:k]), mth(leaves[k:]))


def audit_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*audit_path(m, leaves[:k]), mth(leaves[k:])]
    return [*audit_path(m - k, leaves[k:]), mth(leaves[:k])]


def test_merkle_inclusion_proofs_for_every_leaf_of_small_trees() -> None:
    from mltrust.attest._keyless import merkle_root_from_proof

    for n in range(1, 12):
        leaves = [hashlib.sha256(bytes([i])).digest() for i in range(n)]
        root = mth(leaves)
        for m in range(n):
            path = audit_path(m, leaves)
            assert merkle_root_from_proof(m, n, leaves[m], path) == root
            if path:
                bad = [path[0][::-1], *path[1:]]
                assert merkle_root_from_proof(m, n, leaves[m], bad) != root
            assert merkle_root_from_proof(m, n, leaves[m], [*path, root]) is None
        assert merkle_root_from_proof(n, n, leaves[0], []) is None


def policy(pki: Pki, **kw: Any) -> KeylessPolicy:
    args: dict[str, Any] = {
        "trusted_roots": (pki.ca_path,),
        "identity": "signer@example.com",
        "oidc_issuer": "https://accounts.example.com",
    }
    args.update(kw)
    return KeylessPolicy(**args)


def test_keyless_bundle_verifies_with_trusted_root_and_identity(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    model = make_model(tmp_path)
    (model / "model.sig").write_text(json.dumps(pki.bundle(model, pki.leaf)))
    result = verify(model, trust=policy(pki))
    assert result.identity == "signer@example.com"
    (model / "config.json").write_text("{}")
    with pytest.raises(VerificationError, match="difference"):
        verify(model, trust=policy(pki))


def test_keyless_wrong_identity_or_issuer(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    model = make_model(tmp_path)
    (model / "model.sig").write_text(json.dumps(pki.bundle(model, pki.leaf)))
    with pytest.raises(VerificationError, match="identity"):
        verify(model, trust=policy(pki, identity="attacker@example.com"))
    with pytest.raises(VerificationError, match="OIDC issuer"):
        verify(model, trust=policy(pki, oidc_issuer="https://evil.example.com"))


def test_keyless_certificate_from_untrusted_ca(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    rogue = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.make_leaf(
        "signer@example.com", "https://accounts.example.com", datetime.now(UTC), 1, rogue
    )
    model = make_model(tmp_path)
    (model / "model.sig").write_text(json.dumps(pki.bundle(model, leaf)))
    with pytest.raises(VerificationError, match="does not validate to a trusted root"):
        verify(model, trust=policy(pki))


def test_keyless_expired_certificate_without_log_time(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    start = datetime.now(UTC) - timedelta(hours=2)
    leaf = pki.make_leaf("signer@example.com", "https://accounts.example.com", start, 1 / 144)
    model = make_model(tmp_path)
    (model / "model.sig").write_text(json.dumps(pki.bundle(model, leaf)))
    with pytest.raises(VerificationError, match="not valid"):
        verify(model, trust=policy(pki))


def test_keyless_with_rekor_signed_entry_timestamp(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    model = make_model(tmp_path)
    bundle = pki.bundle(model, pki.leaf, tlog=True)
    (model / "model.sig").write_text(json.dumps(bundle))
    verify(model, trust=policy(pki, rekor_key=pki.rekor_path))
    # a forged promise (entry time moved) fails
    bundle["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "1"
    (model / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="signed timestamp"):
        verify(model, trust=policy(pki, rekor_key=pki.rekor_path))


def test_keyless_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = Pki(tmp_path)
    model = make_model(tmp_path)
    (model / "model.sig").write_text(json.dumps(pki.bundle(model, pki.leaf)))
    args = [
        "verify",
        str(model),
        "--trusted-root",
        str(pki.ca_path),
        "--cert-identity",
        "signer@example.com",
        "--cert-oidc-issuer",
        "https://accounts.example.com",
    ]
    assert main(args) == EXIT_CLEAN
    assert "signer@example.com" in capsys.readouterr().out
    args[args.index("signer@example.com")] = "other@example.com"
    assert main(args) == EXIT_FINDINGS


def test_keyless_with_rekor_inclusion_proof_and_checkpoint(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    model = make_model(tmp_path)
    bundle = pki.bundle(model, pki.leaf, tlog=True, proof=True)
    (model / "model.sig").write_text(json.dumps(bundle))
    verify(model, trust=policy(pki, rekor_key=pki.rekor_path))
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    good_hashes = list(proof["hashes"])
    proof["hashes"] = good_hashes[:-1]  # a truncated audit path
    (model / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="inclusion proof"):
        verify(model, trust=policy(pki, rekor_key=pki.rekor_path))
    proof["hashes"] = good_hashes
    proof["checkpoint"]["envelope"] = proof["checkpoint"]["envelope"].replace(
        "rekor.test - 1\n6", "rekor.test - 1\n7"
    )
    (model / "model.sig").write_text(json.dumps(bundle))
    with pytest.raises(VerificationError, match="checkpoint"):
        verify(model, trust=policy(pki, rekor_key=pki.rekor_path))


# -- X.509 path validation (cryptography.x509.verification) ----------------------------------


def _signed_by_chain(tmp_path: Path, pki: Pki, leaf: x509.Certificate, *chain: Any) -> Path:
    model = make_model(tmp_path)
    (model / "model.sig").write_text(json.dumps(pki.bundle(model, leaf, intermediates=chain)))
    return model


def test_keyless_chain_through_a_valid_intermediate(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    ikey, inter = pki.make_ca("intermediate", pki.ca_key, pki.ca.subject, path_length=0)
    leaf = pki.make_leaf(
        "signer@example.com",
        "https://accounts.example.com",
        datetime.now(UTC),
        1,
        ikey,
        issuer_name=inter.subject,
    )
    model = _signed_by_chain(tmp_path, pki, leaf, inter)
    assert verify(model, trust=policy(pki)).identity == "signer@example.com"


def test_keyless_chain_breaking_an_intermediates_path_length_refused(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    # root (pathLen 1) -> inter (pathLen 0) -> sub CA (not allowed below pathLen 0) -> leaf
    ikey, inter = pki.make_ca("intermediate", pki.ca_key, pki.ca.subject, path_length=0)
    skey, sub = pki.make_ca("sub", ikey, inter.subject)
    leaf = pki.make_leaf(
        "signer@example.com",
        "https://accounts.example.com",
        datetime.now(UTC),
        1,
        skey,
        issuer_name=sub.subject,
    )
    model = _signed_by_chain(tmp_path, pki, leaf, sub, inter)
    with pytest.raises(VerificationError, match="path length"):
        verify(model, trust=policy(pki))


def test_keyless_intermediate_without_key_cert_sign_refused(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    ikey, inter = pki.make_ca("intermediate", pki.ca_key, pki.ca.subject, cert_sign=False)
    leaf = pki.make_leaf(
        "signer@example.com",
        "https://accounts.example.com",
        datetime.now(UTC),
        1,
        ikey,
        issuer_name=inter.subject,
    )
    model = _signed_by_chain(tmp_path, pki, leaf, inter)
    with pytest.raises(VerificationError, match="keyCertSign"):
        verify(model, trust=policy(pki))


def test_keyless_leaf_without_code_signing_usage_refused(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    leaf = pki.make_leaf(
        "signer@example.com",
        "https://accounts.example.com",
        datetime.now(UTC),
        1,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    model = _signed_by_chain(tmp_path, pki, leaf)
    with pytest.raises(VerificationError, match="code signing"):
        verify(model, trust=policy(pki))


def test_keyless_private_ca_without_fulcio_issuer_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = Pki(tmp_path)
    leaf = pki.make_leaf("signer@example.com", None, datetime.now(UTC), 1)
    model = _signed_by_chain(tmp_path, pki, leaf)
    # a Fulcio-style policy refuses it: there is no issuer to match
    with pytest.raises(VerificationError, match="OIDC issuer"):
        verify(model, trust=policy(pki))
    # an explicit private-CA identity policy accepts it, and still checks the identity
    assert verify(model, trust=policy(pki, oidc_issuer=None)).identity == "signer@example.com"
    with pytest.raises(VerificationError, match="identity"):
        verify(model, trust=policy(pki, oidc_issuer=None, identity="other@example.com"))
    base = ["verify", str(model), "--trusted-root", str(pki.ca_path)]
    args = [*base, "--cert-identity", "signer@example.com", "--private-ca"]
    assert main(args) == EXIT_CLEAN
    assert main([*base, "--private-ca"]) == 2  # the identity is still required
    with pytest.raises(ConfigError):
        verify(model, trust=policy(pki, oidc_issuer=""))


def test_keyless_options_next_to_a_key_are_refused_not_ignored(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    # before `trust=`, --key won and --cert-identity was silently ignored: a verifier that
    # asked for an identity got a model signed by anyone holding the key
    pki = Pki(tmp_path)
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    base = ["verify", str(model), "--key", str(keys["pub"])]
    assert main(base) == EXIT_CLEAN
    keyless = ["--trusted-root", str(pki.ca_path), "--cert-identity", "someone@example.com"]
    assert main([*base, *keyless, "--private-ca"]) == 2


def test_verify_needs_one_explicit_trust_policy(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    assert verify(model, trust=PinnedKeys(keys["pub"])).key_fingerprint
    with pytest.raises(TypeError):
        verify(model)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        verify(model, key=keys["pub"])  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="PinnedKeys"):
        verify(model, trust=keys["pub"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no public key"):
        PinnedKeys()  # an empty policy trusts nothing: refused, not passed
    with pytest.raises(ConfigError, match="not a public key"):
        PinnedKeys([keys["pub"]])  # type: ignore[arg-type]
    pinned = PinnedKeys(keys["pub"])
    with pytest.raises(AttributeError):
        pinned.keys = ()  # type: ignore[misc]
    # one of several pinned keys; a policy without the signer's key fails
    other = generate_keypair(tmp_path / "other", passphrase=None).public_path
    assert verify(model, trust=PinnedKeys(other, keys["pub"])).version is None
    with pytest.raises(VerificationError, match="pinned key"):
        verify(model, trust=PinnedKeys(other))
