"""Shared helpers of the benchmark scripts: inputs, timing, subprocess probes, result files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
PROBE_PREFIX = "PROBE-RESULT "


def shared_root() -> Path:
    """`$INNRSIC_SHARED`, else the `shared` folder beside the repository root."""
    override = os.environ.get("INNRSIC_SHARED")
    return Path(override) if override else REPO.parent / "shared"


def reference_checkpoint() -> Path:
    return shared_root() / "reference" / "inn_rsic_original_G.pth"


def elic_checkpoint() -> Path:
    return shared_root() / "reference" / "elic_original_checkpoint.pth.tar.xz"


def ucm_tiles(count: int) -> list[Path]:
    """`count` UC Merced images of exactly 256x256, cycling over the classes (sorted names)."""
    from PIL import Image

    root = shared_root() / "data" / "ucmerced"
    by_class = [sorted(d.glob("*.png")) for d in sorted(p for p in root.iterdir() if p.is_dir())]
    if not any(by_class):
        raise SystemExit(f"no UC Merced images under {root} (set INNRSIC_SHARED)")
    chosen: list[Path] = []
    index = 0
    while len(chosen) < count:
        for paths in by_class:
            if index < len(paths) and len(chosen) < count:
                with Image.open(paths[index]) as image:
                    if image.size == (256, 256):
                        chosen.append(paths[index])
        index += 1
        if index > max(len(p) for p in by_class):
            index = 0  # fewer 256x256 images than requested: repeat
    return chosen


def mosaic(height: int, width: int) -> np.ndarray:
    """A real-content HxWx3 uint8 image: UC Merced 256x256 tiles in a grid, cropped to size."""
    from innrsic.raster.image import read_image

    rows, cols = -(-height // 256), -(-width // 256)
    paths = ucm_tiles(min(rows * cols, 64))
    grid = np.zeros((rows * 256, cols * 256, 3), dtype=np.uint8)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        grid[r * 256 : (r + 1) * 256, c * 256 : (c + 1) * 256] = read_image(paths[i % len(paths)])
    return grid[:height, :width]


def to_tensor(image: np.ndarray):
    import torch

    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def load1() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def reset_peak_rss() -> float | None:
    """Reset this process's peak RSS (Linux clear_refs) and return the current RSS in MiB.

    ru_maxrss never goes down, so without a reset the setup's peak (imports, weights) hides a
    smaller pass. None where the reset is not possible (then only ru_maxrss is meaningful).
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return _status_mib("VmRSS")
    except OSError:
        return None


def peak_rss_since_reset() -> float | None:
    """VmHWM in MiB: the peak RSS since `reset_peak_rss` (or since the start)."""
    try:
        return _status_mib("VmHWM")
    except OSError:
        return None


def _status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"{field} not in /proc/self/status")


def run_probe(script: Path, args: Sequence[str], timeout: float | None = None) -> dict[str, Any]:
    """Run `script --probe ...` in a fresh interpreter; return the JSON it prints last.

    One case per process, so ru_maxrss is that case's peak resident memory.
    """
    command = [sys.executable, str(script), *args]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(PROBE_PREFIX):
            return json.loads(line[len(PROBE_PREFIX) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    return {"error": f"probe exited {proc.returncode}: {' | '.join(tail)}"}


def emit_probe(result: dict[str, Any]) -> None:
    print(PROBE_PREFIX + json.dumps(result), flush=True)


def machine() -> dict[str, Any]:
    import torch

    from innrsic.compute.perf import cpu_info, peak_gflops, uptime_line

    info = cpu_info()
    return {
        "cpu": info.to_dict(),
        "peak_fp32": peak_gflops(info),
        "peak_bf16": peak_gflops(info, bf16=True),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cuda": torch.cuda.is_available(),
        "python": sys.version.split()[0],
        "uptime": uptime_line(),
    }


def write_results(
    rows: list[dict[str, Any]], out: Path, meta: dict[str, Any], columns: Sequence[str]
) -> None:
    """`out` (CSV, one row per case) and `out` with suffix .json (rows + machine + command)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
    payload = {"meta": meta, "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value


def print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    widths = {c: max(len(c), *(len(str(_fmt(r.get(c)))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(_fmt(row.get(c))).ljust(widths[c]) for c in columns))


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
