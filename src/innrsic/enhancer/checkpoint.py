"""The authors' BasicSR ``*_G.pth`` enhancer checkpoints: import, export and conversion.

Original checkpoints are read with the weights-only unpickler (`innrsic.state_dict`), never by
unpickling arbitrary objects; `convert_original_checkpoint` writes innrsic's own weights file
(`innrsic.enhancer.weights_file`).

Original key layout (``InvComNet``) and where each key goes here:

- ``operations_gaussian.0.conv{i}.conv_weights`` (3x3 colour matrices)
  -> ``expansion.matrices[i-1]``
- ``operations_gaussian.1.haar_weights`` and ``operations_gaussian.{blocks+2}.haar_weights``:
  fixed Haar filters, checked and dropped (`HaarTransform` computes them)
- ``operations_gaussian.{j}.{F,G,H}.conv{n}.{weight,bias}``, j = 2..blocks+1
  -> ``couplings.{j-2}.{F,G,H}.convs.{n-1}.*``
- ``guassianize.{h_mean_s,h_scale_s}.conv{n}.*`` (sic) -> ``gaussianize.{mean,scale}.convs.{n-1}.*``
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch

from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.layout import check_layout, listing
from innrsic.enhancer.network import INNEnhancer
from innrsic.enhancer.weights_file import is_safetensors, save_enhancer
from innrsic.errors import ConfigError, WeightsError
from innrsic.state_dict import load_state_dict

_EXPANSION = re.compile(r"operations_gaussian\.0\.conv(\d+)\.conv_weights")
_COUPLING = re.compile(r"operations_gaussian\.(\d+)\.([FGH])\.conv(\d+)\.(weight|bias)")
_WRAPPER_KEYS = ("params", "state_dict")


def _haar_filters(channels: int) -> torch.Tensor:
    """The original's fixed filters, shape (4C, 1, 2, 2), channel-major like its conv weights."""
    filters = torch.tensor(
        [[[1, 1], [1, 1]], [[1, -1], [1, -1]], [[1, 1], [-1, -1]], [[1, -1], [-1, 1]]],
        dtype=torch.float32,
    )
    return filters.repeat(channels, 1, 1).unsqueeze(1)


def read_original_state_dict(
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Load an original checkpoint (path or mapping) as a flat dict without ``module.`` prefixes.

    Accepts a plain state dict (what BasicSR's ``save_network`` writes) or one wrapped under
    ``params``/``state_dict``.
    """
    if isinstance(source, Mapping):
        state = source
    else:
        path = Path(source)
        if not path.is_file():
            raise WeightsError(f"enhancer checkpoint not found: {path}")
        if is_safetensors(path):
            raise WeightsError(
                f"{path} is a safetensors file; read it with innrsic.enhancer.load_enhancer"
            )
        state = load_state_dict(path, "enhancer checkpoint")
    for wrapper in _WRAPPER_KEYS:
        if set(state) == {wrapper} and isinstance(state[wrapper], Mapping):
            state = state[wrapper]
    result: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise WeightsError(
                f"checkpoint entry {key!r} is a {type(value).__name__}, not a tensor"
            )
        result[key.removeprefix("module.")] = value
    return result


def infer_original_config(state: Mapping[str, torch.Tensor]) -> EnhancerConfig:
    """Read blocks, growths and expansion k from an original state dict's keys and shapes."""
    parts = sorted(int(m.group(1)) for key in state if (m := _EXPANSION.fullmatch(key)))
    if not parts:
        raise WeightsError(
            "not an INN-RSIC enhancer checkpoint: no channel-expansion weights "
            "'operations_gaussian.0.conv1.conv_weights'"
        )
    if parts != list(range(1, len(parts) + 1)):
        raise WeightsError(f"channel-expansion matrices are not numbered 1..n: conv{parts}")
    blocks = sorted({int(m.group(1)) for key in state if (m := _COUPLING.fullmatch(key))})
    if not blocks or blocks != list(range(2, len(blocks) + 2)):
        raise WeightsError(
            "coupling blocks must be operations_gaussian.2 .. operations_gaussian.N+1, "
            f"found indices {blocks}"
        )
    required = ("operations_gaussian.2.F.conv1.weight", "guassianize.h_mean_s.conv1.weight")
    missing = [key for key in required if key not in state]
    if missing:
        raise WeightsError(f"enhancer checkpoint lacks {listing(missing)}")
    try:
        return EnhancerConfig(
            blocks=len(blocks),
            growth=int(state[required[0]].shape[0]),
            gaussian_growth=int(state[required[1]].shape[0]),
            expansion=len(parts) - 1,
        )
    except ConfigError as exc:
        raise WeightsError(f"enhancer checkpoint describes an unsupported network: {exc}") from exc


def _original_name(key: str) -> str:
    """The original's name for one of our DenseBlock parameters (couplings, Gaussianisation)."""
    if m := re.fullmatch(r"couplings\.(\d+)\.([FGH])\.convs\.(\d+)\.(weight|bias)", key):
        index, subnet, conv, kind = m.groups()
        return f"operations_gaussian.{int(index) + 2}.{subnet}.conv{int(conv) + 1}.{kind}"
    if m := re.fullmatch(r"gaussianize\.(mean|scale)\.convs\.(\d+)\.(weight|bias)", key):
        name, conv, kind = m.groups()
        return f"guassianize.h_{name}_s.conv{int(conv) + 1}.{kind}"
    raise ValueError(f"no original name for {key!r}")


def _check_haar(state: Mapping[str, torch.Tensor], config: EnhancerConfig) -> None:
    expected = _haar_filters(config.expanded_channels)
    for index in (1, config.blocks + 2):
        key = f"operations_gaussian.{index}.haar_weights"
        if not torch.equal(state[key].float(), expected):
            raise WeightsError(f"{key!r} is not the fixed Haar filter bank this network uses")


def from_original_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
) -> INNEnhancer:
    """Build an `INNEnhancer` from an original checkpoint, inferring its config."""
    original = read_original_state_dict(source)
    config = infer_original_config(original)
    net = INNEnhancer(config)
    # Checked in the original's own key names, so messages match what the user's file holds.
    check_layout(original, to_original_state_dict(net), "original enhancer checkpoint", config)
    _check_haar(original, config)
    matrices = [
        original[f"operations_gaussian.0.conv{i}.conv_weights"]
        for i in range(1, config.expansion + 2)
    ]
    state = {"expansion.matrices": torch.stack(matrices)}
    for key in net.state_dict():
        if key not in state:
            state[key] = original[_original_name(key)]
    net.load_state_dict({key: value.float() for key, value in state.items()})
    return net


def to_original_state_dict(net: INNEnhancer) -> dict[str, torch.Tensor]:
    """Export in the authors' key layout (incl. Haar filters), for use with their code."""
    config = net.config
    haar = _haar_filters(config.expanded_channels)
    out: dict[str, torch.Tensor] = {}
    for i, matrix in enumerate(net.expansion.matrices.detach().cpu(), start=1):
        out[f"operations_gaussian.0.conv{i}.conv_weights"] = matrix.clone()
    out["operations_gaussian.1.haar_weights"] = haar.clone()
    for key, value in net.state_dict().items():
        if key != "expansion.matrices":
            out[_original_name(key)] = value.detach().cpu().clone()
    out[f"operations_gaussian.{config.blocks + 2}.haar_weights"] = haar.clone()
    return out


def convert_original_checkpoint(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    half: bool = False,
    *,
    default_temperature: float | None = None,
    codec: str | None = None,
) -> EnhancerConfig:
    """Convert an original ``*_G.pth`` into innrsic's safetensors format, recording
    `default_temperature` and `codec` when given (`save_enhancer`); returns its config."""
    net = from_original_checkpoint(src)
    save_enhancer(net, dst, half=half, default_temperature=default_temperature, codec=codec)
    return net.config
