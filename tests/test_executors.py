"""The process-pool executor behind `scan -j N`: a worker that dies fails its files closed."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from mltrust.executors import Failed, ProcessExecutor
from mltrust.scan import FileStatus, scan_paths


def _die_on(victim: str, fn: Callable[[Any], Any], item: list[str]) -> Any:
    """Kill the worker process when its batch holds ``victim`` (an OOM kill, a segfault)."""
    if victim in item:
        os._exit(1)
    return fn(item)


class _Killing(ProcessExecutor):
    def __init__(self, victim: str) -> None:
        super().__init__(2)
        self.victim = victim

    def map_unordered(
        self, fn: Callable[[Any], Any], items: Sequence[Any]
    ) -> Iterator[tuple[int, Any]]:
        return super().map_unordered(partial(_die_on, self.victim, fn), items)


def test_worker_killed_in_the_process_pool_fails_closed(tmp_path: Path) -> None:
    for i in range(100):
        (tmp_path / f"{i:03d}.pkl").write_bytes(pickle.dumps({"i": i}))
    victim = str(tmp_path / "050.pkl")
    report = scan_paths([tmp_path], executor=_Killing(victim))
    assert len(report.files) == 100  # nothing dropped
    by_path = {r.path: r for r in report.files}
    assert by_path[victim].status is FileStatus.ERROR and by_path[victim].findings
    assert report.errored and report.to_dict()["verdict"] != "pass"


def test_process_executor_reports_each_outcome() -> None:
    outcomes = dict(ProcessExecutor(2).map_unordered(len, [[1], [1, 2], [1, 2, 3]]))
    assert outcomes == {0: 1, 1: 2, 2: 3}
    failed = dict(ProcessExecutor(1).map_unordered(len, [5]))  # len(5) raises TypeError
    assert isinstance(failed[0], Failed) and "TypeError" in failed[0].message
