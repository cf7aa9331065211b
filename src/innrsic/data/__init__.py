"""Datasets, the documented splits, crops/augmentation and a step-keyed sampler."""

from innrsic.data.datasets import (
    ImageFolderDataset,
    PairsDataset,
    SampleKey,
    StepBatchSampler,
    derive_seed,
)
from innrsic.data.splits import (
    SPLITS,
    ImageRef,
    dota_test_crops,
    folder_images,
    grid_crops,
    resolve_split,
    spread_indices,
    ucmerced_split,
    zero_fraction,
)
from innrsic.data.transforms import crop_and_augment

__all__ = [
    "SPLITS",
    "ImageFolderDataset",
    "ImageRef",
    "PairsDataset",
    "SampleKey",
    "StepBatchSampler",
    "crop_and_augment",
    "derive_seed",
    "dota_test_crops",
    "folder_images",
    "grid_crops",
    "resolve_split",
    "spread_indices",
    "ucmerced_split",
    "zero_fraction",
]
