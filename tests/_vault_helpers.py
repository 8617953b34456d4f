"""Shared fixtures for the vault tests: a fresh SQLite file or a fresh PostgreSQL schema.

PostgreSQL tests run against a real server (``MLTRUST_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets its own schema, dropped after.
When the server is unreachable the tests skip locally but FAIL when ``CI=true``: CI promises a
server (``.ci/run`` starts one), so a silent skip there would hide the backend going untested.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_URL = os.environ.get("MLTRUST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


def _pg_admin():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("psycopg is not installed but CI=true requires the PostgreSQL tests")
        pytest.skip("psycopg not installed (pip install 'mltrust[vault-postgres]')")
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable and CI=true: {exc}")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable: {exc}")


def pg_schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema of its own."""
    admin = _pg_admin()
    schema = "vt_" + secrets.token_hex(6)
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield pg_schema_url(schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for SQLite (the file in the state folder) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))
