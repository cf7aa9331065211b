"""Independent jobs fanned out to worker processes, each result handed back in job order.

`fan_out` runs the jobs in this process (one worker or one job), as tasks of an executor the
caller holds (a dask.distributed client's, `innrsic.compute.cluster`), or in a pool of spawned
processes: fresh interpreters, so no forked torch or OpenMP state. A job's exception is handed
to the caller and the others go on. An interrupt (Ctrl-C, SIGTERM) cancels the jobs not
started, waits for those running and hands back every finished one before it goes on.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import TypeVar

J = TypeVar("J")
R = TypeVar("R")


def fan_out(
    task: Callable[[J], R],
    jobs: Sequence[J],
    done: Callable[[J, R], None],
    failed: Callable[[J, Exception], None],
    *,
    workers: int = 1,
    executor: Executor | None = None,
) -> None:
    """Call ``done(job, task(job))``, or ``failed(job, exception)``, for each of `jobs` in
    order; `task` runs here, on `executor` when given, else in `workers` spawned processes
    (`task` and the jobs then pickle)."""
    if executor is None and (workers <= 1 or len(jobs) <= 1):
        for job in jobs:
            try:
                result = task(job)
            except Exception as exc:  # handed to the caller; the other jobs go on
                failed(job, exc)
            else:
                done(job, result)
        return
    with _pool(workers, executor) as pool:
        _collect([(job, pool.submit(task, job)) for job in jobs], done, failed)


def _pool(workers: int, executor: Executor | None) -> contextlib.AbstractContextManager[Executor]:
    """`executor` as it is (not shut down after), else a spawn pool of `workers` processes."""
    if executor is not None:
        return contextlib.nullcontext(executor)
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _collect(
    futures: list[tuple[J, Future[R]]],
    done: Callable[[J, R], None],
    failed: Callable[[J, Exception], None],
) -> None:
    """Hand back the futures' results in order. Interrupted, cancel the futures not started
    and hand back the finished ones not handed back yet before the interrupt goes on."""
    handed = 0
    try:
        for job, future in futures:
            try:
                result = future.result()
            except Exception as exc:
                failed(job, exc)
            else:
                done(job, result)
            handed += 1
    except BaseException:  # interrupted: drop the queue, keep what is finished
        for _, future in futures[handed:]:
            future.cancel()
        for job, future in futures[handed:]:
            if not future.cancelled() and future.exception() is None:
                done(job, future.result())
        raise
