"""Training: one loop (`Trainer`, single process or torchrun DDP) and per-model recipes.

`train_enhancer(config)` trains the INN-RSIC enhancer; a learned-codec recipe plugs into the
same `Trainer` through the `Recipe` interface.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from innrsic.train.config import EnhancerTrainingConfig, load_config
from innrsic.train.recipe import Optimization, Recipe, StepOutput, ValidationResult
from innrsic.train.trainer import Trainer, TrainResult, run_recipe

__all__ = [
    "EnhancerTrainingConfig",
    "Optimization",
    "Recipe",
    "StepOutput",
    "TrainResult",
    "Trainer",
    "ValidationResult",
    "load_enhancer_config",
    "run_recipe",
    "train_enhancer",
]


def load_enhancer_config(
    path: str | os.PathLike[str] | None = None, overrides: Iterable[str] = ()
) -> EnhancerTrainingConfig:
    """The enhancer training config: defaults <- YAML file <- ``section.key=value`` overrides."""
    return load_config(EnhancerTrainingConfig, path, overrides)


def train_enhancer(
    config: EnhancerTrainingConfig, resume: bool = False, stop_at: int | None = None
) -> TrainResult:
    """Train the enhancer as `config` says; `resume` continues from the newest checkpoint.

    `stop_at` ends the run after that step as if it had been interrupted (for tests and
    time-sliced jobs); a later call with ``resume=True`` continues it exactly.
    """
    from innrsic.train.enhancer import EnhancerRecipe

    return run_recipe(EnhancerRecipe(config), config, resume, stop_at)
