"""``mltrust serve``: a hardened Open Inference Protocol (KServe V2) model server.

Quick start (one model folder per model under REPO; MLServer ``model-settings.json`` works)::

    mltrust keys generate --out signer; mltrust sign REPO/iris --key signer.key
    mltrust serve keys create --repo REPO --name alice --model iris --role infer   # prints key
    mltrust serve REPO --trusted-key signer.pub            # 127.0.0.1:8080
    curl -H "Authorization: Bearer mlt_..." -d @req.json localhost:8080/v2/models/iris/infer

Design decisions, stated once:

* **Admission** (:mod:`._repository`): scan clean at medium+, signature by a trusted key
  (``--trusted-key`` or ``MODEL=PUB``; keys named inside a model folder are never trusted),
  optional ``--check-profile``; only then are the bytes loaded (joblib via
  :func:`mltrust.safeload.load_joblib`). Refused models answer 503; admins see the reason at
  ``GET /v2/admin/models``.
* **API keys** are stored as HMAC-SHA256 under a 32-byte server secret
  (``REPO/.mltrust/secret``), not a slow KDF: keys are 256-bit random, so only an offline
  dictionary attack on the database is a threat, and the HMAC key stops that; per-request cost
  stays ~1 µs. Failed authentications are rate-limited per client address.
* **Roles** ``metadata`` < ``infer`` < ``admin``, per model or ``*``; deny by default; 401/403
  bodies are fixed, reasons go to the audit log only. A model's ``policy.roles`` names
  namespaced principals (``key:NAME``, ``jwt:ISSUER:SUB``), never bare names.
* **Connections** are bounded before any credential is read (header size/count, header and body
  read time, keep-alive, connections in total and per address: 431/408/503), see :mod:`._net`.
* **Limits count work**: rate limits and quotas count rows (and optionally bytes).
* **Shared state** (:mod:`mltrust.state`): rate limits, quotas and extraction blocks are
  in-process by default -- per worker, so with ``--workers N`` a limit of R allows up to N*R --
  or shared by every worker and replica with ``--state redis://HOST:PORT/DB`` (atomic Lua
  scripts, one round trip per check; 503 while Redis is unreachable, never unlimited).
  ``/metrics`` and the extraction statistics stay per process (``replica`` label); the audit
  log stays one chain because every worker appends under ``BEGIN IMMEDIATE`` (SQLite) or an
  advisory transaction lock (``--audit-db postgresql://``, replicas on several hosts) after
  reading and verifying the current head. See ``docs/shared-state.md``.
* **Audit durability**: a response is sent only after its audit entry is committed, fsynced
  and covered by the signed anchor (group commit); ``kill -9`` loses nothing acknowledged.
  Entries are MACed and the head signed with an audit key kept outside the state folder; the
  server refuses to start or append on a log that no longer extends its anchor. See
  :mod:`mltrust.store._audit` and ``docs/threat-model-serve.md``.
* **Protocol**: JSON and the binary tensor data extension tritonclient sends by default
  (``Inference-Header-Content-Length``, ``binary_data_size``, ``binary_data_output``; every
  OIP datatype plus BF16), MLServer's ``pd``/``str``/``base64`` codecs, the repository index
  (``POST /v2/repository/index``, only models the caller may see) and per-model statistics
  (``GET /v2/models/NAME/stats``). Not implemented: gRPC, shared-memory, KServe SDK as a test
  client (its REST v2 binary form is the same extension).
* ``/metrics`` needs ``admin`` on ``*`` unless ``--metrics-public``; health probes and
  ``/v2/openapi.json`` are public; the server binds 127.0.0.1 unless told otherwise.

>>> from mltrust.serve import ServerConfig, create_app              # doctest: +SKIP
>>> app = create_app(ServerConfig(repo=Path("models"), trusted_keys=(Path("pub.pem"),)))

``app`` is an ASGI application (run it with uvicorn, or ``mltrust serve REPO``).
"""

from __future__ import annotations

from mltrust.serve._app import MltrustServer, app_from_env, create_app
from mltrust.serve._auth import Authenticator, AuthError, Identity, JwtVerifier
from mltrust.serve._config import ServerConfig
from mltrust.serve._keys import ApiKey, KeyStore
from mltrust.serve._repository import AdmissionOptions, ServedModel, admit_model, load_repository
from mltrust.serve._settings import ModelSettings, TensorSpec, load_model_settings
from mltrust.serve.detectors import Detector
from mltrust.serve.runtimes import Runtime
from mltrust.store._audit import AuditLog, ChainReport, verify_chain

__all__ = [
    "AdmissionOptions",
    "ApiKey",
    "AuditLog",
    "AuthError",
    "Authenticator",
    "ChainReport",
    "Detector",
    "Identity",
    "JwtVerifier",
    "KeyStore",
    "MltrustServer",
    "ModelSettings",
    "Runtime",
    "ServedModel",
    "ServerConfig",
    "TensorSpec",
    "admit_model",
    "app_from_env",
    "create_app",
    "load_model_settings",
    "load_repository",
    "verify_chain",
]
