"""Torch weights files read as state dicts with the weights-only unpickler: tensors and plain
containers come back, no code inside a file runs."""

from __future__ import annotations

import os
from typing import Any

import torch

from innrsic.errors import WeightsError


def load_state_dict(path: str | os.PathLike[str], what: str) -> dict[str, Any]:
    """The dict the torch file at `path` holds, on the CPU; WeightsError naming `what` (e.g.
    "enhancer checkpoint") when the file cannot be read that way or holds no dict."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # Arbitrary bytes or pickled objects make the weights-only unpickler fail with almost any
    # exception type. Only the type is shown: torch's message advises unsafe loading.
    except Exception as exc:
        raise WeightsError(
            f"cannot read {what} {path} as plain tensors ({type(exc).__name__}); "
            "innrsic never unpickles arbitrary objects"
        ) from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{what} {path} is a {type(state).__name__}, not a state dict")
    return state
