"""`FastEnhancer`: an inference-only copy of an `INNEnhancer` that computes it faster.

The plain modules (`INNEnhancer` and its parts) stay the reference path. `FastEnhancer` reads
their weights once, at construction, and evaluates the same equations. Almost all of the work
is in the DenseBlocks (5 3x3 convolutions with dense concatenation); `_Engine` evaluates them:

- **reused workspaces**: every feature of a block is written once into its channel slice of a
  buffer of ``in + 4 * growth`` channels and ``H + 2`` rows whose first and last rows are zero
  (no concatenation). One buffer per block width (3 in all), kept between calls and grown for
  larger images only (`release` frees them): freshly allocated buffers of this size are
  page-faulted in on every use, a quarter of the CPU time of a 512x512 pass here;
- **row chunks**: each convolution runs on chunks of about `CHUNK_BYTES` of input rows
  (``padding=(0, 1)`` on buffer rows ``r0 .. r1+2``; the zero rows are the image border's
  padding). Every temporary (the chunk's copy, oneDNN's reordered copy, the convolution's
  output) is a few MB: it stays in cache and in the allocator's free lists;
- **worker threads** (`workers`, default: torch's intra-op thread count) share each
  convolution's chunks, one intra-op thread each: no thread barrier inside every operation,
  and a core busy with another process delays only the chunks it takes;
- the LeakyReLU writes straight from the convolution's output into the buffer;
- ``torch.inference_mode``, and the colour matrices' inverses computed once.

Exactness. With ``precision="float32"`` (the default) every convolution runs the reference's
kernel on NCHW input (oneDNN, or PyTorch's own one for inputs so small that `F.conv2d` picks
it for the reference), and every element-wise operation runs in the reference's order with
the caller's thread count: the output equals the reference's bit for bit in every test and
benchmark here. oneDNN's per-pixel results depend neither on the number of rows of its input
nor on whether a zero border row is padding or data. Two opt-in modes trade that for speed:

- ``channels_last=True``: NHWC convolutions, no layout conversion around each of them. The
  summation order inside the convolutions changes (about 1e-6 relative per convolution),
  which the random-weight reference checkpoint amplifies to about 2e-5 on its outputs of
  magnitude 20;
- ``precision="bfloat16"``: bfloat16 convolution inputs, weights and outputs (float32
  accumulation inside oneDNN; implies channels-last, where oneDNN has AVX512-BF16 and AMX
  kernels). The coupling and Gaussianisation arithmetic, the Haar transform and the colour
  matrices stay float32. A CPU without bf16 convolution support (probed once,
  `innrsic.enhancer.capability`) refuses it with `UnsupportedPrecision`, naming the features.

Off the CPU (``device="cuda"``) a batch runs through the network at once (the workspaces get
a batch dimension), every convolution is one cuDNN call on the whole batch with TF32 off (the
float32 the CPU computes, in another summation order: meant to stay within a level of the CPU's
8-bit output at T=0, which ``scripts/gpu_check.sh`` measures), and there are no worker threads.

Speed and accuracy of each mode on this project's machine: ``benchmarks/README.md``.
Weights are copied: build a new `FastEnhancer` after loading other weights into the network.
A `FastEnhancer` runs one call at a time (calls from several threads are serialised).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, ClassVar, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from innrsic.enhancer.blocks import DenseBlock
from innrsic.enhancer.capability import require_precision
from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.coupling import AffineCoupling
from innrsic.enhancer.expansion import contract, expand
from innrsic.enhancer.gaussianize import SCALE_EPS
from innrsic.enhancer.haar import HaarTransform
from innrsic.enhancer.network import (
    INNEnhancer,
    check_inverse_inputs,
    check_shape,
    default_temperature,
    draw_latent,
    pad_to_even,
)
from innrsic.errors import ConfigError

# the precisions the enhancer's network runs in (the one closed set: CLI choices, settings)
Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
DEFAULT_PRECISION: Precision = "float32"  # the reference's pixels exactly
NEGATIVE_SLOPE = 0.2
_Dense = Callable[["_Block", torch.Tensor], torch.Tensor]
# Input bytes of one convolution chunk: 8-16 MB measured fastest (1024-px-wide rows, one
# thread): 15-20 % less CPU time than whole-image convolutions, 10 % more at 1 MB.
CHUNK_BYTES = 12 << 20
# PyTorch runs a batch-1 3x3 convolution with its own kernel, not oneDNN's, up to this many
# input values (`use_mkldnn` in ATen's Convolution.cpp); the results differ in the last bits.
NATIVE_MAX_NUMEL = 20480


class _Block(nn.Module):
    """One `DenseBlock`'s convolutions as buffers in the compute dtype and memory format."""

    def __init__(self, block: DenseBlock, dtype: torch.dtype, fmt: torch.memory_format):
        super().__init__()
        self.count = len(block.convs)
        self.in_channels = block.convs[0].in_channels
        self.growth = block.convs[0].out_channels
        self.out_channels = block.convs[-1].out_channels
        self.channels = self.in_channels + (self.count - 1) * self.growth
        for i, conv in enumerate(block.convs):
            weight = conv.weight.detach().to(dtype=dtype, copy=True)
            self.register_buffer(f"w{i}", weight.contiguous(memory_format=fmt))
            self.register_buffer(f"b{i}", conv.bias.detach().to(dtype=dtype, copy=True))

    def conv(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"w{i}"), getattr(self, f"b{i}")


class _Coupling(nn.Module):
    def __init__(self, coupling: AffineCoupling, dtype: torch.dtype, fmt: torch.memory_format):
        super().__init__()
        self.split: int = coupling.split
        self.clamp: float = coupling.clamp
        self.F = _Block(coupling.F, dtype, fmt)
        self.G = _Block(coupling.G, dtype, fmt)
        self.H = _Block(coupling.H, dtype, fmt)


class _Pool:
    """`workers` threads with one intra-op thread each (process-wide, one per size)."""

    _pools: ClassVar[dict[int, _Pool]] = {}
    _lock = threading.Lock()

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="innrsic-enhancer",
            initializer=torch.set_num_threads,  # per-thread setting for OpenMP builds
            initargs=(1,),
        )

    @classmethod
    def get(cls, workers: int) -> _Pool:
        with cls._lock:
            if workers not in cls._pools:
                cls._pools[workers] = cls(workers)
            return cls._pools[workers]

    def run(self, fn: Callable[[int, int], None], chunks: Iterable[tuple[int, int]]) -> None:
        """``fn(r0, r1)`` for every chunk, on the workers; returns when all are done."""
        futures = [self.executor.submit(_in_inference, fn, *chunk) for chunk in chunks]
        for future in futures:
            future.result()


class _Engine:
    """Evaluates DenseBlocks in reused workspaces, row chunk by row chunk, on worker threads."""

    def __init__(self, dtype: torch.dtype, fmt: torch.memory_format) -> None:
        self.dtype = dtype
        self.fmt = fmt
        # Flat storage per (channel count, device), grown to the largest image seen: tiles of
        # several sizes (edge tiles) share one.
        self.workspaces: dict[tuple[int, torch.device], torch.Tensor] = {}

    def workspace(
        self, channels: int, items: int, height: int, width: int, device: torch.device
    ) -> torch.Tensor:
        """An (items, channels, height + 2, width) buffer whose first and last rows are zero."""
        key, size = (channels, device), items * channels * (height + 2) * width
        flat = self.workspaces.get(key)
        if flat is None or flat.numel() < size:
            del flat  # free the smaller one first
            self.workspaces.pop(key, None)
            flat = self.workspaces[key] = torch.empty(size, dtype=self.dtype, device=device)
        if self.fmt == torch.channels_last:
            buffer = flat[:size].view(items, height + 2, width, channels).permute(0, 3, 1, 2)
        else:
            buffer = flat[:size].view(items, channels, height + 2, width)
        buffer[:, :, 0].zero_()
        buffer[:, :, -1].zero_()
        return buffer

    def rows(self, height: int, row_values: int, pool: _Pool | None) -> int:
        """Rows per chunk: about `CHUNK_BYTES` of input, and at least 4 chunks per worker."""
        rows = max(1, CHUNK_BYTES // (row_values * self.dtype.itemsize))
        if pool is not None:
            rows = min(rows, -(-height // (4 * pool.workers)))
        return rows

    def dense(self, block: _Block, x: torch.Tensor, batch: int, pool: _Pool | None) -> torch.Tensor:
        """`block` applied to ``x`` (N, C, H, W), float32 NCHW: on the CPU one item (N = 1) of
        a batch of `batch`, elsewhere the whole batch."""
        items, (height, width) = x.shape[0], x.shape[-2:]
        buffer = self.workspace(block.channels, items, height, width, x.device)
        buffer[:, : block.in_channels, 1:-1].copy_(x)
        out = x.new_empty((items, block.out_channels, height, width), dtype=torch.float32)
        end = block.in_channels
        for i in range(block.count):
            weight, bias = block.conv(i)
            last = i == block.count - 1
            target = out if last else buffer[:, end : end + block.growth]
            if x.device.type != "cpu":
                y = _device_conv(buffer[:, :end], weight, bias)
                self._store(y, target, last, 0, height)
            elif batch == 1 and end * height * width <= NATIVE_MAX_NUMEL:
                # What the reference does: its own backend choice, whole image.
                y = F.conv2d(buffer[:, :end, 1:-1], weight, bias, padding=1)
                self._store(y, target, last, 0, height)
            else:
                step = partial(self._chunk, buffer[:, :end], weight, bias, target, last)
                rows = self.rows(height, max(end, weight.shape[0]) * width, pool)
                chunks = [(r0, min(height, r0 + rows)) for r0 in range(0, height, rows)]
                if pool is None:
                    for chunk in chunks:
                        step(*chunk)
                else:
                    pool.run(step, chunks)
            end += block.growth
        return out

    def _chunk(
        self,
        source: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        target: torch.Tensor,
        last: bool,
        r0: int,
        r1: int,
    ) -> None:
        """Output rows ``r0:r1`` of one convolution, from buffer rows ``r0:r1+2``.

        oneDNN called directly: `F.conv2d` would pick PyTorch's own kernel for small chunks.
        """
        rows = source[..., r0 : r1 + 2, :].contiguous(memory_format=self.fmt)
        y = torch.ops.aten.mkldnn_convolution(rows, weight, bias, [0, 1], [1, 1], [1, 1], 1)
        self._store(y, target, last, r0, r1)

    @staticmethod
    def _store(y: torch.Tensor, target: torch.Tensor, last: bool, r0: int, r1: int) -> None:
        """Rows ``r0:r1`` of a convolution's output into the block output or the buffer."""
        if last:
            target[..., r0:r1, :].copy_(y)
        else:  # one pass: the activation goes from the conv output straight into the buffer
            torch.ops.aten.leaky_relu.out(y, NEGATIVE_SLOPE, out=target[..., r0 + 1 : r1 + 1, :])


def _device_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 3x3 convolution of workspace rows (their zero first and last rows are the padding)
    off the CPU: cuDNN with its autotuner and TF32 off, set for this call only
    (``torch.backends.cudnn`` flags are process-wide)."""
    return torch.ops.aten._convolution(
        x, weight, bias, [1, 1], [0, 1], [1, 1], False, [0, 0], 1,
        True, False, True, False,  # benchmark, deterministic, cudnn enabled, allow TF32
    )


def _in_inference(fn: Callable[..., None], *args) -> None:
    with torch.inference_mode():  # grad mode is thread-local: set it in the worker
        fn(*args)


class FastEnhancer(nn.Module):
    """Inference-only `INNEnhancer` with the same `forward`, `inverse` and `enhance`.

    Built from an `INNEnhancer` (its weights read then). Inputs and outputs are float32 NCHW
    tensors as for the reference; batches run item by item on the CPU, at once elsewhere.
    Arguments:

    - `precision`: ``"float32"`` (default; equals the reference) or ``"bfloat16"``.
    - `channels_last`: NHWC convolutions in float32 (not bitwise equal, see the module doc).
    - `workers`: threads that share each convolution's row chunks on the CPU (None: torch's
      intra-op thread count at call time). 1 runs the chunks on the calling thread with its
      intra-op threads (much slower on a busy machine, see ``benchmarks/README.md``). Ignored
      off the CPU.
    - `device`: where it computes (None: the reference's device); bfloat16 is checked against
      the CPU's features only where that is the CPU.

    Memory: the workspaces (one per DenseBlock width, sized for the largest image seen; the
    widest, the full-resolution Gaussianisation's, holds ``259 * (H + 2) * W`` values at the
    paper's size) are kept between calls; `release` frees them.
    """

    def __init__(
        self,
        reference: INNEnhancer,
        precision: Precision = DEFAULT_PRECISION,
        channels_last: bool = False,
        workers: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(reference, INNEnhancer):
            raise ConfigError(f"FastEnhancer needs an INNEnhancer, got {type(reference).__name__}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        device = torch.device(device or reference.expansion.matrices.device)
        if device.type == "cpu":
            require_precision(precision)
        if workers is not None and (
            not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
        ):
            raise ConfigError(f"workers must be a positive integer or None, got {workers!r}")
        self.config: EnhancerConfig = reference.config
        self.default_temperature = reference.default_temperature
        self.codec = reference.codec
        self.precision = precision
        self.compute_dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        # bfloat16 is only fast with NHWC kernels; NCHW would add bf16 layout conversions.
        self.channels_last = bool(channels_last) or precision == "bfloat16"
        self.workers = workers
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        dtype = self.compute_dtype
        with torch.no_grad():
            matrices = reference.expansion.matrices.detach().clone()
            # A (frozen) parameter, registered first: code written for `INNEnhancer` that takes
            # the device and dtype from ``next(net.parameters())`` (as `enhancer.apply` does)
            # gets float32 on the right device. Everything else is a buffer.
            self.matrices = nn.Parameter(matrices, requires_grad=False)
            # The reference inverts on every call; the same call once gives the same values.
            self.register_buffer("inverse_matrices", torch.linalg.inv(matrices))
            self.couplings = nn.ModuleList(_Coupling(c, dtype, fmt) for c in reference.couplings)
            self.mean = _Block(reference.gaussianize.mean, dtype, fmt)
            self.scale = _Block(reference.gaussianize.scale, dtype, fmt)
        self.haar = HaarTransform()
        self.engine = _Engine(dtype, fmt)
        self._lock = threading.Lock()
        self.to(device)

    def release(self) -> None:
        """Free the workspaces (they are allocated again by the next call)."""
        with self._lock:
            self.engine.workspaces.clear()

    # -- execution ---------------------------------------------------------------------------
    def _call(
        self, fn: Callable[..., Any], *tensors: torch.Tensor
    ) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """`fn` per batch item, under inference mode, with the worker pool (if any).

        The calling thread keeps its intra-op threads for the element-wise work between the
        blocks: vectorised ``exp`` and ``sigmoid`` round differently in the scalar tail loops,
        whose place depends on how an array is split across threads, so the same thread count
        as the reference keeps the result bitwise equal.
        """
        on_cpu = tensors[0].device.type == "cpu"
        workers = self.workers if self.workers is not None else torch.get_num_threads()
        pool = _Pool.get(workers) if on_cpu and workers > 1 else None
        items = zip(*(t.split(1) for t in tensors), strict=True) if on_cpu else [tensors]
        batch = tensors[0].shape[0]
        with self._lock, torch.inference_mode():
            dense = partial(self.engine.dense, batch=batch, pool=pool)
            results = [fn(*item, dense) for item in items]
        if isinstance(results[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*results, strict=True))
        return torch.cat(results)

    # -- the network ------------------------------------------------------------------------
    def _forward_even(self, x: torch.Tensor, dense: _Dense) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.haar(expand(self.matrices, x))
        for c in self.couplings:
            x1, x2 = v[:, : c.split], v[:, c.split :]
            y1 = x1 + dense(c.F, x2)
            h, g = dense(c.H, y1), dense(c.G, y1)
            v = torch.cat((y1, _scale_shift(x2, h, g, c.clamp)), dim=1)
        v = self.haar.inverse(v)
        y, rest = v[:, :3], v[:, 3:]
        mean, scale = dense(self.mean, y), dense(self.scale, y)
        z = (rest - mean) / (torch.exp(2.0 * torch.sigmoid(scale) - 1.0) + SCALE_EPS)
        return y, z

    def _inverse_even(self, y: torch.Tensor, z: torch.Tensor, dense: _Dense) -> torch.Tensor:
        mean, scale = dense(self.mean, y), dense(self.scale, y)
        rest = mean + z * (torch.exp(2.0 * torch.sigmoid(scale) - 1.0) + SCALE_EPS)
        return self._couplings_inverse(y, rest, dense)

    def _restore_even(self, y: torch.Tensor, dense: _Dense) -> torch.Tensor:
        """`_inverse_even` at ``z = 0``: ``mean + 0 * scale`` is ``mean`` exactly (the scale
        is finite and positive), so the scale DenseBlock is not run."""
        return self._couplings_inverse(y, dense(self.mean, y), dense)

    def _couplings_inverse(
        self, y: torch.Tensor, rest: torch.Tensor, dense: _Dense
    ) -> torch.Tensor:
        v = self.haar(torch.cat((y, rest), dim=1))
        for c in reversed(self.couplings):
            y1, y2 = v[:, : c.split], v[:, c.split :]
            g, h = dense(c.G, y1), dense(c.H, y1)
            x2 = _unscale(y2, g, h, c.clamp)
            x1 = y1 - dense(c.F, x2)
            v = torch.cat((x1, x2), dim=1)
        return contract(self.inverse_matrices, self.haar.inverse(v))

    # -- public API (the signatures of INNEnhancer) -----------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground truth ``x`` (B,3,H,W) -> ``(y, z)``, as `INNEnhancer.forward`."""
        check_shape(x, 3, "x")
        height, width = x.shape[-2:]
        y, z = self._call(self._forward_even, pad_to_even(x.float()))
        return y[..., :height, :width].contiguous(), z[..., :height, :width].contiguous()

    def inverse(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(y, z)`` -> image (B,3,H,W), not clamped, as `INNEnhancer.inverse`."""
        check_inverse_inputs(y, z, self.config.latent_channels)
        height, width = y.shape[-2:]
        x = self._call(self._inverse_even, pad_to_even(y.float()), pad_to_even(z.float()))
        return x[..., :height, :width].contiguous()

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        """``inverse(y, 0)`` (not clamped), bit for bit, without the Gaussianisation's scale
        branch, which only multiplies the latent (a sixth of the shipped models' work)."""
        check_shape(y, 3, "y")
        height, width = y.shape[-2:]
        x = self._call(self._restore_even, pad_to_even(y.float()))
        return x[..., :height, :width].contiguous()

    def enhance(
        self,
        decoded: torch.Tensor,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """As `INNEnhancer.enhance`: `temperature` None is the model's own
        (`default_temperature`), the same `z` draw from `generator`, clamped to [0, 1]."""
        check_shape(decoded, 3, "decoded")
        if temperature is None:
            temperature = default_temperature(self)
        height, width = decoded.shape[-2:]
        y = pad_to_even(decoded.float())
        z = draw_latent(y, self.config.latent_channels, temperature, generator)
        if temperature == 0:
            x = self._call(self._restore_even, y)
        else:
            x = self._call(self._inverse_even, y, z)
        return x[..., :height, :width].clamp(0.0, 1.0).contiguous()


def _unscale(y2: torch.Tensor, g: torch.Tensor, h: torch.Tensor, clamp: float) -> torch.Tensor:
    """The coupling inverse's ``(y2 - G(y1)) / exp(s)``, in the reference's operation order."""
    return (y2 - g) / torch.exp(clamp * (2.0 * torch.sigmoid(h) - 1.0))


def _scale_shift(x2: torch.Tensor, h: torch.Tensor, g: torch.Tensor, clamp: float) -> torch.Tensor:
    """The coupling forward's ``x2 * exp(s) + G(y1)``, in the reference's operation order."""
    return x2 * torch.exp(clamp * (2.0 * torch.sigmoid(h) - 1.0)) + g


class ReferenceEngine(nn.Module):
    """The plain `INNEnhancer` behind the engine interface (`restore`, `inverse`), so the
    reference path can run through the same tiled code, side by side with the product path
    (benchmarks)."""

    def __init__(self, reference: INNEnhancer) -> None:
        super().__init__()
        self.reference = reference
        self.config: EnhancerConfig = reference.config
        self.default_temperature = reference.default_temperature
        self.codec = reference.codec

    def inverse(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.reference.inverse(y, z)

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        z = torch.zeros((y.shape[0], self.config.latent_channels, *y.shape[-2:]), dtype=y.dtype)
        return self.reference.inverse(y, z.to(y.device))


def engine_device(engine: nn.Module) -> torch.device:
    """The device `engine` (an engine or a network) computes on."""
    return next(engine.parameters()).device


def engine_for(
    net: INNEnhancer | FastEnhancer | ReferenceEngine,
    precision: Precision = DEFAULT_PRECISION,
    workers: int | None = None,
    device: str | torch.device | None = None,
) -> FastEnhancer | ReferenceEngine:
    """The engine every enhancing command runs on `device` (None: where `net` is): `net`
    itself when it already is an engine (a `FastEnhancer` built once for a batch, its
    workspaces reused; moved to `device`, in place, if it is elsewhere), else a fast copy."""
    if isinstance(net, FastEnhancer | ReferenceEngine):
        if device is not None and engine_device(net).type != torch.device(device).type:
            if isinstance(net, FastEnhancer):
                net.release()  # the workspaces are the old device's
            net.to(device)
        return net
    return FastEnhancer(net, precision, workers=workers, device=device)


__all__ = [
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "FastEnhancer",
    "Precision",
    "ReferenceEngine",
    "engine_device",
    "engine_for",
]
