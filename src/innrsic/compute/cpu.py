"""The CPU this process runs on, as ``/proc/cpuinfo`` describes it (Linux)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CpuInfo:
    """Model name, logical CPU count, reported clock and feature flags."""

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
