"""The scenes `innrsic view` serves, and their pixels: regions, map tiles, bounded and cached.

`Scenes` holds the `.rsic` files named on the command line, by file name; a name it does not
hold is a 404 before anything is read. `Scenes.region_png` writes what ``innrsic decompress
NAME --region x,y,w,h [--enhance MODEL --temperature T --seed S]`` writes, through the same
calls (`innrsic.rsic.coding.decompress_file`, `innrsic.enhancer.session`). `Scenes.tile_png`
renders one 256 px map tile: level `Scene.native_zoom` is the scene's own pixels, each level
below halves them (the window is read with `innrsic.rsic.reader`, or
`innrsic.enhancer.reader.EnhancedReader`, whose windows are the whole enhanced scene's, and
box-averaged); parts outside the scene are transparent.

Bounds, checked before any decode: a region has at most `MAX_REGION_PIXELS` pixels, a tile
reads at most `MAX_TILE_SPAN` (decoded) or `MAX_ENHANCED_SPAN` (enhanced) scene pixels a side.
Loaded enhancers (`MAX_MODELS` per kind, each with a lock: an engine runs one window at a
time), enhanced blocks of the enhancer's tile grid (`MAX_BLOCKS`: the map tiles in one share
the network's work) and rendered tiles (`MAX_TILES`) are kept in LRU caches. Bad requests
raise `RequestError` (status 4xx); a damaged file raises the library's own errors (the server
answers 5xx).
"""

from __future__ import annotations

import io
import math
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
from PIL import Image

from innrsic.enhancer.reader import EnhancedReader
from innrsic.enhancer.session import open_session
from innrsic.enhancer.settings import EnhanceSettings
from innrsic.errors import InnrsicError, TilingError, UsageError
from innrsic.metrics.rate import bits_per_pixel
from innrsic.pretrained import AUTO, installed_models, model_for_codec
from innrsic.raster.tiling import Window
from innrsic.rsic.coding import decompress_file
from innrsic.rsic.container import ContainerReader
from innrsic.rsic.describe import describe_file
from innrsic.rsic.reader import RsicDataset, open_rsic

TILE = 256
MAX_REGION_PIXELS = 4096 * 4096
MAX_TILE_SPAN = 16 * TILE  # decoded overview tiles: at most 16x zoomed out
MAX_ENHANCED_SPAN = 2 * TILE  # enhanced tiles: at most 2x zoomed out (the network is costly)
MAX_TILES = 256
MAX_BLOCKS = 16
MAX_MODELS = 4
INFO_FIELDS = ("width", "height", "codec", "bpp", "payload_bpp", "file_bytes", "tiles")

T = TypeVar("T")


class RequestError(Exception):
    """A request the server refuses: `status` (4xx) and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LRU(Generic[T]):
    """At most `size` values by key, the least recently used dropped first; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value of `key`, made when missing (outside the lock, so other keys are served
        meanwhile; of two threads making the same key, the first one's value is kept)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            value = self._items.setdefault(key, value)
            self._items.move_to_end(key)
            if len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def peek(self, key: Hashable) -> T | None:
        """The value of `key` if cached (its place in the order unchanged), else None."""
        with self._lock:
            return self._items.get(key)


@dataclass
class Locked(Generic[T]):
    """A value used by one thread at a time."""

    value: T
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Scene:
    """One served `.rsic` file: its `info` (what `innrsic info` shows, with `error` for a
    damaged file) and its open dataset."""

    name: str
    path: Path
    info: dict[str, Any]
    dataset: RsicDataset

    @property
    def width(self) -> int:
        return int(self.info["width"])

    @property
    def height(self) -> int:
        return int(self.info["height"])

    @property
    def native_zoom(self) -> int:
        """The map level at which one tile pixel is one scene pixel."""
        return max(0, math.ceil(math.log2(max(self.width, self.height) / TILE)))


def scene_info(path: Path) -> dict[str, Any]:
    """`describe_file`'s fields the page shows; for a file whose checksums fail, its header's
    (`error` says what is wrong: its damaged tiles show as error tiles). UsageError when the
    file cannot be opened at all."""
    try:
        fields = describe_file(path)
    except (InnrsicError, OSError) as exc:
        try:
            with open_rsic(path, verify=False) as dataset:
                size = path.stat().st_size
                with ContainerReader(path, partial=True) as container:
                    payload = container.payload_size
                return {"width": dataset.width, "height": dataset.height,
                        "codec": dataset.codec_spec, "file_bytes": size,
                        "tiles": len(dataset.tiles),
                        "bpp": bits_per_pixel(size, dataset.height, dataset.width),
                        "payload_bpp": bits_per_pixel(payload, dataset.height, dataset.width),
                        "error": str(exc)}
        except (InnrsicError, OSError):
            raise UsageError(f"{path}: cannot be served ({exc})") from exc
    return {key: fields[key] for key in INFO_FIELDS}


class Scenes:
    """The served scenes by name, and the caches of their pixels (module doc); enhanced on
    `device` (`innrsic.enhancer.settings.resolve_device`; None: the CPU, where models load)."""

    def __init__(self, paths: list[Path], device: str | None = None) -> None:
        self.device = device
        self.scenes: dict[str, Scene] = {}
        for path in paths:
            if path.name in self.scenes:
                raise UsageError(f"two served files are named {path.name}: "
                                 f"{self.scenes[path.name].path} and {path}; rename one")
            info = scene_info(path)
            self.scenes[path.name] = Scene(path.name, path, info, open_rsic(path))
        self.models = [model.name for model in installed_models()]
        self._tiles: LRU[bytes] = LRU(MAX_TILES)
        self._sessions: LRU[Locked[Any]] = LRU(MAX_MODELS)
        self._readers: LRU[Locked[EnhancedReader]] = LRU(MAX_MODELS)
        self._blocks: LRU[Block] = LRU(MAX_BLOCKS)

    def listing(self) -> list[dict[str, Any]]:
        """What `/api/files` answers: each scene's name, info and map levels."""
        return [{"name": s.name, **s.info, "native_zoom": s.native_zoom, "tile": TILE}
                for s in self.scenes.values()]

    def scene(self, name: str) -> Scene:
        """The served scene called `name`; RequestError 404 for any other name or path."""
        scene = self.scenes.get(name)
        if scene is None:
            raise RequestError(404, f"{name!r} is not a served file")
        return scene

    def enhancement(self, scene: Scene, query: Mapping[str, str]) -> EnhanceSettings | None:
        """The `EnhanceSettings` of a request's ``enhance``, ``temperature`` and ``seed``
        (None: not enhanced). Only shipped models (or ``auto``: the one covering the
        scene's codec and payload bpp) are served, never a path."""
        model = query.get("enhance")
        if not model:
            if "temperature" in query or "seed" in query:
                raise RequestError(400, "temperature and seed only apply with enhance=MODEL")
            return None
        if model == AUTO:
            codec, bpp = str(scene.info["codec"]), float(scene.info["payload_bpp"])
            found = model_for_codec(codec, bpp)
            if found is None:
                raise RequestError(404, f"no shipped enhancer covers {codec} at {bpp:.3f} bpp")
            model = found.name
        if model not in self.models:
            raise RequestError(404, f"no shipped model named {model!r}")
        temperature = None if "temperature" not in query else _number(query, "temperature", float)
        seed = _number(query, "seed", int) if "seed" in query else 0
        try:
            return EnhanceSettings(temperature=temperature, seed=seed, model=model,
                                   device=self.device)
        except InnrsicError as exc:
            raise RequestError(400, str(exc)) from exc

    def region(self, scene: Scene, query: Mapping[str, str]) -> Window:
        """The region ``x, y, w, h`` of a request, inside the scene and bounded."""
        try:  # parsed as `decompress --region` parses it
            window = Window.parse(",".join(query.get(key, "") for key in ("x", "y", "w", "h")))
        except TilingError as exc:
            raise RequestError(400, f"{exc} (give x, y, w and h)") from exc
        if window.width * window.height > MAX_REGION_PIXELS:
            raise RequestError(413, f"region {window.width}x{window.height} has more than "
                                    f"{MAX_REGION_PIXELS} pixels")
        if not window.within(scene.width, scene.height):
            raise RequestError(400, f"region {window} reaches outside the "
                                    f"{scene.width}x{scene.height} scene")
        return window

    def region_png(self, scene: Scene, window: Window, settings: EnhanceSettings | None) -> bytes:
        """The PNG ``innrsic decompress`` writes for `window` at `settings` (module doc)."""
        with tempfile.TemporaryDirectory(prefix="innrsic-view-") as folder:
            target = Path(folder) / "region.png"
            if settings is None:
                decompress_file(scene.path, target, region=window)
            else:
                session = self._sessions.get(settings, lambda: Locked(open_session(settings)))
                with session.lock:
                    session.value.decompress_file(scene.path, target, region=window,
                                                  progress=False, verify=True)
            return target.read_bytes()

    def tile_window(self, scene: Scene, z: int, x: int, y: int, enhanced: bool) -> tuple[
            Window, int]:
        """The scene window of map tile `z/x/y` and its scale (scene pixels per tile pixel);
        RequestError for levels past the bounds and tiles off the scene."""
        if not 0 <= z <= scene.native_zoom:
            raise RequestError(404, f"level {z} is not in 0..{scene.native_zoom}")
        scale = 2 ** (scene.native_zoom - z)
        span = TILE * scale
        limit = MAX_ENHANCED_SPAN if enhanced else MAX_TILE_SPAN
        if span > limit:
            raise RequestError(413, f"level {z} tiles span {span} px, more than {limit}; zoom in")
        if x < 0 or y < 0 or x * span >= scene.width or y * span >= scene.height:
            raise RequestError(404, f"tile {z}/{x}/{y} is off the scene")
        left, top = x * span, y * span
        return Window(left, top, min(span, scene.width - left),
                      min(span, scene.height - top)), scale

    def tile_png(self, scene: Scene, z: int, x: int, y: int,
                 settings: EnhanceSettings | None) -> bytes:
        """Map tile `z/x/y` of `scene` (enhanced at `settings` unless None), cached."""
        window, scale = self.tile_window(scene, z, x, y, settings is not None)
        key = (scene.name, z, x, y, settings)
        return self._tiles.get(key, lambda: self._render(scene, window, scale, settings))

    def _render(self, scene: Scene, window: Window, scale: int,
                settings: EnhanceSettings | None) -> bytes:
        dataset = scene.dataset
        if settings is None:
            rgb = dataset.metadata.mapping.to_rgb(dataset.read(window))
        else:
            block = self._enhanced_block(scene, settings, window)
            rgb = block.value[window.relative_to(block.window).slices]
        image = Image.fromarray(rgb)
        if scale > 1:
            image = image.reduce(scale)
        tile = Image.new("RGBA", (TILE, TILE), (0, 0, 0, 0))
        tile.paste(image, (0, 0))
        return png_bytes(tile)


    def _enhanced_block(self, scene: Scene, settings: EnhanceSettings,
                        window: Window) -> Block:
        """The enhanced block of the enhancer's tile grid holding `window` (which must lie in
        one): neighbouring map tiles share the network's work on it."""
        size = settings.tile or max(scene.width, scene.height)
        left, top = window.x - window.x % size, window.y - window.y % size
        block = Window(left, top, min(size, scene.width - left), min(size, scene.height - top))
        key = (scene.name, settings, block)

        def make() -> Block:
            reader = self._readers.get(
                (scene.name, settings), lambda: Locked(EnhancedReader(scene.dataset, settings)))
            with reader.lock:  # the thread that waited here finds the block made
                done = self._blocks.peek(key)
                samples = None if done else reader.value.read(block)
            if done:
                return done
            return Block(block, scene.dataset.metadata.mapping.to_rgb(samples))

        return self._blocks.get(key, make)


@dataclass(frozen=True)
class Block:
    """Enhanced pixels (HxWx3 uint8) of a scene `window`."""

    window: Window
    value: np.ndarray


def png_bytes(image: Image.Image) -> bytes:
    """`image` as PNG bytes (fast compression: tiles are made on demand)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _number(query: Mapping[str, str], key: str, kind: Callable[[str], T]) -> T:
    """Query parameter `key` as `kind`; RequestError 400 when missing or malformed."""
    text = query.get(key)
    if text is None:
        raise RequestError(400, f"missing parameter {key}")
    try:
        value = kind(text)
    except ValueError:
        raise RequestError(400, f"{key}={text!r} is not a {getattr(kind, '__name__', kind)}") \
            from None
    if isinstance(value, float) and not np.isfinite(value):
        raise RequestError(400, f"{key}={text!r} is not a finite number")
    return value
