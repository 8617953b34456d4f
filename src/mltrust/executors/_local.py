"""A pool of worker processes on this machine (``mltrust scan -j N``)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from mltrust.errors import ConfigError
from mltrust.executors.interface import Failed

__all__ = ["ProcessExecutor"]

T = TypeVar("T")
R = TypeVar("R")


class ProcessExecutor:
    """``workers`` processes; ``fork`` where available, so they share the imported scanners
    (start-up in milliseconds). At most ``2 x workers`` batches are queued at a time."""

    name = "process"

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, not {workers}")
        self.workers = workers

    def map_unordered(
        self, fn: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R | Failed]]:
        methods = multiprocessing.get_all_start_methods()
        mp = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        limit = 2 * self.workers
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=mp) as pool:
            pending: dict[Future[R], int] = {}
            nxt = 0
            while nxt < len(items) or pending:
                while nxt < len(items) and len(pending) < limit:
                    try:
                        pending[pool.submit(fn, items[nxt])] = nxt
                    except BrokenProcessPool as exc:  # a worker died: nothing more runs here
                        yield nxt, Failed(f"worker process died: {exc}", exc)
                    nxt += 1
                if not pending:
                    continue
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    index = pending.pop(fut)
                    try:
                        yield index, fut.result()
                    except BrokenProcessPool as exc:
                        yield index, Failed(f"worker process died: {exc}", exc)
                    except Exception as exc:  # noqa: BLE001 (the caller fails it closed)
                        yield index, Failed(f"{type(exc).__name__}: {exc}", exc)
