"""Side-by-side crops: one square window, placed on an image's busiest region, cut out of that
image and of its decoded and enhanced versions and written as PNGs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from innrsic.raster.image import write_image

CROP_SIZE = 128


def texture_crop(image: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the `size` square with the most gradient energy (a busy region)."""
    grey = image.astype(np.float32).mean(axis=2)
    energy = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    height, width = energy.shape
    if height < size or width < size:
        return 0, 0
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = (
        integral[size:, size:]
        - integral[:-size, size:]
        - integral[size:, :-size]
        + integral[:-size, :-size]
    )
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(row), int(col)


@dataclass(frozen=True)
class CropWindow:
    """A `size` square at (`top`, `left`), the same for every image it is cut from."""

    top: int
    left: int
    size: int = CROP_SIZE

    @classmethod
    def busiest(cls, image: np.ndarray, size: int = CROP_SIZE) -> CropWindow:
        """The window over the region of `image` with the most gradient energy."""
        top, left = texture_crop(image, size)
        return cls(top, left, size)

    def write(self, out: Path, rel: str, image: np.ndarray) -> str:
        """Write the window of `image` to ``out/rel`` as a PNG; returns `rel`."""
        window = image[self.top : self.top + self.size, self.left : self.left + self.size]
        write_image(out / rel, np.ascontiguousarray(window))
        return rel
