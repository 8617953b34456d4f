"""Admission: only models whose evidence passes are served; hostile repositories never execute."""

from __future__ import annotations

import json
import os

import joblib
import pytest

from test_serve_support import (
    ROW,
    add_onnx_model,
    add_python_model,
    infer_body,
    iris_classifier,
    make_server,
    new_key,
    write_yaml,
)


class _Payload:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _mlserver_model(repo, name, obj):
    folder = repo / name
    folder.mkdir(parents=True)
    joblib.dump(obj, folder / "model.joblib")
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    return folder


def _admin(client, repo, app):
    key = new_key(repo, "root", [("*", "admin")])
    app.keys.refresh(max_age=0)
    return key


def test_malicious_joblib_refused_and_never_executed(tmp_path, canary):
    repo = tmp_path / "repo"
    _mlserver_model(repo, "evil", {"model": _Payload(canary)})
    _mlserver_model(repo, "iris", iris_classifier())
    client, app = make_server(repo)
    try:
        key = _admin(client, repo, app)
        assert not app.models["evil"].ready
        assert "scan failed" in app.models["evil"].reason or "Unsafe" in app.models["evil"].reason
        r = client.get("/v2/models/evil/ready", headers=key)
        assert r.status_code == 503 and r.json() == {"name": "evil", "ready": False}
        r = client.post(
            "/v2/models/evil/infer", json=infer_body([ROW], name="input-0"), headers=key
        )
        assert r.status_code == 503
        admin = client.get("/v2/admin/models", headers=key).json()["models"]
        evil = next(m for m in admin if m["name"] == "evil")
        assert evil["ready"] is False and evil["reason"]
        # the clean neighbour is still served
        r = client.post(
            "/v2/models/iris/infer", json=infer_body([ROW], name="input-0"), headers=key
        )
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [0]
    finally:
        client.close()
    assert not canary.exists()


def test_malicious_pickle_hidden_in_model_folder_refuses_model(tmp_path, canary):
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    joblib.dump(_Payload(canary), folder / "extra.pkl")  # not even the artifact
    client, app = make_server(repo)
    try:
        assert not app.models["iris"].ready and "scan failed" in app.models["iris"].reason
    finally:
        client.close()
    assert not canary.exists()


def test_mlserver_settings_accepted_as_is(tmp_path):
    repo = tmp_path / "repo"
    _mlserver_model(repo, "iris", iris_classifier())
    client, app = make_server(repo)
    try:
        key = _admin(client, repo, app)
        meta = client.get("/v2/models/iris", headers=key).json()
        assert meta["platform"] == "sklearn" and meta["versions"] == ["v1"]
        assert meta["inputs"][0]["shape"] == [-1, 4]
        body = infer_body(
            [ROW, [6.7, 3.0, 5.2, 2.3]],
            name="predict-input",
            datatype="FP32",
            outputs=[{"name": "predict"}, {"name": "predict_proba"}],
        )
        r = client.post("/v2/models/iris/versions/v1/infer", json=body, headers=key)
        outs = {o["name"]: o for o in r.json()["outputs"]}
        assert outs["predict"]["data"] == [0, 2] and outs["predict_proba"]["shape"] == [2, 3]
    finally:
        client.close()


def test_artifact_uri_escaping_folder_refused(tmp_path):
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    joblib.dump(iris_classifier(), tmp_path / "outside.joblib")
    write_yaml(repo / "m", {"name": "m", "runtime": "sklearn", "uri": "../../outside.joblib"})
    client, app = make_server(repo)
    try:
        assert not app.models["m"].ready and "escapes" in app.models["m"].reason
    finally:
        client.close()


def test_python_runtime_refused_without_plugin_path(tmp_path, canary):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(repo)
    try:
        assert not app.models["calc"].ready and "disabled" in app.models["calc"].reason
    finally:
        client.close()


def test_unsigned_model_refused_without_allow_unsigned(tmp_path):
    repo = tmp_path / "repo"
    add_onnx_model(repo)
    client, app = make_server(repo, allow_unsigned=False)
    try:
        assert not app.models["iris-onnx"].ready
        assert "trusted key" in app.models["iris-onnx"].reason
    finally:
        client.close()


@pytest.fixture
def signing(tmp_path):
    attest = pytest.importorskip("mltrust.attest")
    good = attest.generate_keypair(tmp_path / "keys" / "good", passphrase=None)
    bad = attest.generate_keypair(tmp_path / "keys" / "bad", passphrase=None)
    return attest, good, bad


def test_signed_model_admitted(tmp_path, signing):
    attest, good, _ = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    attest.sign(folder, key=good.private_path)
    client, app = make_server(repo, allow_unsigned=False, trusted_keys=(good.public_path,))
    try:
        assert app.models["iris"].ready, app.models["iris"].reason
        assert app.models["iris"].signed_by
    finally:
        client.close()


def test_tampered_model_refused(tmp_path, signing):
    attest, good, _ = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    attest.sign(folder, key=good.private_path)
    clf = iris_classifier()
    clf.coef_[0, 0] += 5.0  # a backdoored but still benign-looking model
    joblib.dump(clf, folder / "model.joblib")
    client, app = make_server(repo, allow_unsigned=False, trusted_keys=(good.public_path,))
    try:
        assert not app.models["iris"].ready
        assert "signature invalid" in app.models["iris"].reason
    finally:
        client.close()


def test_model_signed_by_untrusted_key_refused(tmp_path, signing):
    attest, good, bad = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    attest.sign(folder, key=bad.private_path)
    client, app = make_server(repo, allow_unsigned=False, trusted_keys=(good.public_path,))
    try:
        assert not app.models["iris"].ready
        assert "signature invalid" in app.models["iris"].reason
    finally:
        client.close()


def test_per_model_trusted_key(tmp_path, signing):
    attest, good, bad = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    attest.sign(folder, key=bad.private_path)
    client, app = make_server(
        repo,
        allow_unsigned=False,
        trusted_keys=(good.public_path,),
        model_keys=(("iris", bad.public_path),),
    )
    try:
        assert app.models["iris"].ready, app.models["iris"].reason
    finally:
        client.close()


def test_check_profile_refuses_model_failing_policy(tmp_path):
    pytest.importorskip("mltrust.policy")
    repo = tmp_path / "repo"
    _mlserver_model(repo, "iris", iris_classifier())
    client, app = make_server(repo, check_profile="default")
    try:
        reason = app.models["iris"].reason
        assert not app.models["iris"].ready and "policy profile 'default'" in reason
    finally:
        client.close()


def test_check_profile_passes_signed_model(tmp_path, signing):
    pytest.importorskip("mltrust.policy")
    attest, good, _ = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    attest.sign(folder, key=good.private_path)
    client, app = make_server(
        repo, allow_unsigned=False, trusted_keys=(good.public_path,), check_profile="default"
    )
    try:
        assert app.models["iris"].ready, app.models["iris"].reason
    finally:
        client.close()


def test_other_model_signed_by_the_trusted_key_refused(tmp_path, signing):
    """Admission binds the signature to the folder's model: a validly signed *other* model
    (same key, another name) dropped into the folder is refused (issue 12)."""
    attest, good, _ = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    attest.sign(folder, key=good.private_path, model_name="canary-model", version=9)
    client, app = make_server(repo, allow_unsigned=False, trusted_keys=(good.public_path,))
    try:
        assert not app.models["iris"].ready
        assert "not the expected 'iris'" in app.models["iris"].reason
    finally:
        client.close()


def test_signature_symlinked_to_dev_zero_refused_at_admission(tmp_path, signing):
    _attest, good, _ = signing
    repo = tmp_path / "repo"
    folder = _mlserver_model(repo, "iris", iris_classifier())
    (folder / "model.sig").symlink_to("/dev/zero")
    client, app = make_server(repo, allow_unsigned=False, trusted_keys=(good.public_path,))
    try:
        assert not app.models["iris"].ready
        assert "symbolic link" in app.models["iris"].reason
    finally:
        client.close()
