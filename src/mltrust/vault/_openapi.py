"""The OpenAPI 3.0 document of the vault API, written by hand to match :mod:`._app`."""

from __future__ import annotations

from typing import Any

from mltrust import __version__

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "default": _json(
        "An error: 400 bad input, 401 no or bad token, 403 role missing, 404 unknown or "
        "deleted, 405 method, 409 name taken or check-and-set failed, 413 body too large, "
        "429 too many failed authentications, 503 sealed or audit log unavailable.",
        _ref("Error"),
    )
}
_ENV = {
    "name": "env_id",
    "in": "path",
    "required": True,
    "description": "Environment id (env_…) or name.",
    "schema": {"type": "string"},
}
_VAR = {
    "name": "var_id",
    "in": "path",
    "required": True,
    "description": "Variable id (var_…) or name.",
    "schema": {"type": "string"},
}


def _body(schema: str) -> dict[str, Any]:
    # update bodies may be empty (nothing to change); the others are required
    required = schema not in ("EnvironmentUpdate", "VariableWrite")
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


def _optional_nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """The server treats ``null`` like an absent optional field; say so."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name not in required:
            schema["properties"][name] = {**prop, "nullable": True}
    return schema


def _op(
    op_id: str,
    summary: str,
    ok: dict[str, Any],
    *,
    params: list[Any] | None = None,
    body: str | None = None,
    status: str = "200",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "parameters": params or [],
        "responses": {status: ok, **_ERRORS},
    }
    if body is not None:
        doc["requestBody"] = _body(body)
    return doc


_VERSIONS_BODY = "Versions"


def openapi_document() -> dict[str, Any]:
    env_var = [_ENV, _VAR]
    str_ = {"type": "string"}
    env_name = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"}
    var_name = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$"}
    desc = {"type": "string", "maxLength": 1024}
    value = {
        "type": "string",
        "maxLength": 16384,
        "description": "UTF-8 text, at most 64 KiB encoded.",
    }
    count = {"type": "integer", "minimum": 1, "maximum": 1000}
    number = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
    int_ = {"type": "integer"}
    num = {"type": "number"}
    bool_ = {"type": "boolean"}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": str_, "detail": str_},
        },
        "Environment": {
            "type": "object",
            "required": ["id", "name", "description", "created", "updated"],
            "properties": {
                "id": str_,
                "name": str_,
                "description": str_,
                "created": num,
                "updated": num,
            },
        },
        "EnvironmentList": {
            "type": "object",
            "required": ["environments"],
            "properties": {"environments": {"type": "array", "items": _ref("Environment")}},
        },
        "EnvironmentCreate": _optional_nullable(
            {
                "type": "object",
                "required": ["name"],
                "properties": {"name": env_name, "description": desc},
            }
        ),
        "EnvironmentUpdate": _optional_nullable(
            {
                "type": "object",
                "properties": {"name": env_name, "description": desc},
            }
        ),
        "EnvironmentDeleted": {
            "type": "object",
            "required": ["deleted"],
            "properties": {"deleted": _ref("Environment")},
        },
        "Variable": {
            "type": "object",
            "required": [
                "id",
                "name",
                "secret",
                "created",
                "updated",
                "current_version",
                "max_versions",
                "cas_required",
            ],
            "properties": {
                "id": str_,
                "name": str_,
                "secret": bool_,
                "created": num,
                "updated": num,
                "current_version": int_,
                "max_versions": int_,
                "cas_required": bool_,
                "version": int_,
                "value": {
                    "type": "string",
                    "nullable": True,
                    "description": "Only with ?values=true (null: latest deleted).",
                },
            },
        },
        "VariableValue": {
            "allOf": [_ref("Variable"), {"type": "object", "required": ["version", "value"]}],
        },
        "VariableList": {
            "type": "object",
            "required": ["environment", "variables"],
            "properties": {
                "environment": _ref("Environment"),
                "variables": {"type": "array", "items": _ref("Variable")},
            },
        },
        "VariableCreate": _optional_nullable(
            {
                "type": "object",
                "required": ["name", "value"],
                "properties": {
                    "name": var_name,
                    "value": value,
                    "secret": bool_,
                    "max_versions": count,
                    "cas_required": bool_,
                },
            }
        ),
        "VariableWrite": _optional_nullable(
            {
                "type": "object",
                "description": "With value: a new version (check-and-set with cas). Without: "
                "metadata only.",
                "properties": {
                    "value": value,
                    "cas": number,
                    "secret": bool_,
                    "max_versions": count,
                    "cas_required": bool_,
                },
            }
        ),
        "VariableHistory": {
            "allOf": [
                _ref("Variable"),
                {
                    "type": "object",
                    "required": ["versions"],
                    "properties": {
                        "versions": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["version", "created", "deleted", "destroyed"],
                                "properties": {
                                    "version": int_,
                                    "created": num,
                                    "deleted": {"type": "number", "nullable": True},
                                    "destroyed": bool_,
                                },
                            },
                        },
                    },
                },
            ],
        },
        "Versions": {
            "type": "object",
            "required": ["versions"],
            "properties": {
                "versions": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1000,
                    "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                }
            },
        },
        "VersionsResult": {
            "type": "object",
            "properties": {
                k: {"type": "array", "items": int_}
                for k in ("deleted_versions", "undeleted_versions", "destroyed_versions")
            },
        },
        "VariableDeleted": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["deleted_versions"],
                    "properties": {"deleted_versions": {"type": "array", "items": int_}},
                },
                {
                    "type": "object",
                    "required": ["deleted"],
                    "properties": {"deleted": _ref("Variable")},
                },
            ],
        },
        "Health": {
            "type": "object",
            "required": ["sealed"],
            "properties": {"sealed": bool_, "version": str_},
        },
        "Unseal": {
            "description": "The key-encryption key: a passphrase, or a 32-byte key in base64.",
            "oneOf": [
                {
                    "type": "object",
                    "required": ["passphrase"],
                    "additionalProperties": False,
                    "properties": {"passphrase": {"type": "string", "minLength": 1}},
                },
                {
                    "type": "object",
                    "required": ["key"],
                    "additionalProperties": False,
                    "properties": {"key": {"type": "string", "pattern": "^[A-Za-z0-9+/]{43}=$"}},
                },
            ],
        },
        "SealState": {
            "type": "object",
            "required": ["sealed"],
            "properties": {"sealed": bool_},
        },
    }
    q_version = {
        "name": "version",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    }
    q_values = {
        "name": "values",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean"},
        "description": "Include values (read role).",
    }
    q_versions = {
        "name": "versions",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": "^[0-9]{1,9}(,[0-9]{1,9})*$"},
        "description": "Comma-separated versions to soft-delete [default: latest].",
    }
    q_purge = {
        "name": "purge",
        "in": "query",
        "required": False,
        "schema": {"type": "boolean"},
        "description": "Delete the variable and all versions (admin).",
    }
    var_path = "/environments/{env_id}/variables/{var_id}"
    paths: dict[str, Any] = {
        "/environments": {
            "get": _op(
                "listEnvironments",
                "Environments this token may read",
                _json("The environments.", _ref("EnvironmentList")),
            ),
            "post": _op(
                "createEnvironment",
                "Create an environment (admin on its name)",
                _json("Created.", _ref("Environment")),
                body="EnvironmentCreate",
                status="201",
            ),
        },
        "/environments/{env_id}": {
            "get": _op(
                "getEnvironment",
                "One environment",
                _json("The environment.", _ref("Environment")),
                params=[_ENV],
            ),
            "put": _op(
                "updateEnvironment",
                "Rename or describe (admin)",
                _json("Updated.", _ref("Environment")),
                params=[_ENV],
                body="EnvironmentUpdate",
            ),
            "delete": _op(
                "deleteEnvironment",
                "Delete with all variables (admin)",
                _json("Deleted.", _ref("EnvironmentDeleted")),
                params=[_ENV],
            ),
        },
        "/environments/{env_id}/variables": {
            "get": _op(
                "listVariables",
                "Variable names and metadata (values on request)",
                _json("The variables.", _ref("VariableList")),
                params=[_ENV, q_values],
            ),
            "post": _op(
                "createVariable",
                "Add a variable (write); version 1",
                _json("Created.", _ref("Variable")),
                params=[_ENV],
                body="VariableCreate",
                status="201",
            ),
        },
        var_path: {
            "get": _op(
                "getVariable",
                "A value: latest or ?version=N (read)",
                _json("The value.", _ref("VariableValue")),
                params=[*env_var, q_version],
            ),
            "put": _op(
                "putVariable",
                "A new version (write), check-and-set with cas; lowering max_versions "
                "removes old versions for good and needs admin",
                _json("Written.", _ref("Variable")),
                params=env_var,
                body="VariableWrite",
            ),
            "delete": _op(
                "deleteVariable",
                "Soft-delete versions (write), or purge everything (admin)",
                _json("Deleted.", _ref("VariableDeleted")),
                params=[*env_var, q_versions, q_purge],
            ),
        },
        var_path + "/versions": {
            "get": _op(
                "variableHistory",
                "Version history (read)",
                _json("Metadata and versions.", _ref("VariableHistory")),
                params=env_var,
            ),
        },
        var_path + "/undelete": {
            "post": _op(
                "undeleteVersions",
                "Undo soft deletes (write)",
                _json("Undeleted.", _ref("VersionsResult")),
                params=env_var,
                body=_VERSIONS_BODY,
            ),
        },
        var_path + "/destroy": {
            "post": _op(
                "destroyVersions",
                "Remove versions for good (admin)",
                _json("Destroyed.", _ref("VersionsResult")),
                params=env_var,
                body=_VERSIONS_BODY,
            ),
        },
        "/sys/seal": {
            "post": _op(
                "seal",
                "Forget the key-encryption key (admin on *)",
                _json("Sealed.", _ref("SealState")),
            ),
        },
        "/sys/metrics": {
            "get": _op(
                "metrics",
                "Prometheus text exposition (admin on *, or --metrics-public)",
                {
                    "description": "Metrics.",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
            ),
        },
        "/sys/unseal": {
            "post": {
                **_op(
                    "unseal",
                    "Give the key-encryption key",
                    _json("Unsealed.", _ref("SealState")),
                    body="Unseal",
                ),
                "security": [],
            },
        },
        "/sys/health": {
            "get": {
                **_op("health", "Sealed or not", _json("State.", _ref("Health"))),
                "security": [],
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "mltrust vault",
            "version": __version__,
            "description": "Environments and versioned, encrypted variables. Send "
            "`Authorization: Bearer TOKEN` (from `mltrust vault token create`).",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
