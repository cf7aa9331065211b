"""Weights for learned codecs: CompressAI models of the architecture table, and checkpoint files.

Three checkpoint layouts are read, told apart by content rather than by file name:

- **innrsic's format**: a safetensors file holding the model's whole state dict with the
  entropy coder's CDF tables computed exactly (:mod:`innrsic.codecs.exact_tables`), so they load
  with the weights as frozen integers and are never recomputed. Its metadata holds ``format``
  (``innrsic-learned-codec``), ``format_version`` (2; version 1 files, whose tables came from
  CompressAI's float32 ``update(force=True)``, are still read), ``arch`` (a key of
  :data:`~innrsic.codecs.architectures.ARCHITECTURES`), ``config`` (the constructor arguments as
  JSON, e.g. ``{"N": 192, "M": 320, "groups": [16, 16, 32, 64, 192]}``),
  ``compressai_version`` and, when known, ``lambda``. Written by :func:`save_learned_checkpoint`.
- **The ELIC authors' layout** (their ``.pth.tar`` files, CompressAI 1.1 naming): a
  ``torch.save`` of ``{"state_dict": ...}`` with ``g_a.*``, ``g_s.*``, ``h_a.*``, ``h_s.*``,
  ``cc_transforms.{k}.*``, ``context_prediction.{k}.*``, ``ParamAggregation.{k}.*``,
  ``entropy_bottleneck._matrix0`` ... and one shared ``gaussian_conditional.*``. The network
  is CompressAI 1.2's ``Elic2022Chandelier``; only the names differ (see
  :func:`elic_state_dict_from_authors`).
- **CompressAI-native** state dicts, bare or under ``"state_dict"`` (CompressAI's training
  example), with or without a DDP ``module.`` prefix.

Pickled files may be xz-compressed (detected by magic bytes) and are read with
``torch.load(weights_only=True)`` only: arbitrary pickled objects are refused.

Weights files are untrusted input (a container's codec spec may name one): files and
decompressed xz data above `MAX_CHECKPOINT_BYTES` are refused before they are read whole, and
a configuration read from a file must match its tensors' shapes and stay within
`MAX_CHANNELS` / `MAX_GROUPS` before a model is built, so that a small file cannot make the
loader allocate a huge network.
"""

from __future__ import annotations

import innrsic.codecs.compressai_import  # noqa: F401 (before compressai: see that module)

# isort: split
import contextlib
import hashlib
import io
import json
import lzma
import os
import pickle
import re
import struct
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import compressai
import compressai.models
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import CompressionModel, Elic2022Chandelier
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from innrsic.atomic import write_bytes_atomic
from innrsic.codecs.architectures import ARCHITECTURES, Architecture
from innrsic.compute.threads import torch_threads
from innrsic.errors import WeightsError

FORMAT_NAME = "innrsic-learned-codec"
FORMAT_VERSION = "2"
"""Version 2 stores the exact CDF tables (`exact_tables`); version 1 files (CompressAI's
float32 tables) are still read."""
READABLE_VERSIONS = ("1", FORMAT_VERSION)

CODEC_THREADS = 1
"""Intra-op threads for every codec computation: the thread count changes floating-point
results (reduction order), and encoder and decoder must agree bit for bit."""

MAX_CHECKPOINT_BYTES = 1 << 30
"""Largest weights file, and largest decompressed xz checkpoint, that is read (1 GiB)."""
MAX_CHANNELS = 512
"""Largest ``N`` / ``M`` a weights file may configure (CompressAI's zoo uses up to 320)."""
MAX_GROUPS = 16
"""Most ELIC channel groups a weights file may configure (ELIC uses 5)."""

_XZ_MAGIC = b"\xfd7zXZ\x00"
_COMPUTE_LOCK = threading.RLock()
_EB_OLD_NAMES = {"matrix": "matrices", "bias": "biases", "factor": "factors"}


@dataclass
class LearnedModel:
    """A loaded model (eval mode, CDF tables ready) and what describes it.

    `model` is CompressAI's network as loaded (format-1 payloads decode with it); `exact` its
    kernel-independent copy (:mod:`innrsic.codecs.exact`), which format-2 payloads use.
    """

    model: CompressionModel
    arch: str
    config: dict[str, Any]
    lmbda: float | None
    fingerprint: bytes
    """`weights_fingerprint` of the stored tensors: the weights' identity."""
    frozen_tables: dict[str, torch.Tensor] | None = None
    """The exact CDF tables the file stored (format 2), else None (computed on first use)."""
    _derived: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def exact(self) -> CompressionModel:
        """The exact copy, built on first use."""
        if "exact" not in self._derived:
            from innrsic.codecs.exact import exact_model

            with deterministic_cpu():
                self._derived["exact"] = exact_model(self.model, self.frozen_tables)
        return self._derived["exact"]

    @property
    def legacy_fingerprint(self) -> bytes:
        """What format-1 payloads carry: `state_dict_fingerprint` of `model`."""
        if "legacy" not in self._derived:
            self._derived["legacy"] = state_dict_fingerprint(self.model)
        return self._derived["legacy"]


@contextlib.contextmanager
def deterministic_cpu() -> Iterator[None]:
    """Run torch with :data:`CODEC_THREADS` threads and no autograd, then restore the setting.

    The thread count is process-wide, so a lock keeps concurrent codec calls from interleaving.
    """
    with _COMPUTE_LOCK, torch.inference_mode(), torch_threads(CODEC_THREADS):
        yield


@contextlib.contextmanager
def exact_cpu() -> Iterator[None]:
    """No autograd, one codec call at a time, the caller's threads: for the exact model, whose
    results do not depend on the thread count (:mod:`innrsic.codecs.exact`)."""
    with _COMPUTE_LOCK, torch.inference_mode():
        yield


def _architecture(arch: str) -> Architecture:
    """The table entry of `arch`; an unknown name is a WeightsError listing the known ones."""
    if arch not in ARCHITECTURES:
        raise WeightsError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]


def model_class(arch: str) -> type[CompressionModel]:
    """The CompressAI class of architecture `arch`."""
    return getattr(compressai.models, _architecture(arch).model_class)


def build_model(arch: str, config: Mapping[str, Any]) -> CompressionModel:
    """A freshly initialised CompressAI model of architecture `arch` (see :data:`ARCHITECTURES`)."""
    cls = model_class(arch)
    try:
        return cls(**config)
    except (TypeError, ValueError, AssertionError) as exc:
        raise WeightsError(f"{arch}: invalid configuration {dict(config)} ({exc})") from exc


def infer_config(arch: str, state_dict: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """The constructor arguments of `arch` that produce the shapes in a native state dict."""
    entry = _architecture(arch)
    try:
        groups = _groups(entry.group_tensor, state_dict) if entry.group_tensor else None
        config: dict[str, Any] = {
            name: int(state_dict[key].shape[0]) for name, key in entry.channel_tensors
        }
    except (KeyError, IndexError) as exc:
        raise WeightsError(f"the weights do not look like {arch}: no tensor {exc}") from exc
    if groups is not None:
        config["groups"] = groups
    return config


def _groups(group_tensor: str, state_dict: Mapping[str, torch.Tensor]) -> list[int]:
    """The channel-group sizes: the second dimension of each group's tensor, from group 0 on."""
    groups = []
    while (weight := state_dict.get(group_tensor.format(len(groups)))) is not None:
        groups.append(int(weight.shape[1]))
    if not groups:
        raise KeyError(group_tensor.format(0))
    return groups


def elic_state_dict_from_authors(
    state_dict: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Rename the ELIC authors' checkpoint keys to CompressAI 1.2's ``Elic2022Chandelier``.

    ``h_a``/``h_s``/``entropy_bottleneck`` move under ``latent_codec.hyper``;
    ``cc_transforms.{k}`` becomes ``latent_codec.y.channel_context.y{k+1}`` (group k+1's channel
    context); ``context_prediction.{k}`` and ``ParamAggregation.{k}`` become group k's
    checkerboard ``context_prediction`` and ``entropy_parameters``; the single shared
    ``gaussian_conditional`` is copied to every group; CompressAI 1.1's ``_matrix{i}``,
    ``_bias{i}``, ``_factor{i}`` become ``matrices.{i}``, ``biases.{i}``, ``factors.{i}``.
    Both implementations concatenate the entropy-parameter inputs as [spatial context, channel
    context, hyperprior] and use even-parity checkerboard anchors, so no tensor is permuted.
    """
    groups = sum(1 for key in state_dict if re.fullmatch(r"context_prediction\.\d+\.weight", key))
    renamed: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in state_dict.items():
        if key.startswith(("g_a.", "g_s.")):
            renamed[key] = tensor
        elif key.startswith(("h_a.", "h_s.")):
            renamed[f"latent_codec.hyper.{key}"] = tensor
        elif match := re.fullmatch(r"cc_transforms\.(\d+)\.(.+)", key):
            renamed[f"latent_codec.y.channel_context.y{int(match[1]) + 1}.{match[2]}"] = tensor
        elif match := re.fullmatch(r"context_prediction\.(\d+)\.(.+)", key):
            renamed[f"latent_codec.y.latent_codec.y{match[1]}.context_prediction.{match[2]}"] = (
                tensor
            )
        elif match := re.fullmatch(r"ParamAggregation\.(\d+)\.(.+)", key):
            renamed[f"latent_codec.y.latent_codec.y{match[1]}.entropy_parameters.{match[2]}"] = (
                tensor
            )
        elif match := re.fullmatch(r"entropy_bottleneck\._(matrix|bias|factor)(\d+)", key):
            name = _EB_OLD_NAMES[match[1]]
            renamed[f"latent_codec.hyper.entropy_bottleneck.{name}.{match[2]}"] = tensor
        elif key.startswith("entropy_bottleneck."):
            renamed[f"latent_codec.hyper.{key}"] = tensor
        elif key.startswith("gaussian_conditional."):
            for k in range(groups):
                renamed[f"latent_codec.y.latent_codec.y{k}.y.{key}"] = tensor
        else:
            unknown.append(key)
    if unknown:
        raise WeightsError(
            f"unexpected keys in an ELIC checkpoint in the authors' layout: {_few(unknown)}"
        )
    return renamed


def load_learned_checkpoint(
    source: str | os.PathLike[str] | Mapping[str, Any], arch: str | None = None
) -> LearnedModel:
    """Load weights in any supported layout into a CompressAI model ready to compress.

    `source` is a file path or an already loaded state dict (or checkpoint dict). `arch` is
    required for CompressAI-native state dicts of architectures other than ELIC; if given for
    other layouts it must match what the file holds. The model is in eval mode on the CPU and
    its CDF tables are ready: read from innrsic's format, else computed by
    ``update(force=True)``. Every failure is a :class:`WeightsError`.
    """
    where = "state dict" if isinstance(source, Mapping) else str(source)
    found, config, lmbda, state_dict, tables_stored = native_state(source, arch)
    model = build_model(found, config)
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise WeightsError(f"{where}: weights do not fit {found} {config}: {_short(exc)}") from exc
    model.eval()
    frozen = None
    if tables_stored and _tables_ready(model):
        from innrsic.codecs.exact_tables import table_state

        frozen = table_state(model) if tables_stored == FORMAT_VERSION else None
    else:
        with deterministic_cpu():
            model.update(force=True)
    return LearnedModel(model, found, config, lmbda, weights_fingerprint(state_dict), frozen)


def native_state(
    source: str | os.PathLike[str] | Mapping[str, Any], arch: str | None = None
) -> tuple[str, dict[str, Any], float | None, dict[str, torch.Tensor], str | None]:
    """(architecture, config, lambda, state dict in CompressAI's names, the innrsic format
    version when the file is innrsic's) of weights in any supported layout; no model built."""
    where = "state dict" if isinstance(source, Mapping) else str(source)
    metadata: dict[str, str] = {}
    if isinstance(source, Mapping):
        state_dict = _state_dict_from(source, where)
    else:
        state_dict, metadata = _read_file(Path(source).expanduser())
    lmbda = None
    version = None
    if metadata.get("format") == FORMAT_NAME:
        found, config, lmbda = _parse_metadata(metadata, where)
        if found not in ARCHITECTURES or config != infer_config(found, state_dict):
            raise WeightsError(f"{where}: metadata describes {found} {config}, not its tensors")
        version = metadata["format_version"]
    elif any(key.startswith(("cc_transforms.", "ParamAggregation.")) for key in state_dict):
        found = "elic"
        state_dict = elic_state_dict_from_authors(state_dict)
        config = infer_config(found, state_dict)
    else:
        if arch is None and "latent_codec.y.channel_context.y1.0.weight" in state_dict:
            arch = "elic"
        if arch is None:
            raise WeightsError(f"{where}: a CompressAI-native state dict; say which architecture")
        found = arch
        config = infer_config(found, state_dict)
    if arch is not None and arch != found:
        raise WeightsError(f"{where}: holds {found} weights, not {arch}")
    _check_config_size(config, where)
    return found, config, lmbda, state_dict, version


def load_elic_checkpoint(source: str | os.PathLike[str] | Mapping[str, Any]) -> Elic2022Chandelier:
    """An ``Elic2022Chandelier`` in eval mode with CDF tables, from any supported layout.

    Accepts the authors' ``.pth.tar`` (xz-compressed or not), a CompressAI-native state dict or
    checkpoint file, and innrsic's safetensors format.
    """
    model = load_learned_checkpoint(source, arch="elic").model
    assert isinstance(model, Elic2022Chandelier)
    return model


def save_learned_checkpoint(
    model: CompressionModel, arch: str, path: str | os.PathLike[str], *, lmbda: float | None = None
) -> None:
    """Write `model` in innrsic's safetensors format, atomically.

    Computes the exact CDF tables first (`exact_tables.install_tables`, into `model`), so the
    file carries them as frozen integers and loading never recomputes them. `lmbda` (the
    rate-distortion weight it was trained with) is recorded in the metadata and checked
    against ``lambda=`` specs that use the file.
    """
    expected = model_class(arch) if arch in ARCHITECTURES else None
    if expected is None or not isinstance(model, expected):
        raise WeightsError(f"cannot save a {type(model).__name__} as architecture {arch!r}")
    from innrsic.codecs.exact_tables import install_tables

    with deterministic_cpu():
        install_tables(model)
    # Contiguous private copies: safetensors refuses views and tensors that share storage.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "config": json.dumps(infer_config(arch, tensors)),
        "compressai_version": compressai.__version__,
    }
    if lmbda is not None:
        metadata["lambda"] = repr(float(lmbda))
    write_bytes_atomic(path, safetensors_bytes(tensors, metadata=metadata))


def convert_checkpoint(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    arch: str | None = None,
    lmbda: float | None = None,
) -> LearnedModel:
    """Read a checkpoint in any supported layout and write it in innrsic's format."""
    loaded = load_learned_checkpoint(source, arch)
    save_learned_checkpoint(loaded.model, loaded.arch, target, lmbda=lmbda)
    return loaded


def weights_fingerprint(state_dict: Mapping[str, torch.Tensor]) -> bytes:
    """The weights' identity: SHA-256 over the stored tensors in CompressAI's names (name,
    dtype, shape, values, in name order), the entropy coder's tables left out: those are
    derived from the others (`exact_tables`), so a checkpoint as the authors ship it and its
    conversion to innrsic's format have the same fingerprint."""
    from innrsic.codecs.exact_tables import is_table

    return _digest({k: v for k, v in state_dict.items() if not is_table(k)})


def state_dict_fingerprint(model: torch.nn.Module) -> bytes:
    """SHA-256 of the loaded state dict, tables included (format-1 payloads' fingerprint)."""
    return _digest(model.state_dict())


def _digest(state: Mapping[str, torch.Tensor]) -> bytes:
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().to("cpu").contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.digest()


def _check_config_size(config: Mapping[str, Any], where: str) -> None:
    """Refuse a configuration whose network would be far larger than any real one."""
    groups = config.get("groups", [])
    channels = [config.get("N", 1), config.get("M", 1), *groups]
    if not all(isinstance(c, int) and 1 <= c <= MAX_CHANNELS for c in channels) or (
        len(groups) > MAX_GROUPS
    ):
        raise WeightsError(
            f"{where}: configuration {dict(config)} exceeds the limits ({MAX_CHANNELS} "
            f"channels, {MAX_GROUPS} groups)"
        )


def _read_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_CHECKPOINT_BYTES:
                raise WeightsError(
                    f"{path}: {size} bytes, over the {MAX_CHECKPOINT_BYTES}-byte weights limit"
                )
            head = handle.read(9)
        if _looks_like_safetensors(head):
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
                return tensors, dict(handle.metadata() or {})
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise WeightsError(f"{path}: no such weights file") from exc
    except IsADirectoryError as exc:
        raise WeightsError(f"{path}: is a directory, not a weights file") from exc
    except (OSError, SafetensorError) as exc:
        raise WeightsError(f"{path}: cannot read weights ({exc})") from exc
    if data.startswith(_XZ_MAGIC):
        decompressor = lzma.LZMADecompressor()
        try:
            data = decompressor.decompress(data, MAX_CHECKPOINT_BYTES + 1)
        except lzma.LZMAError as exc:
            raise WeightsError(f"{path}: corrupt xz-compressed checkpoint ({exc})") from exc
        if not decompressor.eof:
            raise WeightsError(
                f"{path}: xz-compressed checkpoint is truncated or decompresses to more than "
                f"{MAX_CHECKPOINT_BYTES} bytes"
            )
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{path}: refused: the file holds pickled objects other than tensors and plain "
            f"containers, which are never unpickled ({_short(exc)})"
        ) from exc
    except Exception as exc:  # torch.load raises many types on foreign or damaged files
        raise WeightsError(f"{path}: not a readable torch checkpoint ({_short(exc)})") from exc
    return _state_dict_from(checkpoint, str(path)), {}


def _looks_like_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    (header_size,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and 2 <= header_size < 1 << 30


def _state_dict_from(checkpoint: Any, where: str) -> dict[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("state_dict"), Mapping):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise WeightsError(f"{where}: no state dict found (expected a dict of tensors)")
    not_tensors = [str(k) for k, v in checkpoint.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise WeightsError(f"{where}: entries that are not tensors: {_few(not_tensors)}")
    state = {str(k): v for k, v in checkpoint.items()}
    if all(key.startswith("module.") for key in state):  # saved from a DDP-wrapped model
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def _parse_metadata(metadata: Mapping[str, str], where: str) -> tuple[str, dict, float | None]:
    if metadata.get("format_version") not in READABLE_VERSIONS:
        raise WeightsError(
            f"{where}: {FORMAT_NAME} version {metadata.get('format_version')!r}; "
            f"this innrsic reads versions {', '.join(READABLE_VERSIONS)}"
        )
    try:
        arch = metadata["arch"]
        config = json.loads(metadata["config"])
        lmbda = float(metadata["lambda"]) if "lambda" in metadata else None
    except (KeyError, ValueError) as exc:
        raise WeightsError(f"{where}: damaged {FORMAT_NAME} metadata ({exc})") from exc
    if not isinstance(config, dict):
        raise WeightsError(f"{where}: damaged {FORMAT_NAME} metadata (config is not an object)")
    return arch, config, lmbda


def _tables_ready(model: CompressionModel) -> bool:
    return all(
        module._quantized_cdf.numel() > 0
        for module in model.modules()
        if isinstance(module, EntropyBottleneck | GaussianConditional)
    )


def _few(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."
