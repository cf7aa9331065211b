"""Step I of INN-RSIC for any codec: (ground truth, decoded) image pairs on disk.

Layout of a pairs directory::

    gt/<name>.png          ground truth (the image, or its crop for cropped splits)
    decoded/<name>.png     Codec.decode(Codec.encode(ground truth))
    manifest.json          {"format", "version", "codec", "entries": [...]}: the source of truth
    manifest.csv           the same entries as a table (both: `innrsic.data.manifest`)

Generation is cached and resumable: a rerun skips entries already in the
manifest whose files exist, and refuses a directory made with another codec. An interrupt
(Ctrl-C, SIGTERM) cancels the images not started, waits for those in progress and records every
finished pair in the manifest before the run stops. Images that cannot be read or coded are
reported and skipped; the result lists them so the caller can exit non-zero.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from innrsic.codecs import make_codec
from innrsic.compute.cluster import worker_cached
from innrsic.compute.pool import fan_out
from innrsic.data.manifest import (
    MANIFEST_JSON,
    PairEntry,
    PairsManifest,
    read_pairs_manifest,
    write_pairs_manifest,
)
from innrsic.data.splits import ImageRef
from innrsic.errors import ConfigError, InnrsicError
from innrsic.metrics import bits_per_pixel
from innrsic.raster.image import write_image

log = logging.getLogger(__name__)

_SAVE_INTERVAL_S = 10.0


@dataclass
class PairsResult:
    """What one `generate_pairs` call did."""

    out_dir: Path
    codec: str
    total: int
    generated: int
    skipped: int
    failures: list[tuple[str, str]]
    seconds: float
    mean_bpp: float

    @property
    def ok(self) -> bool:
        return not self.failures


def make_pair(codec_spec: str, ref: ImageRef, out_dir: str | os.PathLike[str]) -> PairEntry:
    """Encode + decode one image with the codec (made once per process) and write both PNGs
    (atomically)."""
    codec = worker_cached(("codec", codec_spec), lambda: make_codec(codec_spec))
    image = ref.load()
    payload = codec.encode(image)
    decoded = codec.decode(payload)
    if decoded.shape != image.shape:
        raise InnrsicError(f"{ref.name}: codec returned {decoded.shape}, expected {image.shape}")
    gt_rel, decoded_rel = f"gt/{ref.name}.png", f"decoded/{ref.name}.png"
    write_image(Path(out_dir) / gt_rel, image)
    write_image(Path(out_dir) / decoded_rel, decoded)
    height, width = image.shape[:2]
    return PairEntry(
        name=ref.name,
        source=str(ref.path),
        box=ref.box,
        gt=gt_rel,
        decoded=decoded_rel,
        height=height,
        width=width,
        payload_bytes=len(payload),
        bpp=bits_per_pixel(len(payload), height, width),
    )


def _as_refs(items: Iterable[ImageRef | str | os.PathLike[str]]) -> list[ImageRef]:
    refs = [
        item if isinstance(item, ImageRef) else ImageRef(Path(item), Path(item).stem)
        for item in items
    ]
    seen: dict[str, ImageRef] = {}
    for ref in refs:
        if ref.name in seen and seen[ref.name] != ref:
            raise ConfigError(f"two inputs map to the same pair name {ref.name!r}: "
                              f"{seen[ref.name].path} and {ref.path}")
        seen[ref.name] = ref
    return list(seen.values())


def generate_pairs(
    codec_spec: str,
    image_paths: Sequence[ImageRef | str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 1,
    progress: bool = True,
    executor: Executor | None = None,
) -> PairsResult:
    """Write (ground truth, decoded) pairs for `image_paths` into `out_dir` (see module doc).

    `image_paths` are files (named by their stem) or `ImageRef`s (split members, crops).
    The images are coded here (`workers` 1), in `workers` processes, or as tasks of
    `executor` (a dask.distributed client's, `innrsic.compute.cluster`) when given.
    Entries already in the manifest with both files present are skipped. A directory made
    with another codec spec is refused with ConfigError. Unreadable images and codec failures
    are logged and listed in the result's `failures`.
    """
    from tqdm import tqdm

    start = time.monotonic()
    spec = make_codec(codec_spec).spec
    out = Path(out_dir)
    refs = _as_refs(image_paths)
    manifest = _open_manifest(out, spec)
    todo = _pending(out, refs, {entry.name: entry for entry in manifest.entries})
    bar = tqdm(total=len(todo), desc=f"pairs {spec}", unit="img", disable=not progress)
    recorder = _Recorder(out, spec, manifest.entries, bar)
    try:
        fan_out(functools.partial(make_pair, spec, out_dir=out), todo, recorder.record,
                recorder.fail, workers=workers, executor=executor)
    finally:
        bar.close()
        recorder.save()
    return PairsResult(
        out_dir=out,
        codec=spec,
        total=len(refs),
        generated=len(todo) - len(recorder.failures),
        skipped=len(refs) - len(todo),
        failures=recorder.failures,
        seconds=time.monotonic() - start,
        mean_bpp=read_pairs_manifest(out).mean_bpp,
    )


def _open_manifest(out: Path, spec: str) -> PairsManifest:
    """The manifest of `out` (an empty one for a new directory, which is made); a directory
    of another codec spec is refused."""
    if not (out / MANIFEST_JSON).exists():
        out.mkdir(parents=True, exist_ok=True)
        return PairsManifest(spec)
    manifest = read_pairs_manifest(out)
    if manifest.codec != spec:
        raise ConfigError(
            f"{out} holds pairs made with codec {manifest.codec!r}; refusing to mix them "
            f"with {spec!r} (use another --out directory)"
        )
    return manifest


def _pending(out: Path, refs: list[ImageRef], done: dict[str, PairEntry]) -> list[ImageRef]:
    """The refs whose pair is not on disk yet; a recorded pair of another source is refused."""
    todo = []
    for ref in refs:
        entry = done.get(ref.name)
        if entry is None or not ((out / entry.gt).is_file() and (out / entry.decoded).is_file()):
            todo.append(ref)
        elif entry.source != str(ref.path) or entry.box != ref.box:
            raise ConfigError(
                f"{out}: pair {ref.name!r} was made from {entry.source} {entry.box or ''}, not "
                f"from {ref.path} {ref.box or ''}; use another --out directory"
            )
    return todo


class _Recorder:
    """The finished pairs and the failures of a run, each advancing the bar; saves the
    manifest every `_SAVE_INTERVAL_S` seconds and on `save`."""

    def __init__(self, out: Path, spec: str, entries: Iterable[PairEntry], bar: Any) -> None:
        self.out, self.spec, self.bar = out, spec, bar
        self.done = {entry.name: entry for entry in entries}
        self.failures: list[tuple[str, str]] = []
        self.last_save = time.monotonic()

    def record(self, ref: ImageRef, entry: PairEntry) -> None:
        self.done[entry.name] = entry
        self.bar.update()
        if time.monotonic() - self.last_save > _SAVE_INTERVAL_S:
            self.save()

    def fail(self, ref: ImageRef, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, InnrsicError) else f"{type(exc).__name__}: {exc}"
        self.failures.append((ref.name, message))
        self.bar.write(f"skipped {ref.name} ({ref.path}): {message}")
        self.bar.update()
        log.debug("pair %s failed", ref.name, exc_info=exc)

    def save(self) -> None:
        entries = sorted(self.done.values(), key=lambda e: e.name)
        write_pairs_manifest(self.out, PairsManifest(self.spec, entries))
        self.last_save = time.monotonic()
