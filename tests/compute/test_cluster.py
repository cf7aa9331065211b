"""Where a batch runs: the worker count from cores, memory and batch size; the per-process
cache."""

from __future__ import annotations

from innrsic.compute.cluster import (
    MIN_CLUSTER_JOBS,
    WORKER_MEMORY,
    auto_workers,
    cluster_plan,
    worker_cached,
)


def test_auto_workers_from_cores_memory_and_jobs() -> None:
    plenty = 64 * WORKER_MEMORY
    assert auto_workers(MIN_CLUSTER_JOBS - 1, cores=8, memory=plenty) == 1  # tiny batch: here
    assert auto_workers(100, cores=8, memory=plenty) == 8
    assert auto_workers(100, cores=8, memory=3 * WORKER_MEMORY) == 3  # memory bounds it
    assert auto_workers(MIN_CLUSTER_JOBS, cores=64, memory=plenty) == MIN_CLUSTER_JOBS
    assert auto_workers(100, cores=8, memory=0) == 1


def test_plan_threads_fit_the_cores() -> None:
    plan = cluster_plan(2, None, jobs=10)
    assert plan.workers == 2 and plan.distributed and plan.threads >= 1
    assert cluster_plan(4, None, jobs=2).workers == 2  # never more workers than files
    assert cluster_plan(3, None, jobs=9, threads=5).threads == 5  # --threads wins
    serial = cluster_plan(1, None, jobs=10)
    assert not serial.distributed and serial.describe() == "this process"
    remote = cluster_plan("auto", "tcp://head:8786", jobs=1)
    assert remote.distributed and remote.threads is None


def test_worker_cached_builds_once() -> None:
    calls: list[int] = []
    for _ in range(3):
        value = worker_cached(("test", "once"), lambda: calls.append(1) or "built")
    assert value == "built" and calls == [1]
