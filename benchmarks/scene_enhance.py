"""End-to-end scene benchmark: decompress, and decompress + enhance with each shipped model,
product path (the CLI, `FastEnhancer`) and reference path (`INNEnhancer` per tile) side by side.

The scene (default DOTA P0168, 2304x1792) is compressed once with the model's codec spec; then,
in interleaved rounds, each case runs in its own process so that its wall time includes what a
user waits for (interpreter and torch start-up, decoding, enhancement, writing the PNG) and its
peak RSS is that process's own (``os.wait4``):

- ``decompress``: ``innrsic decompress scene.rsic -o out.png``
- ``product``: ``innrsic decompress scene.rsic -o out.png --enhance MODEL`` (default threads)
- ``product-1thread``: the same with ``--threads 1``
- ``reference``: this script's ``--child-reference`` mode: the same decode and tiling, each tile
  through the plain `INNEnhancer` (`innrsic.enhancer.fast.ReferenceEngine`)

Per case: the median wall time over rounds, MPix/s, the ratio to ``decompress`` and to
``reference``, the network's GFLOP/s (analytic MACs of the tiles actually run, the scale
branch excluded at T=0 as the product path skips it) and its share of the CPU's estimated
peak, and whether the 8-bit output equals the reference path's.

    .venv/bin/python benchmarks/scene_enhance.py                       # -> benchmarks/results/
    .venv/bin/python benchmarks/scene_enhance.py --models enhancer-jpeg2000-bpp0.2 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

DEFAULT_OUT = common.RESULTS / "scene_enhance.csv"
COLUMNS = [
    "model", "case", "width", "height", "rounds", "seconds_median", "seconds_min", "mpix_s",
    "x_decompress", "speedup_vs_reference", "gflops_s", "share_of_peak", "peak_rss_mib",
    "same_as_reference",
]


def run_child(command: list[str]) -> tuple[float, float]:
    """Run `command`; (wall seconds, peak RSS MiB of that process)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed: {stderr.strip()[-500:]}")
    return seconds, usage.ru_maxrss / 1024


def child_reference(source: Path, target: Path, model: str) -> None:
    """Decode `source` and enhance it tile by tile with the plain network (reference path)."""
    from innrsic.enhancer import load_enhancer
    from innrsic.enhancer.apply import decompress_enhanced
    from innrsic.enhancer.fast import ReferenceEngine
    from innrsic.enhancer.settings import EnhanceSettings
    from innrsic.pretrained import resolve_enhancer

    path, temperature = resolve_enhancer(model)
    engine = ReferenceEngine(load_enhancer(path).eval())
    decompress_enhanced(source, target, engine, EnhanceSettings(temperature or 0.0))


def network_gflop(model: str, width: int, height: int, tile: int, overlap: int) -> float:
    """Analytic GFLOP (2 x MACs) of the tiles the product path runs at the model's default
    temperature (the Gaussianisation's scale block is skipped at T=0)."""
    from innrsic.enhancer import load_enhancer
    from innrsic.enhancer.cost import dense_block_macs_per_pixel, enhancer_macs
    from innrsic.pretrained import resolve_enhancer
    from innrsic.raster.tiling import BlendGrid

    path, temperature = resolve_enhancer(model)
    config = load_enhancer(path).config
    grid = BlendGrid(width, height, tile, overlap)
    macs = 0
    for row, col in grid.positions():
        window = grid.window(row, col)
        macs += enhancer_macs(config, window.height, window.width)
        if not temperature:
            scale = dense_block_macs_per_pixel(3, config.latent_channels, config.gaussian_growth)
            macs -= scale * (window.height + window.height % 2) * (window.width + window.width % 2)
    return 2 * macs / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", type=Path, default=None, help="image (default DOTA P0168)")
    parser.add_argument("--models", nargs="+", default=None, help="shipped models (default all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--quick", action="store_true", help="a 512x384 crop, one round")
    parser.add_argument("--child-reference", nargs=3, metavar=("RSIC", "OUT", "MODEL"))
    args = parser.parse_args()
    if args.child_reference:
        source, target, model = args.child_reference
        child_reference(Path(source), Path(target), model)
        return

    from innrsic.enhancer.settings import ENHANCER_OVERLAP, ENHANCER_TILE
    from innrsic.pretrained import installed_models
    from innrsic.raster.image import read_image, write_image

    models = {m.name: m for m in installed_models()}
    names = args.models or sorted(models)
    scene = args.scene or common.shared_root() / "data" / "dota" / "P0168.png"
    rounds = 1 if args.quick else args.rounds
    cli = [sys.executable, "-m", "innrsic"]
    info = common.machine()
    peak = info["peak_fp32"]["gflops"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="innrsic-scene-") as folder:
        work = Path(folder)
        image = read_image(scene)
        if args.quick:
            image = np.ascontiguousarray(image[:384, :512])
        height, width = image.shape[:2]
        write_image(work / "scene.png", image)
        mpix = width * height / 1e6
        for name in names:
            rsic = work / f"{name}.rsic"
            subprocess.run([*cli, "compress", str(work / "scene.png"), "-o", str(rsic), "--codec",
                            models[name].codec], check=True, capture_output=True)
            cases = {
                "decompress": [*cli, "decompress", str(rsic), "-o", str(work / "d.png"), "--force"],
                "product": [*cli, "decompress", str(rsic), "-o", str(work / "product.png"),
                            "--force", "--enhance", name],
                "product-1thread": [*cli, "decompress", str(rsic), "-o",
                                    str(work / "product1.png"), "--force", "--enhance", name,
                                    "--threads", "1"],
                "reference": [sys.executable, __file__, "--child-reference", str(rsic),
                              str(work / "reference.png"), name],
            }
            times: dict[str, list[float]] = {case: [] for case in cases}
            rss: dict[str, float] = {}
            for round_index in range(rounds):
                for case, command in cases.items():
                    (work / "reference.png").unlink(missing_ok=True)
                    seconds, peak_rss = run_child(command)
                    times[case].append(seconds)
                    rss[case] = max(rss.get(case, 0.0), peak_rss)
                    print(f"{name} round {round_index + 1} {case}: {seconds:.2f} s", flush=True)
            reference = read_image(work / "reference.png")
            gflop = network_gflop(name, width, height, ENHANCER_TILE, ENHANCER_OVERLAP)
            base = common.median(times["decompress"])
            ref_time = common.median(times["reference"])
            for case, values in times.items():
                med = common.median(values)
                enhanced = case != "decompress"
                output = {"product": "product.png", "product-1thread": "product1.png",
                          "reference": "reference.png"}.get(case)
                rows.append({
                    "model": name, "case": case, "width": width, "height": height,
                    "rounds": rounds, "seconds_median": med, "seconds_min": min(values),
                    "mpix_s": mpix / med, "x_decompress": med / base,
                    "speedup_vs_reference": ref_time / med if enhanced else None,
                    "gflops_s": gflop / (med - base) if enhanced else None,
                    "share_of_peak": gflop / (med - base) / peak if enhanced and peak else None,
                    "peak_rss_mib": rss[case],
                    "same_as_reference": (
                        bool(np.array_equal(read_image(work / output), reference))
                        if output else None
                    ),
                })
    meta = {"machine": info, "scene": scene.name, "command": sys.argv,
            "gflops_note": "network GFLOP / (case time - decompress time): the enhancement's "
                           "own rate, start-up and decoding excluded"}
    common.write_results(rows, args.out, meta, COLUMNS)
    common.print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
