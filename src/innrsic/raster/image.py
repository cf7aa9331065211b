"""Reading and writing raster images as HxWx3 uint8 RGB arrays.

Accepted on read: 8-bit RGB, and 8-bit greyscale (``L``) or bilevel (``1``) which are expanded to
three identical channels. Refused with :class:`ImageReadError` naming the file and its mode:
alpha (``RGBA``, ``LA``, ``PA``), palette (``P``), 16/32-bit and float (``I;16``, ``I``, ``F``)
and anything with more than three bands (``CMYK``...). Those need an explicit policy.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from innrsic.atomic import atomic_output
from innrsic.errors import ImageReadError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
_WRITE_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}
_REFUSED_MODES = {
    "RGBA": "it has an alpha channel",
    "LA": "it has an alpha channel",
    "PA": "it has an alpha channel",
    "RGBa": "it has an alpha channel",
    "La": "it has an alpha channel",
    "P": "it is a palette image",
    "I": "it has 32-bit integer samples",
    "F": "it has floating-point samples",
    "CMYK": "it has 4 bands",
    "YCbCr": "it is stored as YCbCr",
    "LAB": "it is stored as L*a*b*",
    "HSV": "it is stored as HSV",
}


def _refusal_reason(mode: str) -> str | None:
    if mode in ("RGB", "L", "1"):
        return None
    if mode.startswith("I;16") or mode.startswith("I;"):
        return "it has 16-bit samples"
    return _REFUSED_MODES.get(mode, "this mode is not supported")


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file into a contiguous HxWx3 uint8 array (see the module doc for modes)."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                reason = _refusal_reason(img.mode)
                if reason is not None:
                    raise ImageReadError(
                        f"{path}: mode {img.mode!r} is not accepted ({reason}); innrsic reads "
                        "8-bit RGB or greyscale images"
                    )
                img.load()
                rgb = img.convert("L").convert("RGB") if img.mode == "1" else img.convert("RGB")
                array = np.array(rgb, dtype=np.uint8)
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ImageReadError(f"{path}: is a directory, not an image file") from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not a readable image (unknown or corrupt format)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{path}: too many pixels to read whole ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path}: cannot decode image ({exc})") from exc
    return np.ascontiguousarray(array)


def validate_rgb(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Check that `image` is an HxWx3 uint8 array with both sides at least 1; return it."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{what} must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{what} must be HxWx3 uint8, got shape {image.shape} dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what} is empty: shape {image.shape}")
    return image


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an HxWx3 uint8 array atomically; the format follows the suffix (PNG, TIFF, JPEG)."""
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{path}: unknown image suffix {path.suffix!r}; use one of {', '.join(_WRITE_FORMATS)}"
        )
    validate_rgb(image)
    pil = Image.fromarray(image, mode="RGB")
    options = {"quality": 95} if fmt == "JPEG" else {}
    with atomic_output(path) as handle:
        pil.save(handle, format=fmt, **options)


def list_images(directory: str | os.PathLike[str]) -> list[Path]:
    """All image files (by suffix) under `directory`, recursively, in sorted order."""
    root = Path(directory)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
