"""The BOM validator resolves each ``$ref`` once: it must judge exactly as plain jsonschema does.

The oracle is jsonschema's own Draft 7 validator over the same shipped schemas, with nothing
changed (its ``uniqueItems`` is quadratic, so the BOMs here are small). The fast validator must
find the same errors at the same places, on real BOMs and on BOMs broken on purpose, and a
malformed component must be rejected wherever it sits in a long list.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _check_helpers import clean_project
from mltrust.bom import DatasetRef, Metric, ModelInfo, Package, _schema, build_bom, validate_bom
from mltrust.errors import InputError
from mltrust.evidence import CollectContext, collect_evidence

jsonschema = pytest.importorskip("jsonschema")


def _plain() -> Any:
    """Stock jsonschema: the Draft 7 validator with no keyword replaced."""
    return jsonschema.Draft7Validator(_schema._root_schema(), registry=_schema._registry())


_PLAIN = _plain()


def _errors(validator: Any, bom: Any) -> list[tuple[tuple[Any, ...], tuple[Any, ...], str]]:
    """Where each error is, which schema keyword raised it and its message.

    ``uniqueItems`` messages are left out: ours are cut at 200 characters.
    """
    return sorted(
        (
            tuple(e.absolute_path),
            tuple(e.absolute_schema_path),
            "" if e.validator == "uniqueItems" else e.message,
        )
        for e in validator.iter_errors(bom)
    )


def _full_bom() -> dict[str, Any]:
    model = ModelInfo(
        name="iris-classifier",
        version="3",
        files=(("model.joblib", "a" * 64, 1234), ("weights/w.npy", "e" * 64, 80)),
        approach="supervised",
        task="classification",
        datasets=(DatasetRef("iris.csv", "c" * 64, "data/iris.csv"), DatasetRef("iris")),
        metrics=(Metric("accuracy", "0.96", "test"),),
        considerations={"useCases": ["demo"]},
        licenses=("Apache-2.0", "LicenseRef-OpenRAIL"),
        formats=("joblib",),
    )
    return build_bom(
        model,
        [Package("Jinja2", "2.10", "requirements.txt"), Package("x", None, "", "x>=1")],
        tool_version="0.1.0",
    )


def _many_files_bom(n: int) -> dict[str, Any]:
    files = tuple((f"w/{i}.npy", f"{i:064x}", 100 + i) for i in range(n))
    return build_bom(ModelInfo(name="m", files=files), [Package("numpy", "2.1.0")])


def _project_bom(tmp_path: Path) -> dict[str, Any]:
    project = clean_project(tmp_path / "p")
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("a,b\n1,2\n")
    ctx = CollectContext(project)
    collect_evidence(ctx)
    bom: dict[str, Any] = ctx.shared["bom"]
    return bom


#: Ways to break a BOM: (name, mutation). Components, their hashes and properties are where the
#: per-item work (and so the resolved-once references) is.
_BREAKS = [
    ("bad hash alg", lambda b: b["components"][1]["hashes"][0].update(alg="SHA-257")),
    ("hash content not hex", lambda b: b["components"][0]["hashes"][0].update(content="zz")),
    ("component type unknown", lambda b: b["components"][0].update(type="firmware-ish")),
    ("component type not a string", lambda b: b["components"][0].update(type=7)),
    ("hashes not a list", lambda b: b["components"][0].update(hashes={"alg": "MD5"})),
    ("name not a string", lambda b: b["components"][-1].update(name=["x"])),
    ("unknown component key", lambda b: b["components"][2].update(colour="red")),
    ("property value not a string", lambda b: b["components"][0]["properties"][0].update(value=1)),
    ("empty bom-ref", lambda b: b["components"][0].update({"bom-ref": ""})),
    ("nested component broken", lambda b: b["components"][0].update(components=[{"type": "x"}])),
    ("dependsOn item not a string", lambda b: b["dependencies"][0]["dependsOn"].append(3)),
    ("dependency without ref", lambda b: b["dependencies"][1].pop("ref")),
    (
        "unknown SPDX id",
        lambda b: b["metadata"]["component"]["licenses"][0].update(
            {"license": {"id": "Not-A-License-1.0"}}
        ),
    ),
    ("model card field unknown", lambda b: b["metadata"]["component"]["modelCard"].update(x=1)),
    ("serial number malformed", lambda b: b.update(serialNumber="urn:uuid:nope")),
    ("duplicate component", lambda b: b["components"].append(copy.deepcopy(b["components"][0]))),
]


def test_fast_validation_agrees_on_real_boms(tmp_path: Path) -> None:
    fast = _schema._validator()
    for bom in (_full_bom(), _many_files_bom(40), _project_bom(tmp_path)):
        assert _errors(_PLAIN, bom) == [] == _errors(fast, bom)
        validate_bom(bom)


@pytest.mark.parametrize(("name", "mutate"), _BREAKS, ids=[n for n, _ in _BREAKS])
def test_fast_validation_agrees_on_broken_boms(name: str, mutate: Any) -> None:
    bom = copy.deepcopy(_full_bom())
    mutate(bom)
    expected = _errors(_PLAIN, bom)
    assert expected, f"{name}: the plain validator should reject this BOM"
    assert _errors(_schema._validator(), bom) == expected
    with pytest.raises(InputError, match=r"CycloneDX 1\.6"):
        validate_bom(bom)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.sampled_from([0.5, 1.0, "", "SHA-256", "MD5", "a" * 64, "file", "library", "x"]),
    lambda inner: (
        st.lists(inner, max_size=2)
        | st.dictionaries(
            st.sampled_from(["alg", "name", "type", "value", "ref"]), inner, max_size=2
        )
    ),
    max_leaves=4,
)


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a value sits (keys and list indexes)."""
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _slots(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _slots(v, (*path, i))
    return out


_SLOTS = [s for s in _slots(_full_bom()) if s]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SLOTS), _JSON)
def test_fast_validation_agrees_on_any_value_anywhere(slot: tuple[Any, ...], value: Any) -> None:
    bom = _full_bom()
    parent: Any = bom
    for key in slot[:-1]:
        parent = parent[key]
    parent[slot[-1]] = value
    assert _errors(_schema._validator(), bom) == _errors(_PLAIN, bom)


def test_malformed_component_is_rejected_at_the_end_of_a_long_list() -> None:
    """The first components fill the cache; the last one is still checked, in full."""
    bom = _many_files_bom(2000)
    validate_bom(bom)
    bom["components"][1999]["hashes"][0]["alg"] = "SHA-257"
    with pytest.raises(InputError, match=r"components/1999/hashes/0/alg"):
        validate_bom(bom)
    bom["components"][1999]["hashes"][0]["alg"] = "SHA-256"
    bom["components"][1998]["type"] = {"file": True}
    with pytest.raises(InputError, match=r"components/1998/type"):
        validate_bom(bom)


_ITEMS = st.recursive(
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, -1, 2, 0.0, -0.0, 1.0, 1.5, 2.0, 1e20, 10**20, "", "1", "a", "true"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "1"]), inner, max_size=2)
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ITEMS, max_size=5))
def test_unique_items_agrees_with_plain_jsonschema(items: list[Any]) -> None:
    """Linear ``uniqueItems`` (hash of a canonical form) finds the duplicates jsonschema does:
    ``1`` and ``1.0`` are equal, ``true`` and ``1`` are not, key order does not matter."""
    schema = {"type": "array", "uniqueItems": True}
    fast = type(_schema._validator())(schema)
    plain = jsonschema.Draft7Validator(schema)
    assert fast.is_valid(items) == plain.is_valid(items)


def test_unique_items_equalities() -> None:
    fast = type(_schema._validator())({"uniqueItems": True})
    assert not fast.is_valid([1, 1.0])
    assert not fast.is_valid([{"a": [1], "b": "x"}, {"b": "x", "a": [1.0]}])
    assert fast.is_valid([True, 1])
    assert fast.is_valid([None, False, 0, "", [], {}])
    assert fast.is_valid([["1"], [1], "1", 1])
