"""Red-team regressions for signing, verification and serve admission (attacks 01-10).

Each test is named after the attack it replays; the fixtures are built here from raw bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mltrust.attest import PinnedKeys, generate_keypair, sign, verify
from mltrust.errors import Error, VerificationError

EVIL_PICKLE = b"cos\nsystem\n(S'echo pwned'\ntR."


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    kp = generate_keypair(tmp_path_factory.mktemp("keys") / "k", passphrase=None)
    return {"key": kp.private_path, "pub": kp.public_path}


def _model(root: Path, name: str = "mymodel") -> Path:
    model = root / name
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\0" * 1024)
    (model / "config.json").write_text('{"a": 1}')
    return model


# --- 01: a folder/link/FIFO named like one of mltrust's own files --------------------------

OWN_NAMES = (
    ".mltrust/evidence.db",
    ".mltrust/evidence.db-journal",
    ".mltrust/evidence.db-wal",
    ".mltrust/evidence.db-shm",
    ".mltrust/attestations/scan.bundle.json",
    ".mltrust/attestations/provenance.bundle.json",
)


@pytest.mark.parametrize("own", OWN_NAMES)
def test_own_file_name_as_folder_hides_nothing(
    tmp_path: Path, keys: dict[str, Path], own: str
) -> None:
    model = _model(tmp_path)
    sign(model, key=keys["key"], version=1)
    verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel")
    evil = model / own
    (evil / "pkg").mkdir(parents=True)
    (evil / "payload.pkl").write_bytes(EVIL_PICKLE)
    (evil / "pkg" / "__init__.py").write_text("import os\n")
    with pytest.raises(VerificationError) as info:
        verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel", version=1)
    assert any(f"{own}/payload.pkl" in d for d in info.value.differences)


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_own_file_name_as_link_or_fifo_is_refused(
    tmp_path: Path, keys: dict[str, Path], kind: str
) -> None:
    model = _model(tmp_path)
    sign(model, key=keys["key"], version=1)
    target = model / ".mltrust" / "evidence.db-wal"
    target.parent.mkdir()
    if kind == "symlink":
        os.symlink("/etc/passwd", target)
    else:
        os.mkfifo(target)
    with pytest.raises(Error):
        verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel", version=1)


def test_own_file_as_regular_file_is_still_left_out(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = _model(tmp_path)
    sign(model, key=keys["key"], version=1)
    (model / ".mltrust").mkdir()
    (model / ".mltrust" / "evidence.db").write_bytes(b"SQLite format 3\0")
    assert set(verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel").files) == {
        "weights.bin",
        "config.json",
    }


def test_signature_name_as_folder_is_signed_not_hidden(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    """At sign time too: a folder at an exact own name is content, not something to skip."""
    model = _model(tmp_path)
    (model / ".mltrust" / "evidence.db").mkdir(parents=True)
    (model / ".mltrust" / "evidence.db" / "hidden.pkl").write_bytes(EVIL_PICKLE)
    sign(model, key=keys["key"], version=1)
    files = verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel").files
    assert ".mltrust/evidence.db/hidden.pkl" in files


def test_user_ignore_folder_keeps_folder_semantics(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = _model(tmp_path)
    (model / "scratch").mkdir()
    (model / "scratch" / "a.txt").write_text("x")
    sign(model, key=keys["key"], version=1, ignore=["scratch"])
    (model / "scratch" / "b.txt").write_text("y")
    assert "scratch/b.txt" not in verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel").files


# --- 09: attest scan signs a verdict about bytes it did not scan --------------------------


def test_attest_scan_swap_during_scan_signs_nothing(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    import mltrust.scan._engine as engine
    from mltrust.attest import attest_scan, attestation_path
    from mltrust.attest._manifest import FileChangedError

    model = tmp_path / "clf"
    model.mkdir()
    benign = pickle.dumps({"weights": [0.0, 1.0]}, protocol=2)
    (model / "model.pkl").write_bytes(EVIL_PICKLE)
    real = engine.scan_paths

    def racing(targets: object, *a: object, **kw: object) -> object:
        (model / "model.pkl").write_bytes(benign)  # the scanner sees a benign pickle
        try:
            return real(targets, *a, **kw)  # type: ignore[arg-type]
        finally:
            (model / "model.pkl").write_bytes(EVIL_PICKLE)  # and the evil one is back

    monkeypatch.setattr(engine, "scan_paths", racing)
    with pytest.raises(FileChangedError):
        attest_scan(model, key=keys["key"])
    assert not attestation_path(model, "scan").exists()


def test_attest_scan_left_swapped_signs_nothing(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A same-content rewrite after hashing (new ctime) is refused too: the file was touched."""
    import mltrust.scan._engine as engine
    from mltrust.attest import attest_scan
    from mltrust.attest._manifest import FileChangedError

    model = tmp_path / "clf"
    model.mkdir()
    (model / "model.bin").write_bytes(b"\1" * 64)
    real = engine.scan_paths

    def touching(targets: object, *a: object, **kw: object) -> object:
        out = real(targets, *a, **kw)  # type: ignore[arg-type]
        os.utime(model / "model.bin", ns=(1, 1))
        return out

    monkeypatch.setattr(engine, "scan_paths", touching)
    with pytest.raises(FileChangedError):
        attest_scan(model, key=keys["key"])


def test_attest_scan_unchanged_model_still_attests(tmp_path: Path, keys: dict[str, Path]) -> None:
    from mltrust.attest import attest_scan

    model = _model(tmp_path)
    sign(model, key=keys["key"], version=1)
    attest_scan(model, key=keys["key"])
    v = verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel", attestations=True)
    assert len(v.attestations) == 1


# --- serve admission: 03, 04, 10, detector references, BLAKE3/sharded ----------------------


def _serve_model(
    root: Path,
    keys: dict[str, Path],
    *,
    name: str = "fraud",
    version: int = 3,
    policy: dict[str, object] | None = None,
    artifact: bytes | None = None,
    **sign_kw: object,
) -> Path:
    import io
    import json

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    folder = root / name
    folder.mkdir(parents=True)
    if artifact is None:
        X = np.array([[0.0, 0], [1, 1], [0, 1], [1, 0]])
        buf = io.BytesIO()
        joblib.dump(LogisticRegression().fit(X, [0, 1, 1, 0]), buf)
        artifact = buf.getvalue()
    (folder / "model.joblib").write_bytes(artifact)
    doc: dict[str, object] = {
        "name": name,
        "version": str(version),
        "runtime": "sklearn",
        "uri": "model.joblib",
    }
    if policy:
        doc["policy"] = policy
    (folder / "mltrust-model.json").write_text(json.dumps(doc))
    sign(folder, key=keys["key"], model_name=name, version=version, **sign_kw)  # type: ignore[arg-type]
    return folder


def test_serve_settings_swapped_back_before_verify_are_not_used(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """04: unsigned settings parsed, the signed ones put back before the signature check."""
    import json

    from mltrust.serve import _repository as R

    folder = _serve_model(tmp_path / "repo", keys)
    settings = folder / "mltrust-model.json"
    signed_bytes = settings.read_bytes()
    evil = dict(json.loads(signed_bytes), policy={"max_batch_rows": 10_000_000})
    settings.write_text(json.dumps(evil))
    real = R._verify_signature

    def racing(s: object, o: object) -> object:
        settings.write_bytes(signed_bytes)  # the verifier sees the signed settings
        return real(s, o)  # type: ignore[arg-type]

    monkeypatch.setattr(R, "_verify_signature", racing)
    m = R.admit_model(folder, R.AdmissionOptions(trusted_keys=(keys["pub"],)))
    assert not m.ready
    assert m.reason is not None and "settings file" in m.reason
    # control: the same folder, untouched, is admitted with its signed settings
    monkeypatch.setattr(R, "_verify_signature", real)
    ok = R.admit_model(folder, R.AdmissionOptions(trusted_keys=(keys["pub"],)))
    assert ok.ready, ok.reason
    assert ok.settings is not None and ok.settings.policy.max_batch_rows != 10_000_000


def test_serve_detector_reference_swapped_after_verify_is_refused(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """04 (detector data): a reference file changed after verification is not used."""
    import numpy as np

    from mltrust.serve import _repository as R

    policy: dict[str, object] = {
        "detectors": [{"type": "mahalanobis", "reference": "reference.npy"}]
    }
    folder = _serve_model(tmp_path / "repo", keys, policy=policy)
    np.save(folder / "reference.npy", np.random.default_rng(0).normal(size=(50, 2)))
    sign(folder, key=keys["key"], model_name="fraud", version=3)  # re-signed with the data
    opts = R.AdmissionOptions(trusted_keys=(keys["pub"],))
    assert R.admit_model(folder, opts).ready
    real = R._check_profile

    def swap(s: object, o: object) -> None:
        np.save(folder / "reference.npy", np.full((50, 2), 1e6))  # after verification
        real(s, o)  # type: ignore[arg-type]

    monkeypatch.setattr(R, "_check_profile", swap)
    m = R.admit_model(folder, opts)
    assert not m.ready and m.reason is not None and "not the signed file" in m.reason


def test_serve_scan_gate_judges_the_admitted_artifact_bytes(
    tmp_path: Path, keys: dict[str, Path], monkeypatch: pytest.MonkeyPatch, canary: Path
) -> None:
    """10: a benign artifact swapped in only while the folder scan runs does not pass."""
    import pickle

    import mltrust.scan as scan_pkg
    from mltrust.serve import _repository as R

    evil = pickle.dumps(_Touch(str(canary)), protocol=2)
    folder = _serve_model(tmp_path / "repo", keys, artifact=evil)  # a compromised signer
    real = scan_pkg.scan_paths

    def racing(targets: object, *a: object, **kw: object) -> object:
        art = folder / "model.joblib"
        art.write_bytes(pickle.dumps({"benign": 1}))
        try:
            return real(targets, *a, **kw)  # type: ignore[arg-type]
        finally:
            art.write_bytes(evil)

    monkeypatch.setattr(scan_pkg, "scan_paths", racing)
    m = R.admit_model(folder, R.AdmissionOptions(trusted_keys=(keys["pub"],)))
    assert not m.ready and m.reason is not None and m.reason.startswith("scan failed")
    assert not canary.exists()


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize(
    "how", [{"hash_algorithm": "blake3"}, {"shard_size": 100}], ids=["blake3", "sharded"]
)
def test_serve_admits_blake3_and_sharded_signatures(
    tmp_path: Path, keys: dict[str, Path], how: dict[str, object]
) -> None:
    """Serve compares digests with the algorithm the signed manifest used (not a SHA-256)."""
    if how.get("hash_algorithm") == "blake3":
        pytest.importorskip("blake3")
    from mltrust.serve import _repository as R

    folder = _serve_model(tmp_path / "repo", keys, **how)  # type: ignore[arg-type]
    m = R.admit_model(folder, R.AdmissionOptions(trusted_keys=(keys["pub"],)))
    assert m.ready, m.reason
    (folder / "model.joblib").write_bytes(b"\0" + (folder / "model.joblib").read_bytes()[1:])
    assert not R.admit_model(folder, R.AdmissionOptions(trusted_keys=(keys["pub"],))).ready


# --- 03: serve admission rollback protection -----------------------------------------------


def test_serve_rollback_to_older_signed_release_is_refused(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    import shutil

    from mltrust.serve import _repository as R

    old = _serve_model(tmp_path / "old", keys, version=1)
    new = _serve_model(tmp_path / "new", keys, version=2)
    repo = tmp_path / "repo"
    opts = R.AdmissionOptions(trusted_keys=(keys["pub"],), state=tmp_path / "admitted.json")
    shutil.copytree(new, repo / "fraud")
    assert R.load_repository(repo, opts)["fraud"].ready
    shutil.rmtree(repo / "fraud")
    shutil.copytree(old, repo / "fraud")  # the withdrawn release put back
    m = R.load_repository(repo, opts)["fraud"]
    assert not m.ready and m.reason is not None and "signature invalid" in m.reason
    # without memory, a minimum version refuses it too
    floor = R.AdmissionOptions(trusted_keys=(keys["pub"],), min_versions=(("fraud", 2),))
    assert not R.admit_model(repo / "fraud", floor).ready
    assert R.admit_model(new, floor).ready


def test_serve_state_inside_repository_is_refused(tmp_path: Path, keys: dict[str, Path]) -> None:
    from mltrust.errors import ConfigError
    from mltrust.serve import _repository as R

    _serve_model(tmp_path / "repo", keys)
    opts = R.AdmissionOptions(
        trusted_keys=(keys["pub"],), state=tmp_path / "repo" / ".mltrust" / "state.json"
    )
    with pytest.raises(ConfigError, match="inside the model repository"):
        R.load_repository(tmp_path / "repo", opts)


def test_serve_cli_rollback_options_reach_admission(tmp_path: Path) -> None:
    from mltrust.cli._serve import _min_versions
    from mltrust.errors import ConfigError
    from mltrust.serve._config import ServerConfig

    assert _min_versions(("fraud=2", "iris=10")) == (("fraud", 2), ("iris", 10))
    with pytest.raises(ConfigError):
        _min_versions(("fraud=two",))
    cfg = ServerConfig(repo=tmp_path, state=tmp_path / "s.json", min_versions=(("fraud", 2),))
    back = ServerConfig.from_json(cfg.to_json())  # what worker processes receive
    assert back.state == tmp_path / "s.json" and back.min_versions == (("fraud", 2),)


# --- 06: an unsigned .git/ in a verified folder (git runs code from it) -------------------


def test_unsigned_git_config_in_verified_folder_is_warned(
    tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from mltrust.cli._main import EXIT_CLEAN, main

    model = _model(tmp_path, "bert")
    sign(model, key=keys["key"], version=1)
    (model / ".git").mkdir()
    (model / ".git" / "config").write_text("[core]\n\tfsmonitor = touch /tmp/x; false\n")
    v = verify(
        model, trust=PinnedKeys(keys["pub"]), name="bert", version=1
    )  # by design: not covered
    assert v.uncovered_git == (".git",)
    capsys.readouterr()
    assert main(["verify", str(model), "--key", str(keys["pub"]), "--no-progress"]) == EXIT_CLEAN
    err = capsys.readouterr().err
    assert "warning: .git is present but not covered by the signature" in err


def test_git_folder_covered_with_include_git(tmp_path: Path, keys: dict[str, Path]) -> None:
    model = _model(tmp_path, "bert")
    (model / ".git").mkdir()
    (model / ".git" / "config").write_text("[core]\n")
    sign(model, key=keys["key"], version=1, include_git=True)
    assert verify(model, trust=PinnedKeys(keys["pub"]), name="bert").uncovered_git == ()
    (model / ".git" / "config").write_text("[core]\n\tfsmonitor = touch /tmp/x; false\n")
    with pytest.raises(VerificationError):
        verify(model, trust=PinnedKeys(keys["pub"]), name="bert")


# --- worth noting: an attestation of another kind under a kind's name ---------------------


def test_provenance_statement_passed_off_as_scan_attestation_is_refused(
    tmp_path: Path, keys: dict[str, Path]
) -> None:
    from mltrust.attest import attest_provenance, attestation_path

    model = _model(tmp_path)
    sign(model, key=keys["key"], version=1)
    attest_provenance(
        model,
        key=keys["key"],
        datasets=[],
        code_commit=None,
        params={},
        output=attestation_path(model, "scan"),  # a provenance bundle at the scan name
    )
    with pytest.raises(VerificationError) as info:
        verify(model, trust=PinnedKeys(keys["pub"]), name="mymodel", attestations=True)
    assert any("not https://mltrust.dev/scan/v1" in d for d in info.value.differences)
