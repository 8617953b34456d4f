"""The executor interface: run a picklable function over batches and report each outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

__all__ = ["Executor", "Failed"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Failed:
    """A batch that did not produce a result after every retry.

    ``error`` is the task's own exception when it could be recovered (so a caller can re-raise
    an :class:`mltrust.errors.Error` from a remote task unchanged), else a description of what
    went wrong (worker lost, cluster unreachable).
    """

    message: str
    error: BaseException | None = None


class Executor(Protocol):
    """Runs ``fn`` on each item somewhere and yields ``(index, result or Failed)``.

    Results come in completion order (the caller puts them back in its own order). ``fn`` and
    the items must be picklable; ``fn`` is a module-level function so that it is sent by
    reference and the worker runs the code it has installed.
    """

    #: A short name for logs and reports (``process``, ``ray``).
    name: str

    def map_unordered(
        self, fn: Callable[[T], R], items: Sequence[T]
    ) -> Iterator[tuple[int, R | Failed]]: ...
