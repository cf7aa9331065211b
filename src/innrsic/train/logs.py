"""Run-directory logs: CSV/JSON tables rewritten atomically, TensorBoard, and a run's set."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import torch

from innrsic.atomic import write_bytes_atomic

log = logging.getLogger("innrsic.train")


class TableLog:
    """Rows of numbers keyed by ``step``, kept as ``<stem>.csv`` and ``<stem>.json``.

    On resume, rows after the resume step are dropped (that part of the run is redone).
    """

    def __init__(self, run_dir: str | os.PathLike[str], stem: str, resume_step: int = 0) -> None:
        self.csv_path = Path(run_dir) / f"{stem}.csv"
        self.json_path = Path(run_dir) / f"{stem}.json"
        self.rows: list[dict[str, Any]] = []
        if resume_step and self.json_path.is_file():
            try:
                rows = json.loads(self.json_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                rows = []
            self.rows = [r for r in rows if isinstance(r, dict) and r.get("step", 0) <= resume_step]

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self._write()

    def _write(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: _fmt(row.get(k, "")) for k in columns})
        write_bytes_atomic(self.csv_path, buffer.getvalue().encode())
        clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                  for k, v in row.items()} for row in self.rows]
        write_bytes_atomic(self.json_path, (json.dumps(clean, indent=1) + "\n").encode())


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


class TensorBoard:
    """A SummaryWriter under ``<run>/tensorboard`` (purged past the resume step)."""

    def __init__(self, run_dir: str | os.PathLike[str], resume_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(
            str(Path(run_dir) / "tensorboard"), purge_step=resume_step + 1 if resume_step else None
        )

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        for name, value in values.items():
            if math.isfinite(value):
                self.writer.add_scalar(f"{prefix}{name}", value, step)

    def images(self, images: dict[str, torch.Tensor], step: int) -> None:
        for name, image in images.items():
            self.writer.add_image(name, image.clamp(0, 1), step, dataformats="CHW")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class RunLogs:
    """What rank 0 records of a run: ``train_log`` and ``metrics`` tables, TensorBoard and the
    log lines beside them."""

    def __init__(self, run_dir: str | os.PathLike[str], start_step: int = 0) -> None:
        self.train = TableLog(run_dir, "train_log", start_step)
        self.metrics = TableLog(run_dir, "metrics", start_step)
        self.board = TensorBoard(run_dir, start_step)

    def training(self, step: int, end_step: int, means: dict[str, float]) -> None:
        """The training terms averaged over the steps since the last call."""
        log.info("step %d/%d  %s", step, end_step, "  ".join(
            f"{k} {v:.4g}" for k, v in means.items()))
        self.board.scalars(means, step, "train/")
        self.train.append({"step": step, **means})

    def validation(
        self, step: int, metrics: dict[str, float], images: dict[str, torch.Tensor], improved: bool
    ) -> None:
        """One validation's metrics and images; `improved`: it made a new best model."""
        self.board.scalars(metrics, step, "")
        self.board.images(images, step)
        self.metrics.append({"step": step, **metrics, "best": float(improved)})
        log.info("validation at step %d: %s%s", step, "  ".join(
            f"{k} {v:.4f}" for k, v in metrics.items()), "  (new best)" if improved else "")

    def close(self) -> None:
        self.board.close()
