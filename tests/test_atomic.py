"""Atomic writes and scratch folders: the target is old or whole, and whatever a writer killed
outright leaves beside it is found and removed by name."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from innrsic.atomic import (
    atomic_output,
    leftovers,
    remove_leftovers,
    scratch_folder,
    write_bytes_atomic,
)

KILLED_WRITER = """
import sys, time
from pathlib import Path
from innrsic.atomic import atomic_output, scratch_folder

target = Path(sys.argv[1])
with scratch_folder(target) as scratch, atomic_output(target) as handle:
    (scratch / "decoded.tif").write_bytes(b"x" * 1000)
    handle.write(b"partial")
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)
"""


def test_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError), atomic_output(target) as handle:
        handle.write(b"new, partial")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert sorted(tmp_path.iterdir()) == [target]


def test_scratch_folder_is_beside_the_target_and_removed_on_error(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.tif"
    with pytest.raises(KeyboardInterrupt), scratch_folder(target) as scratch:
        assert scratch.parent == target.parent and scratch.is_dir()
        assert scratch.name.startswith(".out.tif.") and scratch.name.endswith(".tmpdir")
        (scratch / "plain.tif").write_bytes(b"data")
        raise KeyboardInterrupt
    assert list(target.parent.iterdir()) == []


def test_what_a_killed_writer_leaves_is_found_and_removed(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    other = tmp_path / "out.png2"  # a neighbour whose name starts alike is not touched
    other.write_bytes(b"keep")
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = leftovers(target)
    assert {path.suffix for path in left} == {".tmp", ".tmpdir"}
    assert not target.exists()
    remove_leftovers(target)
    assert sorted(tmp_path.iterdir()) == [other]
