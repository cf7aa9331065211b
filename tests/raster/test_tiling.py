"""Tile grids, blending and seams (pure, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from innrsic.errors import TilingError
from innrsic.raster.tiling import (
    BlendGrid,
    TileBlender,
    TileGrid,
    Window,
    blend_ramp,
    seam_ratio,
)


def test_window_parse_and_intersection() -> None:
    assert Window.parse("10, 20,30,40") == Window(10, 20, 30, 40)
    assert str(Window(1, 2, 3, 4)) == "1,2,3,4"
    for bad in ("1,2,3", "a,b,c,d", "1,2,0,5", "-1,0,4,4"):
        with pytest.raises(TilingError):
            Window.parse(bad)
    a, b = Window(0, 0, 10, 10), Window(5, 8, 10, 10)
    assert a.intersection(b) == Window(5, 8, 5, 2)
    assert a.intersection(Window(10, 0, 3, 3)) is None
    assert Window(5, 8, 5, 2).relative_to(b) == Window(0, 0, 5, 2)


def test_tile_grid_covers_the_image_once_and_finds_region_tiles() -> None:
    grid = TileGrid(300, 200, 128, 64)
    assert (grid.columns, grid.rows, len(grid)) == (3, 4, 12)
    cover = np.zeros((200, 300), int)
    for window in grid:
        cover[window.slices] += 1
    assert (cover == 1).all()
    assert grid.window(11) == Window(256, 192, 44, 8)
    assert grid.indices(Window(127, 63, 2, 2)) == [0, 1, 3, 4]
    assert grid.indices(Window(0, 0, 300, 200)) == list(range(12))
    assert TileGrid(300, 200).indices(Window(5, 5, 5, 5)) == [0]
    with pytest.raises(TilingError, match="outside"):
        grid.indices(Window(250, 0, 51, 10))


def test_blend_ramp_is_a_partition_of_unity() -> None:
    ramp = blend_ramp(64)
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-12)
    assert 0 < ramp[0] < 0.01 and 0.99 < ramp[-1] < 1 and (np.diff(ramp) > 0).all()


@pytest.mark.parametrize(
    ("width", "height", "step", "overlap"),
    [(100, 70, 32, 8), (33, 200, 16, 8), (10, 10, 64, 16), (513, 257, 64, 0), (130, 130, 64, 32)],
)
def test_blender_reproduces_a_tiled_image_exactly(width, height, step, overlap) -> None:
    grid = BlendGrid(width, height, step, overlap)
    weights = np.zeros((height, width))
    for row, col in grid.positions():
        weights[grid.window(row, col).slices] += grid.weights(row, col)
    np.testing.assert_allclose(weights, 1.0, atol=1e-6)

    image = np.random.default_rng(0).random((height, width, 2)).astype(np.float32)
    blender = TileBlender(grid, 2)
    out = np.full_like(image, np.nan)
    done_count = np.zeros((height, width), int)
    for row, col in grid.positions():
        done, values = blender.add(row, col, image[grid.window(row, col).slices])
        out[done.slices] = values
        done_count[done.slices] += 1
    assert (done_count == 1).all()
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_blender_refuses_out_of_order_tiles() -> None:
    grid = BlendGrid(100, 100, 32, 8)
    blender = TileBlender(grid, 1)
    with pytest.raises(ValueError, match="raster order"):
        blender.add(0, 1, np.zeros((48, 48, 1), np.float32))


def test_blend_grid_rejects_overlap_wider_than_half_the_step() -> None:
    with pytest.raises(ValueError, match="twice the overlap"):
        BlendGrid(100, 100, 32, 17)


def test_seam_ratio_sees_a_step_at_tile_edges() -> None:
    rng = np.random.default_rng(1)
    image = rng.normal(128, 10, (256, 256, 3))
    grid = BlendGrid(256, 256, 64, 8)
    xs, ys = grid.seams()
    assert xs == ys == [64, 80, 128, 144, 192, 208]
    assert abs(seam_ratio(image, xs, ys) - 1) < 0.05
    stepped = image.copy()
    stepped[:, 64:128] += 20  # offsets between tiles: visible seams at x = 64, 128, 192
    stepped[:, 192:] += 20
    assert seam_ratio(stepped, xs, ys) > 1.15
