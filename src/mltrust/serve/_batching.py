"""Adaptive micro-batching: concurrent requests to one model share one inference call.

Requests that arrive while a batch is running wait for the next one; a batch takes every
waiting request with the same requested outputs and the same per-row shape, up to
``max_rows`` rows, concatenates them along axis 0, runs the runtime once in the thread pool
(with the model's timeout) and splits the outputs back by row counts. Under load this turns
32 single-row calls into one 32-row call, which costs a scikit-learn model about as much as
one row. At low load a request runs alone, immediately: nothing waits for a timer.

Only runtimes whose outputs keep the batch on axis 0 are batched (``batchable = True``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from mltrust.serve.runtimes.interface import Runtime

__all__ = ["Batcher"]


@dataclass(slots=True)
class _Job:
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    rows: int
    key: tuple[Any, ...]
    future: asyncio.Future[dict[str, np.ndarray]]


class Batcher:
    def __init__(
        self, runtime: Runtime, executor: Executor, *, timeout_s: float, max_rows: int = 256
    ) -> None:
        self._runtime = runtime
        self._executor = executor
        self._timeout = timeout_s
        self._max_rows = max_rows
        self._pending: list[_Job] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None
        self.batchable = bool(getattr(runtime, "batchable", False))

    async def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...], rows: int
    ) -> dict[str, np.ndarray]:
        loop = asyncio.get_running_loop()
        if not self.batchable or rows > self._max_rows:
            return await asyncio.wait_for(
                loop.run_in_executor(self._executor, self._runtime.predict, inputs, outputs),
                self._timeout,
            )
        key = (outputs, tuple((n, a.dtype.str, a.shape[1:]) for n, a in inputs.items()))
        job = _Job(inputs, outputs, rows, key, loop.create_future())
        self._pending.append(job)
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await job.future

    async def _drain(self) -> None:
        try:
            while self._pending:
                first = self._pending[0]
                batch: list[_Job] = []
                rest: list[_Job] = []
                rows = 0
                for job in self._pending:
                    if job.key == first.key and rows + job.rows <= self._max_rows:
                        batch.append(job)
                        rows += job.rows
                    else:
                        rest.append(job)
                self._pending = rest
                await self._run(batch, rows)
        finally:
            self._running = False

    async def _run(self, batch: list[_Job], rows: int) -> None:
        loop = asyncio.get_running_loop()
        outputs = batch[0].outputs
        if len(batch) == 1:
            inputs = batch[0].inputs
        else:
            inputs = {
                name: np.concatenate([j.inputs[name] for j in batch], axis=0)
                for name in batch[0].inputs
            }
        try:
            result = await asyncio.wait_for(
                loop.run_in_executor(self._executor, self._runtime.predict, inputs, outputs),
                self._timeout,
            )
            for name, arr in result.items():
                if arr.ndim == 0 or arr.shape[0] != rows:
                    raise ValueError(f"output {name} does not keep the batch on axis 0")
        except BaseException as exc:
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        start = 0
        for job in batch:
            end = start + job.rows
            if not job.future.done():
                job.future.set_result({n: a[start:end] for n, a in result.items()})
            start = end
