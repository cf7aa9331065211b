"""Code an image and measure it, for the demo and the evaluation grid alike: compress it with a
codec into a .rsic bitstream, decode that, and compute the chosen per-image metrics of the
decoded (or enhanced) image against the original."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs import Codec
from innrsic.errors import MetricError
from innrsic.metrics import bits_per_pixel
from innrsic.metrics.optional import MetricProbe
from innrsic.metrics.spectrum import band_metrics
from innrsic.metrics.table import ALWAYS_COMPUTED, BAND_METRICS, METRIC_BY_NAME, metric_names
from innrsic.rsic.coding import compress_image, decompress_container
from innrsic.rsic.container import Container, pack_container, read_container


@dataclass(frozen=True)
class Bitstream:
    """A coded image: the bytes of its .rsic file and the container they hold."""

    data: bytes
    container: Container

    @classmethod
    def read(cls, data: bytes) -> Bitstream:
        """Parse .rsic bytes (ContainerError when they are not a valid container)."""
        return cls(data, read_container(data))

    def write(self, path: Path) -> None:
        write_bytes_atomic(path, self.data)

    def decode(self, codec: Codec) -> np.ndarray:
        """The decoded image (a writable array)."""
        decoded = decompress_container(self.container, codec)
        return decoded if decoded.flags.writeable else decoded.copy()

    def sizes(self, height: int, width: int) -> dict[str, int | float]:
        """Payload and file size in bytes and in bits per pixel of a `height` x `width`
        image; the file adds the .rsic header and checksums to the payload."""
        payload, file = self.container.payload_size, len(self.data)
        return {
            "payload_bytes": payload,
            "file_bytes": file,
            "payload_bpp": bits_per_pixel(payload, height, width),
            "file_bpp": bits_per_pixel(file, height, width),
        }


def encode_image(image: np.ndarray, codec: Codec) -> Bitstream:
    """Compress an HxWx3 uint8 image with `codec` into a .rsic bitstream."""
    container = compress_image(image, codec)
    return Bitstream(pack_container(container), container)


@dataclass(frozen=True)
class CodedImage:
    """An image's bitstream, its decoded image, and the seconds encoding and decoding took."""

    bitstream: Bitstream
    decoded: np.ndarray
    encode_s: float
    decode_s: float


def code_image(image: np.ndarray, codec: Codec, path: Path | None = None) -> CodedImage:
    """Encode `image` (its .rsic file written to `path` when given), then decode it."""
    start = time.perf_counter()
    bitstream = encode_image(image, codec)
    encode_s = time.perf_counter() - start
    if path is not None:
        bitstream.write(path)
    start = time.perf_counter()
    decoded = bitstream.decode(codec)
    return CodedImage(bitstream, decoded, encode_s, time.perf_counter() - start)


def per_image_metrics(probes: dict[str, MetricProbe]) -> list[str]:
    """The per-image metrics an evaluation computes: PSNR, MS-SSIM, NIQE, the band-energy
    ratios and every available optional one."""
    return [*ALWAYS_COMPUTED, *(m for m in metric_names(("weights",)) if probes[m].available)]


def compute_metrics(
    reference: np.ndarray, test: np.ndarray, names: Sequence[str], probes: dict[str, MetricProbe]
) -> tuple[dict[str, float | None], list[str]]:
    """The metrics `names` of `test` against `reference`; None (with a note) where undefined
    (MS-SSIM under 161 px, NIQE under two 96x96 patches, band energy under 32 px). An optional
    metric takes its weights from its (available) probe in `probes`."""
    values: dict[str, float | None] = {}
    notes: list[str] = []
    bands: dict[str, float | None] | None = None
    for name in names:
        if name in BAND_METRICS:
            if bands is None:
                try:
                    bands = band_metrics(reference, test)
                except MetricError as exc:
                    bands = dict.fromkeys(BAND_METRICS)
                    notes.append(f"band energy undefined: {exc}")
            values[name] = bands[name]
        else:
            values[name] = _compute_one(name, reference, test, probes, notes)
    return values, notes


def _compute_one(
    name: str, reference: np.ndarray, test: np.ndarray, probes: dict[str, MetricProbe],
    notes: list[str],
) -> float | None:
    """One metric of the table (not a band column); None with a note where undefined."""
    metric = METRIC_BY_NAME.get(name)
    if metric is None or metric.compute is None:
        raise MetricError(f"no per-image implementation for metric {name!r}")
    weights = None
    if metric.kind == "weights":
        (weights,) = probes[name].files.values()
    try:
        return metric.compute(reference, test, weights)
    except MetricError as exc:
        if not metric.undefined_ok:
            raise
        notes.append(f"{name} undefined: {exc}")
        return None

