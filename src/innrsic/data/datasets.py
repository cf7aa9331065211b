"""Torch datasets for training: aligned (ground truth, decoded) pairs and plain image folders,
plus a sampler whose batches are a pure function of (seed, step, rank).

Indexing: a dataset item is addressed by a `SampleKey` (image index, augmentation seed), so a
sample's crop and flips depend only on the key, never on worker processes or loader state.
`StepBatchSampler` produces the keys for steps [start, end): restarting it at any step gives
exactly the batches an uninterrupted run would have seen, which is what makes resume exact.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from innrsic.compute.tensors import to_tensor
from innrsic.data.manifest import read_pairs_manifest
from innrsic.data.splits import ImageRef
from innrsic.data.transforms import crop_and_augment
from innrsic.errors import ConfigError
from innrsic.raster.image import read_image


@dataclass(frozen=True)
class SampleKey:
    """Which image to load and the seed of its random crop/flips."""

    index: int
    seed: int


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixing integers (numpy SeedSequence hashing); stable across platforms."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 ^ int(state[1])


def _key(item: SampleKey | int) -> SampleKey:
    return item if isinstance(item, SampleKey) else SampleKey(int(item), int(item))


class PairsDataset(Dataset):
    """(ground truth, decoded) pairs from one or more pairs directories (`innrsic pairs`).

    Items are dicts ``{"gt": (3,S,S), "decoded": (3,S,S), "name": str}`` (float32 in [0, 1]),
    cropped at one random S x S box and augmented identically. `crop_size=None` returns whole
    images without augmentation (validation). If `codec` is given (a spec, or several), every
    directory's manifest must record that codec spec (one of them).
    """

    def __init__(
        self,
        directories: Sequence[str | os.PathLike[str]],
        codec: str | Sequence[str] | None = None,
        crop_size: int | None = 128,
        augment: bool = True,
    ) -> None:
        if not directories:
            raise ConfigError("no pairs directories given")
        self.crop_size = crop_size
        self.augment = augment and crop_size is not None
        self.items: list[tuple[str, Path, Path]] = []
        allowed = [codec] if isinstance(codec, str) else list(codec or [])
        for directory in directories:
            directory = Path(directory)
            manifest = read_pairs_manifest(directory)
            if allowed and not any(_same_codec(manifest.codec, spec) for spec in allowed):
                wanted = " or ".join(repr(spec) for spec in allowed)
                raise ConfigError(
                    f"{directory} holds pairs of codec {manifest.codec!r}, but the config asks "
                    f"for {wanted}"
                )
            for entry in manifest.entries:
                if crop_size is not None and min(entry.height, entry.width) < crop_size:
                    raise ConfigError(
                        f"{directory}: pair {entry.name} is {entry.width}x{entry.height}, "
                        f"smaller than the {crop_size}x{crop_size} training crop"
                    )
                self.items.append((entry.name, directory / entry.gt, directory / entry.decoded))
        if not self.items:
            raise ConfigError(f"pairs directories {', '.join(map(str, directories))} are empty")

    def __len__(self) -> int:
        return len(self.items)

    def load_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole (ground truth, decoded) pair as HxWx3 uint8 arrays."""
        name, gt_path, decoded_path = self.items[index]
        gt, decoded = read_image(gt_path), read_image(decoded_path)
        if gt.shape != decoded.shape:
            raise ConfigError(f"pair {name}: ground truth {gt.shape} and decoded {decoded.shape} "
                              "differ in size")
        return gt, decoded

    def __getitem__(self, item: SampleKey | int) -> dict[str, object]:
        key = _key(item)
        gt, decoded = self.load_arrays(key.index)
        rng = np.random.default_rng(key.seed)
        gt, decoded = crop_and_augment((gt, decoded), self.crop_size, rng, self.augment)
        name = self.items[key.index][0]
        return {"gt": to_tensor(gt), "decoded": to_tensor(decoded), "name": name}


class ImageFolderDataset(Dataset):
    """Ground-truth images alone (learned-codec training): ``{"gt": (3,S,S), "name": str}``."""

    def __init__(
        self, refs: Sequence[ImageRef], crop_size: int | None = 256, augment: bool = True
    ) -> None:
        if not refs:
            raise ConfigError("no images given")
        self.refs = list(refs)
        self.crop_size = crop_size
        self.augment = augment and crop_size is not None

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, item: SampleKey | int) -> dict[str, object]:
        key = _key(item)
        ref = self.refs[key.index]
        (image,) = crop_and_augment(
            (ref.load(),), self.crop_size, np.random.default_rng(key.seed), self.augment
        )
        return {"gt": to_tensor(image), "name": ref.name}


class StepBatchSampler(Sampler[list[SampleKey]]):
    """Batches for steps [start_step, end_step), a pure function of (seed, step, rank).

    The global batch of step s is positions ``s*G .. s*G+G-1`` of an endless stream that visits
    the dataset in a fresh seeded permutation every epoch (G = per-rank batch x world size).
    Rank r takes the r-th slice of G, so ranks see disjoint shards of each global batch.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        seed: int,
        start_step: int,
        end_step: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_items <= 0 or batch_size <= 0:
            raise ValueError("num_items and batch_size must be positive")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_step = start_step
        self.end_step = end_step
        self.rank = rank
        self.world_size = world_size
        self._permutations: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return max(0, self.end_step - self.start_step)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if epoch not in self._permutations:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch, 0xDA7A))
            self._permutations = {epoch: torch.randperm(self.num_items, generator=generator)}
        return self._permutations[epoch]

    def batch_for_step(self, step: int) -> list[SampleKey]:
        global_batch = self.batch_size * self.world_size
        keys = []
        for j in range(self.batch_size):
            slot = self.rank * self.batch_size + j
            position = step * global_batch + slot
            epoch, offset = divmod(position, self.num_items)
            index = int(self._permutation(epoch)[offset])
            keys.append(SampleKey(index, derive_seed(self.seed, step, slot, 0xC409)))
        return keys

    def __iter__(self) -> Iterator[list[SampleKey]]:
        for step in range(self.start_step, self.end_step):
            yield self.batch_for_step(step)


def _same_codec(recorded: str, wanted: str) -> bool:
    if recorded == wanted:
        return True
    try:
        from innrsic.codecs import make_codec

        return make_codec(wanted).spec == recorded
    except Exception:  # a spec this build cannot construct (e.g. learned weights absent)
        return False
