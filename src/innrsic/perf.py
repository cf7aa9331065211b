"""Performance helpers: enhancer MAC counts, CPU description and peak estimate, thread settings.

Used by the scripts in ``benchmarks/``; nothing here changes what the library computes.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from innrsic.enhancer.config import EnhancerConfig

KERNEL = 9  # 3x3 convolutions
CONVS_PER_DENSE_BLOCK = 5


def dense_block_macs_per_pixel(in_channels: int, out_channels: int, growth: int) -> int:
    """Multiply-accumulates per output pixel of one DenseBlock (five 3x3 convs, dense concat)."""
    macs = 0
    width = in_channels
    for _ in range(CONVS_PER_DENSE_BLOCK - 1):
        macs += width * growth * KERNEL
        width += growth
    return macs + width * out_channels * KERNEL


def enhancer_macs(config: EnhancerConfig, height: int, width: int) -> int:
    """Convolution MACs of one enhancer pass (forward or inverse: both run every subnet once).

    Odd sizes are padded to even, as `INNEnhancer` does. The colour matrices, Haar transform and
    element-wise arithmetic (well under 0.1% of the total) are not counted; nor are biases.
    """
    height += height % 2
    width += width % 2
    channels = 4 * config.expanded_channels
    split = config.expanded_channels
    coupling = (
        dense_block_macs_per_pixel(channels - split, split, config.growth)  # F
        + 2 * dense_block_macs_per_pixel(split, channels - split, config.growth)  # G, H
    )
    gaussian = 2 * dense_block_macs_per_pixel(3, config.latent_channels, config.gaussian_growth)
    half_res = (height // 2) * (width // 2)
    return config.blocks * coupling * half_res + gaussian * height * width


@dataclass(frozen=True)
class CpuInfo:
    model: str
    logical_cpus: int
    mhz: float | None
    flags: tuple[str, ...]

    @property
    def has_avx512(self) -> bool:
        return "avx512f" in self.flags

    @property
    def has_bf16(self) -> bool:
        """Native bfloat16 dot products: AVX512-BF16 or AMX-BF16."""
        return "avx512_bf16" in self.flags or "amx_bf16" in self.flags

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["flags"] = [
            f for f in self.flags if f.startswith(("avx", "amx", "fma")) or f in ("f16c",)
        ]
        data["has_bf16"] = self.has_bf16
        return data


def cpu_info() -> CpuInfo:
    """The CPU as /proc/cpuinfo describes it (Linux); other systems give a partial answer."""
    model, mhz, flags = platform.processor() or platform.machine(), None, ()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        if match := re.search(r"^model name\s*:\s*(.+)$", text, re.M):
            model = match[1].strip()
        if match := re.search(r"^cpu MHz\s*:\s*([\d.]+)$", text, re.M):
            mhz = float(match[1])
        if match := re.search(r"^flags\s*:\s*(.+)$", text, re.M):
            flags = tuple(match[1].split())
    return CpuInfo(model=model, logical_cpus=os.cpu_count() or 1, mhz=mhz, flags=flags)


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


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with `count` intra-op threads (None: unchanged), then restore."""
    import torch

    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
