"""The training loop shared by every recipe: single process or torchrun DDP.

Run directory layout (only rank 0 writes)::

    config.yaml                  the resolved config (every field)
    checkpoints/step_NNNNNNNN.pt exact-resume checkpoints (newest `keep_checkpoints` kept)
    train_log.csv / .json        loss terms, lr, grad norm, steps/s every `log_every` steps
    metrics.csv / .json          validation metrics every `validate_every` steps
    best.safetensors             the model with the best validation metric
    final.safetensors            the model after the last step
    tensorboard/                 scalars and sample images

Resume reproduces an uninterrupted run exactly: batches and the per-step noise are functions of
(seed, step, rank), and the checkpoint restores model, optimizer, scheduler and RNG states.
It continues from the newest checkpoint that loads (an unreadable one is skipped with a
warning) and deletes the temporary files of saves that were killed (`innrsic.train.checkpoint`).
Ctrl-C, and SIGTERM/SIGHUP under the CLI (`innrsic.interrupt`), save a checkpoint at the
current step before the run stops.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from innrsic.atomic import write_bytes_atomic
from innrsic.compute.threads import torch_threads
from innrsic.data import StepBatchSampler, derive_seed
from innrsic.errors import ConfigError, InnrsicError, WeightsError
from innrsic.interrupt import interrupts_deferred
from innrsic.train.checkpoint import (
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    remove_partial_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from innrsic.train.config import (
    TrainingConfig,
    TrainLoopConfig,
    config_differences,
    config_to_dict,
    config_to_yaml,
)
from innrsic.train.distributed import DistributedContext, init_distributed, leave_group
from innrsic.train.logs import RunLogs
from innrsic.train.recipe import AuxiliaryObjective, Optimization, Recipe, StepOutput

log = logging.getLogger("innrsic.train")

# Fields a resumed run may change; anything else would silently change the experiment.
RESUMABLE_CHANGES = (
    "run_dir", "train.steps", "train.log_every", "train.image_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.device", "train.threads", "data.workers", "data.root",
    "val.",
)
# May change on resume while every milestone, old and new, is still ahead of the checkpoint:
# a run then stops at another step with its learning-rate drops moved along (a time budget).
MILESTONES = "optim.milestones"
_NOISE_STREAM = 0x5EED
BEST_WEIGHTS = "best.safetensors"
FINAL_WEIGHTS = "final.safetensors"


@dataclass
class TrainResult:
    """Where a run ended."""

    run_dir: Path
    step: int
    best_value: float | None
    best_step: int | None
    last_metrics: dict[str, float]

    @property
    def weights(self) -> Path:
        """The model to use: the best one when validation picked one, else the final one."""
        return self.run_dir / (BEST_WEIGHTS if self.best_value is not None else FINAL_WEIGHTS)


def run_recipe(
    recipe: Recipe, config: TrainingConfig, resume: bool = False, stop_at: int | None = None
) -> TrainResult:
    """Train `recipe` for `config.train` in `config.run_dir`, storing `config` with the run."""
    trainer = Trainer(
        recipe,
        config.train,
        config.run_dir,
        config=config_to_dict(config),
        config_text=config_to_yaml(config),
        resume=resume,
    )
    return trainer.run(stop_at=stop_at)


@dataclass
class _Run:
    """One run in progress: its processes, model and optimisation, where the steps stand, the
    best validation so far, and (rank 0 only) its logs."""

    ctx: DistributedContext
    model: nn.Module
    optimization: Optimization
    end_step: int
    start_step: int = 0
    step: int = 0
    best_value: float | None = None
    best_step: int | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)
    logs: RunLogs | None = None


@dataclass
class _LogWindow:
    """The training terms summed over the steps since the last log line."""

    start: float = field(default_factory=time.monotonic)
    steps: int = 0
    sums: dict[str, float] = field(default_factory=dict)

    def add(self, terms: dict[str, float], grad_norm: float) -> None:
        self.steps += 1
        for name, value in terms.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.sums["grad_norm"] = self.sums.get("grad_norm", 0.0) + grad_norm

    def means(self) -> dict[str, float]:
        return {k: v / self.steps for k, v in self.sums.items()}

    def steps_per_second(self) -> float:
        elapsed = time.monotonic() - self.start
        return self.steps / elapsed if elapsed > 0 else math.nan


class Trainer:
    """Runs a `Recipe` for `loop.steps` steps in `run_dir` (see the module doc)."""

    def __init__(
        self,
        recipe: Recipe,
        loop: TrainLoopConfig,
        run_dir: str | os.PathLike[str],
        config: dict[str, Any],
        config_text: str = "",
        resume: bool = False,
        resumable_changes: Sequence[str] = RESUMABLE_CHANGES,
    ) -> None:
        self.recipe = recipe
        self.loop = loop
        self.run_dir = Path(run_dir)
        self.config = config
        self.config_text = config_text
        self.resume = resume
        self.resumable_changes = tuple(resumable_changes)

    def run(self, stop_at: int | None = None) -> TrainResult:
        """Train until `loop.steps` (or `stop_at`, which stops as if interrupted there)."""
        ctx = init_distributed(self.loop.device)
        threads = self.loop.threads if ctx.device.type == "cpu" else None
        try:
            with torch_threads(threads):
                return self._run(ctx, stop_at)
        finally:
            leave_group(ctx)

    # ---------------------------------------------------------------------------------------

    def _run(self, ctx: DistributedContext, stop_at: int | None) -> TrainResult:
        local_batch = self._local_batch(ctx)
        resumed = self._checkpoint_to_resume()
        ctx.barrier()
        run = self._build(ctx, stop_at)
        if resumed is not None:
            self._restore(run, *resumed)
        module = self._training_module(run)
        dataset = self.recipe.train_dataset()
        loader = self._loader(run, dataset, local_batch)
        if ctx.is_main:
            run.logs = self._open_logs(run, len(dataset))
        try:
            self._train(run, module, loader)
        except KeyboardInterrupt:
            self._save_on_interrupt(run)
            raise
        finally:
            if run.logs is not None:
                run.logs.close()
        return TrainResult(self.run_dir, run.step, run.best_value, run.best_step,
                           run.last_metrics)

    def _local_batch(self, ctx: DistributedContext) -> int:
        """Each process's share of the global batch."""
        if self.loop.batch_size % ctx.world_size:
            raise ConfigError(f"train.batch_size={self.loop.batch_size} is not divisible by the "
                              f"{ctx.world_size} DDP processes")
        return self.loop.batch_size // ctx.world_size

    def _checkpoint_to_resume(self) -> tuple[Path, dict[str, Any]] | None:
        """The newest checkpoint that loads, with its contents (None: start from step 0)."""
        found = list_checkpoints(self.run_dir)
        if not self.resume:
            if found:
                raise ConfigError(
                    f"{self.run_dir} already holds checkpoints (newest: step {found[-1][0]}); "
                    "pass --resume to continue it, or choose another run directory"
                )
            return None
        for path in remove_partial_checkpoints(self.run_dir):
            log.warning("removed %s, left by a checkpoint save that did not finish", path)
        if not found:
            log.info("no checkpoint in %s; starting from step 0", self.run_dir)
            return None
        for _, path in reversed(found):
            try:
                return path, load_checkpoint(path)
            except WeightsError as exc:
                log.warning("skipping unreadable checkpoint: %s", exc)
        raise WeightsError(f"no checkpoint in {self.run_dir / 'checkpoints'} can be read")

    def _build(self, ctx: DistributedContext, stop_at: int | None) -> _Run:
        """Seed every generator, then build the model, the recipe's losses and optimisation."""
        random.seed(self.loop.seed)
        np.random.seed(self.loop.seed)
        torch.manual_seed(self.loop.seed)
        model = self.recipe.build_model().to(ctx.device)
        self.recipe.setup(ctx.device, ctx.rank, ctx.world_size)
        optimization = self.recipe.build_optimization(model)
        end_step = min(self.loop.steps, stop_at) if stop_at is not None else self.loop.steps
        return _Run(ctx, model, optimization, end_step)

    def _restore(self, run: _Run, path: Path, checkpoint: dict[str, Any]) -> None:
        """Continue `run` from `checkpoint`: weights, optimisers, schedules, RNGs and best."""
        step = int(checkpoint["step"])
        self._check_resume_config(checkpoint.get("config", {}), path, step)
        run.model.load_state_dict(checkpoint["model"])
        for optimizer, state in zip(run.optimization.all_optimizers, checkpoint["optimizers"],
                                    strict=True):
            optimizer.load_state_dict(state)
        for scheduler, state in zip(run.optimization.schedulers, checkpoint["schedulers"],
                                    strict=True):
            milestones = getattr(scheduler, "milestones", None)  # this config's
            scheduler.load_state_dict(state)
            if milestones is not None:
                scheduler.milestones = milestones
        set_rng_state(checkpoint["rng"])
        run.start_step = run.step = int(checkpoint["step"])
        run.best_value, run.best_step = checkpoint.get("best_value"), checkpoint.get("best_step")
        log.info("resumed from %s at step %d", path, run.start_step)

    def _check_resume_config(self, stored: dict[str, Any], path: Path, step: int) -> None:
        changed = [name for name in config_differences(stored, self.config)
                   if not name.startswith(self.resumable_changes)]
        if MILESTONES in changed:
            old = stored.get("optim", {}).get("milestones", [])
            new = self.config.get("optim", {}).get("milestones", [])
            if min([*old, *new], default=step + 1) > step:
                changed.remove(MILESTONES)
        if changed:
            raise ConfigError(
                f"{path} was made with a different config ({', '.join(changed)} changed); "
                "resume with the original settings or start a new run directory"
            )

    def _training_module(self, run: _Run) -> nn.Module:
        """The recipe's training pass over the model, wrapped in DDP for several processes."""
        module = self.recipe.training_module(run.model)
        if run.ctx.world_size > 1:
            device = run.ctx.device
            module = torch.nn.parallel.DistributedDataParallel(
                module, device_ids=[device.index] if device.type == "cuda" else None
            )
        return module

    def _loader(self, run: _Run, dataset: Dataset, local_batch: int) -> DataLoader:
        """This process's batches of the steps still to run."""
        ctx = run.ctx
        sampler = StepBatchSampler(len(dataset), local_batch, self.loop.seed, run.start_step,
                                   run.end_step, ctx.rank, ctx.world_size)
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=self.recipe.num_workers,
            pin_memory=ctx.device.type == "cuda",
        )

    def _open_logs(self, run: _Run, items: int) -> RunLogs:
        """Rank 0: the run directory, its ``config.yaml`` and logs, and the opening log line."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.config_text:
            write_bytes_atomic(self.run_dir / "config.yaml", self.config_text.encode())
        logs = RunLogs(self.run_dir, run.start_step)
        log.info("training %s: steps %d..%d, global batch %d on %d process(es), %d "
                 "training items, device %s, run dir %s", self.recipe.name, run.start_step,
                 run.end_step, self.loop.batch_size, run.ctx.world_size, items, run.ctx.device,
                 self.run_dir)
        return logs

    def _train(self, run: _Run, module: nn.Module, loader: Iterable[dict[str, Any]]) -> None:
        """Every step of `loader`, each followed by its logs, validation and checkpoint."""
        clip_params = [p for p in self.recipe.clip_parameters(run.model) if p.requires_grad]
        window = _LogWindow()
        for batch in loader:
            out, terms, grad_norm = self._step(run, module, batch, clip_params)
            window.add(terms, grad_norm)
            if run.step % self.loop.log_every == 0 or run.step == run.end_step:
                self._log_training(run, window)
                window = _LogWindow()
            if out.images and run.logs is not None:
                run.logs.board.images(out.images, run.step)
            self._validate_if_due(run)
            self._checkpoint_if_due(run)
        run.ctx.barrier()

    def _step(
        self,
        run: _Run,
        module: nn.Module,
        batch: dict[str, Any],
        clip_params: list[nn.Parameter],
    ) -> tuple[StepOutput, dict[str, float], float]:
        """One optimisation step; returns its output, its terms and the gradient norm."""
        ctx, recipe, optimization = run.ctx, self.recipe, run.optimization
        want_images = ctx.is_main and (run.step + 1) % self.loop.image_every == 0
        batch = {k: v.to(ctx.device, non_blocking=True) if torch.is_tensor(v) else v
                 for k, v in batch.items()}
        generator = torch.Generator().manual_seed(
            derive_seed(self.loop.seed, run.step, ctx.rank, _NOISE_STREAM)
        )
        out = recipe.training_step(module, batch, run.step, generator, want_images)
        if not math.isfinite(out.terms.get("total", float(out.loss.detach()))):
            raise InnrsicError(f"training diverged: loss is {out.terms} at step {run.step}")
        for optimizer in optimization.optimizers:
            optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        grad_norm = math.nan
        if recipe.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(clip_params, recipe.grad_clip))
        # Interrupted in here, the weights would be a step ahead of `step` in the
        # checkpoint saved on the way out.
        with interrupts_deferred():
            for optimizer in optimization.optimizers:
                optimizer.step()
            terms = dict(out.terms)
            for objective in optimization.auxiliary:
                terms[objective.name] = _auxiliary_step(objective)
            for scheduler in optimization.schedulers:
                scheduler.step()
            run.step += 1
        return out, terms, grad_norm

    def _log_training(self, run: _Run, window: _LogWindow) -> None:
        """The window's mean terms over all ranks, logged by rank 0 with lr and speed."""
        means = run.ctx.mean_over_ranks(window.means())
        if run.logs is not None:
            means["lr"] = run.optimization.optimizers[0].param_groups[0]["lr"]
            means["steps_per_s"] = window.steps_per_second()
            run.logs.training(run.step, run.end_step, means)

    def _validate_if_due(self, run: _Run) -> None:
        """Rank 0 validates every `validate_every` steps and at the last step, keeping the best
        model as ``best.safetensors``; the other ranks wait."""
        every = self.recipe.validate_every
        if not every or (run.step % every and run.step != self.loop.steps):
            return
        if run.logs is not None:
            result = self.recipe.validate(run.model, run.ctx.device)
            run.last_metrics = result.metrics
            value = result.metrics.get(self.recipe.best_metric, math.nan)
            improved = math.isfinite(value) and (
                run.best_value is None
                or (value < run.best_value if self.recipe.best_mode == "min"
                    else value > run.best_value)
            )
            if improved:
                run.best_value, run.best_step = value, run.step
                self.recipe.save_model(run.model, self.run_dir / BEST_WEIGHTS)
            run.logs.validation(run.step, result.metrics, result.images, improved)
        run.ctx.barrier()

    def _checkpoint_if_due(self, run: _Run) -> None:
        """Rank 0 saves every `checkpoint_every` steps and at the end; after the last step of
        the whole run also ``final.safetensors``."""
        if not run.ctx.is_main:
            return
        if run.step % self.loop.checkpoint_every == 0 or run.step == run.end_step:
            self._save(run)
            if run.step == self.loop.steps:
                self.recipe.save_model(run.model, self.run_dir / FINAL_WEIGHTS)

    def _save_on_interrupt(self, run: _Run) -> None:
        """Rank 0 saves the step an interrupt stopped at, unless nothing ran or it is saved."""
        unsaved = not checkpoint_path(self.run_dir, run.step).exists()
        if run.ctx.is_main and run.step > run.start_step and unsaved:
            self._save(run)
            log.info("interrupted: checkpoint written at step %d", run.step)

    def _save(self, run: _Run) -> None:
        """The exact-resume checkpoint of the current step; old ones are pruned."""
        payload = {
            "step": run.step,
            "model": run.model.state_dict(),
            "optimizers": [o.state_dict() for o in run.optimization.all_optimizers],
            "schedulers": [s.state_dict() for s in run.optimization.schedulers],
            "rng": rng_state(),
            "best_value": run.best_value,
            "best_step": run.best_step,
            "config": self.config,
            "world_size": run.ctx.world_size,
        }
        save_checkpoint(checkpoint_path(self.run_dir, run.step), payload)
        prune_checkpoints(self.run_dir, self.loop.keep_checkpoints)


def _auxiliary_step(objective: AuxiliaryObjective) -> float:
    """One step of `objective`'s optimizer on its loss; returns the loss before the step.

    Gradients go to the optimizer's parameters only (``autograd.grad``, not ``backward``), so
    the other parameters the loss depends on keep their main-loss gradients untouched and DDP's
    gradient hooks do not fire. The loss depends on parameters alone, which every rank holds
    identically, so every rank takes the same step without communicating.
    """
    params = [p for group in objective.optimizer.param_groups for p in group["params"]]
    objective.optimizer.zero_grad(set_to_none=True)
    loss = objective.loss()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    for param, grad in zip(params, grads, strict=True):
        param.grad = grad
    objective.optimizer.step()
    return float(loss.detach())
