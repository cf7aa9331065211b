"""What a finished training run tells its user: a one-line summary, reported by one process.

The weights to use are `TrainResult.weights` (`innrsic.train.trainer`). Under torchrun only
rank 0 reports: it alone knows the best value.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from innrsic.train.trainer import TrainResult

def reports_here() -> bool:
    """Whether this process reports the run: a single process, or torchrun's rank 0."""
    return int(os.environ.get("RANK", "0")) == 0


def run_summary(result: TrainResult, metric: str) -> str:
    """``trained to step N in RUN_DIR``, with the best `metric` value and its step if any."""
    best = (
        f", best {metric} {result.best_value:.4f} at step {result.best_step}"
        if result.best_value is not None
        else ""
    )
    return f"trained to step {result.step} in {result.run_dir}{best}"
