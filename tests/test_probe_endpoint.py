"""``mltrust check --target URL``: compliance probes of live inference endpoints.

Two real servers on loopback:

- ``mltrust serve`` over TLS (a self-signed certificate given with ``--cacert``), API keys,
  a per-identity rate limit and extraction blocking: every control passes, exit 0;
- an MLServer-like Starlette app started here, deliberately open: no authentication, model
  unload without credentials, a traceback and its version in error bodies, no rate limit,
  plain HTTP. It fails exactly the controls it should, exit 1.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from _net_helpers import free_port, self_signed_cert, start_serve
from mltrust.cli._main import main
from test_serve_support import add_python_model, new_key, plugin_dir

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[1]

ALL = {
    "tls",
    "auth-inference",
    "auth-metadata",
    "management-auth",
    "input-validation",
    "error-leaks",
    "rate-limit",
    "extraction-throttled",
}


# -- a deliberately open, MLServer-like endpoint -----------------------------------------------
def open_app():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    loaded = {"iris": True}
    meta = {
        "name": "iris",
        "versions": ["1"],
        "platform": "sklearn",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
    }

    async def live(request: Request):
        return JSONResponse({"live": True})

    async def server_meta(request: Request):
        return JSONResponse({"name": "mlserver", "version": "1.3.5", "extensions": []})

    async def index(request: Request):
        return JSONResponse(
            [{"name": n, "version": "1", "state": "READY" if ok else "UNAVAILABLE"}
             for n, ok in loaded.items()]
        )  # fmt: skip

    async def model(request: Request):
        if request.path_params["name"] not in loaded:
            return JSONResponse({"error": "model not found"}, status_code=404)
        return JSONResponse(meta)

    async def ready(request: Request):
        return JSONResponse({"ready": loaded.get(request.path_params["name"], False)})

    async def infer(request: Request):
        try:
            doc = json.loads(await request.body())
            tensor = doc["inputs"][0]
            x = np.asarray(tensor["data"], dtype={"FP32": np.float32}[tensor["datatype"]])
            x = x.reshape(tensor["shape"])
            return JSONResponse(
                {"model_name": "iris", "outputs": [
                    {"name": "y", "datatype": "FP32", "shape": [x.shape[0]],
                     "data": x.sum(axis=1).tolist()}]}
            )  # fmt: skip
        except Exception:  # the leaks this server is made to have (the request's headers too)
            echo = request.headers.get("authorization", "")
            return PlainTextResponse(f"{traceback.format_exc()}\n{echo}", status_code=500)

    async def manage(request: Request):
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ("load", "unload"):
            return PlainTextResponse("Not Found", status_code=404)
        if name not in loaded:
            return JSONResponse({"error": f"Model {name} not found"}, status_code=400)
        loaded[name] = action == "load"
        return JSONResponse({})

    return Starlette(
        routes=[
            Route("/v2/health/live", live),
            Route("/v2", server_meta),
            Route("/v2/repository/index", index, methods=["POST"]),
            Route("/v2/repository/models/{name}/{action}", manage, methods=["POST"]),
            Route("/v2/models/{name}", model),
            Route("/v2/models/{name}/ready", ready),
            Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def open_server():
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(open_app(), host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


# -- mltrust serve over TLS ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def secure_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("secure")
    cert, key = self_signed_cert(tmp)
    repo = tmp / "repo"
    add_python_model(
        repo,
        "calc",
        "total",
        inputs=[{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        policy={"extraction": {"mode": "block", "min_samples": 20}},
    )
    token = new_key(repo, "prober", [("calc", "infer")])["Authorization"].split()[1]
    meta_only = new_key(repo, "looker", [("calc", "metadata")])["Authorization"]
    port = free_port()
    proc = start_serve(
        repo, port, "--plugin-path", str(plugin_dir(tmp)), "--identity-rps", "5",
        "--identity-burst", "10", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
        env={"MLTRUST_AUDIT_KEY": str(tmp / "audit-keys" / "audit.key")}, cafile=cert,
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    yield url, token, cert, meta_only
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def _run(capsys, *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "-f", "json"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    return code, json.loads(captured.out)


def _results(doc: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for c in doc["controls"]}


def test_mltrust_serve_passes_every_control(secure_server, capsys):
    url, token, cert, _ = secure_server
    code, doc = _run(capsys, "--target", url, "--token", token, "--cacert", str(cert))
    results = _results(doc)
    assert results == dict.fromkeys(ALL, "pass"), json.dumps(doc["controls"], indent=1)
    assert code == 0
    assert doc["verdict"] == "pass" and doc["subject"]["kind"] == "endpoint"
    assert doc["evidence"]["probe"]["model"] == "calc"
    assert token not in json.dumps(doc)  # the credential is never reported
    tls = doc["evidence"]["controls"]["tls"]
    assert tls["version"] in ("TLSv1.2", "TLSv1.3") and tls["verified"] is True


def test_open_mlserver_like_endpoint_fails_the_right_controls(open_server, capsys):
    # a token the open server ignores but echoes in its error bodies: never in the report
    token = "probe-secret-7f3a9c"
    code, doc = _run(
        capsys,
        "--target",
        open_server,
        "--token",
        token,
        "--burst",
        "20",
        "--extraction-queries",
        "30",
    )
    assert token not in json.dumps(doc)
    results = _results(doc)
    assert code == 1 and doc["verdict"] == "fail"
    assert results == dict.fromkeys(ALL, "fail"), json.dumps(doc["controls"], indent=1)
    by_id = {c["id"]: c for c in doc["controls"]}
    assert "plain HTTP" in by_id["tls"]["message"]
    assert "unload" in by_id["management-auth"]["message"]
    assert "server errors" in by_id["input-validation"]["message"]
    leaks = "\n".join(by_id["error-leaks"]["details"])
    assert "Python traceback" in leaks and "version 1.3.5" in leaks
    assert "no 429" in by_id["rate-limit"]["message"]


def test_controls_option_runs_only_those(open_server, capsys):
    code, doc = _run(
        capsys, "--target", open_server, "--controls", "auth-metadata,rate-limit",
        "--model", "nope",
    )  # fmt: skip
    assert set(_results(doc)) == {"auth-metadata", "rate-limit"}
    assert code == 1  # server metadata and the index are open


def test_wrong_credentials_are_a_setup_error(secure_server, capsys):
    url, _, cert, _ = secure_server
    code = main(["check", "--target", url, "--token", "mlt_wrong", "--cacert", str(cert)])
    assert code == 2
    assert "refused the credentials" in capsys.readouterr().err


def test_unverified_certificate_is_a_setup_error_unless_insecure(secure_server, capsys):
    url, token, _, _ = secure_server
    assert main(["check", "--target", url, "--token", token]) == 2
    assert "--cacert" in capsys.readouterr().err
    code, doc = _run(
        capsys,
        "--target",
        url,
        "--target-header",
        f"Authorization: Bearer {token}",
        "--insecure-tls",
        "--controls",
        "tls,auth-inference",
    )
    assert code == 1
    assert _results(doc) == {"tls": "fail", "auth-inference": "pass"}
    assert "certificate does not verify" in doc["controls"][0]["message"]


def test_setup_errors(capsys, tmp_path):
    assert main(["check", "--target", "ftp://example.invalid/"]) == 2
    assert main(["check", "--target", f"http://127.0.0.1:{free_port()}"]) == 2
    assert main(["check", "--target", "http://127.0.0.1:1", "--controls", "nope"]) == 2
    assert main(["check", str(tmp_path), "--target", "http://127.0.0.1:1"]) == 2
    assert main(["check", str(tmp_path), "--token", "x"]) == 2
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert "unknown control" in err and "not both" in err and "only go with --target" in err


@pytest.mark.parametrize("fmt", ["sarif", "junit", "markdown", "html", "text"])
def test_report_formats(open_server, capsys, fmt):
    args = ["check", "--target", open_server, "--controls", "management-auth,error-leaks"]
    code = main([*args, "-f", fmt])
    out = capsys.readouterr().out
    assert code == 1
    if fmt == "sarif":
        schema = ROOT.parent / "shared" / "data" / "schemas" / "sarif-schema-2.1.0.json"
        if schema.is_file():  # the SARIF 2.1.0 schema, where the shared data is checked out
            import jsonschema

            doc = json.loads(schema.read_text(encoding="utf-8"))
            errors = list(
                jsonschema.validators.validator_for(doc)(doc).iter_errors(json.loads(out))
            )
            assert not errors, errors[0].message
        run = json.loads(out)["runs"][0]
        failed = {r["ruleId"] for r in run["results"] if r["level"] != "none"}
        assert {"management-auth", "error-leaks"} <= failed
        assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"][
            "uri"
        ].startswith("http://127.0.0.1")
    elif fmt == "junit":
        suite = ET.fromstring(out).find("testsuite")
        assert suite is not None and int(suite.get("failures", "0")) == 2
    else:
        assert "management-auth" in out and "error-leaks" in out


# -- a hostile endpoint: the probe stays bounded and reports, never crashes ---------------------
def hostile_app():
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    async def live(request: Request):
        return JSONResponse({"live": True})

    async def deep_index(request: Request):
        return Response(b"[" * 100_000 + b"]" * 100_000, media_type="application/json")

    async def huge_meta(request: Request):
        return JSONResponse(
            {"name": "m", "inputs": [{"name": "x", "datatype": "FP32", "shape": [10**9, 10**9]}]}
        )

    async def endless(request: Request):
        async def much():  # 50 MiB that the probe must not read
            for _ in range(800):
                yield b"x" * 65536
                await asyncio.sleep(0)

        return StreamingResponse(much(), status_code=500)

    return Starlette(
        routes=[
            Route("/v2/health/live", live),
            Route("/v2/repository/index", deep_index, methods=["POST"]),
            Route("/v2/models/{name}", huge_meta),
            Route("/v2/models/{name}/infer", endless, methods=["POST"]),
        ]
    )


def test_hostile_endpoint_deep_json_huge_shapes_huge_bodies(capsys):
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            hostile_app(), host="127.0.0.1", port=port, log_level="critical", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        started = time.monotonic()
        code, doc = _run(
            capsys,
            "--target",
            f"http://127.0.0.1:{port}",
            "--model", "m", "--burst", "3", "--extraction-queries", "3",
        )  # fmt: skip
        assert time.monotonic() - started < 120
        results = _results(doc)
        assert code == 1
        # an answer of endless 500s: validation fails, nothing hangs or blows up
        assert results["input-validation"] == "fail"
        assert results["rate-limit"] == "fail"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_credentials_that_do_not_reach_inference_leave_validation_unevaluated(
    secure_server, capsys
):
    # a key without the infer role: every malformed request is 403 before validation, which
    # must not count as "answered 4xx"
    url, _, cert, meta_only = secure_server
    code, doc = _run(
        capsys,
        "--target",
        url,
        "--target-header",
        f"Authorization: {meta_only}",
        "--cacert",
        str(cert),
        "--controls",
        "input-validation",
    )
    assert code == 0
    (control,) = doc["controls"]
    assert control["status"] == "skip" and "not evaluated" in control["message"]
