"""innrsic's enhancer weights file: safetensors whose metadata rebuilds the network.

The metadata holds ``format``, ``format_version`` and the `EnhancerConfig` as JSON, so a file
alone rebuilds the network, and optionally ``default_temperature`` (the temperature the model
is meant to run at, a decimal string) and ``codec`` (the codec spec it was trained behind). A
file without them (the shipped files predate the keys) takes them from the
`innrsic.pretrained` record beside it, when one names the file with its exact digest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from innrsic.atomic import write_bytes_atomic
from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.network import INNEnhancer
from innrsic.errors import ConfigError, WeightsError
from innrsic.pretrained import check_temperature, record_for_weights, resolve_enhancer

FORMAT_NAME = "innrsic.enhancer"
FORMAT_VERSION = "1"
TEMPERATURE_KEY = "default_temperature"
CODEC_KEY = "codec"


def is_safetensors(path: Path) -> bool:
    """Whether the file at `path` starts as a safetensors file does."""
    # safetensors starts with a little-endian u64 header length, then the JSON header.
    with path.open("rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


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
        metadata[TEMPERATURE_KEY] = repr(check_temperature(default_temperature))
    if codec is not None:
        metadata[CODEC_KEY] = str(codec)
    write_bytes_atomic(path, safetensors.torch.save(tensors, metadata=metadata))


def _model_metadata(path: Path, metadata: Mapping[str, str]) -> tuple[float | None, str | None]:
    """(default temperature, codec spec) from the file's metadata, else from its record."""
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


def _config(path: Path, metadata: Mapping[str, str]) -> EnhancerConfig:
    """The `EnhancerConfig` of a file's metadata, after checking its format and version."""
    if metadata.get("format") != FORMAT_NAME:
        raise WeightsError(f"{path} is a safetensors file but not innrsic enhancer weights")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"{path} has enhancer format version {metadata.get('format_version')!r}; "
            f"this innrsic reads version {FORMAT_VERSION}"
        )
    try:
        return EnhancerConfig.from_dict(json.loads(metadata.get("config", "")))
    except (json.JSONDecodeError, ConfigError, TypeError) as exc:
        raise WeightsError(f"{path} has an invalid enhancer config in its metadata: {exc}") from exc


def load_enhancer(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> INNEnhancer:
    """Read a file written by `save_enhancer`, or the shipped model named `path` (see
    `innrsic.pretrained`); weights come back as float32 on `device`, with the net's
    `default_temperature` and `codec` set from the metadata (module doc)."""
    text = os.fspath(path)
    looks_like_a_path = os.sep in text or text.endswith(".safetensors")
    if looks_like_a_path and not Path(text).expanduser().is_file():
        raise WeightsError(f"enhancer weights not found: {text}")
    path, _ = resolve_enhancer(text)
    if not is_safetensors(path):
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
    net = INNEnhancer.from_state_dict(_config(path, metadata), tensors, str(path))
    net.default_temperature, net.codec = _model_metadata(path, metadata)
    return net.to(device)
