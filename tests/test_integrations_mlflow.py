"""The MLflow registry integration against a real `mlflow server` (SQLite, local artifacts)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from _check_helpers import MALICIOUS_PICKLE
from _net_helpers import free_port
from mltrust.cli import main

#: MLflow's own advice to callers of log_model (not ours to act on in a test).
pytestmark = pytest.mark.filterwarnings("ignore:.*Any type hint is inferred:UserWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("mlflow")
    artifacts = root / "artifacts"
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import urllib.request

    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.close()
            pytest.fail(
                "mlflow server did not start:\n" + (root / "server.log").read_text()[-3000:]
            )
        time.sleep(0.5)
    try:
        yield url, artifacts
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from mltrust.attest import generate_keypair

    pair = generate_keypair(tmp_path_factory.mktemp("keys") / "release", passphrase=None)
    return pair.private_path, pair.public_path


@pytest.fixture()
def env(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> str:
    url, _ = server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_tracking_uri(url)
    return url


def _register_sklearn(name: str) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            clf, name="model", registered_model_name=name, serialization_format="pickle"
        )
    version = info.registered_model_version
    return f"models:/{name}/{version}"


def _register_folder(name: str, folder: Path) -> str:
    client = mlflow.tracking.MlflowClient()
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), artifact_path="model")
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id)
    return f"models:/{name}/{mv.version}"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["mlflow", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _artifact_files(artifacts: Path, name: str) -> list[Path]:
    return [p for p in artifacts.rglob(name) if "mltrust" not in p.parts]


def test_sign_verify_load_and_promote_a_registered_version(
    env: str, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from mltrust.integrations.mlflow import load_model

    key, pub = keys
    uri = _register_sklearn("iris-ok")
    code, out, err = _cli(capsys, "sign", uri, "--key", str(key))
    assert code == 0, out + err
    code, out, err = _cli(capsys, "verify", uri, "--key", str(pub))
    assert code == 0, out + err
    model = load_model(uri, key=pub)
    assert model.predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]
    code, out, err = _cli(capsys, "promote", uri, "--alias", "production", "--key", str(pub))
    assert code == 0, out + err
    client = mlflow.tracking.MlflowClient()
    assert client.get_model_version_by_alias("iris-ok", "production").version == uri[-1]


def test_unsigned_version_is_not_verified_or_promoted(
    env: str, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, pub = keys
    uri = _register_sklearn("iris-unsigned")
    code, out, _ = _cli(capsys, "verify", uri, "--key", str(pub))
    assert code == 1
    assert "not signed" in out
    code, _, _ = _cli(capsys, "promote", uri, "--alias", "production", "--key", str(pub))
    assert code == 1
    client = mlflow.tracking.MlflowClient()
    assert "production" not in client.get_registered_model("iris-unsigned").aliases


def test_artifact_tampered_in_the_store_fails_verification(
    server: tuple[str, Path], env: str, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    key, pub = keys
    _, artifacts = server
    before = set(_artifact_files(artifacts, "model.pkl"))
    uri = _register_sklearn("iris-tamper")
    assert _cli(capsys, "sign", uri, "--key", str(key))[0] == 0
    (stored,) = set(_artifact_files(artifacts, "model.pkl")) - before
    stored.write_bytes(pickle.dumps({"swapped": True}))
    code, out, _ = _cli(capsys, "verify", uri, "--key", str(pub))
    assert code == 1, out
    assert "model.pkl" in out


def test_attack_mlflow_uncovered_git_added_to_a_signed_version(
    server: tuple[str, Path], env: str, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """After signing, someone who writes the artifact store adds .git/ (core.fsmonitor runs a
    command) and .github/ to the version: the signed files still match, but verify, promote
    and load must refuse what the signature does not cover."""
    from mltrust.errors import VerificationError
    from mltrust.integrations.mlflow import load_model

    key, pub = keys
    _, artifacts = server
    before = set(_artifact_files(artifacts, "model.pkl"))
    uri = _register_sklearn("iris-git")
    assert _cli(capsys, "sign", uri, "--key", str(key))[0] == 0
    (stored,) = set(_artifact_files(artifacts, "model.pkl")) - before
    (stored.parent / ".git" / "hooks").mkdir(parents=True)
    (stored.parent / ".git" / "config").write_text("[core]\n\tfsmonitor = touch /tmp/pwned\n")
    (stored.parent / ".github" / "workflows").mkdir(parents=True)
    (stored.parent / ".github" / "workflows" / "x.yml").write_text("on: push\n")
    code, out, _ = _cli(capsys, "verify", uri, "--key", str(pub))
    assert code == 1, out
    assert "not covered by the signature: .git/config" in out
    assert "not covered by the signature: .github/workflows/x.yml" in out
    code, out, _ = _cli(capsys, "promote", uri, "--alias", "production", "--key", str(pub))
    assert code == 1 and "NOT PROMOTED" in out, out
    client = mlflow.tracking.MlflowClient()
    assert "production" not in client.get_registered_model("iris-git").aliases
    with pytest.raises(VerificationError, match="does not cover"):
        load_model(uri, key=pub)


def test_signature_of_another_version_is_refused(
    env: str, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Registry tags are writable: pointing v2 at v1's bundle must not verify v2."""
    key, pub = keys
    first = _register_sklearn("iris-swap")
    second = _register_sklearn("iris-swap")
    assert _cli(capsys, "sign", first, "--key", str(key))[0] == 0
    client = mlflow.tracking.MlflowClient()
    v1 = client.get_model_version("iris-swap", first.rsplit("/", 1)[1])
    client.set_model_version_tag(
        "iris-swap", second.rsplit("/", 1)[1], "mltrust.signature", v1.tags["mltrust.signature"]
    )
    code, out, _ = _cli(capsys, "verify", second, "--key", str(pub))
    assert code == 1, out


def test_malicious_version_is_not_signed(
    env: str, keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key, _ = keys
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n    serialization_format: pickle\n"
    )
    (folder / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    uri = _register_folder("evil", folder)
    code, out, _ = _cli(capsys, "sign", uri, "--key", str(key))
    assert code == 1
    assert "NOT SIGNED" in out
    client = mlflow.tracking.MlflowClient()
    assert "mltrust.signature" not in client.get_model_version("evil", uri[-1]).tags


#: A pickle that calls an import outside the allowlist (a "high", not "critical", finding).
UNKNOWN_IMPORT_PICKLE = (
    b"\x80\x02cevilpkg.tools\nrun\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03."
)


def test_attack_artifacts_ship_a_scan_config_that_weakens_the_gate(
    env: str,
    keys: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scan before signing uses the operator's configuration, never one in the artifacts."""
    key, _ = keys
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(UNKNOWN_IMPORT_PICKLE)
    (folder / "mltrust.toml").write_text('[scan]\nfail_on = "critical"\n')
    uri = _register_folder("evilcfg", folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code, out, _ = _cli(capsys, "sign", uri, "--key", str(key))
    assert code == 1, out
    assert "MLT-PKL-004" in out


def test_bad_uri_and_missing_server_are_setup_errors(
    keys: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, pub = keys
    code, _, err = _cli(capsys, "verify", "models:/x/production", "--key", str(pub))
    assert code == 2
    assert "models:/NAME/VERSION" in err
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, _, err = _cli(capsys, "verify", "models:/x/1", "--key", str(pub))
    assert code == 2
    assert "MLFLOW_TRACKING_URI" in err
