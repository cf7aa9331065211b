"""Large-scene benchmark: time and peak memory of compress, decompress and enhance vs scene size.

For each side length (default 4000, 10000, 20000) it builds a GeoTIFF scene from real DOTA
images (a mosaic of 512 px crops, tiled and DEFLATE-compressed, with a CRS, a geotransform
and nodata 0, so the black borders of the DOTA scenes are nodata), then runs, each in its own
process (after timing the interpreter start-up alone, ``innrsic --version``):

- ``innrsic compress scene.tif -o scene.rsic --codec CODEC --tile TILE``
- ``innrsic decompress scene.rsic -o decoded.tif``
- tiled enhancement of ``decoded.tif`` with a small random `INNEnhancer` (blocks=2,
  growth=8, gaussian_growth=8; the speed of a trained network of that size) through
  `innrsic.enhancer.apply.enhance_file`. The enhancer is slow on CPU, so scenes larger than
  ``--enhance-pixels`` are enhanced on a full-width band of rows in the middle of the scene
  (``region``), which keeps the width-dependent part of its memory in the measurement.

Each step's wall time and peak resident memory (``ru_maxrss`` of that child from
``os.wait4``, the per-child form of ``getrusage(RUSAGE_CHILDREN)``) go to a CSV. The scenes
live in a temporary folder, removed at the end unless ``--keep``.

    .venv/bin/python benchmarks/large_scene.py                      # -> benchmarks/results/
    .venv/bin/python benchmarks/large_scene.py out.csv --sizes 4000 10000 --codec jpeg2000
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from innrsic.enhancer.settings import ENHANCER_TILE
from innrsic.raster.geotiff import OUTPUT_PROFILE
from innrsic.rsic.coding import CONTAINER_TILE

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CSV = ROOT / "benchmarks" / "results" / "large_scene.csv"
BLOCK = OUTPUT_PROFILE.block
FIELDS = [
    "side",
    "pixels",
    "step",
    "codec",
    "tile",
    "processed_pixels",
    "seconds",
    "peak_rss_mib",
    "output_bytes",
    "command",
]


def shared_dir() -> Path:
    override = os.environ.get("INNRSIC_SHARED")
    return Path(override) if override else ROOT.parent / "shared"


def load_dota() -> list[np.ndarray]:
    """The DOTA scenes at least BLOCK px on both sides, as HxWx3 uint8."""
    from innrsic.raster.image import read_image

    folder = shared_dir() / "data" / "dota"
    images = [read_image(path) for path in sorted(folder.glob("*.png"))]
    images = [image for image in images if min(image.shape[:2]) >= BLOCK]
    if not images:
        raise SystemExit(f"no DOTA images of at least {BLOCK} px in {folder}")
    return images


def build_scene(path: Path, side: int, images: list[np.ndarray]) -> None:
    """Write a side x side GeoTIFF mosaic of BLOCK px crops of real images, block by block."""
    import rasterio
    from rasterio.transform import Affine
    from rasterio.windows import Window

    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": Affine(0.5, 0.0, 400000.0, 0.0, -0.5, 4500000.0),
        "nodata": 0,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": OUTPUT_PROFILE.compress,
        "photometric": "RGB",
        "bigtiff": "IF_SAFER",
    }
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path, "w", **profile) as dataset:
        for y in range(0, side, BLOCK):
            for x in range(0, side, BLOCK):
                rng = np.random.default_rng((x, y))
                image = images[int(rng.integers(len(images)))]
                top = int(rng.integers(image.shape[0] - BLOCK + 1))
                left = int(rng.integers(image.shape[1] - BLOCK + 1))
                width, height = min(BLOCK, side - x), min(BLOCK, side - y)
                crop = image[top : top + height, left : left + width]
                dataset.write(crop.transpose(2, 0, 1), window=Window(x, y, width, height))


def measure(command: list[str]) -> tuple[float, float]:
    """Run `command`; return (wall seconds, peak RSS in MiB) of that child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    error = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{error}")
    return seconds, usage.ru_maxrss / 1024.0


def enhance_child(args: argparse.Namespace) -> None:
    """The enhance step, run in a child process."""
    import torch

    from innrsic.enhancer import EnhancerConfig, INNEnhancer
    from innrsic.enhancer.apply import enhance_file
    from innrsic.enhancer.settings import EnhanceSettings
    from innrsic.raster.tiling import Window

    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    net = INNEnhancer(EnhancerConfig(blocks=2, growth=8, gaussian_growth=8)).eval()
    region = Window.parse(args.region) if args.region else None
    enhance_file(args.source, args.target, net, EnhanceSettings(seed=1, tile=args.tile),
                 region=region)


def enhance_region(side: int, cap: int) -> str | None:
    """A full-width band of rows in the middle, of at most `cap` pixels (None: whole scene)."""
    if side * side <= cap:
        return None
    rows = max(2, (cap // side) // 2 * 2)
    top = (side // 2 - rows // 2) // 2 * 2
    return f"0,{top},{side},{rows}"


def run(args: argparse.Namespace) -> None:
    images = load_dota()
    workdir = Path(tempfile.mkdtemp(prefix="innrsic-large-", dir=args.workdir))
    innrsic = [sys.executable, "-m", "innrsic"]
    rows: list[dict[str, object]] = []
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    try:
        # Interpreter start and imports, paid by every step: `innrsic --version` loads the CLI.
        seconds, rss = measure([*innrsic, "--version"])
        rows.append(_row(0, "startup", "-", 0, 0, seconds, rss, 0, "python -m innrsic --version"))
        print(f"startup {seconds:8.1f} s {rss:8.1f} MiB", flush=True)
        for side in args.sizes:
            scene = workdir / f"scene{side}.tif"
            start = time.perf_counter()
            build_scene(scene, side, images)
            print(f"built {side}^2 in {time.perf_counter() - start:.0f} s", flush=True)
            stream, decoded = workdir / f"scene{side}.rsic", workdir / f"decoded{side}.tif"
            enhanced = workdir / f"enhanced{side}.tif"
            region = enhance_region(side, args.enhance_pixels)
            enhance = [
                sys.executable,
                __file__,
                "enhance-child",
                str(decoded),
                str(enhanced),
                "--tile",
                str(args.enhance_tile),
                "--torch-threads",
                str(args.torch_threads),
            ]
            if region:
                enhance += ["--region", region]
            compress = [
                *innrsic,
                "compress",
                str(scene),
                "-o",
                str(stream),
                "--codec",
                args.codec,
                "--tile",
                str(args.tile),
            ]
            decompress = [*innrsic, "decompress", str(stream), "-o", str(decoded)]
            enhanced_pixels = side * (side if region is None else int(region.split(",")[3]))
            steps = [
                ("compress", compress, stream, side * side),
                ("decompress", decompress, decoded, side * side),
            ]
            if not args.skip_enhance:
                steps.append(("enhance", enhance, enhanced, enhanced_pixels))
            for name, command, output, processed in steps:
                seconds, rss = measure(command)
                enhancing = name == "enhance"
                rows.append(
                    _row(
                        side,
                        name,
                        "inn blocks=2 growth=8" if enhancing else args.codec,
                        args.enhance_tile if enhancing else args.tile,
                        processed,
                        seconds,
                        rss,
                        output.stat().st_size,
                        " ".join(Path(c).name if "/" in c else c for c in command),
                    )
                )
                print(
                    f"{side:>6}^2 {name:10s} {seconds:8.1f} s {rss:8.1f} MiB "
                    f"({processed / 1e6:.1f} Mpx)",
                    flush=True,
                )
                with open(args.csv, "w", newline="") as handle:
                    writer = csv.DictWriter(handle, FIELDS)
                    writer.writeheader()
                    writer.writerows(rows)
            if not args.keep:
                for path in (scene, stream, decoded, enhanced):
                    path.unlink(missing_ok=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summarise(rows)
    print(f"wrote {args.csv}")


def _row(
    side: int,
    step: str,
    codec: str,
    tile: int,
    processed: int,
    seconds: float,
    rss: float,
    output_bytes: int,
    command: str,
) -> dict[str, object]:
    return {
        "side": side,
        "pixels": side * side,
        "step": step,
        "codec": codec,
        "tile": tile,
        "processed_pixels": processed,
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(rss, 1),
        "output_bytes": output_bytes,
        "command": command,
    }


def summarise(rows: list[dict[str, object]]) -> None:
    """Peak RSS of the largest scene over the smallest, and seconds per megapixel (for the
    CLI steps net of the interpreter start-up)."""
    startup = next((float(r["seconds"]) for r in rows if r["step"] == "startup"), 0.0)
    for step in ("compress", "decompress", "enhance"):
        chosen = [r for r in rows if r["step"] == step]
        if len(chosen) < 2:
            continue
        small, large = chosen[0], chosen[-1]
        ratio = float(large["peak_rss_mib"]) / float(small["peak_rss_mib"])
        fixed = startup if step != "enhance" else 0.0
        rates = ", ".join(
            f"{r['side']}^2: "
            f"{(float(r['seconds']) - fixed) / (int(r['processed_pixels']) / 1e6):.3f}"
            for r in chosen
        )
        print(
            f"{step:10s} peak RSS {large['side']}^2 / {small['side']}^2 = {ratio:.2f}; "
            f"s/Mpx {rates}"
        )


def main() -> None:
    if sys.argv[1:2] == ["enhance-child"]:
        child = argparse.ArgumentParser(prog="large_scene.py enhance-child")
        child.add_argument("source", type=Path)
        child.add_argument("target", type=Path)
        child.add_argument("--tile", type=int, default=ENHANCER_TILE)
        child.add_argument("--region")
        child.add_argument("--torch-threads", type=int, default=1)
        enhance_child(child.parse_args(sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", type=Path, nargs="?", default=DEFAULT_CSV, help="output CSV")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 10000, 20000])
    parser.add_argument("--codec", default="jpeg:quality=75", help="codec spec")
    parser.add_argument("--tile", type=int, default=CONTAINER_TILE, help="container tile size")
    parser.add_argument(
        "--enhance-tile", type=int, default=ENHANCER_TILE, help="enhancer tile size"
    )
    parser.add_argument(
        "--enhance-pixels",
        type=int,
        default=4_000_000,
        help="enhance at most this many pixels: a full-width band of rows on larger scenes",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads for the enhancer (1: small per-tile ops on a shared machine)",
    )
    parser.add_argument("--skip-enhance", action="store_true", help="codec steps only")
    parser.add_argument("--workdir", type=Path, help="where the temporary folder goes")
    parser.add_argument("--keep", action="store_true", help="keep the scenes and outputs")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
