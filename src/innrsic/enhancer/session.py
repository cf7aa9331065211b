"""An enhancer loaded once for a batch of files, with one set of enhancing settings.

`open_session` checks the tiling settings, then loads the model named by a shipped model's
name or a weights file, builds the engine every file runs through and settles the temperature
(the model's own unless another is given, which is warned about: `model_temperature`). A
`.rsic` stream of a codec the model was not trained behind is warned about once per codec spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from innrsic.enhancer.apply import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    EnhanceResult,
    check_codec,
    check_settings,
    decompress_enhanced,
    enhance_file,
    model_temperature,
)
from innrsic.enhancer.capability import require_precision
from innrsic.enhancer.fast import FastEnhancer, Precision, ReferenceEngine, engine_for
from innrsic.enhancer.network import INNEnhancer
from innrsic.enhancer.weights_file import load_enhancer
from innrsic.raster.tiling import Window
from innrsic.rsic.container import ContainerReader

PathLike = str | os.PathLike[str]


@dataclass
class EnhancerSession:
    """The model `net` named `name`, its `engine`, and the settings every file is enhanced at
    (latent `temperature` and `seed`, `tile` and `overlap` as in `innrsic.enhancer.apply`)."""

    name: str
    net: INNEnhancer
    engine: FastEnhancer | ReferenceEngine
    temperature: float
    seed: int = 0
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    codecs_checked: set[str] = field(default_factory=set)

    def enhance_file(self, source: PathLike, target: PathLike, progress: bool) -> EnhanceResult:
        """`innrsic.enhancer.apply.enhance_file` of a decoded image at the session's settings."""
        return enhance_file(
            source, target, self.engine, self.temperature, self.seed, self.tile, self.overlap,
            progress=progress, warn=False,
        )

    def decompress_file(
        self, source: PathLike, target: PathLike, region: Window | None, progress: bool,
        verify: bool,
    ) -> EnhanceResult:
        """`innrsic.enhancer.apply.decompress_enhanced` of a `.rsic` file at the session's
        settings, after `check_stream`."""
        self.check_stream(source)
        return decompress_enhanced(
            source, target, self.engine, self.temperature, self.seed, self.tile, self.overlap,
            region=region, progress=progress, verify=verify, warn=False,
        )

    def check_stream(self, path: PathLike) -> None:
        """Warn, once per codec spec, when the `.rsic` file at `path` is another codec's."""
        with ContainerReader(path) as container:
            spec = container.codec_spec
        if spec not in self.codecs_checked:
            self.codecs_checked.add(spec)
            check_codec(self.net.codec, spec, self.name)


def open_session(
    weights: str,
    *,
    precision: Precision = "float32",
    threads: int | None = None,
    temperature: float | None = None,
    seed: int = 0,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    warn: bool = True,
) -> EnhancerSession:
    """The session of the enhancer `weights`: its engine at `precision` with `threads` workers
    (None: torch's), enhancing at `temperature` (None: the model's own; another is warned about
    if `warn`), `seed`, `tile` and `overlap`. Unusable tiling settings and an unsupported
    precision are refused before anything is loaded."""
    check_settings(tile, overlap)
    require_precision(precision)
    net = load_enhancer(weights).eval()
    temperature = model_temperature(net, temperature, weights, warn=warn)
    engine = engine_for(net, precision, threads)
    return EnhancerSession(weights, net, engine, temperature, seed, tile, overlap)
