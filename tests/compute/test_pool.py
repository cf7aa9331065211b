"""Fan-out: results in job order with failures per job, here or in spawned processes; an
interrupt keeps the finished jobs and cancels the rest."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from innrsic.compute.pool import fan_out


def run(jobs: list[str], **where: object) -> tuple[list[tuple[str, int]], list[str]]:
    done: list[tuple[str, int]] = []
    failed: list[str] = []
    fan_out(int, jobs, lambda job, value: done.append((job, value)),
            lambda job, exc: failed.append(f"{job}: {type(exc).__name__}"), **where)
    return done, failed


def test_results_in_order_failures_per_job() -> None:
    jobs = ["3", "x", "1", "2"]
    expected = ([("3", 3), ("1", 1), ("2", 2)], ["x: ValueError"])
    assert run(jobs) == expected  # this process
    assert run(jobs, workers=2) == expected  # two spawned processes
    with ThreadPoolExecutor(2) as executor:
        assert run(jobs, executor=executor) == expected


def test_one_worker_or_one_job_runs_here() -> None:
    pids: list[int] = []
    for jobs, workers in ((["a", "b"], 1), (["c"], 4)):  # a lambda: no process could run it
        fan_out(lambda job: os.getpid(), jobs, lambda job, pid: pids.append(pid),
                lambda job, exc: None, workers=workers)
    assert pids == [os.getpid()] * 3


def test_an_interrupt_keeps_the_finished_jobs() -> None:
    ran: list[int] = []
    done: list[int] = []

    def task(job: int) -> int:
        time.sleep(0.01)
        if job == 3:
            raise KeyboardInterrupt  # the wait for job 3 is interrupted
        ran.append(job)
        return job

    with ThreadPoolExecutor(2) as executor, pytest.raises(KeyboardInterrupt):
        fan_out(task, list(range(50)), lambda job, value: done.append(value),
                lambda job, exc: None, executor=executor)
    assert done == sorted(ran) and {0, 1, 2} <= set(done) and len(done) < 49
