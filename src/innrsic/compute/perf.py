"""Performance helpers: peak FLOP/s estimate, memory and load readings.

Used by the scripts in ``benchmarks/``; nothing here changes what the library computes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from innrsic.compute.cpu import CpuInfo, cpu_info


def fp32_flops_per_cycle(info: CpuInfo) -> int:
    """Peak FP32 FLOP per cycle per core assumed for `info` (2 FMA pipes; FMA = 2 FLOP).

    AVX-512 CPUs: 2 x 16 lanes x 2 = 64 on Intel server cores, but AMD Zen 4 executes 512-bit
    instructions on 256-bit pipes, so 2 x 8 x 2 = 32 (used for AuthenticAMD). AVX2: 32.
    Without FMA: 16. An assumption, not a measurement; the benchmarks state it.
    """
    if "fma" not in info.flags:
        return 16
    if info.has_avx512 and "AMD" not in info.model.upper():
        return 64
    return 32


def peak_gflops(info: CpuInfo | None = None, bf16: bool = False) -> dict[str, Any]:
    """Estimated peak GFLOP/s: logical CPUs x clock x FLOP/cycle (x2 for native bf16 dots)."""
    info = cpu_info() if info is None else info
    per_cycle = fp32_flops_per_cycle(info)
    if bf16 and info.has_bf16:
        per_cycle *= 2  # VDPBF16PS: two bf16 products per fp32 lane
    ghz = (info.mhz or 0.0) / 1000.0
    return {
        "gflops": info.logical_cpus * ghz * per_cycle,
        "cores": info.logical_cpus,
        "ghz": ghz,
        "flops_per_cycle_per_core": per_cycle,
        "assumption": (
            f"{info.logical_cpus} cores x {ghz:.2f} GHz (cpu MHz reported; no boost) x "
            f"{per_cycle} FLOP/cycle ({'bf16 dot products, ' if bf16 and info.has_bf16 else ''}"
            "2 FMA pipes)"
        ),
    }


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss)."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, or None where unavailable."""
    try:
        return os.getloadavg()
    except OSError:
        return None


def uptime_line() -> str:
    """What `uptime` prints (load averages included), or the load averages alone."""
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        load = load_average()
        return f"load average: {load}" if load else "load average: unavailable"
