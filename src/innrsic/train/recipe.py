"""What a model brings to the shared training loop: the `Recipe` interface.

The loop (`innrsic.train.trainer`) owns steps, data order, DDP, checkpoints, resume, logging
and best-model tracking. A recipe owns everything model-specific: the network, its training
data, loss, optimizers, validation and how its weights are exported. The enhancer recipe is
`innrsic.train.enhancer.EnhancerRecipe`; a learned-codec recipe plugs in the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch
from torch import nn
from torch.utils.data import Dataset

from innrsic.train.config import OptimConfig

Batch = dict[str, torch.Tensor]
"""One training batch: tensors by name (``gt``, ``decoded``, ...)."""


@dataclass
class StepOutput:
    """One training step's loss (to back-propagate), its terms as floats, optional images."""

    loss: torch.Tensor
    terms: dict[str, float]
    images: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class ValidationResult:
    """Validation metrics (flat names such as ``enhanced/lpips``) and images (3,H,W in [0,1])."""

    metrics: dict[str, float]
    images: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class AuxiliaryObjective:
    """A loss of the parameters alone, minimised by its own optimizer after each main step.

    CompressAI's ``aux_loss()`` is one: it fits the entropy bottleneck's ``quantiles``, which
    the rate-distortion loss does not train, so that ``update()`` tabulates the right range.
    Only the optimizer's own parameters receive its gradients (the loss also depends on
    others, which it must not move).
    """

    name: str  # logged as a training term
    loss: Callable[[], torch.Tensor]
    optimizer: torch.optim.Optimizer


@dataclass
class Optimization:
    """Optimizers and their LR schedulers (stepped once per training step), and auxiliary
    objectives stepped after the main optimizers."""

    optimizers: list[torch.optim.Optimizer]
    schedulers: list[torch.optim.lr_scheduler.LRScheduler]
    auxiliary: list[AuxiliaryObjective] = field(default_factory=list)

    @property
    def all_optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer a checkpoint holds: the main ones, then the auxiliary ones."""
        return [*self.optimizers, *(objective.optimizer for objective in self.auxiliary)]


class Recipe(Protocol):
    """The model-specific half of training (see the module doc)."""

    name: str
    best_metric: str  # a key of ValidationResult.metrics
    best_mode: Literal["min", "max"]
    validate_every: int  # steps; 0 = never
    num_workers: int  # data-loader worker processes

    def build_model(self) -> nn.Module:
        """The trainable network (built after the seed is set, identically on every rank)."""

    def setup(self, device: torch.device, rank: int, world_size: int) -> None:
        """Move loss networks to `device`; learn the DDP layout before the first step."""

    def train_dataset(self) -> Dataset:
        """A dataset indexed by `innrsic.data.SampleKey`; items are dicts of tensors."""

    def training_module(self, model: nn.Module) -> nn.Module:
        """The module whose `forward` runs one training pass (this is what DDP wraps)."""

    def build_optimization(self, model: nn.Module) -> Optimization:
        """Optimizers and schedulers for `model`."""

    def clip_parameters(self, model: nn.Module) -> Iterable[nn.Parameter]:
        """The parameters whose gradient norm is clipped."""

    @property
    def grad_clip(self) -> float:
        """Max gradient norm (0 = no clipping)."""

    def training_step(self, module: nn.Module, batch: Batch, step: int,
                      generator: torch.Generator, want_images: bool) -> StepOutput:
        """Run `module` on `batch` and return the loss; random draws come from `generator`."""

    def validate(self, model: nn.Module, device: torch.device) -> ValidationResult:
        """Evaluate `model` (not wrapped); called on rank 0 only."""

    def save_model(self, model: nn.Module, path: str | os.PathLike[str]) -> None:
        """Export the weights in the model's own format (e.g. enhancer safetensors)."""


def adamw_multistep(params: Iterable[nn.Parameter], config: OptimConfig) -> Optimization:
    """AdamW + MultiStepLR as configured (the INN-RSIC optimisation)."""
    optimizer = torch.optim.AdamW(
        params, lr=config.lr, betas=(config.betas[0], config.betas[1]),
        weight_decay=config.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(
        optimizer, milestones=list(config.milestones), gamma=config.gamma
    )
    return Optimization([optimizer], [scheduler])
