"""Windows of an enhanced `.rsic` scene, equal to the same windows of the whole scene enhanced.

``EnhancedReader(dataset, "enhancer-jpeg2000-bpp0.4").read(window)`` gives what ``innrsic
enhance`` (`innrsic.enhancer.apply.enhance_file`) writes for `window` when run on the whole decoded
scene with the same temperature, seed, tile and overlap, pixel for pixel, while running the
network only on the enhancer tiles near the window.

Why that is exact: the whole-scene run blends the tiles of one `innrsic.raster.tiling.BlendGrid`
(stride ``tile``, shared bands of ``2 * overlap``). A pixel's value depends only on the tiles
covering it, their blending weights and the order `TileBlender` adds them in. The reader runs
`enhancer.apply.enhance_tiles` on an *area* of the scene cut at that grid's tile starts
(`innrsic.enhancer.apply.scene_area`, which ``decompress --region --enhance`` uses too): from
the last tile start at least one band before the window to the end of the first tile whose
finished part reaches past it (to the scene's edge for the last tile). That area's own grid
has the same tiles at the same places, the latent is drawn at absolute positions (``origin``)
and the weights differ only in bands outside the window (the area's first and last tiles lack
the ramps towards the tiles left out), so the window comes out bit for bit the same. The cost
is the network on at most one extra tile row and column around the window, and the decoding
of the container tiles that area touches.

The input is the decoded scene as a decoded GeoTIFF holds it (valid pixels nudged off the
nodata value), the output has nodata pixels put back, as `enhance_file` does; so it needs
8-bit sources (a scaled 16-bit scene would need a mapping `innrsic enhance` does not take).
The settings are one `innrsic.enhancer.settings.EnhanceSettings`, checked and resolved (its
warnings given) once, when the reader is made; reading windows warns no more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from innrsic.raster.geotiff import RasterFormatError, restore_samples
from innrsic.raster.tiling import Window
from innrsic.rsic.reader import RsicDataset, WindowLike

if TYPE_CHECKING:
    from innrsic.enhancer.settings import EnhanceSettings


class EnhancedReader:
    """An `RsicDataset` seen through the enhancer `settings.model` at `settings` (module doc);
    `read` as the dataset's."""

    def __init__(self, dataset: RsicDataset, settings: EnhanceSettings) -> None:
        from innrsic.enhancer.apply import check_codec
        from innrsic.enhancer.fast import engine_for
        from innrsic.enhancer.weights_file import load_enhancer

        mapping = dataset.metadata.mapping
        if mapping.dtype != "uint8" or not mapping.identity:
            raise RasterFormatError(
                f"{dataset.path}: the enhanced view needs 8-bit samples; this scene's "
                f"{mapping.dtype} samples were scaled to 8 bit"
            )
        if settings.model is None:
            raise ValueError("EnhancedReader needs settings that name a model")
        net = load_enhancer(settings.model).eval()
        check_codec(net.codec, dataset.codec_spec, settings.label)
        self.settings = settings.resolve(net)
        self.dataset = dataset
        self.width, self.height = dataset.width, dataset.height
        self.count, self.dtype = dataset.count, dataset.dtype
        self._engine = engine_for(net, self.settings.precision, self.settings.threads)

    @property
    def temperature(self) -> float:
        """The temperature the scene is enhanced at."""
        return self.settings.temperature_for(self._engine)

    def area(self, window: Window) -> Window:
        """The part of the scene the enhancer runs on to produce `window` (module doc)."""
        from innrsic.enhancer.apply import scene_area

        return scene_area(window, self.width, self.height, self.settings)

    def read(self, window: WindowLike | None = None) -> np.ndarray:
        """Band-first enhanced samples of `window`, ``(count, h, w)`` uint8."""
        from innrsic.enhancer.apply import enhance_tiles

        window = self.dataset.window(window)
        area = self.area(window)
        rgb, mask = self.dataset.decode(area)
        metadata = self.dataset.metadata
        pixels = metadata.mapping.to_rgb(restore_samples(rgb, mask, metadata))
        out = np.empty((window.height, window.width, 3), np.uint8)
        tiles = enhance_tiles(lambda part: pixels[part.slices], area.width, area.height,
                              self._engine, self.settings, (area.x, area.y))
        for done, values in tiles:
            absolute = Window(done.x + area.x, done.y + area.y, done.width, done.height)
            part = absolute.intersection(window)
            if part is not None:
                out[part.relative_to(window).slices] = values[part.relative_to(absolute).slices]
        inner = None if mask is None else mask[window.relative_to(area).slices]
        return restore_samples(out, inner, metadata)
