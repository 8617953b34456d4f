"""Prometheus metrics, written by hand in the text exposition format (version 0.0.4).

Per process: with ``--workers N`` each worker exposes its own counters, and a scrape of the
shared port reaches whichever worker accepts it. Every series then carries a ``replica`` label
(``worker-<pid>``, or ``<--replica>-<pid>``) so that series of different workers are never
merged into one counter that jumps backwards. For exact totals run one worker per replica
(Kubernetes: scale pods, not workers), name it with ``--replica`` (or let Prometheus's
``instance`` label tell replicas apart) and scrape every replica; ``sum by (model)`` adds them.
Prometheus's multiprocess mode (shared mmap files) is not used: it needs a writable shared
folder per host and does not cross hosts.
"""

from __future__ import annotations

import bisect
import threading

__all__ = ["Metrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self, *, replica: str | None = None) -> None:
        #: labels every series carries (the replica's name, when set)
        self._const = (("replica", replica),) if replica else ()
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}
        self.rejections: dict[tuple[str, str], int] = {}
        self.alerts: dict[tuple[str, str], int] = {}
        self._hist: dict[str, list[int]] = {}
        self._hist_sum: dict[str, float] = {}
        self._hist_count: dict[str, int] = {}

    def _labels(self, names: tuple[str, ...], values: tuple[str, ...]) -> str:
        pairs = [*self._const, *zip(names, values, strict=True)]
        if not pairs:
            return ""
        return "{" + ",".join(f'{n}="{_escape(v)}"' for n, v in pairs) + "}"

    def observe(self, model: str, code: int, seconds: float, reason: str | None) -> None:
        key = (model, str(code))
        self.requests[key] = self.requests.get(key, 0) + 1
        if reason is not None:
            rkey = (model, reason)
            self.rejections[rkey] = self.rejections.get(rkey, 0) + 1
        counts = self._hist.get(model)
        if counts is None:
            counts = self._hist[model] = [0] * (len(_BUCKETS) + 1)
            self._hist_sum[model] = 0.0
            self._hist_count[model] = 0
        counts[bisect.bisect_left(_BUCKETS, seconds)] += 1
        self._hist_sum[model] += seconds
        self._hist_count[model] += 1

    def alert(self, model: str, detector: str) -> None:
        key = (model, detector)
        self.alerts[key] = self.alerts.get(key, 0) + 1

    def render(self, models_ready: dict[str, bool]) -> str:
        out: list[str] = []
        out.append("# HELP mltrust_requests_total Requests answered, by model and HTTP status.")
        out.append("# TYPE mltrust_requests_total counter")
        for (model, code), n in sorted(self.requests.items()):
            out.append(
                f"mltrust_requests_total{self._labels(('model', 'code'), (model, code))} {n}"
            )
        out.append("# HELP mltrust_rejections_total Requests refused, by model and reason.")
        out.append("# TYPE mltrust_rejections_total counter")
        for (model, reason), n in sorted(self.rejections.items()):
            labels = self._labels(("model", "reason"), (model, reason))
            out.append(f"mltrust_rejections_total{labels} {n}")
        out.append("# HELP mltrust_detector_alerts_total Detector alerts, by model and detector.")
        out.append("# TYPE mltrust_detector_alerts_total counter")
        for (model, det), n in sorted(self.alerts.items()):
            labels = self._labels(("model", "detector"), (model, det))
            out.append(f"mltrust_detector_alerts_total{labels} {n}")
        out.append("# HELP mltrust_request_seconds Request latency, by model.")
        out.append("# TYPE mltrust_request_seconds histogram")
        for model in sorted(self._hist):
            cumulative = 0
            for bound, n in zip((*_BUCKETS, float("inf")), self._hist[model], strict=True):
                cumulative += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                labels = self._labels(("model", "le"), (model, le))
                out.append(f"mltrust_request_seconds_bucket{labels} {cumulative}")
            base = self._labels(("model",), (model,))
            out.append(f"mltrust_request_seconds_sum{base} {self._hist_sum[model]!r}")
            out.append(f"mltrust_request_seconds_count{base} {self._hist_count[model]}")
        out.append("# HELP mltrust_model_ready Whether a model passed admission and is served.")
        out.append("# TYPE mltrust_model_ready gauge")
        for model, ready in sorted(models_ready.items()):
            out.append(f"mltrust_model_ready{self._labels(('model',), (model,))} {int(ready)}")
        return "\n".join(out) + "\n"
