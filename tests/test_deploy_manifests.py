"""deploy/k8s: the manifests are valid Kubernetes objects and keep their security settings.

Neither ``helm`` nor ``kubeconform`` installs from the package registries here, so the
manifests are checked against the Kubernetes OpenAPI types shipped in the ``kubernetes``
Python client: every field of every built-in object must be a field of its model class (an
unknown or misspelled field fails, at any depth), primitive types must match, and the object
must deserialise into the model (which enforces required fields and some enums). Custom
resources (KServe ClusterServingRuntime, cert-manager) have no model there: their
pod-shaped parts (containers, volumes, metadata) are checked the same way and their own fields
against the list of known fields. Not checked: value formats (quantities, DNS names) and
cross-object references beyond those asserted below.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

k8s = pytest.importorskip("kubernetes.client")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
_API = k8s.ApiClient()
_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
}


def _strict(data: Any, type_name: str, where: str) -> list[str]:
    """Errors of ``data`` against the client's OpenAPI type ``type_name``."""
    if type_name == "object":
        return []
    if m := re.fullmatch(r"(?:list|List)\[(.+)\]", type_name):
        if not isinstance(data, list):
            return [f"{where}: expected a list"]
        return [e for i, item in enumerate(data) for e in _strict(item, m[1], f"{where}[{i}]")]
    if m := re.fullmatch(r"(?:dict\((.+), (.+)\)|Dict\[(.+?), (.+)\])", type_name):
        if not isinstance(data, dict):
            return [f"{where}: expected a map"]
        value_type = m[2] or m[4]
        return [e for k, v in data.items() for e in _strict(v, value_type, f"{where}.{k}")]
    if type_name in _PRIMITIVES:
        ok = isinstance(data, _PRIMITIVES[type_name])
        if type_name != "bool" and isinstance(data, bool):
            ok = False
        return [] if ok else [f"{where}: expected {type_name}, got {data!r}"]
    cls = getattr(k8s, type_name)
    if not isinstance(data, dict):
        return [f"{where}: expected a {type_name} object"]
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    errors = []
    for key, value in data.items():
        if key not in by_json:
            errors.append(f"{where}: unknown field {key!r} for {type_name}")
            continue
        errors += _strict(value, cls.openapi_types[by_json[key]], f"{where}.{key}")
    return errors


_MODELS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ): "V1ValidatingWebhookConfiguration",
}
_RUNTIME_SPEC = {
    "annotations", "labels", "supportedModelFormats", "protocolVersions", "multiModel",
    "disabled", "containers", "volumes", "nodeSelector", "affinity", "tolerations",
    "imagePullSecrets", "grpcEndpoint", "grpcDataEndpoint", "httpDataEndpoint", "replicas",
    "storageHelper", "builtInAdapter", "workerSpec", "hostIPC",
}  # fmt: skip


def _objects() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    out = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            if doc:
                out.append((f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


OBJECTS = _objects()


def _by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in OBJECTS if doc["kind"] == kind]


def test_every_manifest_is_listed_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize(("where", "doc"), OBJECTS, ids=[w for w, _ in OBJECTS])
def test_manifest_matches_the_kubernetes_schema(where: str, doc: dict[str, Any]) -> None:
    model = _MODELS.get((doc["apiVersion"], doc["kind"]))
    if model is not None:
        assert _strict(doc, model, where) == []
        _API._ApiClient__deserialize(doc, model)  # required fields, enums
        return
    assert _strict(doc["metadata"], "V1ObjectMeta", where) == []
    if doc["kind"] == "ClusterServingRuntime":
        assert doc["apiVersion"] == "serving.kserve.io/v1alpha1"
        spec = doc["spec"]
        assert set(spec) <= _RUNTIME_SPEC, set(spec) - _RUNTIME_SPEC
        assert _strict(spec["containers"], "list[V1Container]", where) == []
        assert _strict(spec.get("volumes", []), "list[V1Volume]", where) == []
        for fmt in spec["supportedModelFormats"]:
            assert set(fmt) <= {"name", "version", "autoSelect", "priority"}
        assert set(spec["protocolVersions"]) <= {"v1", "v2", "grpc-v1", "grpc-v2"}
    else:
        assert doc["apiVersion"] == "cert-manager.io/v1", where
        assert doc["kind"] in ("Certificate", "Issuer")


def test_schema_check_catches_a_misspelled_field() -> None:
    doc = _by_kind("Deployment")[0]
    bad = yaml.safe_load(yaml.safe_dump(doc))
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] = True
    errors = _strict(bad, "V1Deployment", "x")
    assert any("readOnlyRootFs" in e for e in errors)
    del bad["spec"]["template"]["spec"]["containers"][0]["name"]  # a required field
    with pytest.raises(Exception, match="name"):
        _API._ApiClient__deserialize(bad, "V1Deployment")


def _containers() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for deployment in _by_kind("Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["automountServiceAccountToken"] is False
        out += [(deployment["metadata"]["name"], c) for c in spec["containers"]]
    for runtime in _by_kind("ClusterServingRuntime"):
        out += [(runtime["metadata"]["name"], c) for c in runtime["spec"]["containers"]]
    return out


def test_containers_are_non_root_read_only_and_unprivileged() -> None:
    containers = _containers()
    assert len(containers) == 3
    for name, c in containers:
        ctx = c["securityContext"]
        assert ctx["runAsNonRoot"] is True, name
        assert ctx["readOnlyRootFilesystem"] is True, name
        assert ctx["allowPrivilegeEscalation"] is False, name
        assert ctx["capabilities"]["drop"] == ["ALL"], name
        assert "readinessProbe" in c, name
        assert "memory" in c["resources"]["limits"], name


def test_every_deployment_has_replicas_probes_and_a_network_policy() -> None:
    policies = {p["metadata"]["name"]: p for p in _by_kind("NetworkPolicy")}
    for deployment in _by_kind("Deployment"):
        name = deployment["metadata"]["name"]
        assert deployment["spec"]["replicas"] >= 2
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert "livenessProbe" in container and "readinessProbe" in container
        assert set(policies[name]["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_webhook_fails_closed_and_is_opt_in_by_namespace_label() -> None:
    [config] = _by_kind("ValidatingWebhookConfiguration")
    [hook] = config["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["namespaceSelector"] == {"matchLabels": {"mltrust.dev/enforce": "true"}}
    assert hook["clientConfig"]["service"]["path"] == "/validate"


def test_webhook_rules_cover_exactly_the_kinds_the_webhook_checks() -> None:
    from mltrust.admission._kinds import EXTRACTORS

    [config] = _by_kind("ValidatingWebhookConfiguration")
    covered = {
        (group, resource)
        for rule in config["webhooks"][0]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert covered == {(group, kind.lower() + "s") for group, kind in EXTRACTORS}
    for rule in config["webhooks"][0]["rules"]:
        assert set(rule["operations"]) == {"CREATE", "UPDATE"}


def _options(command: Any) -> set[str]:
    return {opt for p in command.params for opt in p.opts}


def test_container_arguments_are_options_the_cli_has() -> None:
    from mltrust.cli._admission import admission
    from mltrust.cli._serve import serve

    commands = {("serve",): serve, ("admission", "serve"): admission.commands["serve"]}
    for name, c in _containers():
        args = c["args"]
        head = tuple(args[:2]) if args[0] == "admission" else tuple(args[:1])
        command = commands[head]
        if isinstance(command, click.Group):  # `serve REPO` is `serve run REPO`
            command = command.commands["run"]
        for arg in args[len(head) :]:
            if arg.startswith("--"):
                assert arg.split("=", 1)[0] in _options(command), (name, arg)
