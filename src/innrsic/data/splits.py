"""The documented data splits (see ``shared/data/README.md``) as lists of image references.

| split            | images                                                             |
| ---------------- | ------------------------------------------------------------------ |
| `ucmerced-train` | ``ucmerced/<class>/<class>00``–``45`` (46 per class, 966)          |
| `ucmerced-test`  | ``ucmerced/<class>/<class>46``–``59`` (14 per class, 294)          |
| `dota-test`      | ``dota/*.png``, non-overlapping 256x256 crops from the top-left    |
|                  | corner, dropping crops with more than 10% zero pixels              |

A zero pixel is one whose three channels are all 0 (the black no-data areas of DOTA scenes).
The UC Merced holdout is reserved for acceptance runs: asking for it is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from innrsic.errors import ConfigError, ImageReadError
from innrsic.raster.image import list_images, read_image

UCM_TRAIN_INDICES = range(0, 46)
UCM_TEST_INDICES = range(46, 60)
DOTA_CROP = 256
DOTA_MAX_ZERO_FRACTION = 0.10
SPLITS = ("ucmerced-train", "ucmerced-test", "dota-test")
RESERVED = ("ucmerced-holdout",)

_UCM_NAME = re.compile(r"^(?P<cls>[a-z]+)(?P<index>\d{2})$")


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: a file, optionally a (top, left, height, width) box inside it.

    `name` is unique within a split and is what derived files are called (``<name>.png``);
    it may contain ``/`` to keep a folder structure.
    """

    path: Path
    name: str
    box: tuple[int, int, int, int] | None = None

    def load(self) -> np.ndarray:
        """Read the image (or its box) as an HxWx3 uint8 array."""
        image = read_image(self.path)
        if self.box is None:
            return image
        top, left, height, width = self.box
        if top + height > image.shape[0] or left + width > image.shape[1]:
            raise ImageReadError(
                f"{self.path}: box {self.box} lies outside the {image.shape[1]}x"
                f"{image.shape[0]} image"
            )
        return np.ascontiguousarray(image[top : top + height, left : left + width])


def ucmerced_split(data_root: str | os.PathLike[str], split: str) -> list[ImageRef]:
    """UC Merced `train` (indices 00-45) or `test` (46-59), sorted by class then index."""
    indices = {"train": UCM_TRAIN_INDICES, "test": UCM_TEST_INDICES}.get(split)
    if indices is None:
        raise ConfigError(f"UC Merced split must be 'train' or 'test', got {split!r}")
    root = Path(data_root) / "ucmerced"
    if not root.is_dir():
        raise ConfigError(f"{root}: UC Merced folder not found (is --data-root the shared data "
                          "folder holding ucmerced/ and dota/?)")
    refs = []
    for path in list_images(root):
        match = _UCM_NAME.match(path.stem)
        if match is None or match["cls"] != path.parent.name:
            continue
        if int(match["index"]) in indices:
            refs.append(ImageRef(path, f"{path.parent.name}/{path.stem}"))
    if not refs:
        raise ConfigError(f"{root}: no UC Merced images named <class>/<class>NN found")
    return refs


def zero_fraction(image: np.ndarray) -> float:
    """Fraction of pixels whose channels are all zero."""
    return float(np.mean(np.all(image == 0, axis=-1)))


def grid_crops(
    image: np.ndarray, size: int = DOTA_CROP, max_zero_fraction: float = DOTA_MAX_ZERO_FRACTION
) -> list[tuple[int, int, int, int]]:
    """Boxes of the non-overlapping size x size grid from the top-left corner, keeping only
    those with at most `max_zero_fraction` zero pixels. Partial crops at the edges are dropped."""
    boxes = []
    for top in range(0, image.shape[0] - size + 1, size):
        for left in range(0, image.shape[1] - size + 1, size):
            crop = image[top : top + size, left : left + size]
            if zero_fraction(crop) <= max_zero_fraction:
                boxes.append((top, left, size, size))
    return boxes


def dota_test_crops(
    data_root: str | os.PathLike[str],
    size: int = DOTA_CROP,
    max_zero_fraction: float = DOTA_MAX_ZERO_FRACTION,
) -> list[ImageRef]:
    """The DOTA test crops (see the module doc); names are ``<image>_y<top>_x<left>``."""
    root = Path(data_root) / "dota"
    if not root.is_dir():
        raise ConfigError(f"{root}: DOTA folder not found (is --data-root the shared data folder?)")
    refs = []
    for path in list_images(root):
        for top, left, height, width in grid_crops(read_image(path), size, max_zero_fraction):
            name = f"{path.stem}_y{top:04d}_x{left:04d}"
            refs.append(ImageRef(path, name, (top, left, height, width)))
    return refs


def folder_images(directory: str | os.PathLike[str]) -> list[ImageRef]:
    """Every image under `directory` (recursively); names keep the relative folder structure."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a directory")
    refs = [ImageRef(p, p.relative_to(root).with_suffix("").as_posix()) for p in list_images(root)]
    if not refs:
        raise ConfigError(f"{root}: no images (.png, .tif, .jpg) found")
    names = [ref.name for ref in refs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[0]
        raise ConfigError(f"{root}: two images share the name {dup!r} (different suffixes)")
    return refs


def spread_indices(count: int, wanted: int) -> list[int]:
    """`wanted` indices spread evenly over ``range(count)``, the first and last included; all
    of them when `wanted` is 0 or not below `count` (validation on a subset)."""
    if not wanted or wanted >= count:
        return list(range(count))
    return sorted({round(float(v)) for v in np.linspace(0, count - 1, wanted)})


def resolve_split(name: str, data_root: str | os.PathLike[str] | None) -> list[ImageRef]:
    """A split by name (`ucmerced-train`, `ucmerced-test`, `dota-test`) under `data_root`."""
    if name in RESERVED:
        raise ConfigError(f"{name!r} is reserved for final acceptance measurements and is never "
                          "used for training, validation or pair generation")
    if name not in SPLITS:
        raise ConfigError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
    if data_root is None:
        raise ConfigError(f"split {name!r} needs the shared data folder (--data-root or "
                          "$INNRSIC_DATA_ROOT)")
    if name == "dota-test":
        return dota_test_crops(data_root)
    return ucmerced_split(data_root, name.removeprefix("ucmerced-"))
