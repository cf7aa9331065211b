"""The hyper-parameters that fix the enhancer's architecture.

`EnhancerShape` states the fields and their defaults once; `EnhancerConfig` is the checked
value a network is built from, and the training config's model section extends the shape.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from innrsic.errors import ConfigError

SUPPORTED_EXPANSIONS = (1, 2)


# Upper bounds (16x the paper's sizes) so that a config cannot ask for an absurd network.
MAX_SIZES = {"blocks": 128, "growth": 512, "gaussian_growth": 1024}


@dataclass(frozen=True)
class EnhancerShape:
    """The fields of an enhancer's architecture; the defaults are the paper's published model.

    Attributes:
        blocks: number of affine coupling blocks.
        growth: growth channels of the coupling DenseBlocks (F, G, H).
        gaussian_growth: growth channels of the conditional-Gaussianisation DenseBlocks.
        expansion: k, the latent has 3k channels; the image is expanded to 3(k+1) channels.
        clamp: bound on the coupling log-scale, ``s = clamp * (2 sigmoid(H) - 1)``. The
            Gaussianisation scale is not affected: the paper fixes its bound at 1.
    """

    blocks: int = 8
    growth: int = 32
    gaussian_growth: int = 64
    expansion: int = 1
    clamp: float = 1.0


@dataclass(frozen=True)
class EnhancerConfig(EnhancerShape):
    """Architecture of an `INNEnhancer`: an `EnhancerShape` whose values are checked."""

    def __post_init__(self) -> None:
        for name in ("blocks", "growth", "gaussian_growth"):
            value = getattr(self, name)
            # bool is an int subclass; `blocks=True` is a mistake, not 1.
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"enhancer.{name} must be a positive integer, got {value!r}")
            if value > MAX_SIZES[name]:
                # A weights file's metadata could otherwise make the loader build a huge net.
                raise ConfigError(f"enhancer.{name} is {value}; the limit is {MAX_SIZES[name]}")
        if (
            not isinstance(self.expansion, int)
            or isinstance(self.expansion, bool)
            or self.expansion not in SUPPORTED_EXPANSIONS
        ):
            raise ConfigError(
                f"enhancer.expansion must be one of {SUPPORTED_EXPANSIONS}, got {self.expansion!r}"
            )
        clamp = self.clamp
        if (
            not isinstance(clamp, int | float)
            or isinstance(clamp, bool)
            or not math.isfinite(clamp)
            or clamp <= 0
        ):
            raise ConfigError(f"enhancer.clamp must be a finite number > 0, got {clamp!r}")
        object.__setattr__(self, "clamp", float(clamp))

    @property
    def expanded_channels(self) -> int:
        """Channels after channel expansion: 3(k+1)."""
        return 3 * (self.expansion + 1)

    @property
    def latent_channels(self) -> int:
        """Channels of the latent z: 3k."""
        return 3 * self.expansion

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def of(cls, shape: EnhancerShape) -> EnhancerConfig:
        """The config of `shape`'s architecture fields (fields a subclass adds are left out)."""
        return cls(**{f.name: getattr(shape, f.name) for f in fields(EnhancerShape)})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnhancerConfig:
        """Build a config from a dict; unknown keys are an error, missing keys take defaults."""
        if not isinstance(data, dict):
            raise ConfigError(f"enhancer config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown enhancer config key(s): {', '.join(map(str, unknown))}; "
                f"allowed: {', '.join(sorted(known))}"
            )
        return cls(**data)
