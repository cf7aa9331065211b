"""Code an image and measure it, for the demo and the evaluation grid alike: compress it with a
codec into a .rsic bitstream, decode that, and compute the chosen per-image metrics of the
decoded (or enhanced) image against the original."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs import Codec
from innrsic.errors import MetricError
from innrsic.metrics import bits_per_pixel, ms_ssim, psnr
from innrsic.metrics.niqe import niqe
from innrsic.metrics.optional import MetricProbe, lpips_torchvision
from innrsic.metrics.spectrum import BAND_COLUMNS, BAND_ERROR_COLUMN, band_metrics
from innrsic.rsic.coding import compress_image, decompress_container
from innrsic.rsic.container import Container, pack_container, read_container

BAND_METRICS = (BAND_ERROR_COLUMN, *BAND_COLUMNS.values())
ALWAYS_COMPUTED = ("psnr", "ms_ssim", "niqe", *BAND_METRICS)


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
    from innrsic.metrics.optional import PER_IMAGE_METRICS

    return [*ALWAYS_COMPUTED, *(m for m in PER_IMAGE_METRICS if probes[m].available)]


def compute_metrics(
    reference: np.ndarray, test: np.ndarray, names: Sequence[str], probes: dict[str, MetricProbe]
) -> tuple[dict[str, float | None], list[str]]:
    """The metrics `names` of `test` against `reference`; None (with a note) where undefined
    (MS-SSIM under 161 px, NIQE under two 96x96 patches, band energy under 32 px). An optional
    metric takes its weights from its (available) probe in `probes`."""
    from innrsic.metrics.perceptual import lpips_distance

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
        elif name == "niqe":
            try:
                values[name] = niqe(test)
            except MetricError as exc:
                values[name] = None
                notes.append(f"niqe undefined: {exc}")
        elif name == "psnr":
            values[name] = psnr(reference, test)
        elif name == "ms_ssim":
            try:
                values[name] = ms_ssim(reference, test)
            except MetricError as exc:
                values[name] = None
                notes.append(f"ms_ssim undefined: {exc}")
        elif name == "lpips_squeeze":
            (weights,) = probes[name].files.values()
            values[name] = lpips_distance(reference, test, weights)
        elif name in ("lpips_alex", "lpips_vgg"):
            (weights,) = probes[name].files.values()
            values[name] = lpips_torchvision(name, reference, test, weights)
        else:
            raise MetricError(f"no per-image implementation for metric {name!r}")
    return values, notes


def metric_values(
    reference: np.ndarray, test: np.ndarray, names: Sequence[str], probes: dict[str, MetricProbe]
) -> dict[str, float]:
    """`compute_metrics` with NaN for each metric that is undefined on these images."""
    values, _ = compute_metrics(reference, test, names, probes)
    return {name: math.nan if value is None else value for name, value in values.items()}
