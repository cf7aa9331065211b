"""Temperatures: the standard lists have one home (`innrsic.enhancer.temperature`) and the
validity rule one (`innrsic.pretrained.check_temperature`), used by the grid and the sampler."""

from __future__ import annotations

import math
import re

import pytest
import torch

from innrsic.enhancer.network import draw_latent
from innrsic.enhancer.temperature import (
    GRID_TEMPERATURES,
    SHOWCASE_TEMPERATURES,
    SWEEP_TEMPERATURES,
)
from innrsic.errors import ConfigError
from innrsic.evaluation.grid import check_temperatures
from innrsic.evaluation.runner import EvaluationSettings

MESSAGE = "temperature must be a finite number >= 0, got "


def test_standard_lists() -> None:
    assert GRID_TEMPERATURES == (0.0, 1.0)
    assert SWEEP_TEMPERATURES == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert SHOWCASE_TEMPERATURES == (0.0, 0.5, 1.0)
    assert EvaluationSettings(codecs=()).temperatures is GRID_TEMPERATURES


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -0.5])
def test_one_rule(bad: float) -> None:
    with pytest.raises(ConfigError) as grid_error:
        check_temperatures([0.0, bad])
    with pytest.raises(ConfigError) as latent_error:
        draw_latent(torch.zeros(1, 3, 4, 4), 3, bad, None)
    assert str(grid_error.value) == str(latent_error.value) == MESSAGE + repr(bad)


def test_grid_keeps_its_conversions() -> None:
    assert check_temperatures([1, 0.5, 1.0, True]) == (1.0, 0.5)
    with pytest.raises(ConfigError, match=re.escape(MESSAGE + "'1'")):
        draw_latent(torch.zeros(1, 3, 4, 4), 3, "1", None)  # type: ignore[arg-type]
