"""Splits, crops/augmentation of aligned pairs, and the step-keyed sampler."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from innrsic.data import (
    StepBatchSampler,
    crop_and_augment,
    dota_test_crops,
    grid_crops,
    resolve_split,
    ucmerced_split,
    zero_fraction,
)
from innrsic.errors import ConfigError
from innrsic.raster.image import read_image


def test_ucmerced_split_sizes_and_indices(data_root: Path) -> None:
    train = ucmerced_split(data_root, "train")
    test = resolve_split("ucmerced-test", data_root)
    assert (len(train), len(test)) == (966, 294)
    for refs, low, high, per_class in ((train, 0, 45, 46), (test, 46, 59, 14)):
        counts = Counter(ref.path.parent.name for ref in refs)
        assert len(counts) == 21 and set(counts.values()) == {per_class}
        indices = {int(re.search(r"(\d+)$", ref.path.stem).group(1)) for ref in refs}
        assert indices == set(range(low, high + 1))
        assert all(ref.path.parent.parent.name == "ucmerced" for ref in refs)
    assert not {r.name for r in train} & {r.name for r in test}


def test_holdout_and_unknown_splits_are_refused(data_root: Path) -> None:
    with pytest.raises(ConfigError, match="reserved"):
        resolve_split("ucmerced-holdout", data_root)
    with pytest.raises(ConfigError, match="unknown split"):
        resolve_split("ucmerced-val", data_root)
    with pytest.raises(ConfigError, match="data-root"):
        resolve_split("ucmerced-train", None)


def test_grid_crop_rule_on_a_synthetic_image() -> None:
    image = np.full((600, 800, 3), 7, np.uint8)  # grid of 2 x 3 full crops; the rest is dropped
    image[0:256, 0:26] = 0  # 26/256 = 10.2% zero pixels: dropped
    image[0:256, 256:281] = 0  # 25/256 = 9.8%: kept
    image[256:512, 512:768, 0] = 0  # only one channel zero: not a zero pixel
    boxes = grid_crops(image, 256, 0.10)
    assert boxes == [(0, 256, 256, 256), (0, 512, 256, 256), (256, 0, 256, 256),
                     (256, 256, 256, 256), (256, 512, 256, 256)]


def test_dota_test_crops_follow_the_rule(data_root: Path) -> None:
    refs = dota_test_crops(data_root)
    by_image = Counter(ref.path.name for ref in refs)
    assert len(by_image) == 11
    # P1478 is a 1024x1024 tile with a thin zero border (< 1%): all 16 crops are kept.
    assert by_image["P1478__1__853___962.png"] == 16
    dropped = 0
    for path in sorted({ref.path for ref in refs}):
        image = read_image(path)
        full = (image.shape[0] // 256) * (image.shape[1] // 256)
        kept = [ref for ref in refs if ref.path == path]
        dropped += full - len(kept)
        boxes = {ref.box for ref in kept}
        assert len(boxes) == len(kept)
        for ref in kept:
            top, left, height, width = ref.box
            assert (height, width) == (256, 256) and top % 256 == 0 and left % 256 == 0
            assert zero_fraction(image[top : top + 256, left : left + 256]) <= 0.10
    assert dropped > 0  # P0003/P0004/P0005 have black no-data borders


def test_crop_and_augment_keeps_pairs_aligned() -> None:
    rows, cols = np.meshgrid(np.arange(40), np.arange(50), indexing="ij")
    gt = np.stack([rows, cols, (rows * 7 + cols) % 250], axis=-1).astype(np.uint8)
    decoded = gt + 3  # a fixed offset survives any shared crop/flip/transpose
    seen = set()
    for seed in range(40):
        a, b = crop_and_augment((gt, decoded), 16, np.random.default_rng(seed))
        assert a.shape == b.shape == (16, 16, 3)
        assert np.array_equal(b.astype(int) - a.astype(int), np.full(a.shape, 3))
        seen.add(a.tobytes())
        # the crop is a dihedral transform (one of 8) of the gt block it came from
        top, left = int(a[..., 0].min()), int(a[..., 1].min())
        block = gt[top : top + 16, left : left + 16]
        transposed = a.transpose(1, 0, 2)
        candidates = [t[::dy, ::dx] for t in (a, transposed) for dy in (1, -1) for dx in (1, -1)]
        assert any(np.array_equal(c, block) for c in candidates)
    assert len(seen) == 40
    with pytest.raises(ValueError, match="share their size"):
        crop_and_augment((gt, gt[:-1]), 16, np.random.default_rng(0))


def test_step_sampler_is_a_function_of_seed_step_and_rank() -> None:
    full = StepBatchSampler(10, 4, seed=10, start_step=0, end_step=8)
    batches = list(full)
    assert len(batches) == 8
    resumed = list(StepBatchSampler(10, 4, seed=10, start_step=5, end_step=8))
    assert resumed == batches[5:]
    # each epoch of 10 positions visits every item once
    stream = [key.index for batch in batches for key in batch]
    assert sorted(stream[:10]) == list(range(10)) and sorted(stream[10:20]) == list(range(10))
    # two ranks with half the batch each see exactly the single-process global batch
    ranks = [StepBatchSampler(10, 2, 10, 0, 8, rank=r, world_size=2) for r in (0, 1)]
    for step, batch in enumerate(batches):
        assert ranks[0].batch_for_step(step) + ranks[1].batch_for_step(step) == batch
    other = list(StepBatchSampler(10, 4, seed=11, start_step=0, end_step=8))
    assert other != batches
