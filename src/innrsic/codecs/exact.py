"""Kernel-independent evaluation of a learned codec's decoder side: exact integer arithmetic
carried in float64.

Everything that decides a symbol, a probability or a decoded pixel (synthesis ``g_s``,
hyper-synthesis ``h_s``, context and entropy-parameter networks, ELIC's channel contexts) runs
through `exact_model`'s copy of the network, in which

- every convolution (plain, masked, transposed; GDN's too) takes **integers**: its weights are
  rounded once to a per-layer grid of 2^-kw (`WEIGHT_BITS` significant bits for the largest
  weight), its input to a grid of 2^-ka chosen per call from the input's largest magnitude
  (an order-free reduction) so that no partial sum can reach 2^52 (`_activation_shift`); so
  every product and every partial sum is an integer float64 holds exactly, and the result is
  the same in any summation order, with or without FMA, on any kernel (oneDNN, im2col + GEMM,
  any thread count, AVX2 or not, a GPU's GEMMs). cuDNN is never asked (`_exact_convolution`):
  it may pick FFT or Winograd algorithms, whose intermediate values are not integers;
- everything between convolutions is elementwise float64 arithmetic (add, multiply, divide,
  square root, max, comparisons, rounding: all correctly rounded by IEEE 754, so identical in
  vector and scalar code) or data movement; the one transcendental function, the sigmoid of
  the attention blocks, is `exp_exact`: range reduction and a polynomial in those operations;
- the CDF tables come from :mod:`innrsic.codecs.exact_tables`.

So the decoder side gives the same bits on a CUDA GPU as on the CPU: PyTorch's CUDA kernels
round float64 add, multiply, divide and square root correctly (IEEE 754) too, each eager
operation is its own kernel (no FMA contraction across operations), there is no TF32 mode for
float64, and the entropy decoder itself runs on the CPU either way
(`innrsic.codecs.learned.LearnedCodec.decode` with ``device=``).

The analysis transforms (``g_a``, ``h_a``) stay float32 on the fastest kernels (with one
thread, `SingleThread`, so the bytes do not depend on the thread count): their output is
quantised and transmitted, so only the encoder sees them. The exact parts run with the
caller's threads. The weight rounding makes this a
slightly different function from the float32 network (relative weight change below 2^-15);
encoder and decoder both use it. A module this does not know (with parameters) on the decoder
side is refused (`WeightsError`) rather than evaluated inexactly.

Its cost against the float32 network: ``benchmarks/exact_coding.py`` and benchmarks/README.md.
"""

from __future__ import annotations

import innrsic.codecs.compressai_import  # noqa: F401 (before compressai: see that module)

# isort: split
import copy
import math
import types
from collections.abc import Callable

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN, AttentionBlock
from compressai.models import CompressionModel, JointAutoregressiveHierarchicalPriors
from torch import Tensor, nn

from innrsic.codecs.exact_tables import install_tables
from innrsic.compute.threads import torch_threads
from innrsic.errors import WeightsError

WEIGHT_BITS = 16
"""Weights are integers of at most 2^16 in magnitude, times the layer's power of two."""
ACTIVATION_SHIFT_MAX = 24
"""Finest activation grid: 2^-24."""
_SUM_LIMIT_EXPONENT = 51
"""Partial sums stay below 2^51 (float64 holds every integer below 2^53)."""
ENCODER_ONLY = ("g_a", "h_a", "latent_codec.hyper.h_a")
"""Submodules only the encoder runs: left as they are."""

_Size = int | tuple[int, ...]
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_EXP_TERMS = 14


def exp_exact(x: Tensor) -> Tensor:
    """``exp`` of a float64 tensor from IEEE-exact operations only (same bits everywhere)."""
    x = x.clamp(-700.0, 700.0)
    n = torch.round(x * (1.0 / math.log(2.0)))
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = torch.full_like(r, 1.0 / math.factorial(_EXP_TERMS))
    for k in range(_EXP_TERMS - 1, -1, -1):
        p = p * r + 1.0 / math.factorial(k)
    scale = ((n.to(torch.int64) + 1023) << 52).view(torch.float64)  # 2^n, built from its bits
    return p * scale


def sigmoid_exact(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))`` through `exp_exact`."""
    return 1.0 / (1.0 + exp_exact(-x))


def _weight_grid(weight: Tensor) -> tuple[Tensor, int]:
    """(integer weights as float64, kw): ``weight ~= integers * 2^-kw``."""
    largest = float(weight.detach().abs().max()) if weight.numel() else 0.0
    shift = 0 if largest == 0 else WEIGHT_BITS - math.frexp(largest)[1]
    return torch.round(weight.detach().double() * 2.0**shift), shift


class ExactConv(nn.Module):
    """A convolution (or transposed convolution) on integer grids: see the module doc."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, weight: Tensor | None = None,
                 bias: Tensor | None = None) -> None:
        super().__init__()
        weight = conv.weight if weight is None else weight
        mask = getattr(conv, "mask", None)  # masked context convolutions
        if mask is not None:
            weight = weight * mask
        self.register_buffer("input_mask", None if mask is None else mask[:1, :1].double())
        self.transposed = isinstance(conv, nn.ConvTranspose2d)
        integers, self.weight_shift = _weight_grid(weight)
        self.register_buffer("weight_int", integers)
        bias = conv.bias if bias is None else bias
        self.register_buffer("bias", None if bias is None else bias.detach().double())
        # Largest sum of |weights| one output can see (output channel: dim 0, or 1 transposed).
        dims = (0, 2, 3) if self.transposed else (1, 2, 3)
        per_output = integers.abs().sum(dim=dims)
        self.weight_sum = float(per_output.max()) if per_output.numel() else 0.0
        self.bias_max = 0.0 if bias is None else float(bias.detach().abs().max())
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.groups = conv.groups
        self.output_padding = getattr(conv, "output_padding", 0)

    def _activation_shift(self, x: Tensor) -> int:
        largest = float(x.abs().max()) if x.numel() else 0.0
        bound = self.weight_sum * largest + self.bias_max * 2.0**self.weight_shift
        if bound == 0:
            return ACTIVATION_SHIFT_MAX
        return min(ACTIVATION_SHIFT_MAX, _SUM_LIMIT_EXPONENT - math.frexp(bound)[1])

    def forward(self, x: Tensor, padding: int | tuple[int, ...] | None = None) -> Tensor:
        x = x.double()
        shift = self._activation_shift(x)
        integers = torch.round(x * 2.0**shift)
        total = shift + self.weight_shift
        bias = None if self.bias is None else torch.round(self.bias * 2.0**total)
        pad = self.padding if padding is None else padding
        out = _exact_convolution(integers, self.weight_int, bias, self.stride, pad,
                                 self.dilation, self.transposed, self.output_padding, self.groups)
        return out * 2.0**-total


def _exact_convolution(
    x: Tensor, weight: Tensor, bias: Tensor | None, stride: _Size, padding: _Size,
    dilation: _Size, transposed: bool, output_padding: _Size, groups: int,
) -> Tensor:
    """``conv2d`` / ``conv_transpose2d`` of integer grids, never through cuDNN (module doc):
    the flag is this call's, not the process-wide ``torch.backends.cudnn.enabled``."""
    return torch.ops.aten._convolution(
        x, weight, bias, _pair(stride), _pair(padding), _pair(dilation), transposed,
        _pair(output_padding if transposed else 0), groups,
        False, False, False, False,  # benchmark, deterministic, cuDNN, TF32
    )


def _pair(value: _Size) -> list[int]:
    return list(value) if isinstance(value, tuple | list) else [value, value]


class ExactGDN(nn.Module):
    """(Inverse) GDN: ``x * sqrt(beta + gamma * x^2)`` or ``x / sqrt(...)``, exact."""

    def __init__(self, gdn: GDN) -> None:
        super().__init__()
        channels = gdn.beta.numel()
        beta = gdn.beta_reparam(gdn.beta).detach()
        gamma = gdn.gamma_reparam(gdn.gamma).detach().reshape(channels, channels, 1, 1)
        self.norm = ExactConv(nn.Conv2d(channels, channels, 1), gamma, beta)
        self.inverse = gdn.inverse

    def forward(self, x: Tensor) -> Tensor:
        x = x.double()
        norm = torch.sqrt(self.norm(x * x))
        return x * norm if self.inverse else x / norm


def _attention_forward(self: AttentionBlock, x: Tensor) -> Tensor:
    """`AttentionBlock.forward` with `sigmoid_exact`."""
    return self.conv_a(x) * sigmoid_exact(self.conv_b(x)) + x


class SingleThread(nn.Module):
    """Runs `inner` with one intra-op thread: the float32 analysis, so that the payload bytes
    do not depend on the caller's thread count either."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: Tensor) -> Tensor:
        with torch_threads(1):
            return self.inner(x)


def exact_model(model: CompressionModel, tables: dict[str, Tensor] | None = None
                ) -> CompressionModel:
    """A copy of `model` whose decoder side is exact (module doc), with exact CDF tables
    (`tables`: frozen ones, as `exact_tables.table_state` gives them; else computed)."""
    exact = copy.deepcopy(model).eval()
    for name, module in list(exact.named_modules()):
        if not name or _encoder_only(name):
            continue
        replacement = _replacement(module)
        if replacement is not None:
            _set_submodule(exact, name, replacement)
    _check_known(exact)
    for name in ENCODER_ONLY:
        try:
            analysis = exact.get_submodule(name)
        except AttributeError:
            continue
        _set_submodule(exact, name, SingleThread(analysis))
    if isinstance(exact, JointAutoregressiveHierarchicalPriors):
        exact._compress_ar = types.MethodType(_compress_ar, exact)
        exact._decompress_ar = types.MethodType(_decompress_ar, exact)
    install_tables(exact, tables)
    return exact


def _encoder_only(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in ENCODER_ONLY)


def _replacement(module: nn.Module) -> nn.Module | None:
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        return ExactConv(module)
    if isinstance(module, GDN) and type(module) is GDN:
        return ExactGDN(module)
    if isinstance(module, AttentionBlock):
        module.forward = types.MethodType(_attention_forward, module)  # type: ignore[method-assign]
    return None


_KNOWN: tuple[type, ...] = (ExactConv, ExactGDN, EntropyBottleneck, GaussianConditional)


def _check_known(root: nn.Module) -> None:
    """Refuse a decoder-side module with parameters of its own that is not exact."""
    known: list[str] = []
    for name, module in root.named_modules():
        if not name or _encoder_only(name) or any(name.startswith(k + ".") for k in known):
            continue
        if isinstance(module, _KNOWN):
            known.append(name)
        elif list(module.parameters(recurse=False)) or isinstance(module, nn.Sigmoid | nn.Tanh):
            raise WeightsError(f"{name}: {type(module).__name__} has no exact evaluation")


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def _context(self: JointAutoregressiveHierarchicalPriors) -> Callable[[Tensor], Tensor]:
    """The context of one kxk crop; positions the mask hides are zeroed first, so the
    encoder's not yet coded latents cannot change the activation grid (`_activation_shift`)."""
    conv = self.context_prediction
    return lambda crop: conv(crop * conv.input_mask, padding=0)


def _gaussian_at(
    self: JointAutoregressiveHierarchicalPriors, context: Callable[[Tensor], Tensor],
    y_hat: Tensor, params: Tensor, h: int, w: int, kernel_size: int,
) -> Tensor:
    """The entropy parameters (scales, means) of latent position (h, w), from its context."""
    y_crop = y_hat[:, :, h : h + kernel_size, w : w + kernel_size]
    p = params[:, :, h : h + 1, w : w + 1]
    return self.entropy_parameters(torch.cat((p, context(y_crop)), dim=1))


def _compress_ar(self, y_hat, params, height, width, kernel_size, padding):
    """CompressAI's ``_compress_ar`` with the exact context convolution."""
    from compressai.ans import BufferedRansEncoder

    gc = self.gaussian_conditional
    cdf, lengths, offsets = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
    encoder = BufferedRansEncoder()
    symbols, indexes_all = [], []
    context = _context(self)
    for h in range(height):
        for w in range(width):
            gaussian = _gaussian_at(self, context, y_hat, params, h, w, kernel_size)
            scales, means = gaussian.squeeze(3).squeeze(2).chunk(2, 1)
            indexes = gc.build_indexes(scales)
            y_q = gc.quantize(y_hat[:, :, h + padding, w + padding], "symbols", means)
            y_hat[:, :, h + padding, w + padding] = y_q + means
            symbols.extend(y_q.squeeze().tolist())
            indexes_all.extend(indexes.squeeze().tolist())
    encoder.encode_with_indexes(symbols, indexes_all, cdf, lengths, offsets)
    return encoder.flush()


def _decompress_ar(self, y_string, y_hat, params, height, width, kernel_size, padding):
    """CompressAI's ``_decompress_ar`` with the exact context convolution."""
    from compressai.ans import RansDecoder

    gc = self.gaussian_conditional
    cdf, lengths, offsets = gc.quantized_cdf.tolist(), gc.cdf_length.tolist(), gc.offset.tolist()
    decoder = RansDecoder()
    decoder.set_stream(y_string)
    context = _context(self)
    for h in range(height):
        for w in range(width):
            gaussian = _gaussian_at(self, context, y_hat, params, h, w, kernel_size)
            scales, means = gaussian.chunk(2, 1)
            indexes = gc.build_indexes(scales)
            values = decoder.decode_stream(indexes.squeeze().tolist(), cdf, lengths, offsets)
            symbols = torch.tensor(values, dtype=torch.float64, device=y_hat.device)
            symbols = symbols.reshape(1, -1, 1, 1)
            y_hat[:, :, h + padding : h + padding + 1, w + padding : w + padding + 1] = (
                gc.dequantize(symbols, means)
            )
