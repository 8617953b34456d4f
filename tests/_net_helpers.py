"""Network scaffolding shared by the tests that start real servers: a free local port, a
self-signed TLS certificate for 127.0.0.1/localhost and ``mltrust serve`` as a process (one
copy each, so a fix reaches every test)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` in ``folder``: a P-256 certificate valid for an hour for
    ``localhost`` and ``127.0.0.1``, usable as its own trust anchor (CA bit set)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_serve(
    repo: Path,
    port: int,
    *extra: str,
    env: dict[str, str] | None = None,
    cafile: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``mltrust serve repo`` as its own process on 127.0.0.1:``port``, returned once it answers
    ``/v2/health/ready`` (over TLS, verified against ``cafile``, when ``cafile`` is given).

    The identity rate limit is raised out of the way; a later ``--identity-rps`` in ``extra``
    wins (the last occurrence of an option counts). The server's stderr goes to
    ``repo.parent / "server.log"``, which a failure to start quotes."""
    import httpx

    log_path = repo.parent / "server.log"
    command = [
        sys.executable, "-m", "mltrust", "serve", str(repo), "--port", str(port),
        "--allow-unsigned", "--identity-rps", "100000", "--identity-burst", "100000", *extra,
    ]  # fmt: skip
    with log_path.open("wb") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    scheme = "https" if cafile else "http"
    verify: str | bool = str(cafile) if cafile else True
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(log_path.read_text())
        try:
            url = f"{scheme}://127.0.0.1:{port}/v2/health/ready"
            if httpx.get(url, verify=verify, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start: {log_path.read_text()[-2000:]}")
