"""Running one operation over many files: progress bar, per-file errors, a final tally.

A file that fails is reported and skipped; the others complete. Outputs are written
atomically by the operations themselves, so an interrupted batch leaves only whole files.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from innrsic.errors import InnrsicError


@dataclass
class BatchReport:
    """Which jobs finished and which failed (with the reason)."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every job finished, 1 otherwise."""
        return 1 if self.failed else 0

    def print_summary(self, verb: str) -> None:
        """One line of totals, then one line per failed file, on stderr."""
        total = len(self.done) + len(self.failed)
        print(f"{verb} {len(self.done)} of {total} file(s)", file=sys.stderr)
        for path, reason in self.failed:
            print(f"  failed: {path}: {reason}", file=sys.stderr)


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
) -> BatchReport:
    """Run `operation(source, target)` on each job; it returns a one-line result to print.

    Existing targets are failures unless `overwrite` is set, so nothing is replaced by accident.
    """
    report = BatchReport()
    show_bar = len(jobs) > 1
    with tqdm(jobs, desc=description, unit="file", disable=not show_bar, file=sys.stderr) as bar:
        for source, target in bar:
            if target.exists() and not overwrite:
                report.failed.append((source, f"{target} exists (use --force to replace it)"))
                continue
            try:
                message = operation(source, target)
            except (InnrsicError, OSError) as exc:
                report.failed.append((source, str(exc)))
                if show_bar:
                    tqdm.write(f"skipped {source}: {exc}", file=sys.stderr)
                continue
            report.done.append((source, target))
            if not show_bar:
                print(message)
    return report
