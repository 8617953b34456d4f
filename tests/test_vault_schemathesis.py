"""Property-based API testing with schemathesis against the vault's OpenAPI document: no 5xx,
every response matches the document, and every protected operation refuses a missing token."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import ignored_auth  # noqa: E402

from mltrust.store._audit import AuditLog, load_audit_key, verify_chain  # noqa: E402
from mltrust.vault._app import VaultApp, VaultAppConfig  # noqa: E402
from mltrust.vault._openapi import openapi_document  # noqa: E402
from mltrust.vault._service import NotFound, Vault  # noqa: E402
from mltrust.vault._state import init_state  # noqa: E402
from mltrust.vault._tokens import TokenStore  # noqa: E402

schema = schemathesis.openapi.from_dict(openapi_document())
KEY = b"s" * 32


@pytest.fixture(scope="module")
def api():
    tmp = Path(tempfile.mkdtemp(prefix="mltrust-vault-st-"))
    storage, _ = init_state(tmp / "state", None, kdf_log_n=14)
    vault = Vault(storage)
    vault.unseal(KEY)
    key = load_audit_key(tmp / "keys" / "audit.key", create=True)
    anchor = tmp / "keys" / "anchor.json"
    audit = AuditLog(tmp / "state" / ".mltrust" / "audit.db", key=key, anchor=anchor, sync="normal")
    tokens = TokenStore(storage, lambda: vault.row_mac)
    app = VaultApp(vault, tokens, audit, config=VaultAppConfig(auth_failure_rps=1e9))
    token, _ = tokens.create("*", "admin")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app.app, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    client = httpx.Client(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=30)
    yield client, {"Authorization": f"Bearer {token}"}, vault
    client.close()
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()
    audit.close()
    report = verify_chain(tmp / "state" / ".mltrust" / "audit.db", key=key, anchor=anchor)
    storage.close()
    shutil.rmtree(tmp, ignore_errors=True)
    assert report.ok and report.entries > 0


def _reset(vault: Vault) -> None:
    if vault.sealed:
        vault.unseal(KEY)
    try:
        vault.get_env("st")
    except NotFound:
        vault.create_env("st")
    try:
        vault.get_var("st", "A")
    except NotFound:
        try:
            vault.delete_var("st", "A")
        except NotFound:
            pass
        vault.create_var("st", "A", "value")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_5xx(api, case):
    client, headers, vault = api
    _reset(vault)
    kwargs = case.as_transport_kwargs(base_url=str(client.base_url), headers=headers)
    kwargs.pop("base_url", None)
    method = kwargs.pop("method")
    url = kwargs.pop("url")
    response = client.request(method, url, **kwargs)
    assert response.status_code < 500 or response.json() == {"error": "sealed"}, response.text
    case.validate_response(response, excluded_checks=[ignored_auth])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        (m.upper(), p)
        for p, ops in openapi_document()["paths"].items()
        for m, op in ops.items()
        if op.get("security") != []
    ],
)
def test_every_protected_operation_needs_credentials(api, method, path):
    client, _, vault = api
    _reset(vault)
    url = path.replace("{env_id}", "st").replace("{var_id}", "A")
    r = client.request(method, url, json={"versions": [1], "name": "B", "value": "v"})
    assert r.status_code == 401 and r.json() == {"error": "unauthorized"}
