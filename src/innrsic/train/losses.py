"""INN-RSIC's training loss and its feature backbones.

Loss = w_fit * ||y - decoded||^2 + w_lat * L_z + w_rev * ||x_rev - x||^2
       + w_feat * ||phi(x_rev) - phi(x)||^2 [+ w_res * ||inverse(decoded, 0) - x||^2]

where ``x_rev = inverse(QM(y) [+ N(0, sigma^2) with probability p], z')``, ``z' ~ N(0, T^2 I)``
(T = 1 in the paper), or ``inverse(decoded [+ noise], z')`` with ``reverse_source: decoded``,
``L_z`` is ``sum(z^2) / batch`` (the paper) or, with ``latent_loss: moments``, the KL of z's
per-channel moments from N(0, 1) (`latent_moments_kl`), and every ``||.||^2`` is a sum over
the whole batch tensor (the published "l2"), not a mean.
The configured weights are the effective ones: the published feature weight is 1e-4 (the
original code multiplied 0.01 by 0.01; here the config value is used once).

`phi` is VGG19 conv5_4 before its ReLU (the paper), the SqueezeNet 1.1 `features` output, or
nothing; inputs are ImageNet-normalised. A chosen backbone whose weights file is missing raises
WeightsError; nothing is downloaded.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from innrsic.enhancer import quantize_8bit
from innrsic.errors import WeightsError
from innrsic.state_dict import load_state_dict
from innrsic.train.config import EnhancerLossConfig

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_CONV5_4 = 34  # index of conv5_4 in torchvision's vgg19().features
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def l2_sum(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sum of squared differences over the whole tensor (the published "l2" loss)."""
    return (a - b).pow(2).sum()


def latent_moments_kl(z: torch.Tensor) -> torch.Tensor:
    """Sum over z's channels of KL(N(m_c, v_c) || N(0, 1)), with m_c and v_c the mean and
    variance of channel c over batch and space, times the pixels per image."""
    mean = z.mean(dim=(0, 2, 3))
    var = z.var(dim=(0, 2, 3), unbiased=False).clamp_min(1e-8)
    kl = 0.5 * (var + mean.pow(2) - 1.0 - var.log())
    return kl.sum() * z.shape[-2] * z.shape[-1]


def vgg19_weight_candidates(weights: str | os.PathLike[str] | None) -> list[Path]:
    """Where VGG19 ImageNet weights are looked for, in order."""
    if weights:
        path = Path(weights).expanduser()
        return [path / VGG19_FILE if path.is_dir() else path]
    candidates = []
    if os.environ.get("INNRSIC_WEIGHTS_DIR"):
        candidates.append(Path(os.environ["INNRSIC_WEIGHTS_DIR"]).expanduser() / VGG19_FILE)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE)
    return candidates


class FeatureExtractor(nn.Module):
    """A frozen ImageNet feature network applied to ImageNet-normalised [0, 1] images."""

    def __init__(self, name: str, layers: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.layers = layers.eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FeatureExtractor:
        super().train(mode)
        self.layers.eval()  # always frozen and in eval mode
        return self

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.layers((image - self.mean) / self.std)


def vgg19_conv5_4(weights: str | os.PathLike[str] | None = None) -> FeatureExtractor:
    """VGG19 up to conv5_4 (before its ReLU), from torchvision's ImageNet weights file."""
    from torchvision.models import vgg19

    candidates = vgg19_weight_candidates(weights)
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise WeightsError(
            f"feature backbone vgg19 needs torchvision's ImageNet weights ({VGG19_FILE}); looked "
            f"at {', '.join(map(str, candidates))}. Put the file there, set "
            "loss.feature_weights, or choose loss.feature_backbone=squeeze or none"
        )
    state = load_state_dict(path, "VGG19")
    features = {k.removeprefix("features."): v for k, v in state.items()
                if k.startswith("features.") or k[:1].isdigit()}
    layers = vgg19(weights=None).features[: VGG19_CONV5_4 + 1]
    wanted = set(layers.state_dict())
    try:
        layers.load_state_dict({k: v for k, v in features.items() if k in wanted}, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: not torchvision VGG19 weights ({exc})") from exc
    return FeatureExtractor("vgg19", layers)


def squeeze_features(weights: str | os.PathLike[str] | None = None) -> FeatureExtractor:
    """SqueezeNet 1.1 `features` (all Fire modules) from ``squeeze.backbone.pth``."""
    from torchvision.models import squeezenet1_1

    from innrsic.metrics.perceptual import squeeze_features_state_dict

    state = squeeze_features_state_dict(weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = squeezenet1_1(weights=None).features
    try:
        layers.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"SqueezeNet backbone does not fit squeezenet1_1 ({exc})") from exc
    return FeatureExtractor("squeeze", layers)


def build_feature_extractor(
    backbone: str, weights: str | os.PathLike[str] | None = None
) -> FeatureExtractor | None:
    """`vgg19`, `squeeze` or `none` (None)."""
    if backbone == "vgg19":
        return vgg19_conv5_4(weights)
    if backbone == "squeeze":
        return squeeze_features(weights)
    if backbone == "none":
        return None
    raise WeightsError(f"unknown feature backbone {backbone!r}; use vgg19, squeeze or none")


@dataclass
class ReverseNoise:
    """The random inputs of one reverse pass: y noise (or None) and the latent z'."""

    y_noise: torch.Tensor | None
    z: torch.Tensor


def sample_reverse_noise(
    config: EnhancerLossConfig,
    y_shape: torch.Size | tuple[int, ...],
    latent_channels: int,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> ReverseNoise:
    """Draw z' ~ N(0, T^2 I) (T = `reverse_temperature`) and, with probability `y_noise_prob`,
    y noise ~ N(0, y_noise_std^2).

    One coin per call (per batch and rank). Drawn on the CPU generator, then moved, so a seed
    gives the same numbers on any device.
    """
    batch, _, height, width = y_shape
    coin = torch.rand((), generator=generator).item()
    y_noise = None
    if config.y_noise_std > 0 and coin < config.y_noise_prob:
        y_noise = (torch.randn(tuple(y_shape), generator=generator) * config.y_noise_std).to(device)
    z = torch.randn((batch, latent_channels, height, width), generator=generator)
    z = (z * config.reverse_temperature).to(device)
    return ReverseNoise(y_noise, z)


def reverse_input(
    y: torch.Tensor, noise: torch.Tensor | None, quantize: bool = True
) -> torch.Tensor:
    """QM(y) (straight-through 8-bit rounding) plus the optional Gaussian noise."""
    y_in = quantize_8bit(y) if quantize else y
    return y_in + noise if noise is not None else y_in


class EnhancerLoss(nn.Module):
    """The weighted INN-RSIC loss terms; `forward` returns a dict with ``total`` and each term.

    `sum_scale` multiplies the sum-reduced terms: with DDP over W ranks, each rank holds 1/W
    of the global batch and gradients are averaged, so W makes every term (and the gradient
    norm that is clipped) equal to the single-process value for the same global batch.
    """

    def __init__(
        self,
        config: EnhancerLossConfig,
        features: FeatureExtractor | None = None,
        sum_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.config = config
        self.features = features
        self.sum_scale = sum_scale
        if config.feature_weight > 0 and features is None and config.feature_backbone != "none":
            raise WeightsError("a feature weight is set but no feature backbone was built")

    def forward(
        self,
        gt: torch.Tensor,
        decoded: torch.Tensor,
        y: torch.Tensor | None,
        z: torch.Tensor | None,
        reverse: torch.Tensor,
        restored: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The terms; `restored` is ``inverse(decoded, 0)`` when `restore_weight` is set; y and
        z are None when the forward pass was skipped (both its weights 0: no such terms)."""
        c, scale = self.config, self.sum_scale
        terms = {}
        if y is not None and z is not None:
            terms["forward"] = c.forward_weight * scale * l2_sum(y, decoded)
            terms["latent"] = c.latent_weight * (
                latent_moments_kl(z) if c.latent_loss == "moments" else z.pow(2).sum() / z.shape[0]
            )
        terms["reverse"] = c.reverse_weight * scale * l2_sum(reverse, gt)
        if restored is not None:
            terms["restore"] = c.restore_weight * scale * l2_sum(restored, gt)
        if self.features is not None and c.feature_weight > 0:
            with torch.no_grad():
                target = self.features(gt)
            terms["feature"] = c.feature_weight * scale * l2_sum(self.features(reverse), target)
        terms["total"] = sum(terms.values())  # type: ignore[assignment]
        return terms
