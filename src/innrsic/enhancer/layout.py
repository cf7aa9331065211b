"""Whether a state dict fits a network: every missing, unexpected or mis-shaped key named."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from innrsic.enhancer.config import EnhancerConfig
from innrsic.errors import WeightsError

MAX_LISTED = 5


def listing(items: list[str]) -> str:
    """The first `MAX_LISTED` items, comma-separated, with a count of the rest."""
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


def check_layout(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    origin: str,
    config: EnhancerConfig,
) -> None:
    """WeightsError naming every missing, unexpected or mis-shaped key of `state` against
    `expected` (the network of `config`); `origin` says where `state` came from."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{key} {tuple(state[key].shape)} != {tuple(expected[key].shape)}"
        for key in set(state) & set(expected)
        if state[key].shape != expected[key].shape
    )
    problems = []
    if missing:
        problems.append(f"missing {listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shape {listing(wrong)}")
    if problems:
        raise WeightsError(f"{origin} does not fit {config}: " + "; ".join(problems))
