"""Running one operation over many files: progress bar, per-file errors, a final tally.

A file that fails is reported and skipped; the others complete. Outputs are written
atomically by the operations themselves, so an interrupted batch leaves only whole files.
An interrupt (Ctrl-C, or SIGTERM/SIGHUP under `innrsic.interrupt.signals_as_interrupt`) stops
the batch: the report names the file that was in progress (no output written) and those not
started, and its exit code is 128 + the signal number. Running the same command again with
``skip_existing`` (``--skip-existing``) finishes the rest.

`run_batch` runs the batch where ``--workers``/``--scheduler`` say (`innrsic.compute.cluster`):
in this process, or as one dask.distributed task per file, the bar advancing as futures
complete. A worker that dies has its tasks rerun on the others; an interrupt cancels the
futures not finished, and every file whose output is in place counts as done. Temporary files
of writes cut short by a dying worker (`innrsic.atomic`) are removed once the cluster is gone,
so the outputs are the whole files and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from innrsic.atomic import remove_leftovers
from innrsic.compute.cluster import ClusterPlan, cluster_client, cluster_plan
from innrsic.compute.threads import torch_threads
from innrsic.errors import ConfigError, InnrsicError, UsageError
from innrsic.interrupt import exit_status, signal_name

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """Which jobs finished (with what their operation returned), failed (with the reason),
    were skipped or, after an interrupt, were left undone (`started`: those in progress)."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, Path]] = field(default_factory=list)
    not_done: list[Path] = field(default_factory=list)
    interrupt: KeyboardInterrupt | None = None
    started: set[Path] = field(default_factory=set)
    results: dict[Path, Any] = field(default_factory=dict)
    # source -> (target, its identity before the batch) of each job handed to a cluster
    sent: dict[Path, tuple[Path, tuple[int, int] | None]] = field(default_factory=dict, repr=False)

    def recount(self) -> None:
        """Count as done each undone job whose output has since been put in place (a cancelled
        task that was running finishes its file): call it once the workers are gone."""
        for source in list(self.not_done):
            target, before = self.sent.get(source, (None, None))
            if target is not None and _identity(target) not in (None, before):
                self.not_done.remove(source)
                self.done.append((source, target))

    @property
    def exit_code(self) -> int:
        """128 + signal number when interrupted, else 1 if a job failed, else 0."""
        if self.interrupt is not None:
            return exit_status(self.interrupt)
        return 1 if self.failed else 0

    def print_summary(self, verb: str) -> None:
        """One line of totals, then one line per failed or undone file, on stderr."""
        total = len(self.done) + len(self.failed) + len(self.skipped) + len(self.not_done)
        line = f"{verb} {len(self.done)} of {total} file(s)"
        if self.skipped:
            line += f", skipped {len(self.skipped)} whose output exists"
        if self.failed:
            line += f", {len(self.failed)} failed"
        if self.interrupt is not None:
            line += f"; interrupted by {signal_name(self.interrupt)}, {len(self.not_done)} not done"
        print(line, file=sys.stderr)
        for path, reason in self.failed:  # a reason naming the file is not prefixed with it
            print(f"  failed: {reason if str(path) in reason else f'{path}: {reason}'}",
                  file=sys.stderr)
        for path in self.not_done:
            started = path in self.started
            state = "interrupted (no output written)" if started else "not started"
            print(f"  {state}: {path}", file=sys.stderr)
        if self.interrupt is not None:
            print(
                "every output written is complete; run the command again with --skip-existing "
                "to do the rest",
                file=sys.stderr,
            )


def plan_jobs(
    source: Path, target: Path, suffixes: Iterable[str], new_suffix: str
) -> list[tuple[Path, Path]]:
    """Pair each input with its output path.

    A directory source maps every file with one of `suffixes` (recursively) to the same
    relative path under `target` with `new_suffix`. A file source maps to `target`, or into
    it when `target` is an existing directory.
    """
    wanted = {s.lower() for s in suffixes}
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in wanted)
        return [(p, (target / p.relative_to(source)).with_suffix(new_suffix)) for p in files]
    if target.is_dir():
        return [(source, target / source.with_suffix(new_suffix).name)]
    return [(source, target)]


def refuse_existing(jobs: list[tuple[Path, Path]], force: bool, skip_existing: bool) -> None:
    """UsageError, before any work, when outputs exist and neither `force` (--force) nor
    `skip_existing` (--skip-existing) says what to do with them."""
    existing = [target for _, target in jobs if target.exists()] if not force else []
    if skip_existing or not existing:
        return
    if len(jobs) == 1:
        raise UsageError(f"{existing[0]} exists (use --force to replace it)")
    raise UsageError(
        f"{len(existing)} of {len(jobs)} outputs exist, e.g. {existing[0]} (use --force to "
        "replace them, or --skip-existing to do the rest)"
    )


def run_jobs(
    jobs: list[tuple[Path, Path]],
    operation: Callable[[Path, Path], Any],
    description: str,
    overwrite: bool = False,
    skip_existing: bool = False,
    client: Client | None = None,
    threads: int | None = None,
    echo: bool = True,
) -> BatchReport:
    """Run `operation(source, target)` on each job; it returns a result whose ``str`` is one
    line to print (kept in the report's `results`), printed for a one-job batch if `echo`.

    An existing target is skipped with `skip_existing`, replaced with `overwrite`, and a
    failure otherwise, so nothing is replaced by accident. Any exception from the operation
    fails that job alone; KeyboardInterrupt ends the batch (module doc) and is not re-raised:
    the report carries it. With a `client`, each job is a task on its cluster, run with
    `threads` torch threads (None: the worker's own); `operation` must pickle (cloudpickle).
    """
    if client is not None:
        return _run_distributed(client, jobs, operation, description, overwrite, skip_existing,
                                threads, echo)
    report = BatchReport()
    show_bar = len(jobs) > 1
    echo = echo and not show_bar
    running: tuple[Path, Path, tuple[int, int] | None] | None = None
    try:
        with tqdm(
            # disable=None: a bar on a terminal only, so logs and captured output stay clean
            jobs, desc=description, unit="file", disable=None if show_bar else True,
            file=sys.stderr,
        ) as bar:
            for source, target in bar:
                if not _target_free(report, source, target, overwrite, skip_existing):
                    continue
                running = (source, target, _identity(target))
                try:
                    message = operation(source, target)
                except Exception as exc:  # one bad file must not stop the batch
                    running = None
                    _fail(report, source, exc)
                    continue
                report.done.append((source, target))
                report.results[source] = message
                running = None
                if echo:
                    print(message)
    except KeyboardInterrupt as exc:
        report.interrupt = exc
        if running is not None and _finished(running, report.done):
            report.done.append(running[:2])  # interrupted after its output was in place
        elif running is not None:
            report.started.add(running[0])
        handled = len(report.done) + len(report.failed) + len(report.skipped)
        report.not_done = [source for source, _ in jobs[handled:]]
    return report


def _run_distributed(
    client: Client,
    jobs: list[tuple[Path, Path]],
    operation: Callable[[Path, Path], Any],
    description: str,
    overwrite: bool,
    skip_existing: bool,
    threads: int | None,
    echo: bool,
) -> BatchReport:
    """`run_jobs` as one task per job on `client`'s cluster (module doc)."""
    from distributed import as_completed

    report = BatchReport()
    show_bar = len(jobs) > 1
    echo = echo and not show_bar
    futures = {}
    try:
        for source, target in jobs:
            if _target_free(report, source, target, overwrite, skip_existing):
                report.sent[source] = (target, _identity(target))
                future = client.submit(_task, operation, threads, source, target, pure=False)
                futures[future] = (source, target)
        with tqdm(
            total=len(futures), desc=description, unit="file",
            disable=None if show_bar else True, file=sys.stderr,
        ) as bar:
            for future in as_completed(futures):
                source, target = futures.pop(future)
                if future.status == "error":
                    _fail(report, source, future.exception())
                else:
                    report.done.append((source, target))
                    report.results[source] = future.result()
                    if echo:
                        print(report.results[source])
                bar.update()
    except KeyboardInterrupt as exc:
        report.interrupt = exc
        running = _executing(client)
        client.cancel(list(futures))
        for future, (source, target) in futures.items():
            if future.status == "finished":
                report.done.append((source, target))
            else:
                report.not_done.append(source)
                if future.key in running:
                    report.started.add(source)
        report.recount()
        listed = {source for source, _ in [*report.done, *report.failed, *report.skipped]}
        listed.update(report.not_done)
        report.not_done += [source for source, _ in jobs if source not in listed]
    return report


def _executing(client: Client) -> set[str]:
    """The keys of the tasks the cluster's workers are executing now (empty if unknown)."""
    try:
        keys = client.run(_worker_executing, on_error="ignore")
    except Exception:  # only the labels of an interrupted batch depend on it
        return set()
    return {key for worker_keys in keys.values() for key in worker_keys}


def _worker_executing(dask_worker: Any) -> list[str]:
    """On a worker: the keys of the tasks it is executing."""
    return [key for key, task in dask_worker.state.tasks.items() if task.state == "executing"]


def _task(
    operation: Callable[[Path, Path], Any], threads: int | None, source: Path, target: Path
) -> Any:
    """One job on a worker, with `threads` torch threads (once torch is loaded; a local
    worker's environment sets the count torch starts with, `innrsic.compute.cluster`)."""
    with torch_threads(threads) if "torch" in sys.modules else contextlib.nullcontext():
        return operation(source, target)


def _target_free(
    report: BatchReport, source: Path, target: Path, overwrite: bool, skip_existing: bool
) -> bool:
    """Whether the job may write `target`; an existing one is recorded as skipped
    (`skip_existing`) or failed (neither flag), and replaced with `overwrite`."""
    if target.exists() and skip_existing:
        report.skipped.append((source, target))
        return False
    if target.exists() and not overwrite:
        report.failed.append((source, f"{target} exists (use --force to replace it)"))
        return False
    return True


def _fail(report: BatchReport, source: Path, exc: BaseException) -> None:
    """Record the failure of `source` (its reason in one line; the summary lists it)."""
    reason = str(exc)
    if not isinstance(exc, InnrsicError | OSError):
        reason = f"{type(exc).__name__}: {reason}"
    log.debug("%s failed", source, exc_info=exc)
    report.failed.append((source, reason))


def run_batch(
    args: argparse.Namespace,
    jobs: list[tuple[Path, Path]],
    operation: Callable[[Path, Path], Any],
    description: str,
    verb: str,
    summary: Callable[[BatchReport], None] | None = None,
) -> int:
    """`run_jobs` with the command's ``--force``/``--skip-existing`` where its ``--workers``/
    ``--scheduler`` say (each worker with the command's ``--threads``, if it has one), then
    the summary (`BatchReport.print_summary` with `verb`, then `summary`, if given, of the
    report; a one-file batch prints its line unless the command's ``--json`` asks for JSON);
    returns the exit code."""
    plan = cluster_plan(args.workers, args.scheduler, len(jobs), getattr(args, "threads", None))
    with batch_client(plan) as client:
        report = run_jobs(jobs, operation, description, args.force, args.skip_existing,
                          client=client, threads=plan.threads,
                          echo=not getattr(args, "json", False))
    if plan.distributed:
        report.recount()
        remove_orphans(target for _, target in jobs)
    report.print_summary(verb)
    if summary is not None:
        summary(report)
    return report.exit_code


@contextlib.contextmanager
def batch_client(plan: ClusterPlan) -> Iterator[Client | None]:
    """`cluster_client`, with an unreachable ``--scheduler`` refused as a ConfigError."""
    with contextlib.ExitStack() as stack:
        try:
            client = stack.enter_context(cluster_client(plan))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--scheduler {plan.scheduler}: cannot connect ({exc})") from None
        yield client


def remove_orphans(targets: Iterable[Path]) -> None:
    """Remove the temporary files and scratch folders (`innrsic.atomic`) left beside `targets`
    by writers that were killed: call it once no writer of these targets runs."""
    for target in targets:
        remove_leftovers(target)


def _finished(
    running: tuple[Path, Path, tuple[int, int] | None], done: list[tuple[Path, Path]]
) -> bool:
    """Whether the job in progress at an interrupt had written its output, unrecorded."""
    source, target, before = running
    return (source, target) not in done and _identity(target) not in (None, before)


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of `path`, None if absent: an atomic write changes it."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns
