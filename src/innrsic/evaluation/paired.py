"""Paired comparisons per codec spec: every enhancer x temperature against the decoded image and
against the best control, image by image, with the Student-t CI of the mean difference.

The *best control* of a codec spec is its control with the lowest mean LPIPS-squeeze over the
evaluated images. The strengths were tuned on validation images; picking the stronger of the
two tuned controls on the evaluated images can only make the comparison harder for an
enhancer, so a perceptual gain over it is not an artefact of the choice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from innrsic.evaluation.summary import LOWER_IS_BETTER, Combination
from innrsic.metrics.spectrum import BAND_ERROR_COLUMN
from innrsic.metrics.stats import MeanCI, mean_ci

PAIRED_METRICS = ("lpips_squeeze", "psnr", "niqe", BAND_ERROR_COLUMN)
BEST_CONTROL_METRIC = "lpips_squeeze"
ImageValues = Mapping[str, float | None]


def direction(metric: str) -> int:
    """-1 where lower is better, +1 where higher is better."""
    return -1 if metric in LOWER_IS_BETTER else 1


def paired_ci(test: ImageValues, reference: ImageValues) -> MeanCI:
    """Mean and CI of ``test[image] - reference[image]`` over the images defined in both."""
    return mean_ci(value - reference[image] for image, value in test.items()
                   if value is not None and reference.get(image) is not None)


def verdict(ci: MeanCI, sign: int) -> str:
    """``better`` or ``worse`` where the whole CI of the difference lies on that side of 0,
    ``no clear difference`` where it contains 0, ``n/a`` without a CI."""
    if ci.low is None or ci.high is None:
        return "n/a"
    if ci.low > 0 or ci.high < 0:
        return "better" if (ci.low > 0) == (sign > 0) else "worse"
    return "no clear difference"


def image_values(combo: Combination, metric: str) -> dict[str, float | None]:
    """The metric of each image a combination coded successfully."""
    return {str(row["image"]): row.get(metric) for row in combo.ok_rows}


@dataclass
class Comparison:
    """One codec spec: its decoded image, controls (best first), and enhanced combinations."""

    codec: str
    decoded: Combination
    controls: list[Combination] = field(default_factory=list)
    enhanced: list[Combination] = field(default_factory=list)

    @property
    def best_control(self) -> Combination | None:
        return self.controls[0] if self.controls else None

    def difference(self, combo: Combination, reference: Combination, metric: str) -> MeanCI:
        return paired_ci(image_values(combo, metric), image_values(reference, metric))

    def differences(self, combo: Combination, reference: Combination) -> dict[str, Any]:
        """{metric: CI of combo - reference, with its verdict} for `PAIRED_METRICS` present."""
        result = {}
        for metric in PAIRED_METRICS:
            if metric in combo.stats and metric in reference.stats:
                ci = self.difference(combo, reference, metric)
                result[metric] = {**ci.to_dict(), "verdict": verdict(ci, direction(metric))}
        return result


def _mean(combo: Combination, metric: str) -> float:
    stat = combo.stats.get(metric)
    return stat.mean if stat is not None and stat.mean is not None else float("inf")


def comparisons(combos: Sequence[Combination]) -> list[Comparison]:
    """A `Comparison` per codec spec that has a decoded combination, in the combos' order.
    Controls are sorted by mean LPIPS-squeeze (ties: control order), so the best is first."""
    found: dict[str, Comparison] = {}
    for combo in combos:
        if not combo.enhancer:
            found.setdefault(combo.codec, Comparison(combo.codec, combo))
    for combo in combos:
        comparison = found.get(combo.codec)
        if comparison is None or not combo.enhancer:
            continue
        (comparison.controls if combo.control else comparison.enhanced).append(combo)
    for comparison in found.values():
        comparison.controls.sort(key=lambda c: _mean(c, BEST_CONTROL_METRIC))
    return list(found.values())


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The summary.json form: the best control and the paired differences."""
    best = comparison.best_control

    def label(combo: Combination) -> dict[str, Any]:
        return {"enhancer": combo.enhancer, "enhancer_name": combo.enhancer_name,
                "temperature": combo.temperature, "seed": combo.seed}

    return {
        "codec": comparison.codec,
        "best_control": best.enhancer if best else None,
        "best_control_name": best.enhancer_name if best else None,
        "best_control_strength": best.strength if best else None,
        "best_control_rule": f"lowest mean {BEST_CONTROL_METRIC} over the evaluated images",
        "controls": [
            {**label(c), "control": c.control, "strength": c.strength,
             "vs_decoded": comparison.differences(c, comparison.decoded)}
            for c in comparison.controls
        ],
        "enhanced": [
            {**label(c), "vs_decoded": comparison.differences(c, comparison.decoded),
             "vs_best_control": comparison.differences(c, best) if best else {}}
            for c in comparison.enhanced
        ],
        "difference": "test minus reference, per image, then mean and 95% Student-t CI; "
                      "verdict 'better'/'worse' where the whole CI is on that side of 0",
    }
