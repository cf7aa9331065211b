"""Windows of an enhanced `.rsic` scene, equal to the same windows of the whole scene enhanced.

``EnhancedReader(dataset, "enhancer-jpeg2000-bpp0.4").read(window)`` gives what ``innrsic
enhance`` (`innrsic.enhancer.apply.enhance_file`) writes for `window` when run on the whole decoded
scene with the same temperature, seed, tile and overlap, pixel for pixel, while running the
network only on the enhancer tiles near the window.

Why that is exact: the whole-scene run blends the tiles of one `innrsic.raster.tiling.BlendGrid`
(stride ``tile``, shared bands of ``2 * overlap``). A pixel's value depends only on the tiles
covering it, their blending weights and the order `TileBlender` adds them in. The reader runs
`enhancer.apply.enhance_region` on an *area* of the scene cut at that grid's tile starts
(`innrsic.enhancer.apply.scene_area`): from
the last tile start at least one band before the window to the end of the first tile whose
finished part reaches past it (to the scene's edge for the last tile). That area's own grid
has the same tiles at the same places, the latent is drawn at absolute positions (``origin``)
and the weights differ only in bands outside the window (the area's first and last tiles lack
the ramps towards the tiles left out), so the window comes out bit for bit the same. The cost
is the network on at most one extra tile row and column around the window, and the decoding
of the container tiles that area touches.

The input is the decoded scene as a decoded GeoTIFF reads back (`innrsic.rsic.reader.RsicSource`:
valid pixels nudged off the nodata value, a scaled scene mapped to 8 bit by its stored
mapping), the output the scene's samples with nodata pixels put back, as `enhance_file` writes
them. ``innrsic decompress --enhance`` (`innrsic.enhancer.apply.decompress_enhanced`) takes
this same path, whole scene or ``--region``, streaming to its output file. The settings are
one `innrsic.enhancer.settings.EnhanceSettings`, checked and resolved (its warnings given)
once, when the reader is made; reading windows warns no more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from innrsic.raster.geotiff import restore_samples
from innrsic.rsic.reader import RsicDataset, RsicSource, WindowLike

if TYPE_CHECKING:
    from innrsic.enhancer.settings import EnhanceSettings


class EnhancedReader:
    """An `RsicDataset` seen through the enhancer `settings.model` at `settings` (module doc);
    `read` as the dataset's."""

    def __init__(self, dataset: RsicDataset, settings: EnhanceSettings) -> None:
        from innrsic.enhancer.apply import check_codec
        from innrsic.enhancer.fast import engine_for
        from innrsic.enhancer.weights_file import load_enhancer

        if settings.model is None:
            raise ValueError("EnhancedReader needs settings that name a model")
        net = load_enhancer(settings.model).eval()
        check_codec(net.codec, dataset.codec_spec, settings.label)
        self.settings = settings.resolve(net)
        self.dataset = dataset
        self.width, self.height = dataset.width, dataset.height
        self.count, self.dtype = dataset.count, dataset.dtype
        self._engine = engine_for(net, self.settings.precision, self.settings.threads,
                                  self.settings.device)

    @property
    def temperature(self) -> float:
        """The temperature the scene is enhanced at."""
        return self.settings.temperature_for(self._engine)

    def read(self, window: WindowLike | None = None) -> np.ndarray:
        """Band-first enhanced samples of `window`, ``(count, h, w)`` of `dtype`."""
        from innrsic.enhancer.apply import enhance_region

        window = self.dataset.window(window)
        out = np.empty((window.height, window.width, 3), np.uint8)
        mask = None if self.dataset.nodata is None else np.zeros(out.shape[:2], bool)
        scene = RsicSource(self.dataset)
        for part, values, part_mask in enhance_region(scene, window, self._engine, self.settings):
            out[part.slices] = values
            if mask is not None and part_mask is not None:
                mask[part.slices] = part_mask
        return restore_samples(out, mask, self.dataset.metadata)
