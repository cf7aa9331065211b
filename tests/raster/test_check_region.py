"""One region-inside-image check (`innrsic.raster.tiling.check_region`), used by the tile grid,
file decoding, the window reader and the enhancer's file path."""

from __future__ import annotations

import pytest

from innrsic.errors import TilingError
from innrsic.raster.tiling import TileGrid, Window, check_region
from innrsic.rsic.reader import as_window


def test_check_region() -> None:
    assert check_region(None, 30, 20) == Window(0, 0, 30, 20)
    assert check_region(Window(10, 5, 20, 15), 30, 20) == Window(10, 5, 20, 15)
    with pytest.raises(TilingError, match=r"^region 11,5,20,15 reaches outside the 30x20 image$"):
        check_region(Window(11, 5, 20, 15), 30, 20)


def test_callers_share_the_wording() -> None:
    with pytest.raises(TilingError, match=r"^region .* reaches outside the 30x20 image$"):
        TileGrid(30, 20, 16, 16).indices(Window(0, 0, 31, 20))
    with pytest.raises(TilingError, match=r"^window .* reaches outside the 30x20 image$"):
        as_window(Window(0, 0, 30, 21), 30, 20)
    assert as_window(None, 30, 20) == Window(0, 0, 30, 20)
