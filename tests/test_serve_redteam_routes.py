"""Red-team findings against the gateway's route table and its one authorisation decision.

Each test replays an attack against a real server (the ASGI app through httpx, or a live uvicorn
on 127.0.0.1 with raw sockets) and fails if the attack works again.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from test_serve_support import (
    ROW,
    add_python_model,
    audit_entries,
    infer_body,
    make_server,
    new_key,
    plugin_dir,
)


@pytest.fixture
def served(tmp_path) -> Any:
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))

    class NS:
        pass

    ns = NS()
    ns.repo, ns.client, ns.app = repo, client, app
    ns.infer = new_key(repo, "alice", [("calc", "infer")])
    ns.admin = new_key(repo, "root", [("*", "admin")])
    app.keys.refresh(max_age=0)
    yield ns
    client.close()


# -- R1: an encoded "/" (%2F) is taken as a path separator -----------------------------------------
# Expected: "/" inside a segment is data, never structure. A front proxy or WAF that allows or
# denies by path sees `/v2/models/calc%2Finfer` or `/v2%2Fadmin%2Fmodels`, not the route the
# gateway serves; and the audit log must record the path as sent, not a decoded one that hides
# which bytes the client used. The gateway answers such a path as no route (404 after 401).
ENCODED = [
    ("POST", "/v2/models/calc%2Finfer", "infer"),
    ("POST", "/v2/models/calc%2finfer", "infer"),
    ("POST", "/v2%2Fmodels%2Fcalc%2Finfer", "infer"),
    ("POST", "/v2/models/calc%2Fversions%2F2/infer", "infer"),
    ("GET", "/v2%2Fadmin%2Fmodels", "admin"),
    ("GET", "/v2/admin%2Fmodels", "admin"),
    ("GET", "/v2/models/calc/versions/2%2F", "admin"),
]


@pytest.mark.parametrize(("method", "path", "who"), ENCODED)
def test_r1_encoded_slash_is_not_a_separator(served, method, path, who):
    headers = served.infer if who == "infer" else served.admin
    kwargs: dict[str, Any] = {"headers": headers}
    if method == "POST":
        kwargs["json"] = infer_body([ROW])
    r = served.client.request(method, path, **kwargs)
    assert r.status_code == 404, (path, r.status_code, r.text)
    assert served.client.request(method, path).status_code == 401
    last = audit_entries(served.repo)[-1]
    assert last["path"] == path and last["decision"] == "deny"


def test_r1_encoded_slash_through_live_uvicorn(tmp_path):
    """The same over real sockets: uvicorn decodes ``%2F`` into ``scope["path"]``."""
    from test_serve_stalls import Live, _answer

    server = Live(tmp_path)
    try:
        key = server.key["Authorization"]
        body = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}'
        for target, expect in (
            (b"/v2/models/calc/infer", b" 200 "),
            (b"/v2/models/calc%2Finfer", b" 404 "),
        ):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(
                b"POST " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                b"Authorization: " + key.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            answer = _answer(s, 5.0)
            s.close()
            assert expect in answer.split(b"\r\n", 1)[0], (target, answer[:200])
        paths = [e["path"] for e in audit_entries(server.repo)]
        assert paths[-2:] == ["/v2/models/calc/infer", "/v2/models/calc%2Finfer"]
    finally:
        server.stop()


def test_r1_plain_paths_still_route(served):
    """The fix must not break ordinary paths (one trailing slash, percent-encoded letters)."""
    r = served.client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=served.infer)
    assert r.status_code == 200
    r = served.client.post("/v2/models/%63alc/infer/", json=infer_body([ROW]), headers=served.infer)
    assert r.status_code == 200
    assert served.client.get("/v2/health/live").status_code == 200
    assert served.client.get("/v2/models/calc?x=%2F", headers=served.infer).status_code == 200


# -- R2: a key named like another key's id inherits that key's policy.roles grant ------------------
# Expected: an API key is ``key:<name>`` and ``key:<key id>``; a grant to ``key:<id>`` (the id
# is printed at creation and is public) names that one key. A second key whose *name* is that id
# must not receive the grant, and a key store must refuse such a name.
def test_r2_key_named_like_another_keys_id_does_not_inherit_its_grant(tmp_path):
    from mltrust.errors import ConfigError
    from mltrust.serve import KeyStore

    repo = tmp_path / "repo"
    store = KeyStore(repo)
    _, owner = store.create("owner", [("unrelated", "metadata")])
    add_python_model(repo, "calc", "total", policy={"roles": {f"key:{owner.key_id}": ["infer"]}})
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        # straight into the table: the guard must hold at authentication too, not only at creation
        import sqlite3

        mimic = new_key(repo, "placeholder", [("unrelated", "metadata")])
        db = sqlite3.connect(repo / ".mltrust" / "serve.db")
        with db:
            db.execute("UPDATE api_keys SET name = ? WHERE name = 'placeholder'", (owner.key_id,))
        db.close()
        app.keys.refresh(max_age=0)
        r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=mimic)
        assert r.status_code == 403, r.text
        with pytest.raises(ConfigError):
            store.create(owner.key_id, [("unrelated", "metadata")])
    finally:
        client.close()


# -- R3: --metrics-public hands every identity name to anyone --------------------------------------
# Expected: ``--metrics-public`` opens the aggregate metrics for a scraper without credentials; it
# must not list who calls which model (API key ids and names, JWT subjects: often e-mail addresses)
# to any unauthenticated client. The per-identity series stay for callers with ``admin`` on ``*``
# when metrics are not public.
def test_r3_public_metrics_do_not_name_identities(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path), metrics_public=True)
    try:
        alice = new_key(repo, "alice@corp.example", [("calc", "infer")])
        app.keys.refresh(max_age=0)
        r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=alice)
        assert r.status_code == 200
        text = client.get("/metrics").text
        assert "mltrust_requests_total" in text
        assert "alice@corp.example" not in text
        assert 'identity="key:' not in text
    finally:
        client.close()


def test_r3_private_metrics_keep_identities_for_admins(tmp_path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path))
    try:
        alice = new_key(repo, "alice@corp.example", [("calc", "infer")])
        admin = new_key(repo, "root", [("*", "admin")])
        app.keys.refresh(max_age=0)
        assert (
            client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=alice).status_code
            == 200
        )
        text = client.get("/metrics", headers=admin).text
        assert "alice@corp.example" in text
    finally:
        client.close()


# -- R4: an authenticated caller floods denied and metadata requests without any limit -------------
# Expected: rate limits applied only at infer admission, so one valid key (any grant) could send
# unlimited 403/404/405, metadata, stats and index requests, each a durable (fsynced) audit entry:
# disk and CPU for free. Every authenticated request that does not reach infer admission is
# charged to a per-identity request bucket (``identity_rps``/``identity_burst``): 429 with
# Retry-After, audited, once it is empty.
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/ghost"),  # 403: no role on that name
        ("POST", "/v2/models/other/infer"),  # 403 on an infer route
        ("GET", "/v2/nothing"),  # 404
        ("DELETE", "/v2/models/calc"),  # 405
        ("GET", "/v2/models/calc"),  # 200 metadata
    ],
)
def test_r4_authenticated_requests_outside_infer_are_rate_limited(tmp_path, method, path):
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(
        repo, plugin_path=plugin_dir(tmp_path), identity_rps=1.0, identity_burst=5.0
    )
    try:
        meta = new_key(repo, "meta", [("calc", "metadata")])
        app.keys.refresh(max_age=0)
        codes = [client.request(method, path, headers=meta).status_code for _ in range(20)]
        assert 429 in codes, codes
        assert codes.count(429) >= 10, codes
        limited = [e for e in audit_entries(repo) if e["status"] == 429]
        assert limited and limited[-1]["identity"].startswith("key:")
        r = client.request(method, path, headers=meta)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    finally:
        client.close()


def test_r4_infer_is_still_limited_by_rows_only(tmp_path):
    """The request bucket does not charge infer twice: an infer within its own limit passes."""
    repo = tmp_path / "repo"
    add_python_model(repo, "calc", "total")
    client, app = make_server(
        repo, plugin_path=plugin_dir(tmp_path), identity_rps=1.0, identity_burst=5.0
    )
    try:
        key = new_key(repo, "alice", [("calc", "infer")])
        app.keys.refresh(max_age=0)
        for _ in range(5):
            r = client.post("/v2/models/calc/infer", json=infer_body([ROW]), headers=key)
            assert r.status_code == 200, r.text
        # the metadata bucket is separate from the rows bucket: not already empty
        assert client.get("/v2/models/calc", headers=key).status_code == 200
    finally:
        client.close()


# -- held: attacks that did not work (kept so that they keep not working) ------------------------
def test_held_route_words_as_model_names_case_and_params(tmp_path):
    """Models named like route words, case, parameters, NUL: the grant on the model
    named in the path decides, never a neighbouring segment."""
    repo = tmp_path / "repo"
    for name in ("ready", "versions", "infer", "secret"):
        add_python_model(repo, name, "total")
    client, app = make_server(repo, plugin_path=plugin_dir(tmp_path), identity_rps=1e9)
    try:
        key = new_key(repo, "r", [("ready", "infer")])
        app.keys.refresh(max_age=0)
        body = infer_body([ROW])
        expect = [
            ("GET", "/v2/models/ready/ready", 200),
            ("GET", "/v2/models/ready/versions/2/ready", 200),
            ("POST", "/v2/models/ready/infer", 200),
            ("GET", "/v2/models/versions/versions/2", 403),
            ("POST", "/v2/models/infer/infer", 403),
            ("POST", "/v2/models/READY/infer", 403),
            ("POST", "/v2/models/ready;x/infer", 403),
            ("POST", "/v2/models/secret/infer?model=ready", 403),
            ("POST", "/v2/models/ready%00/infer", 403),
            ("POST", "//v2/models/secret/infer", 404),
            ("HEAD", "/v2/models/secret", 405),
            ("OPTIONS", "/v2/models/secret/infer", 405),
        ]
        for method, path, status in expect:
            kwargs: dict[str, Any] = {"headers": key}
            if method == "POST":
                kwargs["json"] = body
            r = client.request(method, path, **kwargs)
            assert r.status_code == status, (method, path, r.status_code)
    finally:
        client.close()


# -- R5 (latent): check_table judged /metrics by its declared access only --------------------------
# Expected: ``Access.METRICS`` is public under ``--metrics-public``; a protected route on the same
# path would then share it with a public one (the mix rule 1 of _routes forbids), so the table
# must be refused whatever the flag.
def test_r5_metrics_route_cannot_share_its_path_with_a_protected_one():
    from mltrust.serve._routes import Access, Route, check_table

    with pytest.raises(ValueError, match="public and protected"):
        check_table(
            [
                Route("GET", "/metrics", Access.METRICS, None),
                Route("POST", "/metrics", Access.ADMIN, None),
            ]
        )
    with pytest.raises(ValueError, match="public and protected"):
        check_table(
            [
                Route("GET", "/metrics", Access.METRICS, None),
                Route("POST", "/metrics", Access.PUBLIC, None),
            ]
        )
