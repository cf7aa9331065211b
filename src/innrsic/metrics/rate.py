"""Rate metrics: bits per pixel from the actual bytes of a file or payload."""

from __future__ import annotations


def bits_per_pixel(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of `num_bytes` bytes spent on an image of height x width pixels."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    if num_bytes < 0:
        raise ValueError(f"byte count must be non-negative, got {num_bytes}")
    return 8.0 * num_bytes / (height * width)
