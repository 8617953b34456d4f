"""The HTTP side: a Starlette app with ``POST /validate`` and ``GET /healthz``.

Verification reads and hashes whole models, so it runs on a thread pool bounded by
``concurrency`` (requests beyond it wait; the API server's ``timeoutSeconds`` bounds the
wait, and a timeout is a denial under ``failurePolicy: Fail``). A body that is not an
AdmissionReview gets 400 and one that is too large 413, with fixed terse bodies; both are
denials for the API server.
"""

from __future__ import annotations

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mltrust.admission._review import AdmissionPolicy, review
from mltrust.errors import InputError, LimitExceeded

__all__ = ["create_app"]


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise LimitExceeded("body too large")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise LimitExceeded("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(policy: AdmissionPolicy, *, concurrency: int = 4) -> Starlette:
    """The webhook application for ``policy``."""
    limiter = anyio.CapacityLimiter(concurrency)

    async def validate(request: Request) -> Response:
        if "json" not in request.headers.get("content-type", ""):
            return PlainTextResponse("expected application/json\n", status_code=415)
        try:
            body = await _read_body(request, policy.limits.max_admission_bytes)
        except LimitExceeded:
            return PlainTextResponse("request too large\n", status_code=413)
        try:
            answer = await anyio.to_thread.run_sync(review, body, policy, limiter=limiter)
        except InputError:
            return PlainTextResponse("not an AdmissionReview v1\n", status_code=400)
        return JSONResponse(answer)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(
        routes=[
            Route("/validate", validate, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
