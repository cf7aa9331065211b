"""Random crops and dihedral augmentation applied identically to aligned images.

Ground truth and decoded image must stay pixel-aligned, so one draw of the random numbers
decides the crop box, the flips and the transpose for every image of a tuple.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def random_crop_box(
    height: int, width: int, size: int, rng: np.random.Generator
) -> tuple[int, int]:
    """A uniformly random (top, left) for a size x size crop inside height x width."""
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} from a {width}x{height} image")
    return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))


def crop_and_augment(
    images: Sequence[np.ndarray],
    size: int | None,
    rng: np.random.Generator,
    augment: bool = True,
) -> list[np.ndarray]:
    """Crop all `images` (HxWxC, same H and W) at one random box, then apply one random
    element of the dihedral group (horizontal flip, vertical flip, transpose; each with
    probability 1/2, so the 8 flips/rotations by 90 degrees are equally likely) to all of them.
    `size=None` keeps the whole image."""
    shapes = {image.shape[:2] for image in images}
    if len(shapes) != 1:
        raise ValueError(f"images to augment together must share their size, got {sorted(shapes)}")
    height, width = shapes.pop()
    if size is not None:
        top, left = random_crop_box(height, width, size, rng)
        images = [image[top : top + size, left : left + size] for image in images]
    if augment:
        hflip, vflip, transpose = (bool(b) for b in rng.integers(0, 2, size=3))
        if hflip:
            images = [image[:, ::-1] for image in images]
        if vflip:
            images = [image[::-1] for image in images]
        if transpose:
            images = [image.transpose(1, 0, 2) for image in images]
    return [np.ascontiguousarray(image) for image in images]
