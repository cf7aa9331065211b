"""LPIPS (Zhang et al. 2018) with the SqueezeNet 1.1 backbone, loaded offline.

The `lpips` package ships its linear calibration layers; the SqueezeNet backbone is
``squeeze.backbone.pth`` (torchvision ``squeezenet1_1().features`` state dict without the
``features.`` prefix), shipped in ``data/`` (torchvision's ImageNet weights, BSD-3-Clause;
``data/NOTICE`` has its source, checksum and licences). Nothing is downloaded. Where the file
is taken from:

1. the `weights` argument: the file itself, or a folder (used when it holds
   ``squeeze.backbone.pth``);
2. else ``$INNRSIC_WEIGHTS_DIR/squeeze.backbone.pth`` when that file exists;
3. else the shipped copy, whose SHA-256 is checked on loading.

A `weights` path that does not exist is a WeightsError naming it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from innrsic.compute.tensors import to_tensor
from innrsic.errors import MetricError, WeightsError
from innrsic.state_dict import load_state_dict

SQUEEZE_BACKBONE = "squeeze.backbone.pth"
WEIGHTS_ENV = "INNRSIC_WEIGHTS_DIR"
SHIPPED_SQUEEZE = Path(__file__).with_name("data") / SQUEEZE_BACKBONE
SHIPPED_SQUEEZE_SHA256 = "435cedb387e95bc8291893f61a3a64f0345b8c23a05139aceef43947efb3d52d"

# lpips' squeezenet wrapper keeps torchvision's module indices, split into 7 slices.
_SQUEEZE_SLICES = ((0, 1, 1), (2, 4, 2), (5, 7, 3), (8, 9, 4), (10, 10, 5), (11, 11, 6),
                   (12, 12, 7))


def resolve_weights_file(
    weights: str | os.PathLike[str] | None, filename: str, what: str
) -> Path | None:
    """The weights file `filename`: `weights` (the file, or a folder holding it), else
    ``$INNRSIC_WEIGHTS_DIR``'s; None when neither holds it. WeightsError for a `weights`
    path that does not exist."""
    folders: list[Path] = []
    if weights is not None and str(weights) != "":
        path = Path(weights).expanduser()
        if path.is_file():
            return path
        if not path.is_dir():
            raise WeightsError(f"{what} weights {path}: no such file or folder")
        folders.append(path)
    elif os.environ.get(WEIGHTS_ENV):
        folders.append(Path(os.environ[WEIGHTS_ENV]).expanduser())
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    return None


def squeeze_backbone_file(weights: str | os.PathLike[str] | None = None) -> Path:
    """Where the SqueezeNet 1.1 backbone is taken from (module doc): a given or
    ``$INNRSIC_WEIGHTS_DIR`` copy, else the shipped one."""
    found = resolve_weights_file(weights, SQUEEZE_BACKBONE, "SqueezeNet 1.1 backbone")
    return SHIPPED_SQUEEZE if found is None else found


@functools.lru_cache(maxsize=1)
def _check_shipped() -> None:
    """WeightsError when the shipped backbone is not the file `data/NOTICE` describes."""
    digest = hashlib.sha256(SHIPPED_SQUEEZE.read_bytes()).hexdigest()
    if digest != SHIPPED_SQUEEZE_SHA256:
        raise WeightsError(f"{SHIPPED_SQUEEZE}: SHA-256 {digest}, expected "
                           f"{SHIPPED_SQUEEZE_SHA256}; reinstall innrsic")


def squeeze_features_state_dict(weights: str | os.PathLike[str] | None = None) -> dict:
    """The SqueezeNet 1.1 `features` state dict (keys ``0.weight`` ... ``12.expand3x3.bias``)."""
    path = squeeze_backbone_file(weights)
    if path == SHIPPED_SQUEEZE:
        _check_shipped()
    state = load_state_dict(path, "SqueezeNet backbone")
    if "0.weight" not in state:
        raise WeightsError(f"{path}: not a SqueezeNet `features` state dict")
    return dict(state)


def _lpips_state_for_squeeze(features: dict) -> dict:
    mapped = {}
    for key, tensor in features.items():
        index = int(key.split(".", 1)[0])
        for low, high, slice_no in _SQUEEZE_SLICES:
            if low <= index <= high:
                mapped[f"net.slice{slice_no}.{key}"] = tensor
                break
        else:
            raise WeightsError(f"unexpected SqueezeNet layer index in key {key!r}")
    return mapped


def unloaded_lpips(net: str) -> torch.nn.Module:
    """LPIPS with its `net` backbone left random (nothing downloaded): `with_backbone` loads
    it from a weights file."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecated `pretrained=` argument
        return lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)


def with_backbone(
    model: torch.nn.Module, backbone: dict[str, torch.Tensor], path: str, net: str
) -> torch.nn.Module:
    """`model` (from `unloaded_lpips`) with the `backbone` tensors of file `path` loaded, in
    eval mode and frozen; WeightsError when they do not fit the `net` backbone."""
    try:
        model.load_state_dict(backbone, strict=False)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: tensors do not fit the {net} backbone ({exc})") from exc
    return model.eval().requires_grad_(False)


@functools.lru_cache(maxsize=4)
def _cached_model(path: str, device: str) -> torch.nn.Module:
    model = unloaded_lpips("squeeze")
    backbone = _lpips_state_for_squeeze(squeeze_features_state_dict(path))
    expected = {k for k in model.state_dict() if k.startswith("net.")}
    if set(backbone) != expected:
        raise WeightsError(f"{path}: backbone layers do not match LPIPS-squeeze "
                           f"(missing {sorted(expected - set(backbone))[:3]})")
    return with_backbone(model, backbone, path, "SqueezeNet 1.1").to(device)


def lpips_model(
    weights: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """The cached LPIPS-squeeze module (eval mode, frozen) on `device`."""
    path = squeeze_backbone_file(weights)
    return _cached_model(str(path.resolve()), str(torch.device(device)))


def lpips_tensor(
    reference: torch.Tensor,
    test: torch.Tensor,
    weights: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """Per-image LPIPS of (B,3,H,W) tensors in [0, 1] -> (B,) tensor. No gradient."""
    if reference.shape != test.shape or reference.ndim != 4 or reference.shape[1] != 3:
        raise MetricError(f"LPIPS needs two (B,3,H,W) tensors of one shape, got "
                          f"{tuple(reference.shape)} and {tuple(test.shape)}")
    model = lpips_model(weights, reference.device)
    with torch.no_grad():
        value = model(reference.float(), test.float(), normalize=True)
    return value.reshape(reference.shape[0])


def lpips_distance(
    reference: np.ndarray, test: np.ndarray, weights: str | os.PathLike[str] | None = None
) -> float:
    """LPIPS-squeeze between two HxWx3 uint8 images (0 for identical images)."""
    for name, image in (("reference", reference), ("test", test)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            raise MetricError(f"{name} image must be an HxWx3 uint8 array")
    if reference.shape != test.shape:
        raise MetricError(f"image shapes differ: {reference.shape} vs {test.shape}")
    return float(lpips_tensor(to_tensor(reference)[None], to_tensor(test)[None], weights)[0])
