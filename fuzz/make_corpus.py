"""Write the fuzzing seed corpus: one small, valid `.rsic` container per codec and layout.

    python fuzz/make_corpus.py [OUT_DIR]      (default: fuzz/corpus)

Seeds: every classical codec on a 16x16 image, ELIC on the same image (with the tiny model of
`tiny_elic_weights`, which the fuzz target rebuilds identically), a tiled JPEG container and a
JPEG container with tile records and a nodata mask (one tile all nodata). Images and models are
synthetic and seeded, so the corpus is the same on every run on one platform.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ELIC_SPEC = "elic:lambda=0.0008"
ELIC_CONFIG = {"N": 8, "M": 16, "groups": [2, 2, 4, 8]}
CLASSICAL_SPECS = (
    "jpeg:quality=50",
    "jpeg2000:ratio=20",
    "webp:quality=50",
    "avif:quality=50",
    "heif:quality=50",
)


def tiny_elic_weights(directory: Path) -> Path:
    """A seeded, randomly initialised ELIC small enough to fuzz, saved where `ELIC_SPEC` finds
    it when ``$INNRSIC_MODEL_DIR`` is `directory`."""
    import torch

    from innrsic.codecs.learned import weights_file_name
    from innrsic.codecs.learned_checkpoint import build_model, save_learned_checkpoint

    path = directory / weights_file_name("elic", 0.0008)
    if not path.is_file():
        torch.manual_seed(0)
        model = build_model("elic", ELIC_CONFIG)
        save_learned_checkpoint(model, "elic", path, lmbda=0.0008)
    return path


def seed_image(height: int, width: int) -> np.ndarray:
    """A smooth gradient with noise: compresses to small payloads, exercises every channel."""
    rng = np.random.default_rng(height * 1000 + width)
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack(
        [
            rows * 255 // max(height - 1, 1),
            cols * 255 // max(width - 1, 1),
            (rows + cols) * 127 // max(height + width - 2, 1),
        ],
        axis=-1,
    )
    noise = rng.integers(-12, 13, base.shape)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def seeds() -> dict[str, bytes]:
    """File name -> container bytes."""
    from innrsic.codecs import make_codec
    from innrsic.rsic.container import (
        FLAG_TILE_RECORDS,
        Container,
        TileRecord,
        pack_container,
        pack_mask,
        pack_tile_record,
    )

    image = seed_image(16, 16)
    out = {}
    for spec in (*CLASSICAL_SPECS, ELIC_SPEC):
        codec = make_codec(spec)
        out[f"{spec.split(':')[0]}.rsic"] = pack_container(
            Container(codec.spec, 16, 16, (codec.encode(image),))
        )
    jpeg = make_codec("jpeg:quality=10")
    tall = seed_image(80, 64)  # 64x64 tiles: one full tile above a 64x16 one
    tiles = (tall[:64], tall[64:])
    out["jpeg-tiled.rsic"] = pack_container(
        Container(jpeg.spec, 64, 80, tuple(jpeg.encode(t) for t in tiles), 64, 64)
    )
    mask = np.zeros((64, 64), bool)
    mask[:8, :8] = True
    records = (
        TileRecord(jpeg.encode(tiles[0]), pack_mask(mask)),
        TileRecord(b""),  # every pixel nodata: nothing coded
    )
    out["jpeg-records.rsic"] = pack_container(
        Container(
            jpeg.spec,
            64,
            80,
            tuple(pack_tile_record(r) for r in records),
            64,
            64,
            {"nodata": 0},
            FLAG_TILE_RECORDS,
        )
    )
    return out


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpus"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as models:
        os.environ["INNRSIC_MODEL_DIR"] = models
        tiny_elic_weights(Path(models))
        for name, data in seeds().items():
            (target / name).write_bytes(data)
            print(f"{target / name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
