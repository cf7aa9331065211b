"""Batch speed on 1 vs N local dask workers: compress 42 UC-M test images (jpeg2000:bpp=0.2),
then decompress them with the shipped enhancer (``--enhance enhancer-jpeg2000-bpp0.2``).

Each run is the CLI in a subprocess (cluster start-up and model loading included). Peak RSS
per worker is read from the workers (ru_maxrss) at the end of the enhancing run, via a
cluster this script starts and passes with ``--scheduler``; the 1-worker runs use the same
path with one worker. Writes benchmarks/results/batch_cluster.json.

    .venv/bin/python benchmarks/batch_cluster.py --data-root ../shared/data [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from innrsic.compute.perf import load_average, peak_rss_mib
from innrsic.data.image_sets import image_set

RESULTS = Path(__file__).parent / "results" / "batch_cluster.json"
CODEC = "jpeg2000:bpp=0.2"
ENHANCER = "enhancer-jpeg2000-bpp0.2"


def run(*args: str | Path) -> float:
    """Seconds the CLI takes for `args`."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "innrsic", *map(str, args)], check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - start


def measure(images: Path, work: Path, workers: int) -> dict[str, object]:
    """Compress then decompress+enhance on a LocalCluster of `workers` processes."""
    from distributed import Client, LocalCluster

    threads = max(1, 2 // workers)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.CRITICAL,
                      env={"OMP_NUM_THREADS": str(threads)}) as cluster, Client(cluster) as client:
        where = ["--scheduler", cluster.scheduler_address]
        compress = run("compress", images, "-o", work / "rsic", "--codec", CODEC, *where)
        enhance = run("decompress", work / "rsic", "-o", work / "png", "--enhance", ENHANCER,
                      "--threads", str(threads), *where)
        rss = sorted(client.run(peak_rss_mib).values())
    return {"workers": workers, "threads_per_worker": threads, "compress_s": compress,
            "decompress_enhance_s": enhance, "peak_rss_mib_per_worker": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=42)
    args = parser.parse_args()
    refs = image_set("ucmerced-test", args.data_root)[: args.images]
    with tempfile.TemporaryDirectory() as scratch:
        images = Path(scratch) / "images"
        images.mkdir()
        for ref in refs:
            (images / Path(ref.path).name).symlink_to(Path(ref.path).resolve())
        runs = [measure(images, Path(scratch) / f"w{n}", n) for n in (1, args.workers)]
    one, many = runs
    result = {
        "images": len(refs), "codec": CODEC, "enhancer": ENHANCER, "runs": runs,
        "speedup_compress": one["compress_s"] / many["compress_s"],
        "speedup_decompress_enhance": one["decompress_enhance_s"] / many["decompress_enhance_s"],
        "load_average_after": load_average(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
