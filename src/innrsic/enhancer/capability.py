"""Which numeric precisions this machine runs the enhancer's convolutions in, probed once.

bfloat16 convolutions on the CPU go through oneDNN, which refuses them (``RuntimeError``)
unless the CPU has AVX512-BF16/AMX, AVX-NE-CONVERT, or at least AVX512 BW+VL+DQ. The probe
runs one tiny bf16 convolution the way `FastEnhancer` does, so it answers for this torch
build, this CPU and any ``ATEN_CPU_CAPABILITY`` override alike.
"""

from __future__ import annotations

import functools

import torch

from innrsic.errors import UnsupportedPrecision

BF16_CPU_FEATURES = "AVX512-BF16 or AMX-BF16, AVX-NE-CONVERT, or AVX512 BW+VL+DQ"


@functools.cache
def bf16_convolution_supported() -> bool:
    """True when a bf16 oneDNN convolution runs on this CPU (probed once per process)."""
    if not torch.backends.mkldnn.is_available():
        return False
    x = torch.zeros(1, 4, 4, 4, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    w = torch.zeros(4, 4, 3, 3, dtype=torch.bfloat16).contiguous(memory_format=torch.channels_last)
    b = torch.zeros(4, dtype=torch.bfloat16)
    try:
        torch.ops.aten.mkldnn_convolution(x, w, b, [1, 1], [1, 1], [1, 1], 1)
    except RuntimeError:
        return False
    return True


def require_precision(precision: str) -> None:
    """Raise `UnsupportedPrecision` (one line, naming the missing CPU features) when
    `precision` cannot run here; float32 always can."""
    if precision == "bfloat16" and not bf16_convolution_supported():
        raise UnsupportedPrecision(
            f"precision bfloat16 needs a CPU with {BF16_CPU_FEATURES}, which this one lacks "
            "(see /proc/cpuinfo); use precision float32"
        )
