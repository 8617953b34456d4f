"""Where batches of independent work run: this process's pool, or a Ray cluster.

Scanning many files and hashing a large model are embarrassingly parallel: the file list is
made locally by the one walker (:mod:`mltrust.files`), split into batches, and each batch is
handed to an :class:`Executor` that runs a picklable function on it *somewhere* and hands the
results back. The security logic never changes with the executor: a batch is a list of paths
(or byte ranges of paths) and the function is the same ``scan_file``/hashing code the local
path runs; only where it runs differs. That is why ``--ray`` gives the same report and the same
signature as a local run (tests compare them byte for byte).

Decisions, stated once:

- **Paths, never contents.** A task receives paths and reads the files itself, with a bounded
  buffer (scanning: ``Limits``; hashing: one block per task), so nothing the size of a model
  travels through the object store and a task's memory does not grow with the model.
- **Bounded in flight.** At most ``max_in_flight`` batches are submitted at once; results are
  collected as they finish, so the driver's memory is bounded by the batch size, not by the
  number of files.
- **Retries, then fail closed.** A task whose worker died (killed, out of memory, node lost) is
  retried ``max_retries`` times by Ray; one that still fails is reported as :class:`Failed`
  and the caller turns it into an error result (scan) or an error (sign) — never a gap.
- **Same version everywhere.** Every task checks that the worker runs the driver's mltrust
  version; a mixed cluster could scan with other rules, so a mismatch fails the task.
"""

from __future__ import annotations

from mltrust.executors._local import ProcessExecutor
from mltrust.executors.interface import Executor, Failed

__all__ = ["Executor", "Failed", "ProcessExecutor", "ray_executor"]


def ray_executor(address: str = "local", **options: object) -> Executor:
    """A :class:`~mltrust.executors._ray.RayExecutor` (imports Ray, an optional extra)."""
    from mltrust.executors._ray import RayExecutor

    return RayExecutor(address, **options)  # type: ignore[arg-type]
