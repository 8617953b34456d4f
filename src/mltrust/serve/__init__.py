"""``mltrust serve``: a hardened Open Inference Protocol (KServe V2) model server.

>>> from mltrust.serve import ServerConfig, create_app         # doctest: +SKIP
>>> app = create_app(ServerConfig(repo=Path("models"), trusted_keys=(Path("pub.pem"),)))

``app`` is an ASGI application (run it with uvicorn, or ``mltrust serve REPO``).
"""

from __future__ import annotations

from mltrust.serve._app import MltrustServer, app_from_env, create_app
from mltrust.serve._audit import AuditLog, ChainReport, verify_chain
from mltrust.serve._auth import Authenticator, AuthError, Identity, JwtVerifier
from mltrust.serve._config import ServerConfig
from mltrust.serve._keys import ApiKey, KeyStore
from mltrust.serve._repository import AdmissionOptions, ServedModel, admit_model, load_repository
from mltrust.serve._settings import ModelSettings, TensorSpec, load_model_settings
from mltrust.serve.detectors import Detector
from mltrust.serve.runtimes import Runtime

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
