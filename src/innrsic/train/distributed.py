"""The process layout of a run: one process, or a torchrun DDP group (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from innrsic.errors import ConfigError


@dataclass
class DistributedContext:
    """This process's rank in the run, its device, and whether it created the process group."""

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

    def mean_over_ranks(self, values: dict[str, float]) -> dict[str, float]:
        """`values` averaged over every rank (a collective: every rank must call it)."""
        if self.world_size == 1:
            return values
        names = sorted(values)
        tensor = torch.tensor([values[n] for n in names], dtype=torch.float64,
                              device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(tensor)
        tensor /= self.world_size
        return dict(zip(names, tensor.tolist(), strict=True))


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


def leave_group(ctx: DistributedContext) -> None:
    """Destroy the process group if this process created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
