"""Shared fixtures for the vault tests: a fresh SQLite file or a fresh PostgreSQL schema.

PostgreSQL tests run against a real server: ``MLTRUST_TEST_POSTGRES``, else the machine's own
(TCP, then its Unix socket, which also reaches it from inside the test network namespace), else
a private server started here with ``initdb``/``pg_ctl`` when those are installed. Each test gets
its own schema, dropped after. PostgreSQL cases carry the ``services`` marker (``make unit`` runs
them outside the network namespace, after ``scripts/services.sh``). When no server can be had
the tests skip locally but FAIL when ``CI=true``: a silent skip there would hide the backend
going untested.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: Tried in order: the URL from the environment, else the local server over TCP, then over its
#: Unix socket (which also works inside the network namespace `make unit` runs the tests in).
PG_CANDIDATES = (
    [os.environ["MLTRUST_TEST_POSTGRES"]]
    if os.environ.get("MLTRUST_TEST_POSTGRES")
    else [
        "postgresql://postgres@127.0.0.1:5432/test",
        "postgresql://postgres@/test?host=/var/run/postgresql",
        "postgresql://postgres@/test?host=/tmp",
    ]
)
_PG_FOUND: list[str] = []
_PRIVATE: list[Any] = []


def _start_private_server() -> str | None:
    """initdb + pg_ctl a throwaway server on a Unix socket (as `postgres` when we are root)."""
    import atexit
    import pwd
    import shutil
    import subprocess
    import tempfile

    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        return None
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="mltrust-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            return None
        runuser = shutil.which("runuser")
        if not runuser:
            return None
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = [runuser, "-u", "postgres", "--"]
    data = folder / "data"
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(folder / "log"),
                "-w",
                "-o",
                f"-k {folder} -c listen_addresses=''",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return None

    def stop() -> None:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    _PRIVATE.append(stop)
    subprocess.run(
        [*prefix, "createdb", "-h", str(folder), "-U", "postgres", "test"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    return f"postgresql://postgres@/test?host={folder}"


def _pg_admin():  # type: ignore[no-untyped-def]
    try:
        import psycopg
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("psycopg is not installed but CI=true requires the PostgreSQL tests")
        pytest.skip("psycopg not installed (pip install 'mltrust[vault-postgres]')")
    problems = []
    candidates = _PG_FOUND or PG_CANDIDATES
    for url in candidates:
        try:
            conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            problems.append(f"{url}: {str(exc).strip().splitlines()[0] if str(exc) else exc}")
            continue
        if not _PG_FOUND:
            _PG_FOUND.append(url)
        return conn
    if not _PRIVATE and "MLTRUST_TEST_POSTGRES" not in os.environ:
        url = _start_private_server()
        if url is not None:
            _PG_FOUND[:] = [url]
            return psycopg.connect(url, autocommit=True, connect_timeout=5)
    message = "no PostgreSQL reachable: " + "; ".join(problems)
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true requires the PostgreSQL tests)")
    pytest.skip(message)


def pg_schema_url(schema: str) -> str:
    base = _PG_FOUND[0]
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for SQLite (the file in the state folder) or a PostgreSQL URL."""
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


# -- a real server over real HTTP ---------------------------------------------------------------
import json  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

SRC = str(Path(__file__).resolve().parent.parent / "src")
PASSPHRASE = "correct horse battery staple"
#: The audit key lives outside every state folder (serve's rule), one per test session.
AUDIT_KEY = Path(__import__("tempfile").mkdtemp(prefix="mltrust-vault-audit-")) / "audit.key"


def verify_audit(state: Path) -> Any:
    """Serve's verifier over the vault's audit log: links, entry MACs and the signed anchor."""
    from mltrust.store._audit import default_anchor_path, load_audit_key, verify_chain

    db = state / ".mltrust" / "audit.db"
    return verify_chain(
        db, key=load_audit_key(AUDIT_KEY), anchor=default_anchor_path(AUDIT_KEY, db)
    )


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["MLTRUST_VAULT_PASSPHRASE"] = PASSPHRASE
    env["MLTRUST_AUDIT_KEY"] = str(AUDIT_KEY)
    env.pop("MLTRUST_VAULT_TOKEN", None)
    env.update(extra)
    return env


def mltrust(
    *args: str, input: str | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mltrust", *args],
        input=input,
        capture_output=True,
        text=True,
        env=env or cli_env(),
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"mltrust {args[:3]} failed: {result.returncode}\n{result.stderr}")
    return result


class Server:
    """``mltrust vault serve`` in a child process on a random loopback port."""

    def __init__(
        self, state: Path, database: str | None, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        self.state = state
        self.database = database
        self.log_path = state.parent / f"server-{time.monotonic_ns()}.log"
        args = [
            sys.executable,
            "-m",
            "mltrust",
            "vault",
            "serve",
            "--state",
            str(state),
            "--port",
            "0",
            *extra,
        ]
        if database:
            args += ["--database", database]
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=self._log, env=env or cli_env())
        deadline = time.monotonic() + 60
        self.port = 0
        self.scheme = "http"
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            for line in text.splitlines():
                if '"vault listening"' in line:
                    doc = json.loads(line)
                    self.port = int(doc["port"])
                    self.scheme = str(doc["url"]).split(":", 1)[0]
            if self.port:
                break
            if self.proc.poll() is not None:
                raise AssertionError(f"vault serve exited early:\n{text}")
            time.sleep(0.05)
        else:
            self.stop()
            raise AssertionError("vault serve did not start")
        self.addr = f"{self.scheme}://127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self) -> None:
        import ssl
        import urllib.request

        context = ssl._create_unverified_context() if self.scheme == "https" else None
        for _ in range(200):
            try:
                with urllib.request.urlopen(self.addr + "/sys/health", timeout=2, context=context):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("vault serve does not answer")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def init_vault(tmp_path: Path, database: str | None) -> Path:
    state = tmp_path / "state"
    args = ["vault", "init", "--state", str(state), "--kdf-cost", "14"]
    if database:
        args += ["--database", database]
    mltrust(*args)
    return state


def new_token(state: Path, database: str | None, env: str, role: str, *extra: str) -> str:
    args = ["vault", "token", "create", "--state", str(state), "--env", env, "--role", role, *extra]
    if database:
        args += ["--database", database]
    return mltrust(*args).stdout.strip()
