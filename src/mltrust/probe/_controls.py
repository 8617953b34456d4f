"""The probes behind ``mltrust check --target URL`` (see :mod:`mltrust.probe`).

Decisions:

- **Only the URL given.** Every request goes to the target's scheme, host and port, under its
  path; redirects are not followed (a ``3xx`` is recorded like any other answer). The TLS
  control opens its own connections to the same host and port.
- **Nothing destructive.** Management endpoints are probed with a random model name that no
  server holds, and their answer is compared with the answer to a route that cannot exist: a
  ``401``/``403`` passes, an answer that equals the non-existent route's (the endpoint is not
  there) passes, anything else means the endpoint was reached without credentials.
- **Credentials are never recorded.** Evidence names the requests and the answers' status,
  a few headers and at most 300 characters of a body, never the headers the user gave.
- **Not applicable is said, not assumed.** A control that cannot be reached (inference needs
  credentials that were not given, no model found) is reported ``skip`` with the reason; it
  does not fail the verdict and it does not pass silently either (the reports list it).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import random
import re
import secrets
import socket
import ssl
import time
import urllib.parse
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mltrust.config import DEFAULT_LIMITS
from mltrust.errors import ConfigError

__all__ = ["CONTROLS", "ProbeOptions", "probe_report", "run_probes"]

_BODY_CHARS = 300
_REFUSED = (401, 403)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    #: ``https://host:port/prefix`` of the endpoint (the Open Inference Protocol under it).
    target: str
    #: Headers that authenticate (``Authorization: Bearer ...``); never recorded.
    headers: tuple[tuple[str, str], ...] = ()
    #: The model to probe [default: the first ready model of the repository index].
    model: str | None = None
    #: Control ids to run [default: all].
    controls: tuple[str, ...] = ()
    #: Talk to an endpoint whose certificate does not verify (the ``tls`` control still fails).
    insecure_tls: bool = False
    #: CA bundle that verifies the endpoint's certificate.
    cacert: Path | None = None
    #: Identical requests in the rate-limit burst.
    burst: int = 50
    #: Distinct queries in the extraction burst.
    extraction_queries: int = 200
    timeout_s: float = 10.0
    #: Longest ``Retry-After`` honoured between probes (seconds).
    max_wait_s: float = 10.0

    def __post_init__(self) -> None:
        if self.burst < 2 or self.extraction_queries < 2:
            raise ConfigError("bursts need at least 2 requests")
        if not self.timeout_s > 0 or self.max_wait_s < 0:
            raise ConfigError("timeouts must be positive")
        for name, value in self.headers:
            if not _HEADER_NAME.match(name) or "\n" in value or "\r" in value:
                raise ConfigError(f"bad header {name!r} (NAME: VALUE)")
        unknown = [c for c in self.controls if c not in CONTROLS]
        if unknown:
            raise ConfigError(
                f"unknown control(s) {', '.join(unknown)}; known: {', '.join(CONTROLS)}"
            )


@dataclass(slots=True)
class Answer:
    """One request and what came back (status 0: no answer; ``error`` says why)."""

    label: str
    method: str
    path: str
    authenticated: bool
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str = ""
    #: how the request was authenticated, in words
    who: str = ""

    def line(self) -> str:
        who = self.who or ("with credentials" if self.authenticated else "without credentials")
        got = str(self.status) if self.status else f"no answer ({self.error})"
        return f"{self.label}: {self.method} {self.path} {who} -> {got}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "request": f"{self.method} {self.path}",
            "authenticated": self.authenticated,
            "status": self.status,
        }
        if self.error:
            out["error"] = self.error
        if self.status >= 400:
            out["body"] = self.body[:_BODY_CHARS]
        return out


@dataclass(slots=True)
class Outcome:
    status: str  # pass | fail | skip
    message: str
    details: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


class _Session:
    """The HTTP side: one client to the target, every answer kept for the leak control."""

    def __init__(self, opts: ProbeOptions) -> None:
        self.opts = opts
        parsed = urllib.parse.urlsplit(opts.target)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"--target must be an http:// or https:// URL, not {opts.target!r}")
        if parsed.query or parsed.fragment or parsed.username or parsed.password:
            raise ConfigError("--target takes no query, fragment or user info")
        self.scheme = parsed.scheme
        self.host = parsed.hostname
        self.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.prefix = parsed.path.rstrip("/")
        self.base = f"{parsed.scheme}://{parsed.netloc}"
        verify: Any = False
        if self.scheme == "https" and not opts.insecure_tls:
            verify = verify_context(opts.cacert)
        self.client = httpx.Client(
            base_url=self.base,
            verify=verify,
            follow_redirects=False,
            timeout=opts.timeout_s,
            trust_env=False,  # no proxy from the environment: only the target is contacted
        )
        self.auth = dict(opts.headers)
        #: the credential values (and their token part), removed from every recorded answer
        self._secrets = sorted(
            {p for v in self.auth.values() for p in (v, v.split()[-1] if v.split() else v)} - {""},
            key=len,
            reverse=True,
        )
        self.answers: list[Answer] = []

    def close(self) -> None:
        self.client.close()

    def send(
        self,
        label: str,
        method: str,
        path: str,
        *,
        auth: bool = False,
        body: Any = None,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        full = self.prefix + path
        h = dict(self.auth) if auth else {}
        h.update(headers or {})
        names = {k.lower() for k in headers or {}}
        bogus = not (auth and self.auth) and bool(names & {"authorization", "x-api-key"})
        who = "with a bogus credential" if bogus else ""
        content = raw
        if body is not None:
            content = json.dumps(body).encode()
            h.setdefault("content-type", "application/json")
        try:
            status, got, text = self._exchange(method, full, content, h)
            for secret in self._secrets:  # a server that echoes the request: never reported
                text = text.replace(secret, "[credential]")
                got = {k: v.replace(secret, "[credential]") for k, v in got.items()}
            answer = Answer(
                label, method, full, bool(auth and self.auth), status, got, text, who=who
            )
        except httpx.TimeoutException:
            answer = Answer(
                label, method, full, bool(auth and self.auth), 0, error="timed out", who=who
            )
        except httpx.TransportError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            answer = Answer(
                label, method, full, bool(auth and self.auth), 0, error=reason[:200], who=who
            )
        self.answers.append(answer)
        return answer

    def _exchange(
        self, method: str, path: str, content: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], str]:
        """One request: at most ``max_probe_answer_bytes`` bytes of the body are read, within one
        overall deadline (a server that drips its answer is cut off like one that hangs)."""
        deadline = time.monotonic() + 2 * self.opts.timeout_s
        with self.client.stream(method, path, content=content, headers=headers) as r:
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():  # decoded (gzip): one chunk expands boundedly
                chunks.append(chunk)
                size += len(chunk)
                if size >= DEFAULT_LIMITS.max_probe_answer_bytes:
                    break
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("the answer did not end in time")
            got = {k.lower(): v[:512] for k, v in list(r.headers.items())[:100]}
            raw = b"".join(chunks)[: DEFAULT_LIMITS.max_probe_answer_bytes]
            return r.status_code, got, raw.decode("utf-8", "replace")

    def wait_retry_after(self, answer: Answer) -> float:
        """Sleep for the answer's ``Retry-After`` (at most ``max_wait_s``); the seconds slept."""
        try:
            wait = float(answer.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        wait = min(max(wait, 0.0), self.opts.max_wait_s)
        time.sleep(wait)
        return wait


def verify_context(cacert: Path | None) -> ssl.SSLContext:
    """A verifying client context (TLS 1.2 or newer): ``cacert`` or the system's CAs."""
    try:
        ctx = ssl.create_default_context(cafile=str(cacert) if cacert else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the CA bundle {cacert}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


# -- the context every control shares ----------------------------------------------------------
@dataclass(slots=True)
class _Context:
    session: _Session
    model: str | None = None
    model_source: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: inference reachable: with the user's credentials, or without any (an open endpoint)
    infer_auth: bool | None = None
    unauth_infer: Answer | None = None
    server_metadata: Answer | None = None
    retry_after: Answer | None = None

    def valid_body(self, rng: random.Random | None = None) -> dict[str, Any]:
        """A well-formed request for the model (random values when ``rng`` is given)."""
        specs = self.inputs or [{"name": "input-0", "datatype": "FP32", "shape": [-1, 4]}]
        out = []
        for spec in specs:
            dims = spec.get("shape")
            dims = dims[:8] if isinstance(dims, list) else [1]
            shape = [
                d if isinstance(d, int) and not isinstance(d, bool) and d > 0 else 1 for d in dims
            ]
            shape = shape or [1]
            if (
                math.prod(shape) > DEFAULT_LIMITS.max_probe_request_elements
            ):  # metadata from the endpoint: never trusted
                shape = [1] * len(shape)
            size = math.prod(shape)
            dtype = str(spec.get("datatype", "FP32"))[:16]
            if dtype == "BYTES":
                data: list[Any] = ["probe"] * size
            elif dtype == "BOOL":
                data = [False] * size
            elif dtype.startswith(("INT", "UINT")):
                data = [rng.randrange(5) if rng is not None else 0 for _ in range(size)]
            else:
                data = [rng.random() if rng is not None else 0.5 for _ in range(size)]
            out.append(
                {
                    "name": str(spec.get("name", "input-0"))[:256],
                    "shape": shape,
                    "datatype": dtype,
                    "data": data,
                }
            )
        return {"inputs": out}

    def infer_path(self) -> str:
        return f"/v2/models/{urllib.parse.quote(str(self.model), safe='')}/infer"


def _json(answer: Answer) -> Any:
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):
        return None


def _setup(session: _Session, opts: ProbeOptions) -> _Context:
    ctx = _Context(session)
    live = session.send("liveness", "GET", "/v2/health/live")
    if live.status == 0:
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in live.error or "certificate" in live.error.lower():
            hint = " (give --cacert FILE, or --insecure-tls to probe anyway)"
        raise ConfigError(f"cannot reach {opts.target}: {live.error}{hint}")
    # which model: --model, else the first ready one the index lists (credentials first)
    if opts.model:
        ctx.model, ctx.model_source = opts.model, "--model"
    for auth in ([True] if session.auth else []) + [False]:
        if ctx.model:
            break
        index = session.send("discover models", "POST", "/v2/repository/index", auth=auth, body={})
        doc = _json(index) if index.status == 200 else None
        if isinstance(doc, list):
            ready = [m for m in doc if isinstance(m, dict) and isinstance(m.get("name"), str)]
            ready.sort(key=lambda m: str(m.get("state", "")).upper() != "READY")
            if ready:
                ctx.model = str(ready[0]["name"])[:256]
                ctx.model_source = "repository index" + (" (authenticated)" if auth else "")
    if session.auth:
        check = session.send("credentials", "GET", "/v2", auth=True)
        if check.status == 401:  # (403 can be a valid identity without a role on /v2)
            raise ConfigError(f"{opts.target} refused the credentials given ({check.status})")
    if ctx.model:
        name = urllib.parse.quote(ctx.model, safe="")
        meta = session.send("model metadata", "GET", f"/v2/models/{name}", auth=True)
        doc = _json(meta) if meta.status == 200 else None
        if isinstance(doc, dict) and isinstance(doc.get("inputs"), list):
            ctx.inputs = [i for i in doc["inputs"] if isinstance(i, dict)][:16]
        ctx.unauth_infer = session.send(
            "inference without credentials", "POST", ctx.infer_path(), body=ctx.valid_body()
        )
        if session.auth:
            ctx.infer_auth = True
        elif ctx.unauth_infer.status not in (*_REFUSED, 429, 0):
            ctx.infer_auth = False  # open: the request got past authentication without any
    return ctx


# -- controls ------------------------------------------------------------------------------------
def _tls(ctx: _Context) -> Outcome:
    s = ctx.session
    if s.scheme != "https":
        return Outcome(
            "fail",
            "plain HTTP: credentials, inputs and predictions travel in clear",
            [f"scheme {s.scheme}"],
            {"scheme": s.scheme},
        )
    details: list[str] = []
    data: dict[str, Any] = {"scheme": "https"}
    problems: list[str] = []
    try:
        context = verify_context(s.opts.cacert)
        with (
            socket.create_connection((s.host, s.port), timeout=s.opts.timeout_s) as raw,
            context.wrap_socket(raw, server_hostname=s.host) as tls,
        ):
            data.update(version=tls.version(), cipher=(tls.cipher() or ("",))[0], verified=True)
        details.append(
            f"handshake {data['version']} {data['cipher']}, certificate verified against "
            + (str(s.opts.cacert) if s.opts.cacert else "the system CAs")
        )
    except ssl.SSLCertVerificationError as exc:
        data["verified"] = False
        problems.append(f"certificate does not verify: {exc.verify_message}")
    except (OSError, ssl.SSLError) as exc:
        problems.append(f"no TLS 1.2+ handshake: {str(exc)[:200]}")
    # a TLS 1.0/1.1 handshake should be refused (this client's OpenSSL may also refuse it)
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    legacy.check_hostname = False
    legacy.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # the versions are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            legacy.minimum_version = ssl.TLSVersion.TLSv1
            legacy.maximum_version = ssl.TLSVersion.TLSv1_1
        legacy.set_ciphers("DEFAULT:@SECLEVEL=0")
        with (
            socket.create_connection((s.host, s.port), timeout=s.opts.timeout_s) as raw,
            legacy.wrap_socket(raw, server_hostname=s.host) as tls,
        ):
            problems.append(f"accepts {tls.version()}")
            data["legacy_accepted"] = tls.version()
    except (OSError, ssl.SSLError, ValueError) as exc:
        details.append(f"TLS 1.0/1.1 handshake refused ({str(exc)[:120]})")
        data["legacy_accepted"] = None
    if problems:
        return Outcome("fail", "; ".join(problems), details + problems, data)
    return Outcome("pass", f"{data['version']}, certificate verified", details, data)


def _no_model(ctx: _Context) -> Outcome | None:
    if ctx.model is None:
        return Outcome(
            "skip",
            "no model to probe: the repository index listed none (give --model NAME)",
        )
    return None


def _refusal_outcome(answers: list[Answer], what: str, ok: tuple[int, ...] = _REFUSED) -> Outcome:
    lines = [a.line() for a in answers]
    bad = [a for a in answers if a.status not in ok and a.status != 429]
    data = {"requests": [a.to_dict() for a in answers]}
    if bad:
        return Outcome(
            "fail",
            f"{what} answered without valid credentials: "
            + ", ".join(f"{a.label} -> {a.status or a.error}" for a in bad),
            lines,
            data,
        )
    return Outcome("pass", f"{what} refused without valid credentials", lines, data)


def _auth_inference(ctx: _Context) -> Outcome:
    if (skip := _no_model(ctx)) is not None:
        return skip
    s = ctx.session
    body = ctx.valid_body()
    answers = [a for a in [ctx.unauth_infer] if a is not None]
    for label, headers in (
        ("inference with a bogus bearer token", {"Authorization": "Bearer mltrust-probe-invalid"}),
        ("inference with a bogus API key", {"X-API-Key": "mltrust-probe-invalid"}),
    ):
        answers.append(s.send(label, "POST", ctx.infer_path(), body=body, headers=headers))
    return _refusal_outcome(answers, "inference")


def _auth_metadata(ctx: _Context) -> Outcome:
    s = ctx.session
    answers = [s.send("server metadata", "GET", "/v2")]
    ctx.server_metadata = answers[0]
    if ctx.model is not None:
        name = urllib.parse.quote(ctx.model, safe="")
        answers.append(s.send("model metadata", "GET", f"/v2/models/{name}"))
        answers.append(s.send("model readiness", "GET", f"/v2/models/{name}/ready"))
    index = s.send("repository index", "POST", "/v2/repository/index", body={})
    answers.append(index)
    out = _refusal_outcome(answers, "metadata", ok=(*_REFUSED, 404, 405))
    if ctx.model is None:
        out.details.append("no model known: model metadata not probed")
    return out


def _management(ctx: _Context) -> Outcome:
    s = ctx.session
    ghost = f"mltrust-probe-{secrets.token_hex(6)}"
    base = f"/v2/repository/models/{ghost}"
    baseline = s.send("route that cannot exist", "POST", f"{base}/mltrust-probe-no-such-action")
    answers = [
        s.send(f"{action} without credentials", "POST", f"{base}/{action}", body={})
        for action in ("load", "unload")
    ]
    lines = [baseline.line(), *(a.line() for a in answers)]
    reached = []
    for a in answers:
        if a.status in (*_REFUSED, 429):
            continue
        absent = a.status in (404, 405) and (a.status, a.body) == (baseline.status, baseline.body)
        if absent:
            lines.append(f"{a.label}: same answer as a route that cannot exist (no such endpoint)")
            continue
        reached.append(a)
    data = {"model_name_used": ghost, "requests": [a.to_dict() for a in (baseline, *answers)]}
    if reached:
        return Outcome(
            "fail",
            "management endpoint reached without credentials: "
            + ", ".join(f"{a.label.split()[0]} -> {a.status or a.error}" for a in reached),
            lines,
            data,
        )
    return Outcome("pass", "model load/unload refused or absent without credentials", lines, data)


def _malformed(ctx: _Context) -> list[tuple[str, bytes]]:
    valid = ctx.valid_body()
    first = valid["inputs"][0]
    name = first["name"]

    def body(**changes: Any) -> bytes:
        return json.dumps({"inputs": [{**first, **changes}]}).encode()

    deep = "[" * 5000 + "]" * 5000
    return [
        ("truncated JSON", b'{"inputs": [{"name": '),
        ("shape and data disagree", body(shape=[2, 4], data=[1.0])),
        ("unknown datatype", body(datatype="FP99")),
        ("strings in a float tensor", body(datatype="FP32", data=["a"] * len(first["data"]))),
        ("huge shape", body(shape=[2**62, 2**62], data=[])),
        ("negative shape", body(shape=[-5, 4], data=[])),
        ("no inputs", b'{"inputs": []}'),
        ("inputs not a list", json.dumps({"inputs": {"name": name}}).encode()),
        (
            "deeply nested data",
            b'{"inputs": [{"name": '
            + json.dumps(name).encode()
            + b', "shape": [1], "datatype": "FP32", "data": '
            + deep.encode()
            + b"}]}",
        ),
    ]


def _reachable(ctx: _Context) -> tuple[bool, str]:
    if ctx.model is None:
        return False, "no model to probe (give --model NAME)"
    if ctx.infer_auth is None:
        return False, (
            "inference needs credentials and none were given (--token or --target-header)"
        )
    return True, ""


def _input_validation(ctx: _Context) -> Outcome:
    ok, why = _reachable(ctx)
    if not ok:
        return Outcome("skip", why)
    s = ctx.session
    answers = []
    for label, raw in _malformed(ctx):
        a = s.send(
            label,
            "POST",
            ctx.infer_path(),
            auth=bool(ctx.infer_auth),
            raw=raw,
            headers={"content-type": "application/json"},
        )
        if a.status == 429:
            s.wait_retry_after(a)
            a = s.send(
                label,
                "POST",
                ctx.infer_path(),
                auth=bool(ctx.infer_auth),
                raw=raw,
                headers={"content-type": "application/json"},
            )
        answers.append(a)
    lines = [a.line() for a in answers]
    data = {"requests": [a.to_dict() for a in answers]}
    server_errors = [a for a in answers if a.status >= 500 or a.status == 0]
    accepted = [a for a in answers if 200 <= a.status < 300]
    if server_errors or accepted:
        parts = []
        if server_errors:
            parts.append(
                "server errors on "
                + ", ".join(f"{a.label} ({a.status or a.error})" for a in server_errors)
            )
        if accepted:
            parts.append("accepted " + ", ".join(a.label for a in accepted))
        return Outcome("fail", "malformed tensors: " + "; ".join(parts), lines, data)
    # refused before validation (rate limit, or the credentials do not reach inference)
    stopped = [a for a in answers if a.status in (*_REFUSED, 429)]
    if len(stopped) == len(answers):
        return Outcome(
            "skip",
            "every malformed request was refused before validation (401/403/429): not evaluated",
            lines,
            data,
        )
    evaluated = len(answers) - len(stopped)
    message = f"{evaluated} malformed requests answered 4xx"
    if stopped:
        message += f" ({len(stopped)} refused before validation: not evaluated)"
    return Outcome("pass", message, lines, data)


_TRACE = [
    (re.compile(r"Traceback \(most recent call last\)"), "Python traceback"),
    (re.compile(r'File "[^"]+", line \d+'), "source file and line"),
    (re.compile(r"\bat [\w$.]+\([\w$]+\.(?:java|kt|scala):\d+\)"), "JVM stack frame"),
    (re.compile(r"\bat .+\((?:/|[A-Za-z]:\\).+:\d+:\d+\)"), "JavaScript stack frame"),
    (re.compile(r"goroutine \d+ \["), "Go stack"),
    (re.compile(r"\b[A-Z]\w*(?:Error|Exception)\b"), "exception class name"),
    (re.compile(r"(?:/usr/lib|/usr/local/lib|site-packages|dist-packages)/"), "server file path"),
]
_VERSION = re.compile(
    r"\b(?:python|cpython|uvicorn|gunicorn|hypercorn|werkzeug|starlette|fastapi|flask|django|"
    r"mlserver|triton|torchserve|tensorflow|tfserving|kserve|seldon|bentoml|nginx|apache|envoy|"
    r"openresty|jetty|tomcat)[/ ]v?\d+(?:\.\d+)+",
    re.IGNORECASE,
)


def _error_leaks(ctx: _Context) -> Outcome:
    s = ctx.session
    # a request no handler expects, so that at least one error body is there to read
    s.send("unknown route", "GET", f"/v2/mltrust-probe-{secrets.token_hex(4)}")
    found: list[str] = []
    headers_seen: set[str] = set()
    for a in s.answers:
        for key in ("server", "x-powered-by", "x-aspnet-version", "x-runtime"):
            value = a.headers.get(key)
            if value is None:
                continue
            headers_seen.add(f"{key}: {value}")
            if key != "server" or re.search(r"\d+\.\d+", value):
                found.append(f"{a.label}: header {key}: {value[:80]}")
        if a.status >= 400:
            for pattern, what in _TRACE:
                m = pattern.search(a.body)
                if m:
                    found.append(f"{a.label} ({a.status}): {what}: {m.group(0)[:80]!r}")
        if a.status >= 400 or not a.authenticated:
            m = _VERSION.search(a.body)
            if m:
                found.append(f"{a.label} ({a.status}): software version {m.group(0)!r}")
    meta = ctx.server_metadata or s.send("server metadata", "GET", "/v2")
    doc = _json(meta) if 200 <= meta.status < 300 else None
    if isinstance(doc, dict) and doc.get("version"):
        found.append(
            f"server metadata without credentials: {doc.get('name', '?')} version "
            f"{str(doc['version'])[:40]}"
        )
    found = list(dict.fromkeys(found))
    data = {
        "responses_read": len(s.answers),
        "headers": sorted(headers_seen),
        "leaks": found,
    }
    details = [f"{len(s.answers)} answers read", *sorted(headers_seen), *found]
    if found:
        return Outcome("fail", f"{len(found)} leak(s): {found[0]}", details, data)
    return Outcome("pass", f"no stack trace or version in {len(s.answers)} answers", details, data)


def _burst(
    ctx: _Context, label: str, count: int, body_of: Callable[[int], dict[str, Any]]
) -> tuple[list[Answer], Answer | None]:
    s = ctx.session
    answers: list[Answer] = []
    for i in range(count):
        a = s.send(
            f"{label} #{i + 1}",
            "POST",
            ctx.infer_path(),
            auth=bool(ctx.infer_auth),
            body=body_of(i),
        )
        answers.append(a)
        if a.status == 429:
            return answers, a
        if a.status == 0:
            break
    return answers, None


def _summary(answers: list[Answer]) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in answers:
        key = str(a.status) if a.status else "no answer"
        out[key] = out.get(key, 0) + 1
    return out


def _rate_limit(ctx: _Context) -> Outcome:
    if ctx.model is None:
        return Outcome("skip", "no model to probe (give --model NAME)")
    s = ctx.session
    body = ctx.valid_body()
    who = "with credentials" if ctx.infer_auth else "without credentials"
    answers, limited = _burst(ctx, "identical request", s.opts.burst, lambda _: body)
    summary = _summary(answers)
    data = {"requests": len(answers), "statuses": summary, "authenticated": bool(ctx.infer_auth)}
    details = [f"{len(answers)} identical inference requests {who}: {summary}"]
    if limited is not None:
        ctx.retry_after = limited
        data["throttled_at"] = len(answers)
        data["retry_after"] = limited.headers.get("retry-after")
        details.append(
            f"429 at request {len(answers)}, "
            f"Retry-After: {limited.headers.get('retry-after', 'absent')}"
        )
        return Outcome("pass", f"burst throttled at request {len(answers)} ({who})", details, data)
    return Outcome("fail", f"no 429 in a burst of {len(answers)} requests ({who})", details, data)


def _extraction(ctx: _Context) -> Outcome:
    ok, why = _reachable(ctx)
    if not ok:
        return Outcome("skip", why)
    s = ctx.session
    waited = s.wait_retry_after(ctx.retry_after) if ctx.retry_after is not None else 0.0
    rng = random.Random(secrets.randbits(64))  # noqa: S311 - probe inputs, not secrets
    answers, limited = _burst(
        ctx, "distinct query", s.opts.extraction_queries, lambda _: ctx.valid_body(rng)
    )
    summary = _summary(answers)
    accepted = sum(1 for a in answers if 200 <= a.status < 300)
    data = {"queries": len(answers), "statuses": summary, "accepted": accepted, "waited_s": waited}
    details = [f"{len(answers)} distinct random queries: {summary}"]
    if waited:
        details.insert(0, f"waited {waited:g}s for the previous burst's Retry-After")
    if limited is not None:
        data["throttled_at"] = len(answers)
        return Outcome(
            "pass",
            f"extraction-style burst throttled after {accepted} answered queries",
            details,
            data,
        )
    return Outcome(
        "fail",
        f"{accepted} of {len(answers)} distinct queries answered, none throttled",
        details,
        data,
    )


@dataclass(frozen=True, slots=True)
class ProbeControl:
    id: str
    title: str
    impact: float
    run: Callable[[_Context], Outcome]
    remediation: str
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


_LIST = [
    ProbeControl(
        "tls",
        "Endpoint served over TLS 1.2+ with a verifiable certificate",
        0.9,
        _tls,
        "Serve https only (mltrust serve --ssl-certfile/--ssl-keyfile, or a TLS-terminating "
        "ingress), disable TLS 1.0/1.1, use a certificate clients can verify.",
        {"owasp_ml": ("ML10",)},
    ),
    ProbeControl(
        "auth-inference",
        "Inference requires authentication",
        1.0,
        _auth_inference,
        "Require API keys or JWTs on every inference route (mltrust serve does by default).",
        {"owasp_ml": ("ML05",), "atlas": ("AML.T0040",)},
    ),
    ProbeControl(
        "auth-metadata",
        "Model and server metadata require authentication",
        0.5,
        _auth_metadata,
        "Put metadata, readiness of a model and the repository index behind authentication: "
        "they tell an attacker which models, inputs and versions are served.",
        {"atlas": ("AML.T0007",)},
    ),
    ProbeControl(
        "management-auth",
        "No unauthenticated model management (load/unload)",
        1.0,
        _management,
        "Disable the model repository extension or require an admin credential on it.",
        {"owasp_ml": ("ML10",)},
    ),
    ProbeControl(
        "input-validation",
        "Malformed tensors are refused with 4xx",
        0.7,
        _input_validation,
        "Validate datatype, shape and element count against the model's signature before "
        "decoding; answer 400/422, never 500.",
        {"owasp_ml": ("ML01",)},
    ),
    ProbeControl(
        "error-leaks",
        "No stack traces or software versions in answers",
        0.5,
        _error_leaks,
        "Answer fixed error bodies; drop Server/X-Powered-By version banners and unauthenticated "
        "server metadata.",
    ),
    ProbeControl(
        "rate-limit",
        "Bursts are rate limited (429)",
        0.7,
        _rate_limit,
        "Limit requests per identity and per model (mltrust serve: policy.rate_limit).",
        {"atlas": ("AML.T0029",)},
    ),
    ProbeControl(
        "extraction-throttled",
        "Extraction-style query bursts are throttled",
        0.7,
        _extraction,
        "Throttle or block identities sending many distinct queries (mltrust serve: "
        "policy.extraction with mode: block, and rate limits).",
        {"owasp_ml": ("ML05",), "atlas": ("AML.T0024",)},
    ),
]
CONTROLS: dict[str, ProbeControl] = {c.id: c for c in _LIST}


def run_probes(
    opts: ProbeOptions,
) -> tuple[list[tuple[ProbeControl, Outcome, float]], dict[str, Any]]:
    """Run the selected controls in their fixed order; ``(results, context evidence)``."""
    session = _Session(opts)
    try:
        ctx = _setup(session, opts)
        wanted = set(opts.controls) if opts.controls else set(CONTROLS)
        results = []
        for control in _LIST:
            if control.id not in wanted:
                continue
            started = time.perf_counter()
            outcome = control.run(ctx)
            results.append((control, outcome, time.perf_counter() - started))
        context = {
            "target": opts.target,
            "model": ctx.model,
            "model_source": ctx.model_source,
            "credentials_given": bool(session.auth),
            "inference_open": ctx.infer_auth is False,
            "requests_sent": len(session.answers),
        }
        return results, context
    finally:
        session.close()


def probe_report(opts: ProbeOptions, *, tool_version: str = "") -> Any:
    """Probe and build the :class:`mltrust.report.CheckReport` every check format renders."""
    from mltrust.policy import ControlResult, ControlStatus, Verdict, VerdictStatus
    from mltrust.policy._profile import Control, Profile
    from mltrust.report import CheckReport

    started = time.perf_counter()
    results, context = run_probes(opts)
    controls = []
    out = []
    status_of = {"pass": ControlStatus.PASS, "fail": ControlStatus.FAIL, "skip": ControlStatus.SKIP}
    for pc, outcome, seconds in results:
        control = Control(
            id=pc.id,
            title=pc.title,
            impact=pc.impact,
            check_source=f"probe {pc.id} of the live endpoint",
            check=None,
            description=pc.title,
            remediation=pc.remediation,
            tags=dict(pc.tags),
        )
        controls.append(control)
        out.append(
            ControlResult(
                control=control,
                status=status_of[outcome.status],
                message=outcome.message,
                details=tuple(outcome.details),
                micros=seconds * 1e6,
            )
        )
    failed = any(r.status is ControlStatus.FAIL for r in out)
    subject = {"name": opts.target, "digest": "", "kind": "endpoint"}
    verdict = Verdict(
        status=VerdictStatus.FAIL if failed else VerdictStatus.PASS,
        profile=Profile(
            name="endpoint-probes",
            title="Live inference endpoint",
            controls=tuple(controls),
            source="mltrust.probe",
        ),
        subject=subject,
        results=tuple(out),
        evaluated_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started,
    )
    document = {
        "subject": subject,
        "probe": context,
        "controls": {pc.id: {"result": o.status, **o.data} for pc, o, _ in results},
    }
    return CheckReport(
        verdict=verdict, document=document, base=opts.target, tool_version=tool_version
    )
