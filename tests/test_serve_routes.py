"""The gateway's route table is the one source of who may call what.

Every route of ``ROUTES`` is called by every kind of caller against a real server; the answer
must be what the route's declared access allows (an oracle written here, independently of
``authorize``), and what the generated matrix in docs/threat-model-serve.md says.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest

from mltrust.serve._app import ROUTES, MltrustServer
from mltrust.serve._openapi import openapi_document
from mltrust.serve._routes import PRINCIPALS, Access, Route, check_table, matrix_markdown
from test_serve_support import (
    ROW,
    add_python_model,
    audit_entries,
    infer_body,
    make_server,
    new_key,
    plugin_dir,
)

ROOT = Path(__file__).resolve().parent.parent
MODEL, VERSION = "calc", "2"
UNAUTHORIZED = {"error": "unauthorized"}
FORBIDDEN = {"error": "forbidden"}

# who may call a route of each access, by the matrix's caller labels (no credentials first)
NONE = "no credentials"
OTHER, META, INFER, MODEL_ADMIN, ADMIN = (label for label, _ in PRINCIPALS)
ORACLE: dict[Access, set[str]] = {
    Access.PUBLIC: {NONE, OTHER, META, INFER, MODEL_ADMIN, ADMIN},
    Access.AUTHENTICATED: {OTHER, META, INFER, MODEL_ADMIN, ADMIN},
    Access.METADATA: {META, INFER, MODEL_ADMIN, ADMIN},
    Access.INFER: {INFER, MODEL_ADMIN, ADMIN},
    Access.ADMIN: {ADMIN},
    Access.METRICS: {ADMIN},  # --metrics-public is off here; see the test below
}


def _grants(grants: frozenset[tuple[str, str]]) -> list[tuple[str, str]]:
    names = {"M": MODEL, "other": "unrelated-model"}
    return sorted((names.get(model, model), role) for model, role in grants)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("routes")
    repo = tmp / "repo"
    add_python_model(repo, MODEL, "total")
    client, app = make_server(
        repo,
        plugin_path=plugin_dir(tmp),
        identity_rps=1e9,
        identity_burst=1e9,
        auth_failure_rps=1e9,
    )
    callers: dict[str, dict[str, str]] = {NONE: {}}
    for i, (label, grants) in enumerate(PRINCIPALS):
        callers[label] = new_key(repo, f"caller-{i}", _grants(grants))
    app.keys.refresh(max_age=0)  # type: ignore[union-attr]
    yield client, callers, repo
    client.close()


def _url(route: Route[Any], model: str = MODEL, version: str = VERSION) -> str:
    return route.pattern.replace("{model}", model).replace("{version}", version)


def _call(client: Any, method: str, url: str, headers: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if url.endswith("/infer"):
        kwargs["json"] = infer_body([ROW])
    elif url.endswith("/repository/index"):
        kwargs["json"] = {}
    return client.request(method, url, **kwargs)


def _matrix_cells() -> list[dict[str, str]]:
    """The generated matrix, row by row: caller label -> cell."""
    lines = matrix_markdown(ROUTES).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return [
        dict(zip(head, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]


def test_every_route_times_every_caller_gets_what_the_table_declares(gateway):
    client, callers, _ = gateway
    cells = _matrix_cells()
    assert len(cells) == len(ROUTES) and len(ROUTES) >= 15
    seen: set[tuple[str, str]] = set()
    for route, row in zip(ROUTES, cells, strict=True):
        url = _url(route)
        assert row["method"] == route.method
        for label, headers in callers.items():
            r = _call(client, route.method, url, headers)
            if label in ORACLE[route.access]:
                expected, cell = 200, "yes"
            elif label == NONE:
                expected, cell = 401, "401"
            else:
                expected, cell = 403, "403"
            where = f"{route.method} {url} as {label}"
            assert r.status_code == expected, (where, r.text)
            assert row[label] == cell, where  # the docs say what the server does
            if expected == 401:
                assert r.json() == UNAUTHORIZED, where
            elif expected == 403:
                assert r.json() == FORBIDDEN, where
            seen.add((route.method, route.pattern))
    assert len(seen) == len(ROUTES)  # no two rows of the table are the same endpoint


def test_an_unknown_model_is_403_without_the_role_and_404_with_it(gateway):
    # no existence oracle: a caller without the role on a name cannot tell whether it exists
    client, callers, _ = gateway
    for route in ROUTES:
        if "{model}" not in route.segments:
            continue
        for label, headers in callers.items():
            r = _call(client, route.method, _url(route, model="ghost"), headers)
            expected = {NONE: 401, ADMIN: 404}.get(label, 403)
            assert r.status_code == expected, (route.pattern, label)


def test_an_unknown_version_is_404_only_for_callers_with_the_role(gateway):
    client, callers, _ = gateway
    for route in ROUTES:
        if "{version}" not in route.segments:
            continue
        for label, headers in callers.items():
            r = _call(client, route.method, _url(route, version="9"), headers)
            allowed = label in ORACLE[route.access]
            expected = 404 if allowed else (401 if label == NONE else 403)
            assert r.status_code == expected, (route.pattern, label)


@pytest.mark.parametrize(
    "path", ["/nothing", "/v2/nothing/here", "/v2/models", "/v2/models//infer", "/metrics/x"]
)
def test_unknown_path_is_401_without_credentials_and_404_with_them(gateway, path):
    client, callers, _ = gateway
    for method in ("GET", "POST", "DELETE"):
        r = client.request(method, path)
        assert r.status_code == 401 and r.json() == UNAUTHORIZED, (method, path)
        r = client.request(method, path, headers=callers[OTHER])
        assert r.status_code == 404 and r.json() == {"error": "not found"}, (method, path)


def test_wrong_method_is_401_without_credentials_and_405_with_allow_after(gateway):
    client, callers, _ = gateway
    for route in ROUTES:
        if route.access is Access.PUBLIC:
            continue
        url = _url(route, model="ghost")  # 405 says nothing about the model either
        wrong = "PUT"
        assert client.request(wrong, url).status_code == 401
        r = client.request(wrong, url, headers=callers[OTHER])
        assert r.status_code == 405 and r.json() == {"error": "method not allowed"}, url
        assert r.headers["allow"] == route.method


def test_public_routes_are_not_audited_and_their_wrong_method_is_405(gateway):
    client, callers, repo = gateway
    before = len(audit_entries(repo))
    for route in ROUTES:
        if route.access is not Access.PUBLIC:
            continue
        assert client.get(route.pattern).status_code == 200
        r = client.post(route.pattern, content=b"x")
        assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert len(audit_entries(repo)) == before
    assert client.get("/v2", headers=callers[OTHER]).status_code == 200
    assert len(audit_entries(repo)) == before + 1


def test_one_trailing_slash_is_ignored(gateway):
    client, callers, _ = gateway
    assert client.get(f"/v2/models/{MODEL}/", headers=callers[META]).status_code == 200
    assert client.get("/v2/", headers=callers[META]).status_code == 200
    assert client.get(f"/v2/models/{MODEL}//", headers=callers[META]).status_code == 404


def test_metrics_public_makes_only_metrics_public(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, MODEL, "total")
    client, _ = make_server(repo, plugin_path=plugin_dir(tmp_path), metrics_public=True)
    try:
        r = client.get("/metrics")
        assert r.status_code == 200 and "mltrust_requests_total" in r.text
        assert client.post("/metrics").status_code == 405
        assert client.get("/v2/admin/models").status_code == 401
        assert [e["path"] for e in audit_entries(repo)] == ["/v2/admin/models"]
    finally:
        client.close()


def test_openapi_document_lists_exactly_the_routes_and_their_public_ones():
    doc = openapi_document()
    documented = {
        (method.upper(), path, op.get("security") == [])
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }
    table = {
        (
            r.method,
            r.pattern.replace("{model}", "{model_name}").replace("{version}", "{model_version}"),
            r.access is Access.PUBLIC,
        )
        for r in ROUTES
    }
    assert documented == table


def test_every_handler_is_reached_through_the_table():
    handlers = {name for name, _ in inspect.getmembers(MltrustServer) if name.startswith("_h_")}
    assert handlers == {r.handler.__name__ for r in ROUTES}


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            [
                Route("GET", "/v2/models/{model}", Access.METADATA, None),
                Route("GET", "/v2/models/{model}", Access.INFER, None),
            ],
            "overlap",
        ),
        (
            [
                Route("GET", "/v2/models/{model}/stats", Access.METADATA, None),
                Route("GET", "/v2/models/special/{model}", Access.METADATA, None),
            ],
            "overlap",
        ),
        (
            [
                Route("GET", "/v2/thing", Access.PUBLIC, None),
                Route("POST", "/v2/thing", Access.ADMIN, None),
            ],
            "public and protected",
        ),
    ],
)
def test_an_ambiguous_table_is_refused(routes, message):
    with pytest.raises(ValueError, match=message):
        check_table(routes)


@pytest.mark.parametrize(
    ("method", "pattern", "access"),
    [
        ("GET", "/v2/models/{model}", Access.ADMIN),  # a model route needs a model role
        ("POST", "/v2/admin/reload", Access.INFER),  # a model role needs a {model}
        ("GET", "/v2/models/{model}/", Access.METADATA),
        ("GET", "/v2/{name}", Access.AUTHENTICATED),
        ("get", "/v2", Access.AUTHENTICATED),
        ("GET", "/v2/{version}", Access.AUTHENTICATED),
    ],
)
def test_a_malformed_route_is_refused(method, pattern, access):
    with pytest.raises(ValueError):
        Route(method, pattern, access, None)


def test_docs_hold_the_generated_matrix():
    """docs/threat-model-serve.md shows the table as it is (scripts/serve_routes.py writes it)."""
    text = (ROOT / "docs" / "threat-model-serve.md").read_text(encoding="utf-8")
    begin = "<!-- routes: generated by scripts/serve_routes.py, do not edit -->\n"
    _, found, rest = text.partition(begin)
    block, found_end, _ = rest.partition("<!-- routes: end -->")
    assert found and found_end, "the markers are missing"
    assert block == matrix_markdown(ROUTES), "run scripts/serve_routes.py"
