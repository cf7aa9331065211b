"""An enhancer loaded once for a batch of files, with one `EnhanceSettings`.

`open_session` takes settings already checked (`innrsic.enhancer.settings`; bad values never
reach a model load), loads the model they name (a shipped model's name or a weights file),
resolves them against it (the model's own temperature unless another is given, which is warned
about once: resolved settings warn no more, so a worker opening the same session is silent)
and builds the engine every file runs through. A `.rsic` stream of a codec the model was not
trained behind is warned about once per codec spec.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from innrsic.enhancer.apply import (
    EnhanceResult,
    check_codec,
    decompress_enhanced,
    enhance_file,
)
from innrsic.enhancer.capability import require_precision
from innrsic.enhancer.fast import FastEnhancer, ReferenceEngine, engine_for
from innrsic.enhancer.network import INNEnhancer
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.enhancer.weights_file import load_enhancer
from innrsic.raster.tiling import Window
from innrsic.rsic.container import ContainerReader

PathLike = str | os.PathLike[str]
Scale = tuple[float, float] | Literal["auto"] | None


@dataclass
class EnhancerSession:
    """The model `net`, its `engine`, and the resolved `settings` every file is enhanced at."""

    net: INNEnhancer
    engine: FastEnhancer | ReferenceEngine
    settings: EnhanceSettings
    codecs_checked: set[str] = field(default_factory=set)

    @property
    def temperature(self) -> float:
        """The temperature every file is enhanced at."""
        return self.settings.temperature_for(self.net)

    def enhance_file(
        self, source: PathLike, target: PathLike, progress: bool, *,
        bands: Sequence[int] | None = None, scale: Scale = None,
    ) -> EnhanceResult:
        """`innrsic.enhancer.apply.enhance_file` of a decoded image at the session's settings,
        its samples mapped by `bands` and `scale` (`innrsic.raster.geotiff`)."""
        return enhance_file(source, target, self.engine, self.settings, bands=bands,
                            scale=scale, progress=progress)

    def decompress_file(
        self, source: PathLike, target: PathLike, region: Window | None, progress: bool,
        verify: bool, weights: PathLike | None = None,
    ) -> EnhanceResult:
        """`innrsic.enhancer.apply.decompress_enhanced` of a `.rsic` file at the session's
        settings, after `check_stream`."""
        self.check_stream(source)
        return decompress_enhanced(
            source, target, self.engine, self.settings, region=region, progress=progress,
            verify=verify, weights=weights,
        )

    def check_stream(self, path: PathLike) -> None:
        """Warn, once per codec spec, when the `.rsic` file at `path` is another codec's."""
        with ContainerReader(path) as container:
            spec = container.codec_spec
        if spec not in self.codecs_checked:
            self.codecs_checked.add(spec)
            check_codec(self.net.codec, spec, self.settings.label)


def check_precision(settings: EnhanceSettings) -> None:
    """`require_precision` where the session's engine runs on the CPU: the device `settings`
    name, or the CPU a model loads on (device None). A GPU's bfloat16 is not the CPU's to
    refuse."""
    if settings.device in (None, "cpu"):
        require_precision(settings.precision)


def open_session(settings: EnhanceSettings) -> EnhancerSession:
    """The session of the enhancer `settings.model` at `settings` (module doc), its engine on
    `settings.device`. A precision the CPU cannot run there is refused before anything is
    loaded (`check_precision`)."""
    if settings.model is None:
        raise ValueError("open_session needs settings that name a model")
    check_precision(settings)
    net = load_enhancer(settings.model).eval()
    settings = settings.resolve(net)
    engine = engine_for(net, settings.precision, settings.threads, settings.device)
    return EnhancerSession(net, engine, settings)
