"""Result rows on disk: append-only JSON lines, one file per shard, merged when read; and the
grid file (``grid.json``: the codecs, enhancers and temperatures run so far) beside them.

Each line is one row (a JSON object). A row is identified by its key: (image, codec spec,
enhancer id, temperature, seed); the decoded image of a codec has enhancer ``""`` and
temperature and seed ``null``, a control (enhancer ``control:<kind>``) has temperature and seed
``null`` too, and temperature 0 (deterministic) has seed ``null``.

These files are the one exception to innrsic's write-a-temporary-then-rename rule: they are
appended to, one flushed line per computed row, so that an interrupted run loses at most the
line being written. A torn last line (no newline) is cut off when the shard's file is opened
again; a line that does not parse is skipped and reported.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from innrsic.evaluation.grid import is_control

log = logging.getLogger(__name__)

ROWS_DIR = "rows"
GRID_FILE = "grid.json"
Row = dict[str, Any]
RowKey = tuple[str, str, str, float | None, int | None]


def row_key(row: Row) -> RowKey:
    temperature = row.get("temperature")
    seed = row.get("seed")
    return (
        str(row["image"]),
        str(row["codec"]),
        str(row.get("enhancer") or ""),
        None if temperature is None else float(temperature),
        None if seed is None else int(seed),
    )


def make_key(
    image: str, codec: str, enhancer: str = "", temperature: float | None = None,
    seed: int | None = None,
) -> RowKey:
    """The key of a row; `seed` is dropped for the decoded image and for temperature 0, and
    temperature too for the decoded image and the controls."""
    if not enhancer or is_control(enhancer):
        return (image, codec, enhancer, None, None)
    temperature = float(temperature if temperature is not None else 0.0)
    return (image, codec, enhancer, temperature, None if temperature == 0 else int(seed or 0))


def is_failed(row: Row) -> bool:
    """A row whose computation failed (it is computed again on the next run)."""
    return str(row.get("status", "")).startswith("failed")


def merge_row(old: Row | None, new: Row) -> Row:
    """Combine two rows with one key: a successful row beats a failed one; otherwise the
    union of their fields, the newer winning (rows only gain metrics over time)."""
    if old is None:
        return dict(new)
    if is_failed(new) and not is_failed(old):
        return old
    if is_failed(old) and not is_failed(new):
        return dict(new)
    return {**old, **new}


def read_json_file(path: Path) -> dict[str, Any]:
    """The JSON object in `path`, or {} when it is absent or unreadable (a warning)."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        log.warning("ignoring unreadable %s", path)
        return {}


def read_grid_file(out: Path) -> dict[str, Any]:
    """The contents of ``OUT/grid.json``, or {} when absent or unreadable."""
    return read_json_file(out / GRID_FILE)


def shard_path(out: str | os.PathLike[str], index: int, count: int) -> Path:
    return Path(out) / ROWS_DIR / f"shard-{index:04d}-of-{count:04d}.jsonl"


@dataclass
class RowSet:
    """Every row under an output folder, merged by key, in first-seen order."""

    rows: dict[RowKey, Row] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        key = row_key(row)
        self.rows[key] = merge_row(self.rows.get(key), row)


def read_rows(out: str | os.PathLike[str]) -> RowSet:
    """Read and merge all ``rows/*.jsonl`` files (sorted by name) under `out`."""
    result = RowSet()
    folder = Path(out) / ROWS_DIR
    if not folder.is_dir():
        return result
    for path in sorted(folder.glob("*.jsonl")):
        result.files.append(path)
        with open(path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            torn = number == len(lines)  # no newline after it: being written, or cut off
            try:
                row = json.loads(line)
                row_key(row)
            except (ValueError, KeyError, TypeError) as exc:
                if not torn:
                    result.bad_lines.append(f"{path.name}:{number}: {exc}")
                continue
            if torn:
                continue
            result.add(row)
    return result


class RowWriter:
    """Appends rows to one shard's file, one flushed line each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_tail(self.path)
        self._handle: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, row: Row) -> None:
        if self._handle is None:
            raise ValueError(f"{self.path}: writer is closed")
        self._handle.write(json.dumps(row, sort_keys=True) + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cut_torn_tail(path: Path) -> None:
    """Truncate `path` after its last newline (drop a line an interrupted run left half-written)."""
    if not path.is_file():
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)
