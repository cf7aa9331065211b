"""How an enhancer runs: one frozen `EnhanceSettings`, checked once, its warnings emitted once.

``EnhanceSettings(temperature, seed, tile, overlap, precision, threads, model, device)`` refuses
bad values when it is built (ConfigError / TilingError: one line, before any model is loaded).
`device` is the one home of the device choice (`resolve_device`): ``auto``, ``cpu`` or
``cuda``, kept as the torch device it names (``auto``: cuda where torch sees a GPU, else cpu;
``cuda`` where torch sees none is refused), or None: the engine stays where the network is.
`EnhanceSettings.resolve` fixes the temperature against the loaded model (None: the model's
own) and warns, once, about a temperature other than the model's own (worded from the shipped
model's record) and about a tiling that multiplies the network's work by more than
`MAX_WORK_FACTOR`; the settings it returns are marked resolved, so resolving them again (in a
worker process, or in a function below) warns no more. Everything below takes an engine and a
settings object.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol, get_args

import torch

from innrsic.enhancer.fast import DEFAULT_PRECISION, PRECISIONS, Precision
from innrsic.enhancer.network import default_temperature
from innrsic.errors import ConfigError, InnrsicError
from innrsic.pretrained import (
    PretrainedModel,
    check_temperature,
    find_model,
    record_for_weights,
)
from innrsic.raster.tiling import TilingError

log = logging.getLogger(__name__)

ENHANCER_TILE = 512
ENHANCER_OVERLAP = 32
MIN_ENHANCER_TILE = 16
# a tiling whose tiles (with their overlap) cover more than this many times the image is warned
# about: ``--tile 16 --overlap 8`` runs the network on 4x the pixels
MAX_WORK_FACTOR = 2.0
# where the enhancer runs (the one closed set: CLI choices, settings, the Python API)
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = get_args(Device)
DEFAULT_DEVICE: Device = "auto"


class HasDefault(Protocol):
    """A network or engine that may know the temperature it was made for."""

    default_temperature: float | None


def check_tiling(tile: int, overlap: int) -> None:
    """TilingError unless `tile` and `overlap` are usable enhancer tiling settings."""
    if overlap < 0 or overlap % 2:
        raise TilingError(f"overlap must be an even number >= 0, got {overlap}")
    if tile != 0 and (tile % 2 or tile < MIN_ENHANCER_TILE or tile < 2 * overlap):
        raise TilingError(
            f"tile {tile} must be 0 (whole image) or an even number >= {MIN_ENHANCER_TILE} and "
            f">= twice the overlap ({overlap}); e.g. --tile {max(MIN_ENHANCER_TILE, 2 * overlap)}"
        )


def resolve_device(device: str) -> str:
    """The torch device `device` names: ``auto`` is cuda where torch sees a GPU, else cpu.
    ConfigError (one line) for a name outside `DEVICES`, or cuda where torch sees no GPU."""
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device cuda: torch {torch.__version__} sees no CUDA GPU on this machine; use "
            "device cpu (or auto, which picks cuda only where there is one)"
        )
    return device


def work_factor(tile: int, overlap: int) -> float:
    """How many times the image's pixels the network runs on with this tiling (interior
    tiles of ``tile + 2 * overlap`` px on a stride of `tile`; 1 for tile 0)."""
    return 1.0 if tile == 0 else ((tile + 2 * overlap) / tile) ** 2


@dataclass(frozen=True)
class EnhanceSettings:
    """What an enhancement runs at (the module doc): latent temperature (None: the model's own,
    fixed by `resolve`) and seed, tile and overlap (`innrsic.enhancer.apply`), the engine's
    precision and threads, `model`, the shipped name or weights path the warnings name, and
    `device` (`resolve_device`; None: the network's own)."""

    temperature: float | None = None
    seed: int = 0
    tile: int = ENHANCER_TILE
    overlap: int = ENHANCER_OVERLAP
    precision: Precision = DEFAULT_PRECISION
    threads: int | None = None
    model: str | None = None
    device: str | None = None
    resolved: bool = False
    """Set by `resolve`: the temperature is the model's and the warnings have been given."""

    def __post_init__(self) -> None:
        if self.temperature is not None:
            object.__setattr__(self, "temperature", check_temperature(self.temperature))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        check_tiling(self.tile, self.overlap)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ConfigError(f"threads must be an integer >= 1, got {self.threads!r}")
        if self.device is not None:
            object.__setattr__(self, "device", resolve_device(self.device))

    @property
    def label(self) -> str:
        """How warnings name the model."""
        return self.model if self.model is not None else "this enhancer"

    def temperature_for(self, net: HasDefault) -> float:
        """The temperature to run `net` at: this one, else the model's own (no warning)."""
        return default_temperature(net) if self.temperature is None else self.temperature

    def resolve(self, net: HasDefault) -> EnhanceSettings:
        """These settings with the temperature fixed for `net`, after warning (once: resolved
        settings are returned as they are) about another temperature than the model's own and
        about a tiling that multiplies the work by more than `MAX_WORK_FACTOR`."""
        if self.resolved:
            return self
        warn_temperature(net, self.temperature, self.model)
        factor = work_factor(self.tile, self.overlap)
        if factor > MAX_WORK_FACTOR:
            log.warning(
                "tile %d with overlap %d runs the network on %.1fx the image's pixels; a larger "
                "tile (default %d) or a smaller overlap is faster",
                self.tile, self.overlap, factor, ENHANCER_TILE,
            )
        return replace(self, temperature=self.temperature_for(net), resolved=True)


def warn_temperature(net: HasDefault, temperature: float | None, model: str | None) -> None:
    """Warn when `temperature` is given and is not the one `net` records as its own, worded
    from the shipped model's record (`innrsic.pretrained`) where `model` names one."""
    default = getattr(net, "default_temperature", None)
    if temperature is None or default is None or temperature == default:
        return
    record = None if model is None else _record(model)
    if record is None:
        log.warning(
            "%s records temperature %g as its own; %g is %s, where its weights may not have "
            "been measured",
            model or "this enhancer", default, temperature, _end(temperature),
        )
        return
    log.warning(
        "%s (shipped, trained behind %s) runs at temperature %g by default; %g is %s "
        "(`innrsic models %s` shows what its card measured at each temperature)",
        record.name, record.codec, default, temperature, _end(temperature), record.name,
    )


def _end(temperature: float) -> str:
    """Where `temperature` lies, in the model cards' words."""
    if temperature == 0:
        return "the fidelity end: a deterministic restoration, no sampled texture"
    if temperature == 1:
        return "the realism end, the temperature training samples at"
    if temperature > 1:
        return "beyond the realism end (1), more texture than training samples"
    return "between the fidelity end (0) and the realism end (1)"


def _record(label: str) -> PretrainedModel | None:
    """The shipped model's record named by `label` (a name or a weights path), if any."""
    try:
        return find_model(label)
    except InnrsicError:
        pass
    try:
        path = Path(os.fspath(label))
        return record_for_weights(path) if path.is_file() else None
    except (InnrsicError, OSError, ValueError):
        return None


def model_temperature(
    net: HasDefault, temperature: float | None = None, model: str | None = None
) -> float:
    """The temperature to run `net` at (`temperature`, else its own), warning about another
    than its own (`warn_temperature`; `model`: its shipped name or weights path)."""
    if temperature is not None:
        temperature = check_temperature(temperature)
    warn_temperature(net, temperature, model)
    return default_temperature(net) if temperature is None else temperature
