"""`INNEnhancer`: the invertible enhancer of INN-RSIC (the original code's `InvComNet`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from innrsic.enhancer.config import EnhancerConfig
from innrsic.enhancer.coupling import AffineCoupling
from innrsic.enhancer.expansion import ChannelExpansion
from innrsic.enhancer.gaussianize import ConditionalGaussianization
from innrsic.enhancer.haar import HaarTransform
from innrsic.enhancer.layout import check_layout
from innrsic.errors import ConfigError
from innrsic.pretrained import check_temperature

if TYPE_CHECKING:
    from collections.abc import Mapping

# the temperature of a model whose weights record none (the paper samples at T = 1)
FALLBACK_TEMPERATURE = 1.0


def default_temperature(net: object) -> float:
    """The temperature `net` (a network or engine) records as its own (`default_temperature`,
    from its weights file), else `FALLBACK_TEMPERATURE`."""
    default = getattr(net, "default_temperature", None)
    return FALLBACK_TEMPERATURE if default is None else default


def pad_to_even(t: torch.Tensor) -> torch.Tensor:
    """Replicate the last row/column where height/width is odd (the Haar step needs even sizes).

    Replicate rather than reflect: it works for a single row or column, and the 2x2 Haar block
    that straddles the edge sees a flat pair instead of invented detail.
    """
    pad_h, pad_w = t.shape[-2] % 2, t.shape[-1] % 2
    if not (pad_h or pad_w):
        return t
    return F.pad(t, (0, pad_w, 0, pad_h), mode="replicate")


def draw_latent(
    y: torch.Tensor, channels: int, temperature: float, generator: torch.Generator | None
) -> torch.Tensor:
    """``z ~ N(0, T^2 I)`` of `channels` channels at y's batch and size (zeros for T = 0).

    Drawn on the generator's device (the global RNG's on y's device if None), then moved to
    y's device, so one seed gives the same z whatever device y lives on.
    """
    if not isinstance(temperature, int | float):  # a number, not text a float() would read
        raise ConfigError(f"temperature must be a finite number >= 0, got {temperature!r}")
    check_temperature(temperature)
    shape = (y.shape[0], channels, *y.shape[-2:])
    if temperature == 0:
        return torch.zeros(shape, dtype=y.dtype, device=y.device)
    device = generator.device if generator is not None else y.device
    z = torch.randn(shape, generator=generator, dtype=y.dtype, device=device)
    return z.to(y.device) * temperature


def check_inverse_inputs(y: torch.Tensor, z: torch.Tensor, latent_channels: int) -> None:
    """ValueError unless y is (B,3,H,W) and z (B,latent_channels,H,W) of the same B, H, W."""
    check_shape(y, 3, "y")
    check_shape(z, latent_channels, "z")
    if y.shape[0] != z.shape[0] or y.shape[-2:] != z.shape[-2:]:
        raise ValueError(
            f"y {tuple(y.shape)} and z {tuple(z.shape)} differ in batch or spatial size"
        )


def check_shape(t: torch.Tensor, channels: int, name: str) -> None:
    """ValueError unless `t` (called `name`) is (B, channels, H, W)."""
    if t.ndim != 4 or t.shape[1] != channels:
        raise ValueError(f"{name} must be (B, {channels}, H, W), got {tuple(t.shape)}")


class INNEnhancer(nn.Module):
    """Invertible map ``x -> (y, z)``: ground truth to (decoded-looking image, Gaussian latent).

    Pipeline: `ChannelExpansion` (3 -> 3(k+1) channels), `HaarTransform`, `blocks` x
    `AffineCoupling` (split at the 3(k+1) low-pass channels), inverse Haar, then the first 3
    channels are `y` and `ConditionalGaussianization` turns the other 3k into `z`.

    Odd heights/widths are padded by replicating the last row/column and cropped back, in
    `forward`, `inverse` and `enhance`. The round trip ``inverse(*forward(x)) == x`` is exact
    (to float rounding) for even sizes only: cropping drops the padded row/column of ``(y, z)``
    that the inverse would need, so for odd sizes it is not exact; the error is largest at that
    edge and spreads inwards through the subnets' receptive fields. Training uses even crops.
    """

    def __init__(self, config: EnhancerConfig | None = None) -> None:
        super().__init__()
        config = EnhancerConfig() if config is None else config
        if not isinstance(config, EnhancerConfig):
            raise ConfigError(f"INNEnhancer needs an EnhancerConfig, got {type(config).__name__}")
        self.config = config
        # what a weights file records about the model (`innrsic.enhancer.weights_file`): the
        # temperature it is meant to run at and the codec spec it was trained behind
        self.default_temperature: float | None = None
        self.codec: str | None = None
        channels = config.expanded_channels
        self.expansion = ChannelExpansion(config.expansion)
        self.haar = HaarTransform()
        self.couplings = nn.ModuleList(
            AffineCoupling(4 * channels, channels, config.growth, config.clamp)
            for _ in range(config.blocks)
        )
        self.gaussianize = ConditionalGaussianization(
            config.latent_channels, config.gaussian_growth
        )

    @classmethod
    def from_state_dict(
        cls,
        config: EnhancerConfig,
        state: Mapping[str, torch.Tensor],
        origin: str = "state dict",
    ) -> INNEnhancer:
        """A network of `config` holding `state`'s tensors as float32; WeightsError naming
        every key that does not fit (`origin` says where `state` came from)."""
        net = cls(config)
        check_layout(state, net.state_dict(), origin, config)
        net.load_state_dict({key: value.float() for key, value in state.items()})
        return net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ground truth ``x`` (B,3,H,W) in [0,1] -> ``(y, z)``: (B,3,H,W) and (B,3k,H,W)."""
        check_shape(x, 3, "x")
        height, width = x.shape[-2:]
        v = self.haar(self.expansion(pad_to_even(x)))
        for coupling in self.couplings:
            v = coupling(v)
        v = self.haar.inverse(v)
        y, rest = v[:, :3], v[:, 3:]
        z = self.gaussianize(y, rest)
        return y[..., :height, :width], z[..., :height, :width]

    def _inverse_even(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        v = torch.cat((y, self.gaussianize.inverse(y, z)), dim=1)
        v = self.haar(v)
        for coupling in reversed(self.couplings):
            v = coupling.inverse(v)
        return self.expansion.inverse(self.haar.inverse(v))

    def inverse(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``(y, z)`` -> image (B,3,H,W); not clamped (training needs the raw values)."""
        check_inverse_inputs(y, z, self.config.latent_channels)
        height, width = y.shape[-2:]
        x = self._inverse_even(pad_to_even(y), pad_to_even(z))
        return x[..., :height, :width]

    @torch.no_grad()
    def enhance(
        self,
        decoded: torch.Tensor,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Restore texture in a decoded image: ``inverse(decoded, z)``, ``z ~ N(0, T^2 I)``.

        `temperature` None is the model's own (`default_temperature`).
        `z` is drawn at the padded (even) size from `generator` (the global RNG if None), on
        the generator's device, then moved to `decoded`'s device, so one seed gives the same
        output on any device `decoded` lives on. This draw is the network's own (training's
        validation uses it); ``innrsic enhance``, ``decompress --enhance``, the xarray engine,
        ``evaluate`` and `innrsic.enhancer.apply.enhance_image` draw z keyed to scene position
        and seed instead (`innrsic.enhancer.apply.latent_noise`). ``temperature=0`` uses
        ``z = 0`` and is deterministic. Runs without autograd. The result is clamped to [0, 1]
        because it is an image ready to write (the original clamps when saving); `inverse` is
        the unclamped path.
        """
        check_shape(decoded, 3, "decoded")
        height, width = decoded.shape[-2:]
        if temperature is None:
            temperature = default_temperature(self)
        y = pad_to_even(decoded)
        z = draw_latent(y, self.config.latent_channels, temperature, generator)
        x = self._inverse_even(y, z)
        return x[..., :height, :width].clamp(0.0, 1.0)
