"""Metrics that need pretrained weights: where their files are looked for, and which exist.

Every optional metric is probed before an evaluation: a probe either finds all its weights
files or says exactly what is missing and where it looked. Places searched, in order:

1. the weights folder given (``--weights-dir``), else ``$INNRSIC_WEIGHTS_DIR`` when set;
2. the torch hub cache ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``,
   default ``~/.cache/torch/hub/checkpoints``), where torchvision keeps its downloads.

LPIPS-squeeze is resolved by `innrsic.metrics.perceptual` (folder or ``$INNRSIC_WEIGHTS_DIR``,
else the copy shipped with innrsic: its backbone file is not a torchvision download).

| metric | files | computed here |
| --- | --- | --- |
| `lpips_squeeze` | ``squeeze.backbone.pth`` (shipped) | yes (`innrsic.metrics.perceptual`) |
| `lpips_alex` | ``alexnet-owt-7be5be79.pth`` | yes: `lpips` (``pnet_rand=True``) + these |
| `lpips_vgg` | ``vgg16-397923af.pth`` | yes: as above |

Nothing is downloaded. A metric that cannot be computed is reported with its reason, never as
a number.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from innrsic.compute.tensors import to_tensor
from innrsic.errors import MetricError, WeightsError
from innrsic.metrics.perceptual import (
    SQUEEZE_BACKBONE,
    WEIGHTS_ENV,
    unloaded_lpips,
    with_backbone,
)
from innrsic.state_dict import load_state_dict

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
VGG16_FILE = "vgg16-397923af.pth"

# the metrics that need weights files (name -> title), in report order
PER_IMAGE_METRICS = {
    "lpips_squeeze": "LPIPS (SqueezeNet)",
    "lpips_alex": "LPIPS (AlexNet)",
    "lpips_vgg": "LPIPS (VGG16)",
}
_LPIPS_BACKBONES = {"lpips_alex": ("alex", ALEXNET_FILE), "lpips_vgg": ("vgg", VGG16_FILE)}


@dataclass(frozen=True)
class MetricProbe:
    """Whether a metric can be computed: the weights files found, or what is missing."""

    name: str
    title: str
    files: dict[str, Path] = field(default_factory=dict)
    missing: str = ""

    @property
    def available(self) -> bool:
        return not self.missing

    @property
    def status(self) -> str:
        """``"available"`` or ``"unavailable: <what is missing, where it looked>"``."""
        if self.missing:
            return f"unavailable: {self.missing}"
        return "available"


def torch_hub_checkpoints() -> Path:
    """The folder torchvision downloads weights to (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()).expanduser() / "checkpoints"


def search_places(weights_dir: str | os.PathLike[str] | None) -> tuple[list[Path], str]:
    """Folders searched for weights files, and a note on how the first one was chosen."""
    places: list[Path] = []
    note = ""
    if weights_dir is not None and str(weights_dir) != "":
        places.append(Path(weights_dir).expanduser())
    elif os.environ.get(WEIGHTS_ENV):
        places.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    else:
        note = f" (no weights folder given and ${WEIGHTS_ENV} is not set)"
    places.append(torch_hub_checkpoints())
    return places, note


def find_weights(
    filename: str, weights_dir: str | os.PathLike[str] | None
) -> tuple[Path | None, str]:
    """(path of `filename` in the search places, or None; the "not found in ..." text)."""
    places, note = search_places(weights_dir)
    for place in places:
        candidate = place / filename
        if candidate.is_file():
            return candidate, ""
    return None, f"{filename} not found in {', '.join(map(str, places))}{note}"


def _probe_files(
    name: str,
    title: str,
    needed: tuple[str | tuple[str, ...], ...],
    weights_dir: str | os.PathLike[str] | None,
) -> MetricProbe:
    """Probe for every item of `needed`: a file name, or a tuple of alternative names."""
    files: dict[str, Path] = {}
    missing = []
    for item in needed:
        names = (item,) if isinstance(item, str) else item
        for filename in names:
            path, reason = find_weights(filename, weights_dir)
            if path is not None:
                files[filename] = path
                break
        else:
            if len(names) > 1:
                reason = reason.replace(names[-1], f"{' or '.join(names)}", 1)
            missing.append(reason)
    return MetricProbe(name, title, files, "; ".join(missing))


def probe_lpips_squeeze(weights_dir: str | os.PathLike[str] | None) -> MetricProbe:
    """LPIPS-squeeze: ``squeeze.backbone.pth`` from the weights folder or $INNRSIC_WEIGHTS_DIR,
    else the copy shipped with innrsic (`innrsic.metrics.perceptual`)."""
    from innrsic.metrics.perceptual import squeeze_backbone_file

    title = PER_IMAGE_METRICS["lpips_squeeze"]
    try:
        path = squeeze_backbone_file(weights_dir)
    except WeightsError as exc:
        return MetricProbe("lpips_squeeze", title, missing=str(exc))
    return MetricProbe("lpips_squeeze", title, {SQUEEZE_BACKBONE: path})


def probe_metrics(weights_dir: str | os.PathLike[str] | None) -> dict[str, MetricProbe]:
    """Probe every optional metric, in report order."""
    probes = {"lpips_squeeze": probe_lpips_squeeze(weights_dir)}
    for name, (_, filename) in _LPIPS_BACKBONES.items():
        probes[name] = _probe_files(name, PER_IMAGE_METRICS[name], (filename,), weights_dir)
    return probes


@functools.lru_cache(maxsize=4)
def _torchvision_lpips(net: str, weights_path: str) -> torch.nn.Module:
    """LPIPS with a torchvision backbone whose weights come from `weights_path`."""
    model = unloaded_lpips(net)
    state = load_state_dict(weights_path, f"torchvision {net} weights")
    backbone = {}
    for key in model.state_dict():
        if not key.startswith("net.slice"):
            continue
        # lpips keeps torchvision's `features` indices: net.slice2.3.weight <- features.3.weight
        source = "features." + key.split(".", 2)[2]
        if source not in state:
            raise WeightsError(f"{weights_path}: {source} missing; not torchvision {net} weights")
        backbone[key] = state[source]
    return with_backbone(model, backbone, weights_path, net)


def lpips_torchvision(
    name: str, reference: np.ndarray, test: np.ndarray, weights_path: str | os.PathLike[str]
) -> float:
    """`lpips_alex` or `lpips_vgg` between two HxWx3 uint8 images, with the given weights file."""
    if name not in _LPIPS_BACKBONES:
        raise MetricError(f"unknown LPIPS variant {name!r}; valid: {', '.join(_LPIPS_BACKBONES)}")
    if reference.shape != test.shape or reference.ndim != 3 or reference.shape[2] != 3:
        raise MetricError(f"image shapes differ or are not HxWx3: {reference.shape}, {test.shape}")
    model = _torchvision_lpips(_LPIPS_BACKBONES[name][0], str(Path(weights_path).resolve()))
    with torch.no_grad():
        distance = model(to_tensor(reference)[None], to_tensor(test)[None], normalize=True)
    return float(distance.reshape(-1)[0])
