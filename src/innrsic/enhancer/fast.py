"""`FastEnhancer`: an inference-only copy of an `INNEnhancer` that computes it faster.

The plain modules (`INNEnhancer` and its parts) stay the reference path. `FastEnhancer` reads
their weights once, at construction, and evaluates the same equations with:

- ``torch.inference_mode`` (no autograd bookkeeping);
- DenseBlocks without repeated concatenation: on NCHW the features are written once into one
  buffer and every convolution reads a prefix of it (a free view for batch 1);
- each DenseBlock activation written straight into that buffer (no separate copy);
- the first convolutions of two DenseBlocks that read the same tensor fused into one wider
  convolution (G and H of every coupling both read ``y1``, in the forward and in the inverse;
  the Gaussianisation's ``mean`` and ``scale`` both read the image part ``y``), or, with
  worker threads, the two DenseBlocks run concurrently;
- worker threads (`workers`, default 2 on a CPU with at least 2 threads) that each run with a
  share of the intra-op threads: independent DenseBlocks (G and H, mean and scale) and the
  items of a batch (tiles) run concurrently instead of splitting every operation across all
  cores, which spends much of its time in thread barriers on a small or busy CPU (the calling
  thread also runs with one share during a call, and gets its setting back afterwards);
- the channel-expansion inverse matrices computed once instead of on every call.

Exactness. The default path (``precision="float32"``, ``channels_last=False``) runs every
convolution through the same oneDNN kernels as the reference (NCHW) and every element-wise
operation in the same order. For one image (batch 1) its output was bitwise identical to the
reference in every test here; oneDNN's results did not depend on the thread count (1 vs 2).
Batches are computed item by item (and split over the workers), and for small images (under
about 128x128) oneDNN picks a different kernel for a batch than for one item: differences of a
few 1e-8 per convolution, well inside the 1e-5 the tests allow. Two opt-in modes
trade exactness for speed:

- ``channels_last=True``: NHWC kernels (no layout conversion around every convolution). The
  summation order inside the convolutions changes: about 1e-6 relative, which an ill-conditioned
  network can amplify (measured 2.5e-5 max abs on outputs of magnitude 25 with the random-weight
  reference checkpoint), so it is off by default;
- ``precision="bfloat16"``: bfloat16 convolution inputs and weights (float32 accumulation inside
  oneDNN; bfloat16 results), implies channels-last; coupling and Gaussianisation arithmetic stays
  float32. Native on CPUs with AVX512-BF16 or AMX and on GPUs. Off by default.

Weights are copied: build a new `FastEnhancer` after loading other weights into the network.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from innrsic.enhancer.blocks import DenseBlock
from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.coupling import AffineCoupling
from innrsic.enhancer.expansion import _apply
from innrsic.enhancer.gaussianize import SCALE_EPS
from innrsic.enhancer.haar import HaarTransform
from innrsic.enhancer.network import INNEnhancer, _check_shape, _pad_to_even
from innrsic.errors import ConfigError
from innrsic.perf import torch_threads

Precision = Literal["float32", "bfloat16"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16")
NEGATIVE_SLOPE = 0.2


def _conv(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, activate: bool
) -> torch.Tensor:
    """3x3 'same' convolution, then LeakyReLU(0.2) in place when `activate`.

    Plain `F.conv2d`: oneDNN's fused convolution + activation op selects other kernels for
    small images (up to 64x64 here), whose results differ from the reference in the last bit.
    """
    out = F.conv2d(x, weight, bias, padding=1)
    return F.leaky_relu(out, NEGATIVE_SLOPE, inplace=True) if activate else out


class _DenseWeights(nn.Module):
    """The convolutions of one `DenseBlock` as tensors in the compute dtype and layout."""

    def __init__(self, block: DenseBlock, dtype: torch.dtype, channels_last: bool) -> None:
        super().__init__()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.count = len(block.convs)
        self.growth = block.convs[0].out_channels
        for i, conv in enumerate(block.convs):
            weight = conv.weight.detach().to(dtype=dtype).clone()
            self.register_buffer(f"w{i}", weight.contiguous(memory_format=fmt))
            self.register_buffer(f"b{i}", conv.bias.detach().to(dtype=dtype).clone())

    def weight(self, i: int) -> torch.Tensor:
        return getattr(self, f"w{i}")

    def bias(self, i: int) -> torch.Tensor:
        return getattr(self, f"b{i}")


def _is_channels_last(x: torch.Tensor) -> bool:
    return not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _dense(
    x: torch.Tensor, block: _DenseWeights, first: torch.Tensor | None = None
) -> torch.Tensor:
    """A DenseBlock's output for input `x`; `first` is its first conv's output if known."""
    if not _is_channels_last(x):
        if x.shape[0] == 1:
            return _dense_buffer(x.contiguous(), block, first)
        if x.device.type == "cpu":  # per item, so every conv reads a zero-copy buffer prefix
            firsts = first.split(1) if first is not None else [None] * x.shape[0]
            items = zip(x.split(1), firsts, strict=True)
            return torch.cat([_dense_buffer(xi.contiguous(), block, fi) for xi, fi in items])
    if first is None:
        first = _conv(x, block.weight(0), block.bias(0), True)
    features = [x, first]
    for i in range(1, block.count - 1):
        features.append(_conv(torch.cat(features, dim=1), block.weight(i), block.bias(i), True))
    last = block.count - 1
    return _conv(torch.cat(features, dim=1), block.weight(last), block.bias(last), False)


def _dense_buffer(
    x: torch.Tensor, block: _DenseWeights, first: torch.Tensor | None
) -> torch.Tensor:
    """NCHW, batch 1: each feature is written once into one buffer; convs read its prefixes."""
    cin, growth = x.shape[1], block.growth
    buffer = x.new_empty((1, cin + (block.count - 1) * growth, *x.shape[-2:]))
    buffer[:, :cin] = x
    end = cin
    for i in range(block.count - 1):
        if i == 0 and first is not None:
            buffer[:, end : end + growth] = first
        else:
            out = _conv(buffer[:, :end], block.weight(i), block.bias(i), False)
            # The activation writes straight into the buffer: one pass instead of act + copy.
            torch.ops.aten.leaky_relu.out(out, NEGATIVE_SLOPE, out=buffer[:, end : end + growth])
        end += growth
    last = block.count - 1
    return _conv(buffer, block.weight(last), block.bias(last), False)


class _Pair(nn.Module):
    """Two DenseBlocks reading the same input, with their first convolutions fused."""

    def __init__(self, a: DenseBlock, b: DenseBlock, dtype: torch.dtype, channels_last: bool):
        super().__init__()
        self.a = _DenseWeights(a, dtype, channels_last)
        self.b = _DenseWeights(b, dtype, channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        weight = torch.cat((a.convs[0].weight.detach(), b.convs[0].weight.detach()))
        bias = torch.cat((a.convs[0].bias.detach(), b.convs[0].bias.detach()))
        self.register_buffer("w_first", weight.to(dtype).contiguous(memory_format=fmt))
        self.register_buffer("b_first", bias.to(dtype).clone())
        self.split = a.convs[0].out_channels

    def serial(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = _conv(x, self.w_first, self.b_first, True)
        fmt = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
        return (
            _dense(x, self.a, first[:, : self.split].contiguous(memory_format=fmt)),
            _dense(x, self.b, first[:, self.split :].contiguous(memory_format=fmt)),
        )


class _FastCoupling(nn.Module):
    def __init__(self, coupling: AffineCoupling, dtype: torch.dtype, channels_last: bool):
        super().__init__()
        self.split = coupling.split
        self.clamp = coupling.clamp
        self.F = _DenseWeights(coupling.F, dtype, channels_last)
        self.GH = _Pair(coupling.G, coupling.H, dtype, channels_last)


_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(workers: int, threads: int) -> ThreadPoolExecutor:
    """A process-wide pool of `workers` threads, each running `threads` intra-op threads."""
    key = (workers, threads)
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = ThreadPoolExecutor(
                max_workers=workers,
                thread_name_prefix="innrsic-enhancer",
                initializer=torch.set_num_threads,  # per-thread setting for OpenMP builds
                initargs=(threads,),
            )
        return _POOLS[key]


def _in_inference(fn: Callable[..., torch.Tensor], *args) -> torch.Tensor:
    with torch.inference_mode():  # grad mode is thread-local: set it in the worker
        return fn(*args)


class FastEnhancer(nn.Module):
    """Inference-only `INNEnhancer` with the same `forward`, `inverse` and `enhance`.

    Build with `from_reference` (or `optimize`). Inputs and outputs are float32 NCHW tensors
    as for the reference. Arguments:

    - `precision`: ``"float32"`` (default; equals the reference) or ``"bfloat16"``.
    - `channels_last`: NHWC convolutions (not bitwise equal, see the module doc; faster or
      slower than the default depending on the image size, see ``benchmarks/README.md``).
    - `workers`: concurrent streams on the CPU (None: 2 when ``torch.get_num_threads() >= 2``,
      else 1); each gets ``torch.get_num_threads() // workers`` intra-op threads. 1 disables
      the worker threads. Ignored off the CPU. With workers, two DenseBlocks are in memory at
      once: peak memory is higher (5.5 vs 3.6 GB at 1024x1024 here).
    - `compile`: `torch.compile` the element-wise coupling arithmetic. Inductor's ``exp`` and
      ``sigmoid`` round differently (up to 7e-6 here), and it gave no measurable gain in the
      benchmarks; compile time is paid on the first call per input shape.
    """

    def __init__(
        self,
        reference: INNEnhancer,
        precision: Precision = "float32",
        channels_last: bool = False,
        workers: int | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(reference, INNEnhancer):
            raise ConfigError(f"FastEnhancer needs an INNEnhancer, got {type(reference).__name__}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if workers is not None and (
            not isinstance(workers, int) or isinstance(workers, bool) or workers < 1
        ):
            raise ConfigError(f"workers must be a positive integer or None, got {workers!r}")
        self.config: EnhancerConfig = reference.config
        self.precision = precision
        self.compute_dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        # bfloat16 is only fast with NHWC kernels; NCHW would add bf16 layout conversions.
        self.channels_last = bool(channels_last) or precision == "bfloat16"
        self.workers = workers
        self.compiled = bool(compile)
        dtype, cl = self.compute_dtype, self.channels_last
        with torch.no_grad():
            matrices = reference.expansion.matrices.detach().clone()
            # A (frozen) parameter, registered first: code written for `INNEnhancer` that takes
            # the device and dtype from ``next(net.parameters())`` (as `innrsic.enhance` does)
            # gets float32 on the right device. Everything else is a buffer.
            self.matrices = nn.Parameter(matrices, requires_grad=False)
            # The reference inverts on every call; the same call once gives the same values.
            self.register_buffer("inverse_matrices", torch.linalg.inv(matrices))
            self.couplings = nn.ModuleList(_FastCoupling(c, dtype, cl) for c in reference.couplings)
            gaussian = reference.gaussianize
            self.gaussian = _Pair(gaussian.mean, gaussian.scale, dtype, cl)
        self.parts = reference.expansion.parts
        self.haar = HaarTransform()
        self.to(reference.expansion.matrices.device)
        self._unscale = _unscale
        self._scale_shift = _scale_shift
        if compile:
            self._unscale = torch.compile(_unscale, dynamic=False)
            self._scale_shift = torch.compile(_scale_shift, dynamic=False)

    @classmethod
    def from_reference(
        cls,
        net: INNEnhancer,
        precision: Precision = "float32",
        channels_last: bool = False,
        workers: int | None = None,
        compile: bool = False,
    ) -> FastEnhancer:
        """A fast copy of `net` (weights read now)."""
        return cls(net, precision, channels_last, workers, compile)

    # -- execution helpers ------------------------------------------------------------------
    def _streams(self, device: torch.device) -> tuple[int, int]:
        """(workers, intra-op threads per worker) for a call on `device`."""
        if device.type != "cpu":
            return 1, 1
        total = torch.get_num_threads()
        workers = self.workers if self.workers is not None else (2 if total >= 2 else 1)
        return workers, max(1, total // workers)

    def _prepare(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.compute_dtype)
        if self.channels_last:
            return t.contiguous(memory_format=torch.channels_last)
        return t.contiguous()

    def _single(self, block: _DenseWeights, x: torch.Tensor) -> torch.Tensor:
        return _dense(self._prepare(x), block).float()

    def _pair(
        self, pair: _Pair, x: torch.Tensor, pool: ThreadPoolExecutor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._prepare(x)
        if pool is None:
            a, b = pair.serial(x)
        else:  # b in a worker, a here (this thread runs with a worker's thread share)
            future: Future[torch.Tensor] = pool.submit(_in_inference, _dense, x, pair.b)
            a = _dense(x, pair.a)
            b = future.result()
        return a.float(), b.float()

    def _run(self, fn: Callable[..., Any], *tensors: torch.Tensor) -> Any:
        """`fn(*tensors, pool)`: batch items split over the workers, or the pairs concurrent.

        With workers, the calling thread runs with one worker's share of the intra-op threads
        for the duration of the call (restored afterwards; thread-local under OpenMP).
        """
        workers, threads = self._streams(tensors[0].device)
        if workers == 1:
            return fn(*tensors, None)
        pool = _pool(workers, threads)
        batch = tensors[0].shape[0]
        if batch == 1:
            with torch_threads(threads):
                return fn(*tensors, pool)
        parts = min(workers, batch)
        chunks = list(zip(*(t.tensor_split(parts) for t in tensors), strict=True))
        futures = [pool.submit(_in_inference, fn, *chunk, None) for chunk in chunks]
        results = [future.result() for future in futures]
        if isinstance(results[0], tuple):
            return tuple(torch.cat(parts) for parts in zip(*results, strict=True))
        return torch.cat(results)

    # -- the network ------------------------------------------------------------------------
    def _expand(self, x: torch.Tensor) -> torch.Tensor:
        share = x / self.parts
        parts = [share] * (self.parts - 1)
        parts.append(x - sum(parts))
        return torch.cat([_apply(m, p) for m, p in zip(self.matrices, parts, strict=True)], dim=1)

    def _contract(self, v: torch.Tensor) -> torch.Tensor:
        chunks = v.split(3, dim=1)
        return sum(_apply(m, c) for m, c in zip(self.inverse_matrices, chunks, strict=True))

    def _forward_even(
        self, x: torch.Tensor, pool: ThreadPoolExecutor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.haar(self._expand(x))
        for c in self.couplings:
            x1, x2 = v[:, : c.split], v[:, c.split :]
            y1 = x1 + self._single(c.F, x2)
            g, h = self._pair(c.GH, y1, pool)
            v = torch.cat((y1, self._scale_shift(x2, h, g, c.clamp)), dim=1)
        v = self.haar.inverse(v)
        y, rest = v[:, :3], v[:, 3:]
        mean, scale = self._pair(self.gaussian, y, pool)
        z = (rest - mean) / (torch.exp(2.0 * torch.sigmoid(scale) - 1.0) + SCALE_EPS)
        return y, z

    def _inverse_even(
        self, y: torch.Tensor, z: torch.Tensor, pool: ThreadPoolExecutor | None
    ) -> torch.Tensor:
        mean, scale = self._pair(self.gaussian, y, pool)
        rest = mean + z * (torch.exp(2.0 * torch.sigmoid(scale) - 1.0) + SCALE_EPS)
        v = self.haar(torch.cat((y, rest), dim=1))
        for c in reversed(self.couplings):
            y1, y2 = v[:, : c.split], v[:, c.split :]
            g, h = self._pair(c.GH, y1, pool)
            x2 = self._unscale(y2, g, h, c.clamp)
            x1 = y1 - self._single(c.F, x2)
            v = torch.cat((x1, x2), dim=1)
        return self._contract(self.haar.inverse(v))

    # -- public API (the signatures of INNEnhancer) -----------------------------------------
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground truth ``x`` (B,3,H,W) -> ``(y, z)``, as `INNEnhancer.forward`."""
        _check_shape(x, 3, "x")
        height, width = x.shape[-2:]
        with torch.inference_mode():
            y, z = self._run(self._forward_even, _pad_to_even(x.float()))
            return y[..., :height, :width].contiguous(), z[..., :height, :width].contiguous()

    def inverse(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(y, z)`` -> image (B,3,H,W), not clamped, as `INNEnhancer.inverse`."""
        _check_shape(y, 3, "y")
        _check_shape(z, self.config.latent_channels, "z")
        if y.shape[0] != z.shape[0] or y.shape[-2:] != z.shape[-2:]:
            raise ValueError(
                f"y {tuple(y.shape)} and z {tuple(z.shape)} differ in batch or spatial size"
            )
        height, width = y.shape[-2:]
        with torch.inference_mode():
            x = self._run(self._inverse_even, _pad_to_even(y.float()), _pad_to_even(z.float()))
            return x[..., :height, :width].contiguous()

    def enhance(
        self,
        decoded: torch.Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """As `INNEnhancer.enhance`: the same `z` draw from `generator`, clamped to [0, 1]."""
        if (
            not isinstance(temperature, int | float)
            or not math.isfinite(temperature)
            or temperature < 0
        ):
            raise ConfigError(f"temperature must be a finite number >= 0, got {temperature!r}")
        _check_shape(decoded, 3, "decoded")
        height, width = decoded.shape[-2:]
        with torch.inference_mode():
            y = _pad_to_even(decoded.float())
            shape = (y.shape[0], self.config.latent_channels, *y.shape[-2:])
            if temperature == 0:
                z = torch.zeros(shape, dtype=y.dtype, device=y.device)
            else:
                device = generator.device if generator is not None else y.device
                z = torch.randn(shape, generator=generator, dtype=y.dtype, device=device)
                z = z.to(y.device) * temperature
            x = self._run(self._inverse_even, y, z)
            return x[..., :height, :width].clamp(0.0, 1.0).contiguous()


def _unscale(y2: torch.Tensor, g: torch.Tensor, h: torch.Tensor, clamp: float) -> torch.Tensor:
    """The coupling inverse's ``(y2 - G(y1)) / exp(s)``, in the reference's operation order."""
    return (y2 - g) / torch.exp(clamp * (2.0 * torch.sigmoid(h) - 1.0))


def _scale_shift(x2: torch.Tensor, h: torch.Tensor, g: torch.Tensor, clamp: float) -> torch.Tensor:
    """The coupling forward's ``x2 * exp(s) + G(y1)``, in the reference's operation order."""
    return x2 * torch.exp(clamp * (2.0 * torch.sigmoid(h) - 1.0)) + g


def optimize(
    net: INNEnhancer,
    precision: Precision = "float32",
    channels_last: bool = False,
    workers: int | None = None,
    compile: bool = False,
) -> FastEnhancer:
    """Shorthand for `FastEnhancer.from_reference`."""
    return FastEnhancer.from_reference(net, precision, channels_last, workers, compile)


__all__ = ["PRECISIONS", "FastEnhancer", "optimize"]
