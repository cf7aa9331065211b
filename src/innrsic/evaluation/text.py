"""How the report words numbers and conditions: metric titles, digits, means with CIs and the
names of the decoded image, the controls and the enhancers."""

from __future__ import annotations

from innrsic.evaluation.summary import Combination
from innrsic.metrics.spectrum import BAND_COLUMNS, BAND_ERROR_COLUMN
from innrsic.metrics.stats import MeanCI
from innrsic.metrics.table import METRIC_TITLES as METRIC_TITLES

DIGITS = {"payload_bpp": 4, "file_bpp": 4, "psnr": 2, "ms_ssim": 4, "niqe": 3,
          BAND_ERROR_COLUMN: 3, **dict.fromkeys(BAND_COLUMNS.values(), 3)}


def digits(metric: str) -> int:
    return DIGITS.get(metric, 4)


def fmt_ci(stat: MeanCI | None, places: int) -> str:
    """``mean ± half-width`` (``—`` without a mean, the mean alone without a CI)."""
    if stat is None or stat.mean is None:
        return "—"
    if stat.half_width is None:
        return f"{stat.mean:.{places}f}"
    return f"{stat.mean:.{places}f} ± {stat.half_width:.{places}f}"


def fmt_interval(stat: MeanCI | None, places: int) -> str:
    """``mean [low, high]`` with signs (for differences)."""
    if stat is None or stat.mean is None:
        return "—"
    if stat.low is None or stat.high is None:
        return f"{stat.mean:+.{places}f}"
    return f"{stat.mean:+.{places}f} [{stat.low:+.{places}f}, {stat.high:+.{places}f}]"


def condition_text(combo: Combination) -> str:
    """``— (decoded)``, ``decoded + noise (σ 4 levels)``, ``decoded + unsharp mask (amount
    0.75)`` or ``<enhancer name> (<id prefix>)``."""
    if not combo.enhancer:
        return "— (decoded)"
    if combo.control == "noise":
        return f"decoded + noise (σ {combo.strength:g} levels)"
    if combo.control == "unsharp":
        return f"decoded + unsharp mask (amount {combo.strength:g})"
    return f"{combo.enhancer_name} ({combo.enhancer[:8]})"
