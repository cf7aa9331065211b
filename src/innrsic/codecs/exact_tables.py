"""The entropy coder's CDF tables, computed the same way everywhere.

CompressAI's ``update()`` computes them in float32 tensors (matrix products, ``tanh``,
``sigmoid``, ``erfc``), whose results depend on the CPU kernels; a table entry that moves by
one changes every symbol coded with it. Here the same definitions are evaluated in float64
with NumPy's elementwise arithmetic (IEEE-exact), sums in a fixed order, and the
transcendental functions from Python's ``math`` module (the C library's scalar functions,
which no PyTorch setting touches), then quantised by CompressAI's own
``pmf_to_quantized_cdf``. The scale table of a GaussianConditional is CompressAI's default
(`compressai.models.base.get_scale_table`), as ``update(force=True)`` sets it.

`table_state` gives the tables as state-dict entries (innrsic's weights files store them:
frozen integers), `install_tables` puts stored or freshly computed ones into a model.
"""

from __future__ import annotations

import innrsic.codecs.compressai_import  # noqa: F401 (before compressai: see that module)

# isort: split
import math
from statistics import NormalDist

import numpy as np
import torch
from compressai._CXX import pmf_to_quantized_cdf
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models.base import get_scale_table
from torch import nn

TABLE_BUFFERS = ("_quantized_cdf", "_offset", "_cdf_length")
"""The entropy models' buffers that hold tables (GaussianConditional also ``scale_table``)."""

_tanh = np.vectorize(math.tanh, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
_sigmoid = np.vectorize(lambda v: 1.0 / (1.0 + math.exp(-v)) if v > -700 else 0.0,
                        otypes=[np.float64])
_softplus = np.vectorize(lambda v: v + math.log1p(math.exp(-v)) if v > 0 else
                         math.log1p(math.exp(v)), otypes=[np.float64])


def _as_float64(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


def _cdfs(pmfs: list[np.ndarray], precision: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantised CDFs (one row per pmf, zero-padded) and their lengths."""
    rows = [pmf_to_quantized_cdf(pmf.tolist(), precision) for pmf in pmfs]
    table = torch.zeros((len(rows), max(len(r) for r in rows)), dtype=torch.int32)
    for i, row in enumerate(rows):
        table[i, : len(row)] = torch.tensor(row, dtype=torch.int32)
    return table, torch.tensor([len(r) for r in rows], dtype=torch.int32)


def _logits_cumulative(eb: EntropyBottleneck, inputs: np.ndarray) -> np.ndarray:
    """`EntropyBottleneck._logits_cumulative` on (C, 1, L) float64, sums in a fixed order."""
    logits = inputs
    for i in range(len(eb.filters) + 1):
        matrix = _softplus(_as_float64(eb.matrices[i]))  # (C, out, in)
        out = matrix[:, :, 0, None] * logits[:, None, 0, :]
        for j in range(1, matrix.shape[2]):
            out = out + matrix[:, :, j, None] * logits[:, None, j, :]
        logits = out + _as_float64(eb.biases[i])
        if i < len(eb.filters):
            logits = logits + _tanh(_as_float64(eb.factors[i])) * _tanh(logits)
    return logits


def bottleneck_tables(eb: EntropyBottleneck) -> dict[str, torch.Tensor]:
    """What ``EntropyBottleneck.update(force=True)`` computes, exactly (module doc)."""
    quantiles = _as_float64(eb.quantiles)[:, 0, :]
    medians = quantiles[:, 1]
    minima = np.maximum(np.ceil(medians - quantiles[:, 0]), 0).astype(np.int64)
    maxima = np.maximum(np.ceil(quantiles[:, 2] - medians), 0).astype(np.int64)
    lengths = minima + maxima + 1
    samples = np.arange(int(lengths.max()))[None, :] + (medians - minima)[:, None]
    lower = _logits_cumulative(eb, (samples - 0.5)[:, None, :])[:, 0, :]
    upper = _logits_cumulative(eb, (samples + 0.5)[:, None, :])[:, 0, :]
    pmf = _sigmoid(upper) - _sigmoid(lower)
    tail = _sigmoid(lower[:, 0]) + _sigmoid(-upper[:, -1])
    pmfs = [np.append(pmf[c, : lengths[c]], tail[c]) for c in range(len(lengths))]
    cdf, _ = _cdfs(pmfs, eb.entropy_coder_precision)
    return {
        "_quantized_cdf": cdf,
        "_offset": torch.tensor(-minima, dtype=torch.int32),
        "_cdf_length": torch.tensor(lengths + 2, dtype=torch.int32),
    }


def gaussian_tables(gc: GaussianConditional) -> dict[str, torch.Tensor]:
    """What ``GaussianConditional.update_scale_table(get_scale_table())`` computes, exactly."""
    scale_table = get_scale_table()
    scales = _as_float64(scale_table)
    multiplier = -NormalDist().inv_cdf(float(gc.tail_mass) / 2)
    centers = np.ceil(scales * multiplier).astype(np.int64)
    pmfs = []
    for scale, center in zip(scales, centers, strict=True):
        samples = np.abs(np.arange(2 * center + 1) - center).astype(np.float64)
        upper = 0.5 * _erfc(-(2**-0.5) * ((0.5 - samples) / scale))
        lower = 0.5 * _erfc(-(2**-0.5) * ((-0.5 - samples) / scale))
        pmfs.append(np.append(upper - lower, 2 * lower[0]))
    cdf, lengths = _cdfs(pmfs, gc.entropy_coder_precision)
    return {
        "_quantized_cdf": cdf,
        "_offset": torch.tensor(-centers, dtype=torch.int32),
        "_cdf_length": lengths,
        "scale_table": scale_table.float(),
    }


def is_table(key: str) -> bool:
    """Whether a state-dict key is an entropy-coder table (derived, not learned)."""
    return key.rsplit(".", 1)[-1] in (*TABLE_BUFFERS, "scale_table")


def _entropy_models(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, EntropyBottleneck | GaussianConditional)
    ]


def table_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every entropy model's tables as state-dict entries (``<module>._quantized_cdf`` ...)."""
    state = {}
    for name, module in _entropy_models(model):
        for key in (*TABLE_BUFFERS, *(("scale_table",) * isinstance(module, GaussianConditional))):
            state[f"{name}.{key}"] = getattr(module, key).detach().clone()
    return state


def install_tables(model: nn.Module, tables: dict[str, torch.Tensor] | None = None) -> None:
    """Set every entropy model's tables: from `tables` (`table_state` entries) where given,
    else computed here. Shared modules (one object under several names) are set once."""
    done: set[int] = set()
    for name, module in _entropy_models(model):
        if id(module) in done:
            continue
        done.add(id(module))
        if tables is not None:
            keys = (*TABLE_BUFFERS, *(("scale_table",) * isinstance(module, GaussianConditional)))
            values = {key: tables[f"{name}.{key}"] for key in keys}
        elif isinstance(module, EntropyBottleneck):
            values = bottleneck_tables(module)
        else:
            values = gaussian_tables(module)
        for key, value in values.items():
            setattr(module, key, value.clone())
