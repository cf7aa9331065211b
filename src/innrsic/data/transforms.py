"""Random crops and dihedral augmentation applied identically to aligned images.

Ground truth and decoded image must stay pixel-aligned, so one draw of the random numbers
decides the crop box, the flips and the transpose for every image of a tuple.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


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


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """3xHxW float in [0, 1] -> HxWx3 uint8 (clamped, rounded to the nearest level)."""
    array = tensor.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    return np.ascontiguousarray(array.permute(1, 2, 0).cpu().numpy())
