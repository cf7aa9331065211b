"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary file beside the target (``.<name>.<random>.tmp``), is fsynced and
renamed over the target, and the directory is fsynced so the rename survives a power loss. A
process killed outright (SIGKILL) can leave only such a temporary file behind, never a partial
target; any exception or interrupt removes it (an interrupt is held back while the file is
created and its removal registered, `innrsic.interrupt.interrupts_deferred`). `atomic_output`
hands out an open file, `atomic_path` a path for writers that open files by name (GDAL), and
`scratch_folder` a folder beside the target (``.<name>.<random>.tmpdir``) for intermediate
files. Whatever a killed writer left matches ``.<name>.*.tmp*`` (`leftovers`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from innrsic.interrupt import interrupts_deferred


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[Path]:
    """An empty temporary file beside `path`, for writers that open files by name (GDAL);
    renamed over `path` (`replace_durably`) only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path`
    is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        with interrupts_deferred():
            fd, tmp_name = tempfile.mkstemp(
                prefix=f".{target.name}.", suffix=suffix, dir=target.parent
            )
            cleanup.callback(_remove, tmp_name)  # after the rename there is nothing to remove
        try:
            # mkstemp creates the file private (0600); give it the mode a plain open() would.
            os.fchmod(fd, 0o666 & ~_current_umask())
        finally:
            os.close(fd)
        yield Path(tmp_name)
        replace_durably(tmp_name, target)


@contextlib.contextmanager
def scratch_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A new folder beside `path` (same file system, so a rename from it is atomic), removed
    with its contents however the block ends."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        with interrupts_deferred():
            folder = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmpdir", dir=target.parent)
            )
            cleanup.callback(_remove_tree, folder)
        yield folder


def leftovers(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files and scratch folders that writers of `path` killed outright (SIGKILL)
    left beside it."""
    target = Path(path)
    return sorted(target.parent.glob(f".{glob.escape(target.name)}.*.tmp*"))


def remove_leftovers(path: str | os.PathLike[str]) -> None:
    """Remove `leftovers(path)`: call it only when no writer of `path` runs."""
    for leftover in leftovers(path):
        if leftover.is_dir():
            _remove_tree(leftover)
        else:
            leftover.unlink(missing_ok=True)


def _remove_tree(folder: Path) -> None:
    with interrupts_deferred():  # an interrupt would leave it half removed
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path`; rename it over `path` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and `path`
    is left untouched.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        yield handle


def replace_durably(written: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Fsync the complete file `written`, rename it over `target` and fsync the directory."""
    with open(written, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(written, target)
    fsync_directory(Path(target).parent)


def _remove(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable, where the platform allows (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. Windows, some network file systems: the rename itself is still atomic
    finally:
        os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_output(path) as handle:
        handle.write(data)


def write_with_atomic(path: str | os.PathLike[str], writer: Callable[[BinaryIO], None]) -> None:
    """Call `writer(handle)` on a temporary file and move it to `path` when it returns."""
    with atomic_output(path) as handle:
        writer(handle)
