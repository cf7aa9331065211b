"""Where a batch runs: in this process, on a dask.distributed LocalCluster of worker processes
on this machine, or on an existing cluster (a scheduler's address).

`cluster_plan` settles the choice: ``--scheduler ADDRESS`` uses that cluster; ``--workers N``
starts N worker processes (at most one per file; 1: this process, no cluster); ``auto`` starts
one worker per usable core, fewer where memory gives each less than `WORKER_MEMORY`, and stays in
this process for batches under `MIN_CLUSTER_JOBS` files (starting workers costs seconds). Each
local worker runs one task at a time with ``cores // workers`` compute threads, so workers x
threads fits the cores, and gets an equal share of the memory as its limit (the operations
read, code and write large scenes tile by tile, so one task stays within it).

`worker_cached` keeps a model or codec per process, so each worker loads it once, not once per
task. Distributed reruns the tasks of a worker that dies on the others; the operations write
their outputs atomically, so a rerun replaces nothing partial.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from distributed import Client

T = TypeVar("T")

AUTO = "auto"
MIN_CLUSTER_JOBS = 8
WORKER_MEMORY = 2 << 30  # bytes a worker is planned with: a model, a codec and a few tiles
CONNECT_TIMEOUT_S = 10

_CACHE: dict[Hashable, Any] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ClusterPlan:
    """`scheduler` (an existing cluster), else `workers` local worker processes (1: this
    process) with `threads` compute threads each (None: the worker's own setting)."""

    workers: int
    threads: int | None = None
    scheduler: str | None = None

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.workers > 1

    def describe(self) -> str:
        if self.scheduler is not None:
            return f"cluster at {self.scheduler}"
        if self.workers <= 1:
            return "this process"
        return f"{self.workers} local worker processes x {self.threads} thread(s)"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def available_memory() -> int:
    """Bytes of memory available to new processes."""
    import psutil

    return int(psutil.virtual_memory().available)


def auto_workers(jobs: int, cores: int | None = None, memory: int | None = None) -> int:
    """Local workers for a batch of `jobs` files: one per core, at most one per
    `WORKER_MEMORY` of available memory and one per job; 1 below `MIN_CLUSTER_JOBS` jobs."""
    if jobs < MIN_CLUSTER_JOBS:
        return 1
    cores = usable_cores() if cores is None else cores
    memory = available_memory() if memory is None else memory
    return max(1, min(cores, memory // WORKER_MEMORY, jobs))


def cluster_plan(
    workers: int | str, scheduler: str | None, jobs: int, threads: int | None = None
) -> ClusterPlan:
    """The plan for ``--workers`` (a count or ``auto``) and ``--scheduler`` over `jobs` files;
    local workers get `threads` compute threads each (None: their share of the cores)."""
    if scheduler is not None:
        return ClusterPlan(workers=0, threads=threads, scheduler=scheduler)
    count = auto_workers(jobs) if workers == AUTO else max(1, min(int(workers), jobs))
    return ClusterPlan(count, threads or max(1, usable_cores() // count))


@contextlib.contextmanager
def cluster_client(plan: ClusterPlan) -> Iterator[Client | None]:
    """A client of the plan's cluster (started here for local workers, closed after the
    block), or None when the plan is this process. An unreachable scheduler raises OSError."""
    if not plan.distributed:
        yield None
        return
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # the batch reports failures
    if plan.scheduler is not None:
        with Client(plan.scheduler, timeout=CONNECT_TIMEOUT_S) as client:
            yield client
        return
    threads = str(plan.threads)  # torch and OpenMP read it when they load
    cluster = LocalCluster(
        n_workers=plan.workers,
        threads_per_worker=1,
        processes=True,
        memory_limit="auto",  # an equal share of this machine's memory each
        dashboard_address=None,  # no dashboard (a cluster of `dask scheduler` has its own)
        # the scheduler's HTTP server (health checks) on a free local port, not 8787: no "port
        # in use" warning when another cluster or program holds it
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        silence_logs=logging.CRITICAL,
        env={"OMP_NUM_THREADS": threads, "OPJ_NUM_THREADS": threads,
             "PYTHONWARNINGS": "ignore"},  # a worker's library warnings are not printed raw
    )
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def worker_cached(key: Hashable, make: Callable[[], T]) -> T:
    """The object `make()` built for `key` in this process, built on first use (a worker
    loads each model or codec once, whatever number of tasks it runs)."""
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = make()
        return _CACHE[key]
