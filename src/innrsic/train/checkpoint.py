"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A save writes ``checkpoints/.step_NNNNNNNN.pt.<random>.tmp`` and renames it to
``step_NNNNNNNN.pt`` once complete (`innrsic.atomic`), so a process killed mid-save (even by
SIGKILL) leaves only that temporary file, which `list_checkpoints` never returns and
`remove_partial_checkpoints` deletes on resume.

A checkpoint holds the step, model/optimizer/scheduler state, the python/numpy/torch RNG
states (as tensors and plain types, so the weights-only unpickler accepts them), best-model
tracking and the resolved config. The data order needs no state: batches are a function of
(seed, step) (`innrsic.data.StepBatchSampler`).
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from innrsic.atomic import write_with_atomic
from innrsic.errors import WeightsError
from innrsic.state_dict import load_state_dict

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step_(\d{8,})\.pt$")
_PARTIAL = re.compile(r"^\.step_\d{8,}\.pt\..+\.tmp$")


def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints, oldest first."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_partial_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files of saves that never finished; returns their paths."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return []
    partial = [path for path in directory.iterdir() if _PARTIAL.match(path.name)]
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU + CUDA) global RNG states as tensors / plain types."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write `payload` atomically with torch.save."""
    write_with_atomic(path, lambda handle: torch.save(payload, handle))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint with the weights-only unpickler (never arbitrary code)."""
    payload = load_state_dict(path, "training checkpoint")
    if "step" not in payload or "model" not in payload:
        raise WeightsError(f"{path}: not an innrsic training checkpoint")
    return payload


def prune_checkpoints(run_dir: str | os.PathLike[str], keep: int) -> None:
    """Delete all but the newest `keep` checkpoints."""
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
