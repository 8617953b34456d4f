"""Prometheus metrics, written by hand in the text exposition format (version 0.0.4).

Per process: with ``--workers N`` each worker exposes its own counters, and a scrape of the
shared port reaches whichever worker accepts it. Every series then carries a ``replica`` label
(``worker-<pid>``, or ``<--replica>-<pid>``) so that series of different workers are never
merged into one counter that jumps backwards. For exact totals run one worker per replica
(Kubernetes: scale pods, not workers), name it with ``--replica`` (or let Prometheus's
``instance`` label tell replicas apart) and scrape every replica; ``sum by (model)`` adds them.
Prometheus's multiprocess mode (shared mmap files) is not used: it needs a writable shared
folder per host and does not cross hosts.

The families (``docs/observability.md`` lists them with the dashboards and alert rules that
use them; ``tests/test_observability.py`` scrapes a live server and checks that every metric a
rule or panel names is exported here):

- requests, refusals by reason, latency, model admission (``mltrust_model_ready``);
- requests per authenticated identity (at most ``max_metric_identities`` identities; later ones
  are counted under ``identity="other"``: labels must not grow without bound);
- detector scores as a ratio to the detector's calibrated threshold, and how many requests
  each detector scored (the drift alert divides alerts by scored requests);
- audit-chain health (:func:`audit_lines`, shared with the vault);
- the advisory database's age (:func:`advisory_lines`), which admission's check profiles use.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mltrust.config import DEFAULT_LIMITS

__all__ = ["AdvisoryStatus", "Metrics", "VaultMetrics", "audit_lines"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Buckets of a detector's score divided by its threshold (above 1: an alert).
_RATIO_BUCKETS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Histogram:
    """Cumulative-bucket histograms keyed by a tuple of label values."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, key: tuple[str, ...], value: float) -> None:
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0] * (len(self.buckets) + 1)
            self.sums[key] = 0.0
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[key] += value


class _Exposition:
    """The text format: families with HELP/TYPE, labels escaped, a constant replica label."""

    def __init__(self, *, replica: str | None = None) -> None:
        self._const = (("replica", replica),) if replica else ()
        self._lock = threading.Lock()

    def _labels(self, names: tuple[str, ...], values: tuple[str, ...]) -> str:
        pairs = [*self._const, *zip(names, values, strict=True)]
        if not pairs:
            return ""
        return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in pairs) + "}"

    def _family(
        self,
        out: list[str],
        name: str,
        kind: str,
        help_text: str,
        names: tuple[str, ...],
        samples: Iterable[tuple[tuple[str, ...], float]],
    ) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for values, n in samples:
            out.append(f"{name}{self._labels(names, values)} {_num(n)}")

    def _histogram(
        self, out: list[str], name: str, help_text: str, names: tuple[str, ...], h: _Histogram
    ) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} histogram")
        for key in sorted(h.counts):
            cumulative = 0
            for bound, n in zip((*h.buckets, float("inf")), h.counts[key], strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f"{name}_bucket{self._labels((*names, 'le'), (*key, le))} {cumulative}")
            base = self._labels(names, key)
            out.append(f"{name}_sum{base} {_num(h.sums[key])}")
            out.append(f"{name}_count{base} {cumulative}")

    def _audit(self, out: list[str], audit: Any) -> None:
        for line in audit_lines(audit, self._labels):
            out.append(line)


def audit_lines(audit: Any, labels: Any) -> list[str]:
    """Health of a hash-chained audit log (:class:`mltrust.store._audit.AuditLog`)."""
    none = labels((), ())
    rows = [
        (
            "mltrust_audit_chain_ok",
            "gauge",
            "1 while every commit proves the audit chain extends its signed anchor; 0 once one "
            "found it truncated or rewritten.",
            int(audit.chain_ok),
        ),
        (
            "mltrust_audit_entries_total",
            "counter",
            "Audit entries committed by this process.",
            audit.appended,
        ),
        (
            "mltrust_audit_append_failures_total",
            "counter",
            "Audit commits that failed (each refused its requests with 503).",
            audit.append_failures,
        ),
        (
            "mltrust_audit_verification_failures_total",
            "counter",
            "Audit commits refused because the chain did not verify against its anchor.",
            audit.verify_failures,
        ),
        (
            "mltrust_audit_last_verified_timestamp_seconds",
            "gauge",
            "Unix time the chain was last proven to extend its anchor.",
            float(audit.verified_at),
        ),
    ]
    out: list[str] = []
    for name, kind, help_text, value in rows:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.append(f"{name}{none} {_num(value)}")
    return out


class AdvisoryStatus:
    """Presence and age of the offline advisory database, re-read at most once a minute."""

    def __init__(self, path: Path | None = None, *, ttl_s: float = 60.0) -> None:
        self._path = path
        self._ttl = ttl_s
        self._read_at = -1e18
        self._value: tuple[int, int, float | None] = (0, 0, None)

    def read(self) -> tuple[int, int, float | None]:
        """(present 0/1, advisories, data time as Unix seconds or None)."""
        now = time.monotonic()
        if now - self._read_at < self._ttl:
            return self._value
        self._read_at = now
        try:
            from mltrust.advisories import AdvisoryDB, data_time, default_db_path

            path = self._path or default_db_path()
            if not path.is_file():
                self._value = (0, 0, None)
                return self._value
            with AdvisoryDB.open(path) as db:
                info = db.info()
            when = data_time(info)
            self._value = (1, int(info["advisories"]), when.timestamp() if when else None)
        except Exception:  # noqa: BLE001 - unreadable counts as absent (and alerts)
            self._value = (0, 0, None)
        return self._value


class Metrics(_Exposition):
    """``mltrust serve``'s metrics."""

    def __init__(
        self, *, replica: str | None = None, advisories: AdvisoryStatus | None = None
    ) -> None:
        super().__init__(replica=replica)
        self.requests: dict[tuple[str, str], int] = {}
        self.rejections: dict[tuple[str, str], int] = {}
        self.alerts: dict[tuple[str, str], int] = {}
        self.identities: dict[tuple[str, str, str], int] = {}
        self._identity_names: set[str] = set()
        self.scored: dict[tuple[str, str], int] = {}
        self.thresholds: dict[tuple[str, str], float] = {}
        self._latency = _Histogram(_BUCKETS)
        self._ratio = _Histogram(_RATIO_BUCKETS)
        self.advisories = advisories or AdvisoryStatus()

    def observe(
        self,
        model: str,
        code: int,
        seconds: float,
        reason: str | None,
        identity: str | None = None,
    ) -> None:
        with self._lock:
            key = (model, str(code))
            self.requests[key] = self.requests.get(key, 0) + 1
            if reason is not None:
                rkey = (model, reason)
                self.rejections[rkey] = self.rejections.get(rkey, 0) + 1
            if identity is not None:
                if identity not in self._identity_names:
                    if len(self._identity_names) >= DEFAULT_LIMITS.max_metric_identities:
                        identity = "other"
                    else:
                        self._identity_names.add(identity)
                ikey = (identity, model, str(code))
                self.identities[ikey] = self.identities.get(ikey, 0) + 1
            self._latency.observe((model,), seconds)

    def alert(self, model: str, detector: str) -> None:
        with self._lock:
            key = (model, detector)
            self.alerts[key] = self.alerts.get(key, 0) + 1

    def score(self, model: str, detector: str, score: float, threshold: float) -> None:
        """One request's highest score from a detector, against its calibrated threshold."""
        with self._lock:
            key = (model, detector)
            self.scored[key] = self.scored.get(key, 0) + 1
            self.thresholds[key] = threshold
            ratio = score / threshold if threshold > 0 else (0.0 if score <= 0 else float("inf"))
            if ratio != ratio:  # NaN: a score that cannot be compared counts as above
                ratio = float("inf")
            self._ratio.observe(key, ratio)

    def render(
        self, models_ready: dict[str, bool], audit: Any = None, *, identities: bool = True
    ) -> str:
        """The exposition text. ``identities=False`` leaves out the per-identity series (who
        calls which model): ``/metrics`` served without credentials (``--metrics-public``)."""
        out: list[str] = []
        with self._lock:
            self._family(
                out,
                "mltrust_requests_total",
                "counter",
                "Requests answered, by model and HTTP status.",
                ("model", "code"),
                sorted(self.requests.items()),
            )
            self._family(
                out,
                "mltrust_rejections_total",
                "counter",
                "Requests refused, by model and reason.",
                ("model", "reason"),
                sorted(self.rejections.items()),
            )
            self._family(
                out,
                "mltrust_identity_requests_total",
                "counter",
                f"Authenticated requests, by identity (the first "
                f"{DEFAULT_LIMITS.max_metric_identities}; then "
                "'other'), model and HTTP status.",
                ("identity", "model", "code"),
                sorted(self.identities.items()) if identities else [],
            )
            self._family(
                out,
                "mltrust_detector_alerts_total",
                "counter",
                "Detector alerts, by model and detector.",
                ("model", "detector"),
                sorted(self.alerts.items()),
            )
            self._family(
                out,
                "mltrust_detector_scored_total",
                "counter",
                "Requests a detector scored, by model and detector.",
                ("model", "detector"),
                sorted(self.scored.items()),
            )
            self._family(
                out,
                "mltrust_detector_threshold",
                "gauge",
                "A detector's calibrated alert threshold.",
                ("model", "detector"),
                sorted(self.thresholds.items()),
            )
            self._histogram(
                out,
                "mltrust_detector_score_ratio",
                "A request's highest detector score divided by the threshold (above 1: alert).",
                ("model", "detector"),
                self._ratio,
            )
            self._histogram(
                out,
                "mltrust_request_seconds",
                "Request latency, by model.",
                ("model",),
                self._latency,
            )
        self._family(
            out,
            "mltrust_model_ready",
            "gauge",
            "Whether a model passed admission and is served.",
            ("model",),
            (((m,), int(r)) for m, r in sorted(models_ready.items())),
        )
        if audit is not None:
            self._audit(out, audit)
        present, count, when = self.advisories.read()
        self._family(
            out,
            "mltrust_advisory_db_present",
            "gauge",
            "1 when the offline advisory database is there and readable.",
            (),
            [((), present)],
        )
        self._family(
            out,
            "mltrust_advisory_db_advisories",
            "gauge",
            "Advisories in the offline advisory database.",
            (),
            [((), count)],
        )
        self._family(
            out,
            "mltrust_advisory_db_data_timestamp_seconds",
            "gauge",
            "Unix time of the advisory data (newest advisory change, else the import); "
            "absent when unknown.",
            (),
            [((), when)] if when is not None else [],
        )
        return "\n".join(out) + "\n"


class VaultMetrics(_Exposition):
    """``mltrust vault serve``'s metrics."""

    def __init__(self, *, replica: str | None = None) -> None:
        super().__init__(replica=replica)
        self.requests: dict[tuple[str, str, str], int] = {}
        self.rejections: dict[tuple[str, str], int] = {}
        self._latency = _Histogram(_BUCKETS)

    def observe(
        self, route: str, method: str, code: int, seconds: float, reason: str | None
    ) -> None:
        with self._lock:
            key = (route, method, str(code))
            self.requests[key] = self.requests.get(key, 0) + 1
            if reason is not None:
                rkey = (route, reason)
                self.rejections[rkey] = self.rejections.get(rkey, 0) + 1
            self._latency.observe((route,), seconds)

    def render(self, *, sealed: bool, audit: Any = None) -> str:
        out: list[str] = []
        with self._lock:
            self._family(
                out,
                "mltrust_vault_requests_total",
                "counter",
                "Vault requests answered, by route template, method and HTTP status.",
                ("route", "method", "code"),
                sorted(self.requests.items()),
            )
            self._family(
                out,
                "mltrust_vault_rejections_total",
                "counter",
                "Vault requests refused, by route template and reason.",
                ("route", "reason"),
                sorted(self.rejections.items()),
            )
            self._histogram(
                out,
                "mltrust_vault_request_seconds",
                "Vault request latency, by route template.",
                ("route",),
                self._latency,
            )
        self._family(
            out,
            "mltrust_vault_sealed",
            "gauge",
            "1 while the vault is sealed.",
            (),
            [((), int(sealed))],
        )
        if audit is not None:
            self._audit(out, audit)
        return "\n".join(out) + "\n"
