"""Batches on a Ray cluster: ``mltrust scan --ray [ADDRESS|local]``, ``mltrust sign --ray``.

``address`` is ``local`` (start a one-machine cluster in this process, bound to 127.0.0.1 so
that its ports are not reachable from the network; reused when Ray is already initialised),
``auto`` (the cluster this machine belongs to) or a cluster address (``HOST:PORT`` or
``ray://HOST:10001``). The workers must have the same mltrust version installed and see the
files under the same paths (a shared or replicated file system): tasks read files by path.

What Ray adds is scheduling over many machines, not speed on one: every batch is a task (about
a millisecond of scheduling, plus serialising the results), and a local cluster takes seconds
to start. ``benchmarks/ray_bench.py`` measures both against ``-j``; docs/scale.md has figures.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from mltrust.errors import ConfigError, Error
from mltrust.executors.interface import Failed

__all__ = ["RayExecutor", "run_checked"]

log = logging.getLogger("mltrust.executors")

T = TypeVar("T")
R = TypeVar("R")

#: Task retries after a worker or node failure (Ray's ``max_retries``).
DEFAULT_MAX_RETRIES = 3


def run_checked(fn: Callable[[T], R], item: T, version: str) -> R:
    """What every Ray task runs: refuse a worker with another mltrust version, then ``fn``."""
    from mltrust import __version__

    if __version__ != version:
        raise ConfigError(
            f"Ray worker runs mltrust {__version__}, the driver {version}",
            hint="install the same mltrust version on every node of the cluster",
        )
    return fn(item)


class RayExecutor:
    """Runs batches as Ray tasks (one CPU each), at most ``max_in_flight`` at a time."""

    name = "ray"

    def __init__(
        self,
        address: str = "local",
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_in_flight: int | None = None,
        num_cpus: int | None = None,
        task_memory: int | None = None,
    ) -> None:
        if max_retries < 0:
            raise ConfigError(f"max_retries must be at least 0, not {max_retries}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ConfigError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self.address = address or "local"
        self.max_retries = max_retries
        self.max_in_flight = max_in_flight
        self.num_cpus = num_cpus
        #: Bytes Ray reserves per task when scheduling (``memory=``); None: no reservation.
        self.task_memory = task_memory
        self._started = False
        self._ray: Any = None

    def _connect(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError as exc:
            raise ConfigError(
                "--ray needs Ray, an optional extra", hint="pip install 'mltrust[ray]'"
            ) from exc
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            if self.address == "local":
                # A new cluster even when RAY_ADDRESS names another one, bound to loopback:
                # nothing outside this machine reaches it.
                kwargs["address"] = "local"
                kwargs["_node_ip_address"] = "127.0.0.1"
                kwargs["num_cpus"] = self.num_cpus or os.cpu_count() or 1
            else:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except Exception as exc:
                raise ConfigError(
                    f"cannot start or reach the Ray cluster {self.address!r}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self._started = True
        self._ray = ray
        return ray

    def close(self) -> None:
        """Shut down the cluster if this executor started it (a shared one is left running)."""
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._started = False
        self._ray = None

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _limit(self, ray: Any) -> int:
        if self.max_in_flight is not None:
            return self.max_in_flight
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(2, 2 * cpus)

    def map_unordered(
        self, fn: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R | Failed]]:
        if not items:
            return
        from mltrust import __version__

        ray = self._connect()
        options: dict[str, Any] = {"num_cpus": 1, "max_retries": self.max_retries}
        if self.task_memory:
            options["memory"] = self.task_memory
        task = ray.remote(run_checked).options(**options)
        fn_ref = ray.put(fn)
        limit = self._limit(ray)
        pending: dict[Any, int] = {}
        nxt = 0
        while nxt < len(items) or pending:
            while nxt < len(items) and len(pending) < limit:
                pending[task.remote(fn_ref, items[nxt], __version__)] = nxt
                nxt += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                index = pending.pop(ref)
                yield index, self._outcome(ray, ref)

    @staticmethod
    def _outcome(ray: Any, ref: Any) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else None
            if isinstance(cause, Error):
                return Failed(str(cause), cause)
            text = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            return Failed(f"task failed: {text}", cause or exc)
        except ray.exceptions.RayError as exc:  # worker crashed after every retry, node lost...
            return Failed(f"task lost after {type(exc).__name__}: {exc}", exc)
