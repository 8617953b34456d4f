"""`mltrust admission serve`: real AdmissionReview v1 objects, built with the Kubernetes
client's models, sent over HTTPS (a CA and a server certificate made here) to the webhook
running as a separate process on 127.0.0.1. Tests are named after the attack they stop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import pickle
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import mltrust
from _net_helpers import free_port
from mltrust.admission import AdmissionPolicy, review
from mltrust.attest import generate_keypair, sign
from mltrust.cli._main import EXIT_ERROR, main

k8s = pytest.importorskip("kubernetes.client")

ANNOTATION = "mltrust.dev/model-path"
_SYSTEM = b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85q\x01Rq\x02."
_API = k8s.ApiClient()


# ---------------------------------------------------------------- fixtures: keys, models, TLS


def _model(folder: Path, payload: bytes | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(payload or pickle.dumps({"weights": [1.0, 2.0]}))
    (folder / "config.json").write_text('{"name": "demo"}')
    return folder


def _cert_pair(tmp: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1/localhost signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mltrust test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mltrust-admission")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = tmp / "ca.pem", tmp / "tls.crt", tmp / "tls.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


class Site:
    """The storage root, the keys, and the running webhook."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "models"
        self.trusted = generate_keypair(tmp / "trusted", passphrase=None)
        self.other = generate_keypair(tmp / "other", passphrase=None)
        key = self.trusted.private_path
        sign(_model(self.root / "team" / "good"), key=key)
        sign(_model(self.root / "claim-a" / "iris"), key=key)
        sign(_model(self.root / "team" / "evil", _SYSTEM), key=key)  # signed, but malicious
        tampered = _model(self.root / "team" / "tampered")
        sign(tampered, key=key)
        (tampered / "model.pkl").write_bytes(_SYSTEM)
        _model(self.root / "team" / "unsigned")
        sign(_model(self.root / "team" / "foreign"), key=self.other.private_path)
        # Another model's release, signed by the trusted key, copied to this location.
        sign(_model(self.root / "team" / "swapped"), key=key, model_name="good", version=1)
        # A validly signed model outside the root, reached through a link inside it.
        sign(_model(tmp / "outside" / "m"), key=key)
        (self.root / "team" / "escape").symlink_to(tmp / "outside" / "m")
        (self.root / "team" / "alias").symlink_to(self.root / "team" / "good")
        (self.root / "mounted").symlink_to(tmp / "outside")  # a folder link leading out
        self.ca, self.cert, self.key = _cert_pair(tmp)
        self.url = ""

    def policy(self, **kw: Any) -> AdmissionPolicy:
        return AdmissionPolicy(
            trusted_keys=(self.trusted.public_path,), storage_root=self.root, **kw
        )


@contextlib.contextmanager
def _webhook(site: Site, *extra: str) -> Iterator[httpx.Client]:
    """``mltrust admission serve`` as its own process, over TLS on 127.0.0.1."""
    port = free_port()
    src = str(Path(mltrust.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log_path = site.tmp / f"webhook-{port}.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mltrust", "admission", "serve",
            "--trusted-key", str(site.trusted.public_path),
            "--port", str(port), "--host", "127.0.0.1",
            "--tls-cert", str(site.cert), "--tls-key", str(site.key),
            "--storage-root", str(site.root), *extra,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    context = ssl.create_default_context(cafile=str(site.ca))
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if httpx.get(url + "/healthz", verify=context, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"webhook did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)
        with httpx.Client(base_url=url, verify=context, timeout=60) as client:
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("admission"))
    with _webhook(site) as client:
        site.client = client  # type: ignore[attr-defined]
        site.url = str(client.base_url).rstrip("/")
        yield site


# ---------------------------------------------------------------- AdmissionReview builders

_RESOURCES = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "InferenceService": ("serving.kserve.io", "v1beta1", "inferenceservices"),
    "SeldonDeployment": ("machinelearning.seldon.io", "v1", "seldondeployments"),
}


def admission_review(obj: Any, operation: str = "CREATE") -> dict[str, Any]:
    """An AdmissionReview v1 request as the API server sends it, around ``obj`` (a client
    model or, for custom resources the client has no model for, a dict)."""
    body = _API.sanitize_for_serialization(obj)
    kind = body["kind"]
    group, version, resource = _RESOURCES.get(kind, ("example.com", "v1", kind.lower() + "s"))
    meta = body.get("metadata", {})
    user = k8s.V1UserInfo(username="alice", groups=["system:authenticated"], uid="u-1")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", "ml"),
            "operation": operation,
            "userInfo": _API.sanitize_for_serialization(user),
            "object": body if operation != "DELETE" else None,
            "oldObject": body if operation in ("UPDATE", "DELETE") else None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def pod(model: str | None, name: str = "server") -> Any:
    annotations = {ANNOTATION: model} if model is not None else None
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(name=name, namespace="ml", annotations=annotations),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="server", image="mltrust:1")]),
    )


def deployment(model: str) -> Any:
    template = k8s.V1PodTemplateSpec(
        metadata=k8s.V1ObjectMeta(labels={"app": "m"}, annotations={ANNOTATION: model}),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="server", image="mltrust:1")]),
    )
    return k8s.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=k8s.V1ObjectMeta(name="m", namespace="ml"),
        spec=k8s.V1DeploymentSpec(
            replicas=2,
            selector=k8s.V1LabelSelector(match_labels={"app": "m"}),
            template=template,
        ),
    )


def inference_service(predictor: dict[str, Any]) -> dict[str, Any]:
    meta = _API.sanitize_for_serialization(k8s.V1ObjectMeta(name="iris", namespace="ml"))
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor},
    }


def seldon(graph: dict[str, Any]) -> dict[str, Any]:
    meta = _API.sanitize_for_serialization(k8s.V1ObjectMeta(name="sd", namespace="ml"))
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": meta,
        "spec": {"predictors": [{"name": "default", "replicas": 1, "graph": graph}]},
    }


def post(site: Site, review_doc: dict[str, Any]) -> dict[str, Any]:
    r = site.client.post("/validate", json=review_doc)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview"
    assert answer["response"]["uid"] == review_doc["request"]["uid"]
    return dict(answer["response"])


def denied(site: Site, obj: Any) -> str:
    response = post(site, admission_review(obj))
    assert response["allowed"] is False, response
    assert response["status"]["code"] == 403
    return str(response["status"]["message"])


def allowed(site: Site, obj: Any) -> dict[str, Any]:
    response = post(site, admission_review(obj))
    assert response["allowed"] is True, response
    return response


# ---------------------------------------------------------------- over HTTPS


def test_signed_model_pod_is_admitted_over_tls(site: Site) -> None:
    response = allowed(site, pod("team/good"))
    assert "team/good@sha256:" in response["auditAnnotations"]["verified-models"]


def test_webhook_certificate_is_checked_by_the_client(site: Site) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.post(site.url + "/validate", json={}, verify=True, timeout=5)


def test_tampered_model_is_denied(site: Site) -> None:
    message = denied(site, pod("team/tampered"))
    assert "does not match its signature" in message and "team/tampered" in message


def test_unsigned_model_is_denied(site: Site) -> None:
    assert "team/unsigned" in denied(site, pod("team/unsigned"))


def test_another_models_signature_at_this_location_is_denied(site: Site) -> None:
    """Red-team finding: admission verified the key only, so any release it signed was admitted."""
    message = denied(site, pod("team/swapped"))
    assert "team/swapped" in message and "good" in message


def test_model_signed_by_an_untrusted_key_is_denied(site: Site) -> None:
    assert "team/foreign" in denied(site, pod("team/foreign"))


@pytest.mark.parametrize(
    "path", ["../outside/m", "team/../../outside/m", "/etc", "", "team/good/../../../etc"]
)
def test_path_escaping_the_storage_root_is_denied(site: Site, path: str) -> None:
    message = denied(site, pod(path))
    # "/etc" is read under the root (ROOT/etc), where there is no model.
    assert "'..'" in message or "empty" in message or "no model at etc" in message


def test_absolute_path_inside_the_root_is_taken_as_is(site: Site) -> None:
    allowed(site, pod(str(site.root / "team" / "good")))
    allowed(site, inference_service({"model": {"storageUri": f"file://{site.root}/team/good"}}))
    assert "does not match" in denied(site, pod(str(site.root / "team" / "tampered")))


def test_symlink_out_of_the_storage_root_is_denied(site: Site) -> None:
    # The target is validly signed by the trusted key: only the escape can deny it.
    assert "symbolic link" in denied(site, pod("team/escape"))
    assert "symbolic link" in denied(site, pod("team/alias"))


def test_folder_link_out_of_the_storage_root_is_denied(site: Site) -> None:
    assert "leads outside the storage root" in denied(site, pod("mounted/m"))


def test_newline_in_annotation_cannot_forge_a_log_line(site: Site) -> None:
    message = denied(site, pod("team/x\nINFO mltrust.admission: allow Pod ml/evil: ok"))
    assert "\n" not in message and "\\n" in message


def test_missing_model_is_denied(site: Site) -> None:
    assert "no model at team/nothing" in denied(site, pod("team/nothing"))


def test_deployment_is_checked_through_its_pod_template(site: Site) -> None:
    allowed(site, deployment("team/good"))
    assert "spec.template.metadata" in denied(site, deployment("team/tampered"))


def test_inference_service_file_and_pvc_uris(site: Site) -> None:
    allowed(site, inference_service({"model": {"storageUri": "file:///team/good"}}))
    ok = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://claim-a/iris"}}
    allowed(site, inference_service(ok))
    bad = {"model": {"storageUri": "pvc://team/tampered"}}
    assert "does not match" in denied(site, inference_service(bad))


def test_inference_service_in_an_unchecked_store_is_denied(site: Site) -> None:
    s3 = {"model": {"storageUri": "s3://bucket/iris"}}
    assert "s3:// locations are not checked" in denied(site, inference_service(s3))
    baked = {"containers": [{"name": "kserve-container", "image": "evil:1"}]}
    assert "names no model location" in denied(site, inference_service(baked))


def test_inference_service_second_location_cannot_hide_a_model(site: Site) -> None:
    # A good model in the documented field and a tampered one in the legacy framework field.
    both = {
        "model": {"storageUri": "file:///team/good"},
        "sklearn": {"storageUri": "file:///team/tampered"},
    }
    assert "spec.predictor.sklearn.storageUri" in denied(site, inference_service(both))


def test_custom_container_storage_uri_env_is_checked(site: Site) -> None:
    env = [{"name": "STORAGE_URI", "value": "pvc://team/tampered"}]
    custom = {"containers": [{"name": "kserve-container", "image": "custom:1", "env": env}]}
    assert "containers[0].env[0].value" in denied(site, inference_service(custom))
    env[0]["value"] = "pvc://claim-a/iris"
    allowed(site, inference_service(custom))


def test_file_uri_escapes_are_denied(site: Site) -> None:
    for uri in ("file:///../outside/m", "file://evil.example/team/good", "file:///team/%2e%2e/x"):
        denied(site, inference_service({"model": {"storageUri": uri}}))


def test_seldon_graph_child_model_is_checked(site: Site) -> None:
    graph = {
        "name": "router",
        "implementation": "SKLEARN_SERVER",
        "modelUri": "pvc://claim-a/iris",
        "children": [{"name": "child", "modelUri": "file:///team/tampered", "children": []}],
    }
    assert "children[0].modelUri" in denied(site, seldon(graph))
    graph["children"] = []
    allowed(site, seldon(graph))


def test_unknown_kind_is_denied(site: Site) -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "ModelServer", "metadata": {"name": "x"}}
    assert "not one mltrust knows" in denied(site, obj)


def test_pod_without_model_is_admitted_with_a_warning(site: Site) -> None:
    response = allowed(site, pod(None))
    assert any("names no model" in w for w in response["warnings"])


def test_malformed_annotations_are_denied_not_crashed(site: Site) -> None:
    doc = admission_review(pod("team/good"))
    doc["request"]["object"]["metadata"]["annotations"] = ["not", "a", "map"]
    response = post(site, doc)
    assert response["allowed"] is False


def test_delete_admits_no_model(site: Site) -> None:
    assert post(site, admission_review(pod("team/tampered"), "DELETE"))["allowed"] is True


def test_update_is_checked_like_create(site: Site) -> None:
    assert post(site, admission_review(pod("team/tampered"), "UPDATE"))["allowed"] is False


def test_requests_that_are_not_reviews_are_refused(site: Site) -> None:
    client = site.client  # type: ignore[attr-defined]
    as_json = {"content-type": "application/json"}
    assert client.post("/validate", content=b"{not json", headers=as_json).status_code == 400
    assert client.post("/validate", json={"kind": "AdmissionReview"}).status_code == 400
    v1beta1 = admission_review(pod("team/good"))
    v1beta1["apiVersion"] = "admission.k8s.io/v1beta1"
    assert client.post("/validate", json=v1beta1).status_code == 400
    big = b'{"a": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    r = client.post("/validate", content=big, headers=as_json)
    assert r.status_code == 413
    assert client.get("/validate").status_code == 405


# ---------------------------------------------------------------- policy options, in process


def _review(policy: AdmissionPolicy, obj: Any) -> dict[str, Any]:
    doc = admission_review(obj)
    return dict(review(json.dumps(doc).encode(), policy)["response"])


def test_dry_run_admits_and_warns(site: Site) -> None:
    response = _review(site.policy(dry_run=True), pod("team/tampered"))
    assert response["allowed"] is True
    assert any("dry-run, would deny" in w and "team/tampered" in w for w in response["warnings"])


def test_object_naming_too_many_models_is_denied(site: Site) -> None:
    from mltrust.config import Limits

    graph: dict[str, Any] = {"name": "n0", "modelUri": "pvc://claim-a/iris", "children": []}
    node = graph
    for i in range(1, 20):  # 20 references to one good model: cheap to check, but too many
        child = {"name": f"n{i}", "modelUri": "pvc://claim-a/iris", "children": []}
        node["children"].append(child)
        node = child
    response = _review(site.policy(limits=Limits(max_admission_models=4)), seldon(graph))
    assert response["allowed"] is False and "max 4" in response["status"]["message"]
    assert _review(site.policy(), seldon(graph))["allowed"] is False  # 20 > 16 by default


def test_dry_run_flag_over_https_admits_and_warns(site: Site) -> None:
    with _webhook(site, "--dry-run") as client:
        doc = admission_review(pod("team/tampered"))
        response = client.post("/validate", json=doc).json()["response"]
    assert response["allowed"] is True and response["uid"] == doc["request"]["uid"]
    assert any(w.startswith("dry-run, would deny:") for w in response["warnings"])


def test_require_annotation_denies_pods_naming_no_model(site: Site) -> None:
    assert _review(site.policy(require_annotation=True), pod(None))["allowed"] is False


def test_profile_denies_a_signed_malicious_model(site: Site, tmp_path: Path) -> None:
    profile = tmp_path / "gate.yaml"
    profile.write_text(
        "name: gate\ntitle: admission gate\ndescription: scan clean and signed\ncontrols:\n"
        "  - id: model-scan-clean\n    title: clean\n    impact: critical\n"
        "    only_if: scan.present\n"
        "    check: scan.findings_by_severity.high + scan.findings_by_severity.critical == 0\n"
        "  - id: model-signed\n    title: signed\n    impact: high\n"
        "    check: signature.status == 'pass'\n"
    )
    # The signature alone admits it: signing says who, not what.
    assert _review(site.policy(), pod("team/evil"))["allowed"] is True
    response = _review(site.policy(profile=str(profile)), pod("team/evil"))
    assert response["allowed"] is False
    assert "model-scan-clean" in response["status"]["message"]
    assert _review(site.policy(profile=str(profile)), pod("team/good"))["allowed"] is True


def test_plain_http_on_a_public_address_is_refused(site: Site) -> None:
    args = ["admission", "serve", "--trusted-key", str(site.trusted.public_path)]
    assert main([*args, "--host", "0.0.0.0", "--storage-root", str(site.root)]) == EXIT_ERROR


def test_policy_without_keys_or_root_does_not_start(site: Site, tmp_path: Path) -> None:
    from mltrust.errors import ConfigError

    with pytest.raises(ConfigError):
        AdmissionPolicy(trusted_keys=(), storage_root=site.root)
    with pytest.raises(ConfigError):
        AdmissionPolicy(trusted_keys=(site.trusted.public_path,), storage_root=tmp_path / "no")
