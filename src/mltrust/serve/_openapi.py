"""The OpenAPI 3.0 document of the server, written by hand to match :mod:`._app` exactly."""

from __future__ import annotations

from typing import Any

from mltrust import __version__
from mltrust.serve._settings import DATATYPES

__all__ = ["openapi_document"]

#: The Open Inference Protocol tensor datatypes (one definition, in the settings module).
_DATATYPES = sorted(DATATYPES)


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_RETRY = {"Retry-After": {"schema": {"type": "integer"}}}
_AUTH_ERRORS = {
    "401": _error("Missing, malformed, expired or revoked credentials."),
    "403": _error("The identity lacks the role on this model."),
    "429": {
        "description": "Too many failed authentications from this client address; see Retry-After.",
        "headers": _RETRY,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}
_NAME = {"name": "model_name", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "model_version", "in": "path", "required": True, "schema": {"type": "string"}}


def _model_ops(with_version: bool) -> dict[str, dict[str, Any]]:
    params = [_NAME, _VERSION] if with_version else [_NAME]
    prefix = "/v2/models/{model_name}" + ("/versions/{model_version}" if with_version else "")
    suffix = " (a given version)" if with_version else ""
    return {
        prefix: {
            "get": {
                "operationId": "modelMetadata" + ("Version" if with_version else ""),
                "summary": "Model metadata" + suffix,
                "parameters": params,
                "responses": {
                    "200": _json("Model metadata.", "ModelMetadata"),
                    **_AUTH_ERRORS,
                    "404": _error("Unknown model or version."),
                    "405": _error("Method not allowed."),
                    "503": _error("The model was refused at admission."),
                },
            }
        },
        prefix + "/stats": {
            "get": {
                "operationId": "modelStatistics" + ("Version" if with_version else ""),
                "summary": "Model statistics (this worker)" + suffix,
                "parameters": params,
                "responses": {
                    "200": {
                        "description": "Success and failure counts and times (Triton's "
                        "statistics extension).",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_AUTH_ERRORS,
                    "404": _error("Unknown model or version."),
                    "405": _error("Method not allowed."),
                    "503": _error("The model was refused at admission."),
                },
            }
        },
        prefix + "/ready": {
            "get": {
                "operationId": "modelReady" + ("Version" if with_version else ""),
                "summary": "Model readiness" + suffix,
                "parameters": params,
                "responses": {
                    "200": _json("The model is served.", "ModelReady"),
                    **_AUTH_ERRORS,
                    "404": _error("Unknown model or version."),
                    "405": _error("Method not allowed."),
                    "503": _json("The model was refused at admission.", "ModelReady"),
                },
            }
        },
        prefix + "/infer": {
            "post": {
                "operationId": "modelInfer" + ("Version" if with_version else ""),
                "summary": "Inference" + suffix,
                "parameters": params,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/InferenceRequest"}
                        }
                    },
                },
                "responses": {
                    "200": _json("Inference result.", "InferenceResponse"),
                    "400": _error("Malformed JSON or a request that breaks the protocol."),
                    **_AUTH_ERRORS,
                    "404": _error("Unknown model or version."),
                    "405": _error("Method not allowed."),
                    "408": _error("Headers or body not received in time (connection closed)."),
                    "413": _error("Request body larger than the server's limit."),
                    "431": _error("Request headers too large or too many (connection closed)."),
                    "422": _error(
                        "Inputs do not match the model's schema (names, shapes, datatypes, "
                        "NaN/inf, value ranges) or a blocking detector refused them."
                    ),
                    "429": {
                        "description": "Rate limit (rows or bytes), quota, extraction block or too "
                        "many failed authentications; see Retry-After.",
                        "headers": _RETRY,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    },
                    "500": _error("The model raised an error."),
                    "503": _error("Model not ready, or the audit log is unavailable."),
                    "504": _error("Inference exceeded the model's timeout."),
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    tensor_data: dict[str, Any] = {
        "type": "array",
        "items": {},
        "description": "Flat or nested row-major values.",
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mltrust serve: Open Inference Protocol (KServe V2) REST",
            "version": __version__,
            "description": (
                "Every endpoint except health probes and this document needs an API key "
                "(`Authorization: Bearer mlt_...` or `X-API-Key`) or a JWT bearer token. "
                'Errors are `{"error": "..."}`; 401/403 bodies are fixed.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/v2/health/live": {
                "get": {
                    "operationId": "serverLive",
                    "security": [],
                    "responses": {"200": _json("The process is alive.", "Live")},
                }
            },
            "/v2/health/ready": {
                "get": {
                    "operationId": "serverReady",
                    "security": [],
                    "responses": {
                        "200": _json("Admission finished; the server answers.", "Ready"),
                        "503": _json("Shutting down.", "Ready"),
                    },
                }
            },
            "/v2": {
                "get": {
                    "operationId": "serverMetadata",
                    "responses": {
                        "200": _json("Server metadata.", "ServerMetadata"),
                        "401": _AUTH_ERRORS["401"],
                        "429": _AUTH_ERRORS["429"],
                    },
                }
            },
            **_model_ops(False),
            **_model_ops(True),
            "/v2/repository/index": {
                "post": {
                    "operationId": "repositoryIndex",
                    "summary": "Models the caller may see (metadata role); reasons need admin",
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"ready": {"type": "boolean"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "name, version, state (READY/UNAVAILABLE), reason.",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"type": "object"}}
                                }
                            },
                        },
                        "400": _error("Malformed request body."),
                        **_AUTH_ERRORS,
                        "405": _error("Method not allowed."),
                    },
                }
            },
            "/v2/admin/models": {
                "get": {
                    "operationId": "adminModels",
                    "summary": "Every model with its admission result (admin role on '*').",
                    "responses": {
                        "200": _json("Models and refusal reasons.", "AdminModels"),
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition (admin role, or --metrics-public).",
                    "responses": {
                        "200": {
                            "description": "Metrics.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        **_AUTH_ERRORS,
                    },
                }
            },
            "/v2/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "This document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Live": {
                    "type": "object",
                    "required": ["live"],
                    "properties": {"live": {"type": "boolean"}},
                },
                "Ready": {
                    "type": "object",
                    "required": ["ready"],
                    "properties": {"ready": {"type": "boolean"}},
                },
                "ServerMetadata": {
                    "type": "object",
                    "required": ["name", "version", "extensions"],
                    "properties": {
                        "name": {"type": "string"},
                        "version": {"type": "string"},
                        "extensions": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "TensorMetadata": {
                    "type": "object",
                    "required": ["name", "datatype", "shape"],
                    "properties": {
                        "name": {"type": "string"},
                        "datatype": {"type": "string", "enum": _DATATYPES},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                    },
                },
                "ModelMetadata": {
                    "type": "object",
                    "required": ["name", "platform", "inputs", "outputs"],
                    "properties": {
                        "name": {"type": "string"},
                        "versions": {"type": "array", "items": {"type": "string"}},
                        "platform": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TensorMetadata"},
                        },
                        "outputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/TensorMetadata"},
                        },
                    },
                },
                "ModelReady": {
                    "type": "object",
                    "required": ["name", "ready"],
                    "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
                },
                "RequestInput": {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "datatype": {"type": "string", "enum": _DATATYPES},
                        "parameters": {"type": "object"},
                        "data": tensor_data,
                    },
                },
                "RequestOutput": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}},
                },
                "InferenceRequest": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "inputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/RequestInput"},
                        },
                        "outputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/RequestOutput"},
                        },
                    },
                },
                "ResponseOutput": {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer"}},
                        "datatype": {"type": "string", "enum": _DATATYPES},
                        "data": {"type": "array", "items": {}},
                    },
                },
                "InferenceResponse": {
                    "type": "object",
                    "required": ["model_name", "outputs"],
                    "properties": {
                        "model_name": {"type": "string"},
                        "model_version": {"type": "string"},
                        "id": {"type": "string"},
                        "parameters": {"type": "object"},
                        "outputs": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/ResponseOutput"},
                        },
                    },
                },
                "AdminModels": {
                    "type": "object",
                    "required": ["models"],
                    "properties": {"models": {"type": "array", "items": {"type": "object"}}},
                },
            },
        },
    }
