"""Running one operation over many files: progress bar, per-file errors, a final tally.

A file that fails is reported and skipped; the others complete. Outputs are written
atomically by the operations themselves, so an interrupted batch leaves only whole files.
An interrupt (Ctrl-C, or SIGTERM/SIGHUP under `innrsic.interrupt.signals_as_interrupt`) stops
the batch: the report names the file that was in progress (no output written) and those not
started, and its exit code is 128 + the signal number. Running the same command again with
``skip_existing`` (``--skip-existing``) finishes the rest.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from innrsic.errors import InnrsicError
from innrsic.interrupt import exit_status, signal_name

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """Which jobs finished, failed (with the reason), were skipped or, after an interrupt,
    were left undone."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, Path]] = field(default_factory=list)
    not_done: list[Path] = field(default_factory=list)
    interrupt: KeyboardInterrupt | None = None

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
        for path, reason in self.failed:
            print(f"  failed: {path}: {reason}", file=sys.stderr)
        for number, path in enumerate(self.not_done):
            state = "interrupted (no output written)" if number == 0 else "not started"
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


def run_jobs(
    jobs: list[tuple[Path, Path]],
    operation: Callable[[Path, Path], str],
    description: str,
    overwrite: bool = False,
    skip_existing: bool = False,
) -> BatchReport:
    """Run `operation(source, target)` on each job; it returns a one-line result to print.

    An existing target is skipped with `skip_existing`, replaced with `overwrite`, and a
    failure otherwise, so nothing is replaced by accident. Any exception from the operation
    fails that job alone; KeyboardInterrupt ends the batch (module doc) and is not re-raised:
    the report carries it.
    """
    report = BatchReport()
    show_bar = len(jobs) > 1
    running: tuple[Path, Path, tuple[int, int] | None] | None = None
    try:
        with tqdm(
            # disable=None: a bar on a terminal only, so logs and captured output stay clean
            jobs, desc=description, unit="file", disable=None if show_bar else True,
            file=sys.stderr,
        ) as bar:
            for source, target in bar:
                if target.exists() and skip_existing:
                    report.skipped.append((source, target))
                    continue
                if target.exists() and not overwrite:
                    report.failed.append((source, f"{target} exists (use --force to replace it)"))
                    continue
                running = (source, target, _identity(target))
                try:
                    message = operation(source, target)
                except Exception as exc:  # one bad file must not stop the batch
                    running = None
                    reason = str(exc)
                    if not isinstance(exc, InnrsicError | OSError):
                        reason = f"{type(exc).__name__}: {reason}"
                    log.debug("%s failed", source, exc_info=exc)
                    report.failed.append((source, reason))
                    if show_bar:
                        tqdm.write(f"failed {source}: {reason}", file=sys.stderr)
                    continue
                report.done.append((source, target))
                running = None
                if not show_bar:
                    print(message)
    except KeyboardInterrupt as exc:
        report.interrupt = exc
        if running is not None and _finished(running, report.done):
            report.done.append(running[:2])  # interrupted after its output was in place
        handled = len(report.done) + len(report.failed) + len(report.skipped)
        report.not_done = [source for source, _ in jobs[handled:]]
    return report


def run_batch(
    args: argparse.Namespace,
    jobs: list[tuple[Path, Path]],
    operation: Callable[[Path, Path], str],
    description: str,
    verb: str,
) -> int:
    """`run_jobs` with the command's ``--force``/``--skip-existing``, then the summary
    (`BatchReport.print_summary` with `verb`); returns the exit code."""
    report = run_jobs(jobs, operation, description, args.force, args.skip_existing)
    report.print_summary(verb)
    return report.exit_code


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
