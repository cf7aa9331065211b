"""Bjøntegaard deltas against hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from innrsic.metrics.bjontegaard import FIT_CUBIC, FIT_PCHIP, bd_quality, bd_rate

RATES = [0.1, 0.2, 0.4, 0.8]
PSNR = [28.0, 30.5, 33.2, 36.1]


@pytest.mark.parametrize("points", [4, 3, 2])
def test_rates_scaled_by_0_9_give_minus_10_percent(points: int) -> None:
    rates, psnr = RATES[:points], PSNR[:points]
    result = bd_rate(rates, psnr, [0.9 * r for r in rates], psnr)
    assert result.value == pytest.approx(-10.0, abs=1e-9)
    assert result.fits == ((FIT_CUBIC,) * 2 if points == 4 else (FIT_PCHIP,) * 2)


def test_identical_curves_give_zero() -> None:
    assert bd_rate(RATES, PSNR, RATES, PSNR).value == pytest.approx(0.0, abs=1e-12)
    assert bd_quality(RATES, PSNR, RATES, PSNR).value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("points", [4, 3])
def test_constant_db_offset_is_the_bd_quality(points: int) -> None:
    rates, psnr = RATES[:points], PSNR[:points]
    assert bd_quality(rates, psnr, rates, [p + 0.5 for p in psnr]).value == pytest.approx(0.5)
    assert bd_quality(rates, psnr, rates, [p - 1.25 for p in psnr]).value == pytest.approx(-1.25)


def test_order_of_points_does_not_matter() -> None:
    shuffled = [2, 0, 3, 1]
    result = bd_rate(RATES, PSNR, [0.8 * RATES[i] for i in shuffled], [PSNR[i] for i in shuffled])
    assert result.value == pytest.approx(-20.0)


def test_two_point_curves_match_a_hand_integration() -> None:
    # Anchor: PSNR = 30 + 10 u, test: PSNR = 31 + 12 u, with u = ln(rate) in [0, 1].
    rates = [1.0, math.e]
    anchor, test = [30.0, 40.0], [31.0, 43.0]
    # BD-PSNR: mean over u in [0, 1] of (1 + 2u) = 2 dB.
    assert bd_quality(rates, anchor, rates, test).value == pytest.approx(2.0)
    # BD-rate: u_test(P) - u_anchor(P) = (P-31)/12 - (P-30)/10 on the common PSNR range
    # [31, 40]; a straight line, so its mean is its value at 35.5: 0.375 - 0.55 = -0.175.
    expected = 100 * (math.exp(-0.175) - 1)  # -16.055 %
    result = bd_rate(rates, anchor, rates, test)
    assert result.value == pytest.approx(expected)
    assert result.interval == pytest.approx((31.0, 40.0))


def test_cubic_fit_through_a_log_linear_curve() -> None:
    # PSNR = 4 ln(R) + 40 exactly; the test curve reaches each PSNR at 0.9x the rate, so at
    # each rate it is 4 ln(1/0.9) dB better.
    rates = np.array(RATES)
    psnr = 4 * np.log(rates) + 40
    result = bd_quality(rates, psnr, 0.9 * rates, psnr)
    assert result.value == pytest.approx(-4 * math.log(0.9))


@pytest.mark.parametrize(
    ("anchor", "test", "reason"),
    [
        (([0.1], [30.0]), (RATES, PSNR), "anchor curve has 1 point(s); at least 2"),
        ((RATES, PSNR), ([], []), "test curve has 0 point(s)"),
        ((RATES, PSNR), ([1.0, 2.0], [50.0, 55.0]), "do not overlap"),
        ((RATES, PSNR), ([0.1, 0.2], [30.0, float("nan")]), "not finite"),
        ((RATES, PSNR), ([0.0, 0.2], [29.0, 31.0]), "rate <= 0"),
        ((RATES, PSNR), ([0.1, 0.2], [30.0, 30.0]), "same quality"),
        ((RATES, PSNR), ([0.1, 0.2, 0.3], [30.0, 31.0]), "3 rates but 2 quality"),
    ],
)
def test_unusable_curves_give_a_reason_not_a_number(anchor, test, reason) -> None:
    result = bd_rate(*anchor, *test)
    assert result.value is None and not result.available
    assert reason in result.reason
    assert result.text().startswith("n/a: ")


def test_no_overlap_in_rate_for_bd_quality() -> None:
    result = bd_quality([0.1, 0.2], [30.0, 32.0], [0.5, 0.9], [30.0, 32.0])
    assert result.value is None
    assert "do not overlap in rate" in result.reason


def test_text_formats_the_value() -> None:
    assert bd_rate(RATES, PSNR, [0.9 * r for r in RATES], PSNR).text() == "-10.00"
