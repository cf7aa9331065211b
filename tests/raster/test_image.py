"""Image files as HxWx3 uint8: reading, refused modes, clear errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from innrsic.errors import ImageReadError
from innrsic.raster.image import list_images, read_image, write_image


def test_reads_real_rgb_png(ucm_test_paths: list[Path]) -> None:
    image = read_image(ucm_test_paths[0])
    assert image.shape == (256, 256, 3)
    assert image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]
    assert np.array_equal(image, np.asarray(Image.open(ucm_test_paths[0]).convert("RGB")))


def test_greyscale_is_expanded_to_three_channels(tmp_path: Path) -> None:
    grey = (np.arange(60, dtype=np.uint8) * 4).reshape(6, 10)
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (6, 10, 3)
    for channel in range(3):
        assert np.array_equal(image[:, :, channel], grey)


@pytest.mark.parametrize(
    ("mode", "suffix", "phrase"),
    [
        ("RGBA", ".png", "alpha"),
        ("LA", ".png", "alpha"),
        ("P", ".png", "palette"),
        ("I;16", ".png", "16-bit"),
        ("CMYK", ".jpg", "4 bands"),
        ("F", ".tif", "floating-point"),
    ],
)
def test_refused_modes_name_file_and_mode(
    tmp_path: Path, mode: str, suffix: str, phrase: str
) -> None:
    path = tmp_path / f"img_{mode.replace(';', '')}{suffix}"
    Image.new(mode, (8, 8)).save(path)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    message = str(info.value)
    assert str(path) in message
    assert repr(Image.open(path).mode) in message
    assert phrase in message


def test_truncated_and_garbage_files_are_clear_errors(tmp_path: Path, ucm_test_paths) -> None:
    data = ucm_test_paths[0].read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    for name in ("cut.png", "junk.png", "missing.png"):
        with pytest.raises(ImageReadError, match=name):
            read_image(tmp_path / name)


def test_write_round_trips_png_and_tiff(tmp_path: Path, ucm_image: np.ndarray) -> None:
    for name in ("out.png", "out.tif"):
        write_image(tmp_path / name, ucm_image)
        assert np.array_equal(read_image(tmp_path / name), ucm_image)
    assert sorted(p.name for p in list_images(tmp_path)) == ["out.png", "out.tif"]


def test_failed_write_leaves_no_file(tmp_path: Path, ucm_image: np.ndarray) -> None:
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.png", ucm_image[:, :, :2])
    with pytest.raises(ValueError):
        write_image(tmp_path / "bad.xyz", ucm_image)
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_permissions(tmp_path: Path, ucm_image: np.ndarray) -> None:
    import os

    write_image(tmp_path / "a.png", ucm_image)
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~mask
