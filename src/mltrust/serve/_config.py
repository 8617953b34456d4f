"""Server-wide settings (one frozen object), passed to worker processes as JSON."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mltrust.errors import ConfigError

__all__ = ["ServerConfig"]

_REPLICA = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    repo: Path
    trusted_keys: tuple[Path, ...] = ()
    model_keys: tuple[tuple[str, Path], ...] = ()
    allow_unsigned: bool = False
    plugin_path: Path | None = None
    check_profile: str | None = None
    #: Rollback memory for admission (``--state``; outside the repository): the highest signed
    #: version admitted per model name. None: no memory (only ``min_versions`` apply).
    state: Path | None = None
    #: model name -> lowest signed version admitted (``--min-version NAME=V``).
    min_versions: tuple[tuple[str, int], ...] = ()
    jwks: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_s: float = 30.0
    api_keys: bool = True
    audit_path: Path | None = None
    #: ``postgresql://`` audit log shared by replicas on several hosts (one chain); None keeps
    #: SQLite at ``audit_path``.
    audit_url: str | None = None
    #: Ed25519 key that MACs audit entries and signs the anchor; must lie outside the state
    #: folder. None: ``$MLTRUST_AUDIT_KEY`` or ``$XDG_CONFIG_HOME/mltrust/audit.key`` (created).
    audit_key: Path | None = None
    #: Signed head of the audit log; None: ``<key folder>/audit-anchors/<db path digest>.json``.
    audit_anchor: Path | None = None
    #: Largest request body; enforced while the body streams in (413).
    max_body_bytes: int = 4 * 1024 * 1024
    inference_threads: int = 2
    metrics_public: bool = False
    #: Override every model's per-identity rate limit (requests/s, burst); None keeps settings.
    #: Also the rate of each identity's requests outside infer (None: 100/s, burst 200).
    identity_rps: float | None = None
    identity_burst: float | None = None
    log_inputs: bool = False
    #: "full": fsync every audit commit (survives power loss); "normal": survives kill -9 only.
    audit_sync: str = "full"
    #: Failed authentications per second allowed from one client address (burst: twice that).
    auth_failure_rps: float = 20.0
    #: Network bounds, enforced before any request reaches the application (serve/_net.py).
    #: Request line plus headers, in bytes (431 above).
    max_header_bytes: int = 16 * 1024
    #: Header fields per request (431 above).
    max_headers: int = 100
    #: Seconds to receive a request's headers, from its first byte or the connection (408).
    header_timeout_s: float = 10.0
    #: Seconds to receive a request's body once the headers are in (408).
    body_timeout_s: float = 30.0
    #: Seconds an idle keep-alive connection stays open between requests.
    keep_alive_s: float = 5.0
    #: Open connections per process (503 above; also capped below the descriptor limit).
    max_connections: int = 1000
    #: Open connections per client address (503 above).
    max_connections_per_client: int = 64
    #: Where rate limits, quotas and extraction blocks live: None in this process (per
    #: worker), or ``redis://HOST:PORT/DB`` shared by every worker and replica (mltrust.state).
    state_url: str | None = None
    #: ``replica`` label on every metric series (None: none; with ``--workers N`` each worker
    #: adds ``-<pid>``, see serve/_metrics.py).
    replica: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError("max body size must be at least 1024 bytes")
        if self.audit_sync not in ("full", "normal"):
            raise ConfigError("audit sync must be 'full' or 'normal'")
        if self.auth_failure_rps <= 0:
            raise ConfigError("auth failure rate must be positive")
        if any(v is not None and not v > 0 for v in (self.identity_rps, self.identity_burst)):
            raise ConfigError("identity rate and burst must be positive")
        if self.max_header_bytes < 1024 or self.max_headers < 8:
            raise ConfigError("header limits must allow at least 1024 bytes and 8 fields")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s"):
            if not 0 < getattr(self, name) <= 3600:
                raise ConfigError(f"{name} must be in (0, 3600] seconds")
        if self.max_connections < 1 or self.max_connections_per_client < 1:
            raise ConfigError("connection caps must be >= 1")
        if self.audit_url is not None and not self.audit_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ConfigError("the audit database URL must be postgresql://...")
        if self.replica is not None and not _REPLICA.match(self.replica):
            raise ConfigError("replica name: 1-64 letters, digits, '_', '.', ':', '-'")
        if self.inference_threads < 1:
            raise ConfigError("inference threads must be >= 1")
        if self.jwks is not None and (not self.jwt_issuer or not self.jwt_audience):
            raise ConfigError("--jwks needs --jwt-issuer and --jwt-audience")

    @property
    def resolved_audit_path(self) -> Path:
        return self.audit_path or self.repo / ".mltrust" / "audit.db"

    def to_json(self) -> str:
        doc = asdict(self)

        def enc(v: Any) -> Any:
            if isinstance(v, Path):
                return str(v)
            if isinstance(v, (list, tuple)):
                return [enc(x) for x in v]
            if isinstance(v, dict):
                return {k: enc(x) for k, x in v.items()}
            return v

        return json.dumps(enc(doc))

    @classmethod
    def from_json(cls, text: str) -> ServerConfig:
        doc = json.loads(text)
        path_fields = (
            "repo",
            "plugin_path",
            "jwks",
            "audit_path",
            "audit_key",
            "audit_anchor",
            "state",
        )
        for key in path_fields:
            if doc.get(key) is not None:
                doc[key] = Path(doc[key])
        doc["trusted_keys"] = tuple(Path(p) for p in doc.get("trusted_keys", []))
        doc["model_keys"] = tuple((m, Path(p)) for m, p in doc.get("model_keys", []))
        doc["min_versions"] = tuple((m, int(v)) for m, v in doc.get("min_versions", []))
        return cls(**doc)
