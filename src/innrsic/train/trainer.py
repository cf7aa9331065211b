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

import datetime
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from innrsic.atomic import write_bytes_atomic
from innrsic.config import TrainLoopConfig, config_differences
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
from innrsic.train.logs import TableLog, TensorBoard
from innrsic.train.recipe import AuxiliaryObjective, Recipe

log = logging.getLogger("innrsic.train")

# Fields a resumed run may change; anything else would silently change the experiment.
RESUMABLE_CHANGES = (
    "run_dir", "train.steps", "train.log_every", "train.image_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.device", "data.workers", "data.root", "val.",
)
_NOISE_STREAM = 0x5EED


@dataclass
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the torchrun process group if WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif device == "cuda":
        device = f"cuda:{local_rank}"
    target = torch.device(device)
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={device!r} but CUDA is not available")
        torch.cuda.set_device(target)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if target.type == "cuda" else "gloo",
            timeout=datetime.timedelta(hours=2),  # rank 0 validates while the others wait
        )
        owns = True
    return DistributedContext(rank, world_size, local_rank, target, owns)


@dataclass
class TrainResult:
    """Where a run ended."""

    run_dir: Path
    step: int
    best_value: float | None
    best_step: int | None
    last_metrics: dict[str, float]


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
        try:
            return self._run(ctx, stop_at)
        finally:
            if ctx.owns_group and dist.is_initialized():
                dist.destroy_process_group()

    # ---------------------------------------------------------------------------------------

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

    def _run(self, ctx: DistributedContext, stop_at: int | None) -> TrainResult:
        loop, recipe = self.loop, self.recipe
        if loop.batch_size % ctx.world_size:
            raise ConfigError(f"train.batch_size={loop.batch_size} is not divisible by the "
                              f"{ctx.world_size} DDP processes")
        local_batch = loop.batch_size // ctx.world_size
        resumed = self._checkpoint_to_resume()
        ctx.barrier()

        random.seed(loop.seed)
        np.random.seed(loop.seed)
        torch.manual_seed(loop.seed)
        model = recipe.build_model().to(ctx.device)
        recipe.setup(ctx.device, ctx.rank, ctx.world_size)
        optimization = recipe.build_optimization(model)

        start_step, best_value, best_step = 0, None, None
        if resumed is not None:
            resume_from, checkpoint = resumed
            self._check_resume_config(checkpoint.get("config", {}), resume_from)
            model.load_state_dict(checkpoint["model"])
            for optimizer, state in zip(optimization.all_optimizers, checkpoint["optimizers"],
                                        strict=True):
                optimizer.load_state_dict(state)
            for scheduler, state in zip(optimization.schedulers, checkpoint["schedulers"],
                                        strict=True):
                scheduler.load_state_dict(state)
            set_rng_state(checkpoint["rng"])
            start_step = int(checkpoint["step"])
            best_value, best_step = checkpoint.get("best_value"), checkpoint.get("best_step")
            log.info("resumed from %s at step %d", resume_from, start_step)

        module = recipe.training_module(model)
        if ctx.world_size > 1:
            module = torch.nn.parallel.DistributedDataParallel(
                module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            )
        dataset = recipe.train_dataset()
        end_step = min(loop.steps, stop_at) if stop_at is not None else loop.steps
        sampler = StepBatchSampler(len(dataset), local_batch, loop.seed, start_step, end_step,
                                   ctx.rank, ctx.world_size)
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=recipe.num_workers,
            pin_memory=ctx.device.type == "cuda",
        )

        board = train_log = metrics_log = None
        if ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if self.config_text:
                write_bytes_atomic(self.run_dir / "config.yaml", self.config_text.encode())
            train_log = TableLog(self.run_dir, "train_log", start_step)
            metrics_log = TableLog(self.run_dir, "metrics", start_step)
            board = TensorBoard(self.run_dir, start_step)
            log.info("training %s: steps %d..%d, global batch %d on %d process(es), %d "
                     "training items, device %s, run dir %s", recipe.name, start_step, end_step,
                     loop.batch_size, ctx.world_size, len(dataset), ctx.device, self.run_dir)

        clip_params = [p for p in recipe.clip_parameters(model) if p.requires_grad]
        last_metrics: dict[str, float] = {}
        step = start_step
        window_start, window_steps = time.monotonic(), 0
        sums: dict[str, float] = {}

        def save(at_step: int) -> None:
            payload = {
                "step": at_step,
                "model": model.state_dict(),
                "optimizers": [o.state_dict() for o in optimization.all_optimizers],
                "schedulers": [s.state_dict() for s in optimization.schedulers],
                "rng": rng_state(),
                "best_value": best_value,
                "best_step": best_step,
                "config": self.config,
                "world_size": ctx.world_size,
            }
            save_checkpoint(checkpoint_path(self.run_dir, at_step), payload)
            prune_checkpoints(self.run_dir, loop.keep_checkpoints)

        try:
            for batch in loader:
                want_images = ctx.is_main and (step + 1) % loop.image_every == 0
                batch = {k: v.to(ctx.device, non_blocking=True) if torch.is_tensor(v) else v
                         for k, v in batch.items()}
                generator = torch.Generator().manual_seed(
                    derive_seed(loop.seed, step, ctx.rank, _NOISE_STREAM)
                )
                out = recipe.training_step(module, batch, step, generator, want_images)
                if not math.isfinite(out.terms.get("total", float(out.loss.detach()))):
                    raise InnrsicError(f"training diverged: loss is {out.terms} at step {step}")
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
                    step += 1
                window_steps += 1
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value
                sums["grad_norm"] = sums.get("grad_norm", 0.0) + grad_norm

                if step % loop.log_every == 0 or step == end_step:
                    means = _mean_over_ranks({k: v / window_steps for k, v in sums.items()}, ctx)
                    elapsed = time.monotonic() - window_start
                    if ctx.is_main:
                        means["lr"] = optimization.optimizers[0].param_groups[0]["lr"]
                        means["steps_per_s"] = window_steps / elapsed if elapsed > 0 else math.nan
                        log.info("step %d/%d  %s", step, end_step, "  ".join(
                            f"{k} {v:.4g}" for k, v in means.items()))
                        board.scalars(means, step, "train/")  # type: ignore[union-attr]
                        train_log.append({"step": step, **means})  # type: ignore[union-attr]
                    window_start, window_steps, sums = time.monotonic(), 0, {}
                if out.images and board is not None:
                    board.images(out.images, step)

                if recipe.validate_every and (
                    step % recipe.validate_every == 0 or step == loop.steps
                ):
                    if ctx.is_main:
                        result = recipe.validate(model, ctx.device)
                        last_metrics = result.metrics
                        value = result.metrics.get(recipe.best_metric, math.nan)
                        improved = math.isfinite(value) and (
                            best_value is None
                            or (value < best_value if recipe.best_mode == "min"
                                else value > best_value)
                        )
                        if improved:
                            best_value, best_step = value, step
                            recipe.save_model(model, self.run_dir / "best.safetensors")
                        board.scalars(result.metrics, step, "")  # type: ignore[union-attr]
                        board.images(result.images, step)  # type: ignore[union-attr]
                        metrics_log.append({"step": step, **result.metrics,  # type: ignore[union-attr]
                                            "best": float(improved)})
                        log.info("validation at step %d: %s%s", step, "  ".join(
                            f"{k} {v:.4f}" for k, v in result.metrics.items()),
                            "  (new best)" if improved else "")
                    ctx.barrier()

                if ctx.is_main and (step % loop.checkpoint_every == 0 or step == end_step):
                    save(step)
                    if step == loop.steps:
                        recipe.save_model(model, self.run_dir / "final.safetensors")
            ctx.barrier()
        except KeyboardInterrupt:
            unsaved = not checkpoint_path(self.run_dir, step).exists()
            if ctx.is_main and step > start_step and unsaved:
                save(step)
                log.info("interrupted: checkpoint written at step %d", step)
            raise
        finally:
            if board is not None:
                board.close()
        return TrainResult(self.run_dir, step, best_value, best_step, last_metrics)

    def _check_resume_config(self, stored: dict[str, Any], path: Path) -> None:
        changed = [name for name in config_differences(stored, self.config)
                   if not name.startswith(self.resumable_changes)]
        if changed:
            raise ConfigError(
                f"{path} was made with a different config ({', '.join(changed)} changed); "
                "resume with the original settings or start a new run directory"
            )


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


def _mean_over_ranks(values: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    if ctx.world_size == 1:
        return values
    names = sorted(values)
    tensor = torch.tensor([values[n] for n in names], dtype=torch.float64,
                          device=ctx.device if ctx.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    tensor /= ctx.world_size
    return dict(zip(names, tensor.tolist(), strict=True))
