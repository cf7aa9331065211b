"""The metrics table is the one home of metric names, directions, BD and titles: summary,
pipeline and the report's titles read their lists from it."""

from __future__ import annotations

import numpy as np
import pytest

from innrsic.evaluation import pipeline, summary, text
from innrsic.metrics import ms_ssim, psnr
from innrsic.metrics.optional import PER_IMAGE_METRICS
from innrsic.metrics.spectrum import BAND_COLUMNS, BAND_ERROR_COLUMN
from innrsic.metrics.table import (
    ALWAYS_COMPUTED,
    BD_METRICS,
    LOWER_IS_BETTER,
    METRIC_BY_NAME,
    METRIC_TITLES,
    METRICS,
    QUALITY_METRICS,
    RATE_METRICS,
    SPECTRUM_METRICS,
)

RATIOS = tuple(BAND_COLUMNS.values())
OPTIONAL = tuple(PER_IMAGE_METRICS)


def test_lists_in_report_order() -> None:
    assert RATE_METRICS == ("payload_bpp", "file_bpp")
    assert ("psnr", "ms_ssim", *OPTIONAL, "niqe", BAND_ERROR_COLUMN) == QUALITY_METRICS
    assert frozenset({*OPTIONAL, "niqe", BAND_ERROR_COLUMN}) == LOWER_IS_BETTER
    assert ("psnr", "ms_ssim", *OPTIONAL) == BD_METRICS
    assert SPECTRUM_METRICS == RATIOS
    assert ("psnr", "ms_ssim", "niqe", BAND_ERROR_COLUMN, *RATIOS) == ALWAYS_COMPUTED


def test_summary_pipeline_and_titles_read_the_table() -> None:
    assert summary.RATE_METRICS is RATE_METRICS
    assert summary.QUALITY_METRICS is QUALITY_METRICS
    assert summary.LOWER_IS_BETTER is LOWER_IS_BETTER
    assert summary.BD_METRICS is BD_METRICS
    assert summary.SPECTRUM_METRICS is SPECTRUM_METRICS
    assert pipeline.ALWAYS_COMPUTED is ALWAYS_COMPUTED
    assert text.METRIC_TITLES is METRIC_TITLES
    assert set(METRIC_TITLES) == {m.name for m in METRICS}
    assert len(METRIC_BY_NAME) == len(METRICS)  # names are unique
    for name, title in PER_IMAGE_METRICS.items():
        assert METRIC_TITLES[name] == title


def test_per_image_metrics_follow_the_table() -> None:
    class Probe:
        def __init__(self, available: bool) -> None:
            self.available = available

    probes = {name: Probe(name == "lpips_squeeze") for name in OPTIONAL}
    assert pipeline.per_image_metrics(probes) == [*ALWAYS_COMPUTED, "lpips_squeeze"]


def test_compute_metrics_uses_the_table_functions() -> None:
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    test = np.clip(reference.astype(int) + rng.integers(-3, 4, reference.shape), 0, 255)
    test = test.astype(np.uint8)
    values, notes = pipeline.compute_metrics(reference, test, ["psnr", "ms_ssim", "niqe"], {})
    assert values["psnr"] == psnr(reference, test)
    assert values["ms_ssim"] is None and values["niqe"] is None  # too small: undefined
    assert [note.split(":")[0] for note in notes] == ["ms_ssim undefined", "niqe undefined"]
    with pytest.raises(Exception, match="161"):
        ms_ssim(reference, test)
    with pytest.raises(Exception, match="no per-image implementation"):
        pipeline.compute_metrics(reference, test, ["payload_bpp"], {})
