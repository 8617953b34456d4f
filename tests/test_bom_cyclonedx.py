"""CycloneDX 1.6 ML-BOM: built by hand (modelCard) and validated against the official schema."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from _check_helpers import MALICIOUS_PICKLE, clean_project
from mltrust.bom import (
    DatasetRef,
    Metric,
    ModelInfo,
    Package,
    build_bom,
    describe_estimator,
    schema_folder,
    validate_bom,
)
from mltrust.errors import InputError
from mltrust.evidence import CollectContext, collect_evidence


def test_schema_files_ship_with_cyclonedx_lib() -> None:
    folder = schema_folder()
    for name in (
        "bom-1.6.SNAPSHOT.schema.json",
        "spdx.SNAPSHOT.schema.json",
        "jsf-0.82.SNAPSHOT.schema.json",
    ):
        assert (folder / name).is_file()


def _full_bom() -> dict:
    model = ModelInfo(
        name="iris-classifier",
        version="3",
        files=(("model.joblib", "a" * 64, 1234),),
        root_digest="b" * 64,
        approach="supervised",
        task="classification",
        architecture_family="random forest",
        model_architecture="sklearn.ensemble.RandomForestClassifier",
        datasets=(DatasetRef("iris.csv", "c" * 64, "data/iris.csv"), DatasetRef("iris")),
        metrics=(Metric("accuracy", "0.96", "test"), Metric("robust-accuracy", "0.71")),
        considerations={"useCases": ["demo"], "technicalLimitations": ["toy data"]},
        licenses=("Apache-2.0", "LicenseRef-OpenRAIL"),
        formats=("pickle", "joblib"),
    )
    return build_bom(
        model,
        [Package("Jinja2", "2.10", "requirements.txt"), Package("x", None)],
        tool_version="0.1.0",
    )


def test_full_ml_bom_validates_and_has_model_card() -> None:
    bom = _full_bom()
    validate_bom(bom)
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    card = model["modelCard"]
    params = card["modelParameters"]
    assert params["approach"] == {"type": "supervised"}
    assert params["architectureFamily"] == "random forest"
    assert len(params["datasets"]) == 2
    refs = {c["bom-ref"] for c in bom["components"]}
    assert all(d["ref"] in refs for d in params["datasets"])
    data = next(c for c in bom["components"] if c["type"] == "data" and "hashes" in c)
    assert data["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]
    assert card["quantitativeAnalysis"]["performanceMetrics"][0]["value"] == "0.96"
    lib = next(c for c in bom["components"] if c["type"] == "library" and c["name"] == "Jinja2")
    assert lib["purl"] == "pkg:pypi/jinja2@2.10"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["metadata"]["component"]["modelCard"]["modelParameters"].update(
            approach={"type": "magic"}
        ),
        lambda b: b["components"][0]["hashes"][0].update(content="not-hex"),
        lambda b: b.update(specVersion=1.6),
        lambda b: b["metadata"]["component"]["modelCard"].update(unknownField=1),
    ],
)
def test_schema_catches_invalid_boms(mutate) -> None:  # type: ignore[no-untyped-def]
    bom = copy.deepcopy(_full_bom())
    mutate(bom)
    with pytest.raises(InputError, match=r"CycloneDX 1\.6"):
        validate_bom(bom)


def test_describe_estimator_from_pickle_imports() -> None:
    got = describe_estimator(
        [
            "numpy.core.multiarray:_reconstruct",
            "sklearn.ensemble._forest:RandomForestClassifier",
            "sklearn.tree._classes:DecisionTreeClassifier",
        ]
    )
    assert got == {
        "modelArchitecture": "sklearn.ensemble._forest.RandomForestClassifier",
        "architectureFamily": "random forest",
        "task": "classification",
        "approach": "supervised",
    }
    assert describe_estimator(["sklearn.cluster._kmeans.KMeans"])["approach"] == "unsupervised"
    assert describe_estimator(["builtins.dict"]) == {}


def test_bom_of_projects_validates(tmp_path: Path) -> None:
    from mltrust.evidence._bom import BomCollector

    project = clean_project(tmp_path / "clean")
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("a,b\n1,2\n")
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "model.pkl").write_bytes(MALICIOUS_PICKLE)
    for root in (project, evil, evil / "model.pkl"):
        ctx = CollectContext(root)
        bundle = collect_evidence(ctx)
        bom = ctx.shared["bom"]
        validate_bom(bom)
        assert bundle.document["bom"]["valid"] is True
        assert bom["metadata"]["component"]["modelCard"]
        assert bundle.statements()[-1]["predicateType"] == BomCollector.predicate_type
    # the clean project's card and data set made it into the model card
    ctx = CollectContext(project)
    collect_evidence(ctx)
    card = ctx.shared["bom"]["metadata"]["component"]["modelCard"]
    assert card["modelParameters"]["task"] == "tabular-classification"
    assert ctx.shared["bom"]["metadata"]["component"]["licenses"] == [
        {"license": {"id": "Apache-2.0"}}
    ]
    data = [c for c in ctx.shared["bom"]["components"] if c["type"] == "data"]
    assert data and data[0]["name"] == "train.csv" and data[0]["hashes"]


def test_model_component_is_tied_to_the_model_bytes() -> None:
    """A BOM whose model component has no hash could describe any model (issue 12)."""
    from mltrust.attest._manifest import FileEntry, Manifest

    files = (("model.joblib", "a" * 64, 1234), ("config.json", "b" * 64, 10))
    bom = build_bom(ModelInfo(name="m", files=files))
    validate_bom(bom)
    model = bom["metadata"]["component"]
    expected = Manifest(
        name="m",
        hash_algorithm="sha256",
        files=(
            FileEntry("config.json", 10, "sha256", ("b" * 64,)),
            FileEntry("model.joblib", 1234, "sha256", ("a" * 64,)),
        ),
    ).root_digest
    assert model["hashes"] == [{"alg": "SHA-256", "content": expected}]
    assert {
        "name": "mltrust:hashCovers",
        "value": "mltrust root digest of the model files listed in this BOM",
    } in model["properties"]
    other = build_bom(ModelInfo(name="m", files=(("model.joblib", "c" * 64, 1234), files[1])))
    assert other["metadata"]["component"]["hashes"] != model["hashes"]
    signed = build_bom(ModelInfo(name="m", files=files, root_digest="d" * 64))
    assert signed["metadata"]["component"]["hashes"][0]["content"] == "d" * 64


def test_unpinned_requirements_are_components() -> None:
    bom = build_bom(
        ModelInfo(name="m"),
        [Package("torch", None, "requirements.txt", "torch>=2"), Package("numpy", "2.0.0")],
    )
    validate_bom(bom)
    torch = next(c for c in bom["components"] if c["name"] == "torch")
    assert "version" not in torch and torch["purl"] == "pkg:pypi/torch"
    props = {p["name"]: p["value"] for p in torch["properties"]}
    assert props == {
        "mltrust:pinned": "false",
        "mltrust:requirement": "torch>=2",
        "mltrust:source": "requirements.txt",
    }
    deps = next(d for d in bom["dependencies"] if d["ref"] == "model:m")
    assert torch["bom-ref"] in deps["dependsOn"]


def test_bom_collector_lists_unpinned_requirements(tmp_path: Path) -> None:
    project = clean_project(tmp_path / "p")
    (project / "requirements.txt").write_text("numpy==2.1.0\ntorch>=2\nrequests\n")
    ctx = CollectContext(project)
    collect_evidence(ctx)
    bom = ctx.shared["bom"]
    validate_bom(bom)
    libs = {c["name"]: c for c in bom["components"] if c["type"] == "library"}
    assert libs["numpy"]["version"] == "2.1.0"
    for name, requirement in (("torch", "torch>=2"), ("requests", "requests")):
        props = {p["name"]: p["value"] for p in libs[name]["properties"]}
        assert "version" not in libs[name]
        assert props["mltrust:pinned"] == "false" and props["mltrust:requirement"] == requirement
    assert bom["metadata"]["component"]["hashes"][0]["alg"] == "SHA-256"
