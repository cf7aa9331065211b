"""EnhancerConfig: paper defaults and clear validation errors."""

from __future__ import annotations

import dataclasses

import pytest

from innrsic.enhancer import EnhancerConfig
from innrsic.errors import ConfigError


def test_defaults_are_the_paper_model() -> None:
    config = EnhancerConfig()
    assert config.to_dict() == {
        "blocks": 8,
        "growth": 32,
        "gaussian_growth": 64,
        "expansion": 1,
        "clamp": 1.0,
    }
    assert (config.expanded_channels, config.latent_channels) == (6, 3)
    assert EnhancerConfig(expansion=2).latent_channels == 6


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"blocks": 0}, "enhancer.blocks must be a positive integer"),
        ({"growth": 2.5}, "enhancer.growth must be a positive integer"),
        ({"gaussian_growth": True}, "enhancer.gaussian_growth"),
        ({"expansion": 3}, r"enhancer.expansion must be one of \(1, 2\)"),
        ({"clamp": 0}, "enhancer.clamp must be a finite number > 0"),
        ({"clamp": float("inf")}, "enhancer.clamp"),
        ({"clamp": "1"}, "enhancer.clamp"),
    ],
)
def test_invalid_values(fields, message) -> None:
    with pytest.raises(ConfigError, match=message):
        EnhancerConfig(**fields)


def test_from_dict() -> None:
    config = EnhancerConfig.from_dict({"blocks": 4, "clamp": 2})
    assert config == EnhancerConfig(blocks=4, clamp=2.0)
    assert isinstance(config.clamp, float)
    assert EnhancerConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match=r"unknown enhancer config key.*gc"):
        EnhancerConfig.from_dict({"gc": 32})
    with pytest.raises(ConfigError, match="mapping"):
        EnhancerConfig.from_dict([("blocks", 4)])  # type: ignore[arg-type]


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        EnhancerConfig().blocks = 4  # type: ignore[misc]
