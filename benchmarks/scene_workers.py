"""Tile-parallel compression of one large scene: serial vs 1 vs N local dask workers.

Builds a side x side GeoTIFF from real DOTA crops (`large_scene.build_scene`), then times
``innrsic compress scene.tif -o scene.rsic --codec CODEC --tile TILE``:

- ``serial``: ``--workers 1`` (one process reads, encodes and writes);
- ``cluster-N``: ``--scheduler`` pointed at a LocalCluster of N worker processes this script
  starts (1 thread each, OMP threads = cores / N): the client reads tiles and writes the
  container, the workers encode tiles.

Each condition runs ``--repeats`` times, interleaved; the medians are compared. Peak RSS is
the CLI process's (``wait4``) and each worker's (``ru_maxrss`` read on the workers). Every
output must be byte-identical to the serial one. Writes benchmarks/results/scene_workers.json.

    .venv/bin/python benchmarks/scene_workers.py [--side 10000] [--workers 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

from _common import machine, median
from innrsic.compute.perf import load_average, peak_rss_mib
from large_scene import build_scene, load_dota, measure

RESULTS = Path(__file__).parent / "results" / "scene_workers.json"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compress_command(scene: Path, out: Path, args: argparse.Namespace, *where: str) -> list[str]:
    return [sys.executable, "-m", "innrsic", "compress", str(scene), "-o", str(out), "--codec",
            args.codec, "--tile", str(args.tile), "--force", *where]


def on_cluster(workers: int, scene: Path, out: Path, args: argparse.Namespace) -> dict:
    """One compress on a fresh LocalCluster of `workers` processes."""
    from distributed import Client, LocalCluster

    threads = max(1, (os.cpu_count() or 1) // workers)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.CRITICAL,
                      env={"OMP_NUM_THREADS": str(threads)}) as cluster, Client(cluster) as client:
        seconds, rss = measure(compress_command(scene, out, args, "--scheduler",
                                                cluster.scheduler_address))
        workers_rss = sorted(client.run(peak_rss_mib).values())
    return {"seconds": seconds, "client_peak_rss_mib": rss,
            "worker_peak_rss_mib": workers_rss}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--codec", default="jpeg2000:bpp=0.4")
    parser.add_argument("--tile", type=int, default=512)
    args = parser.parse_args()
    conditions = ["serial", "cluster-1", f"cluster-{args.workers}"]
    runs: dict[str, list[dict]] = {name: [] for name in conditions}
    with tempfile.TemporaryDirectory() as scratch:
        scene = Path(scratch) / "scene.tif"
        build_scene(scene, args.side, load_dota())
        digests = set()
        for repeat in range(args.repeats):
            for name in conditions:
                out = Path(scratch) / f"{name}.rsic"
                if name == "serial":
                    seconds, rss = measure(compress_command(scene, out, args, "--workers", "1"))
                    run = {"seconds": seconds, "client_peak_rss_mib": rss}
                else:
                    run = on_cluster(int(name.split("-")[1]), scene, out, args)
                digests.add(digest(out))
                run["output_bytes"] = out.stat().st_size
                runs[name].append(run)
                print(f"repeat {repeat + 1}/{args.repeats} {name}: {run['seconds']:.1f} s",
                      flush=True)
    medians = {name: median([r["seconds"] for r in runs[name]]) for name in conditions}
    result = {
        "side": args.side, "codec": args.codec, "tile": args.tile, "repeats": args.repeats,
        "identical_outputs": len(digests) == 1, "median_seconds": medians,
        "speedup_vs_serial": {name: medians["serial"] / medians[name] for name in conditions},
        "runs": runs, "machine": machine(), "load_average_after": load_average(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("identical_outputs", "median_seconds",
                                             "speedup_vs_serial")}, indent=2))
    if len(digests) != 1:
        raise SystemExit("outputs differ between conditions")


if __name__ == "__main__":
    main()
