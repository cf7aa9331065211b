"""`EnhanceSettings`: checked when built, resolved once against the model, warnings once and
worded from the shipped model's record."""

from __future__ import annotations

import logging

import pytest

from innrsic.enhancer import EnhancerConfig, INNEnhancer, load_enhancer
from innrsic.enhancer.settings import EnhanceSettings, work_factor
from innrsic.errors import ConfigError
from innrsic.pretrained import installed_models
from innrsic.raster.tiling import TilingError


def _net(default: float | None) -> INNEnhancer:
    net = INNEnhancer(EnhancerConfig(blocks=1, growth=4, gaussian_growth=4))
    net.default_temperature = default
    return net


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"tile": 16}, TilingError, "twice the overlap \\(32\\); e.g. --tile 64"),
        ({"tile": 15, "overlap": 0}, TilingError, "even number >= 16"),
        ({"overlap": 7}, TilingError, "even number >= 0"),
        ({"seed": -1}, ConfigError, "seed"),
        ({"temperature": -0.5}, ConfigError, "temperature"),
        ({"precision": "float16"}, ConfigError, "precision"),
        ({"threads": 0}, ConfigError, "threads"),
    ],
)
def test_bad_settings_are_refused_when_built(options, error, message) -> None:
    with pytest.raises(error, match=message):
        EnhanceSettings(**options)


def test_resolve_fixes_the_temperature_and_warns_once(caplog) -> None:
    net = _net(0.0)
    settings = EnhanceSettings(1.0, tile=32, overlap=16)
    with caplog.at_level(logging.WARNING):
        resolved = settings.resolve(net)
        assert resolved.resolve(net) is resolved
    assert resolved.temperature == 1.0 and resolved.resolved
    assert caplog.text.count("records temperature 0 as its own; 1 is the realism end") == 1
    assert caplog.text.count("runs the network on 4.0x the image's pixels") == 1
    assert len(caplog.records) == 2
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        quiet = EnhanceSettings(tile=512, overlap=32).resolve(_net(0.5))
    assert quiet.temperature == 0.5 and not caplog.records  # the model's own, default tiling
    assert EnhanceSettings().resolve(_net(None)).temperature == 1.0  # none recorded: T = 1


def test_work_factor() -> None:
    assert work_factor(0, 32) == 1.0
    assert work_factor(512, 32) == pytest.approx(1.2656, abs=1e-4)
    assert work_factor(16, 8) == 4.0


def test_the_temperature_warning_is_worded_from_the_shipped_record(caplog) -> None:
    model = next(m for m in installed_models() if m.default_temperature != 0)
    net = load_enhancer(model.name)
    with caplog.at_level(logging.WARNING):
        EnhanceSettings(0.0, model=model.name).resolve(net)
    (record,) = caplog.records
    text = record.getMessage()
    assert text.startswith(f"{model.name} (shipped, trained behind {model.codec}) runs at "
                           f"temperature {model.default_temperature:g} by default; 0 is the "
                           "fidelity end: a deterministic restoration")
    assert "noise" not in text and f"innrsic models {model.name}" in text
