"""Enhancer weights on disk: the authors' BasicSR ``*_G.pth`` layout and innrsic's safetensors.

innrsic's own format is a safetensors file whose metadata holds ``format``, ``format_version``
and the `EnhancerConfig` as JSON, so a file alone rebuilds the network, and optionally
``default_temperature`` (the temperature the model is meant to run at, a decimal string) and
``codec`` (the codec spec it was trained behind). A file without them (the shipped files
predate the keys) takes them from the `innrsic.pretrained` record beside it, when one names the
file with its exact digest. Original checkpoints
are read with ``torch.load(weights_only=True)`` only, never by unpickling arbitrary objects.

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

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from innrsic.atomic import write_bytes_atomic
from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.network import INNEnhancer
from innrsic.errors import ConfigError, WeightsError

FORMAT_NAME = "innrsic.enhancer"
FORMAT_VERSION = "1"
TEMPERATURE_KEY = "default_temperature"
CODEC_KEY = "codec"

_EXPANSION = re.compile(r"operations_gaussian\.0\.conv(\d+)\.conv_weights")
_COUPLING = re.compile(r"operations_gaussian\.(\d+)\.([FGH])\.conv(\d+)\.(weight|bias)")
_WRAPPER_KEYS = ("params", "state_dict")
_MAX_LISTED = 5


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")


def _haar_filters(channels: int) -> torch.Tensor:
    """The original's fixed filters, shape (4C, 1, 2, 2), channel-major like its conv weights."""
    filters = torch.tensor(
        [[[1, 1], [1, 1]], [[1, -1], [1, -1]], [[1, 1], [-1, -1]], [[1, -1], [-1, 1]]],
        dtype=torch.float32,
    )
    return filters.repeat(channels, 1, 1).unsqueeze(1)


def _is_safetensors(path: Path) -> bool:
    # safetensors starts with a little-endian u64 header length, then the JSON header.
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


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
        if _is_safetensors(path):
            raise WeightsError(f"{path} is a safetensors file; read it with INNEnhancer.load")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        # Arbitrary bytes or pickled objects make the weights-only unpickler fail with almost any
        # exception type. Only the type is shown: torch's message advises unsafe loading.
        except Exception as exc:
            raise WeightsError(
                f"cannot read enhancer checkpoint {path} as plain tensors ({type(exc).__name__}); "
                "innrsic never unpickles arbitrary objects"
            ) from exc
    if not isinstance(state, Mapping):
        raise WeightsError(f"enhancer checkpoint is a {type(state).__name__}, not a state dict")
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
        raise WeightsError(f"enhancer checkpoint lacks {_listing(missing)}")
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


def _check_layout(
    state: Mapping[str, torch.Tensor],
    expected: Mapping[str, torch.Tensor],
    origin: str,
    config: EnhancerConfig,
) -> None:
    """Name every missing, unexpected or mis-shaped key of `state` against `expected`."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(
        f"{key} {tuple(state[key].shape)} != {tuple(expected[key].shape)}"
        for key in set(state) & set(expected)
        if state[key].shape != expected[key].shape
    )
    problems = []
    if missing:
        problems.append(f"missing {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shape {_listing(wrong)}")
    if problems:
        raise WeightsError(f"{origin} does not fit {config}: " + "; ".join(problems))


def _load_checked(net: INNEnhancer, state: Mapping[str, torch.Tensor], origin: str) -> None:
    """`load_state_dict` after `_check_layout`; tensors are cast to float32."""
    _check_layout(state, net.state_dict(), origin, net.config)
    net.load_state_dict({key: value.float() for key, value in state.items()})


def from_original_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, torch.Tensor],
) -> INNEnhancer:
    """Build an `INNEnhancer` from an original checkpoint, inferring its config."""
    original = read_original_state_dict(source)
    config = infer_original_config(original)
    net = INNEnhancer(config)
    # Checked in the original's own key names, so messages match what the user's file holds.
    _check_layout(original, to_original_state_dict(net), "original enhancer checkpoint", config)
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


def save_enhancer(
    net: INNEnhancer,
    path: str | os.PathLike[str],
    half: bool = False,
    *,
    default_temperature: float | None = None,
    codec: str | None = None,
) -> None:
    """Write `net` as safetensors with its config in the metadata; float16 storage if `half`.

    `default_temperature` and `codec` (else the net's own attributes, when set) are recorded
    too (module doc).
    """
    default_temperature = (
        net.default_temperature if default_temperature is None else default_temperature
    )
    codec = net.codec if codec is None else codec
    dtype = torch.float16 if half else torch.float32
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(net.config.to_dict(), sort_keys=True),
    }
    if default_temperature is not None:
        from innrsic.pretrained import check_temperature

        metadata[TEMPERATURE_KEY] = repr(check_temperature(default_temperature))
    if codec is not None:
        metadata[CODEC_KEY] = str(codec)
    write_bytes_atomic(path, safetensors.torch.save(tensors, metadata=metadata))


def _model_metadata(path: Path, metadata: Mapping[str, str]) -> tuple[float | None, str | None]:
    """(default temperature, codec spec) from the file's metadata, else from its record."""
    from innrsic.pretrained import check_temperature, record_for_weights

    temperature, codec = metadata.get(TEMPERATURE_KEY), metadata.get(CODEC_KEY)
    if temperature is None or codec is None:
        record = record_for_weights(path)
        if record is not None:
            temperature = record.default_temperature if temperature is None else temperature
            codec = record.codec if codec is None else codec
    try:
        return (None if temperature is None else check_temperature(temperature)), codec
    except ConfigError as exc:
        raise WeightsError(f"{path}: bad {TEMPERATURE_KEY} in its metadata ({exc})") from exc


def load_enhancer(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> INNEnhancer:
    """Read a file written by `save_enhancer`, or the shipped model named `path` (see
    `innrsic.pretrained`); weights come back as float32 on `device`, with the net's
    `default_temperature` and `codec` set from the metadata (module doc)."""
    from innrsic.pretrained import resolve_enhancer

    text = os.fspath(path)
    looks_like_a_path = os.sep in text or text.endswith(".safetensors")
    if looks_like_a_path and not Path(text).expanduser().is_file():
        raise WeightsError(f"enhancer weights not found: {text}")
    path, _ = resolve_enhancer(text)
    if not _is_safetensors(path):
        raise WeightsError(
            f"{path} is not a safetensors file; innrsic never unpickles weights. An original "
            "INN-RSIC *_G.pth checkpoint can be converted with `innrsic convert-checkpoint`"
        )
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (safetensors.SafetensorError, OSError) as exc:
        raise WeightsError(f"cannot read safetensors file {path}: {exc}") from exc
    if metadata.get("format") != FORMAT_NAME:
        raise WeightsError(f"{path} is a safetensors file but not innrsic enhancer weights")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"{path} has enhancer format version {metadata.get('format_version')!r}; "
            f"this innrsic reads version {FORMAT_VERSION}"
        )
    try:
        config = EnhancerConfig.from_dict(json.loads(metadata.get("config", "")))
    except (json.JSONDecodeError, ConfigError, TypeError) as exc:
        raise WeightsError(f"{path} has an invalid enhancer config in its metadata: {exc}") from exc
    net = INNEnhancer(config)
    _load_checked(net, tensors, str(path))
    net.default_temperature, net.codec = _model_metadata(path, metadata)
    return net.to(device)


def convert_original_checkpoint(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], half: bool = False
) -> EnhancerConfig:
    """Convert an original ``*_G.pth`` into innrsic's safetensors format; returns its config."""
    net = from_original_checkpoint(src)
    save_enhancer(net, dst, half=half)
    return net.config
