"""The learned-codec architectures: one table, read by the codecs, the registry, the checkpoint
loader and the training config.

Torch-free: the CompressAI class is named, not imported (see
:func:`innrsic.codecs.learned_checkpoint.model_class`), so the registry and configuration
checks stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

Y_DOWNSAMPLING = 16
"""How much every architecture's analysis transform ``g_a`` downsamples: y is 1/16 the size."""
Z_DOWNSAMPLING = 64
"""How much the hyper-analysis ``h_a`` downsamples on top of ``g_a``: z is 1/64 the size."""


class StreamLayout(Enum):
    """What CompressAI's ``compress`` returns: its entropy-coded streams, in payload order, and
    the ``shape`` that ``decompress`` needs."""

    FACTORIZED = "y; shape: y's size"
    HYPERPRIOR = "y, z; shape: z's size"
    CHECKERBOARD_GROUPS = (
        "two checkerboard halves of y per channel group, then z; shape: each group's y, and z's"
    )


@dataclass(frozen=True)
class Architecture:
    """One learned architecture and every fact about it that innrsic relies on."""

    name: str
    """Spec name, as in ``compressai.zoo`` (``elic``: ELIC)."""
    payload_id: int
    """Stored in every payload: never reuse or renumber."""
    model_class: str
    """The class in ``compressai.models``."""
    codec_class: str
    """The name of its `LearnedCodec` class."""
    layout: StreamLayout
    description: str
    """One line for help texts."""
    channel_tensors: tuple[tuple[str, str], ...] = (("N", "g_a.0.weight"), ("M", "g_a.6.weight"))
    """Constructor argument (``N``, ``M``) -> the state-dict tensor whose first dimension it is."""
    group_tensor: str | None = None
    """Channel groups only (ELIC): group k's tensor (``{}`` = k), its second dimension the
    group's size; the groups split the M latent channels."""

    @property
    def downsampling(self) -> int:
        """The network's total downsampling (training crops must be multiples of it)."""
        return Y_DOWNSAMPLING if self.layout is StreamLayout.FACTORIZED else Z_DOWNSAMPLING

    @property
    def constructor_args(self) -> tuple[str, ...]:
        """The CompressAI constructor's keyword arguments, in order."""
        return (*(name for name, _ in self.channel_tensors), *(("groups",) * self.has_groups))

    @property
    def has_groups(self) -> bool:
        """Whether the latent channels are split into groups (the ``groups`` argument)."""
        return self.group_tensor is not None

    @property
    def latent_channels(self) -> str:
        """The argument that is y's channel count: ``M``, or ``N`` where there is no M
        (cheng2020 has N latent channels, so a configured M must equal N)."""
        return "M" if "M" in self.constructor_args else "N"


_ELIC_CHANNELS = (("N", "g_a.0.weight"), ("M", "g_a.13.weight"))
_ELIC_GROUPS = "latent_codec.y.latent_codec.y{}.context_prediction.weight"
_CHENG2020_N = (("N", "g_a.0.conv1.weight"),)
_LOCAL = "(CompressAI), local weights"
_F, _H, _G = StreamLayout.FACTORIZED, StreamLayout.HYPERPRIOR, StreamLayout.CHECKERBOARD_GROUPS

ARCHITECTURES: dict[str, Architecture] = {
    row[0]: Architecture(*row)
    for row in (
        # name, payload id, CompressAI class, codec class, layout, description[, channel
        # tensors, group tensor]
        ("elic", 1, "Elic2022Chandelier", "ElicCodec", _G,
         "ELIC (He et al. 2022; CompressAI Elic2022Chandelier N=192 M=320), local weights",
         _ELIC_CHANNELS, _ELIC_GROUPS),
        ("bmshj2018-factorized", 2, "FactorizedPrior", "Bmshj2018FactorizedCodec", _F,
         f"Balle et al. 2018 factorized prior {_LOCAL}"),
        ("bmshj2018-factorized-relu", 3, "FactorizedPriorReLU", "Bmshj2018FactorizedReluCodec",
         _F, f"Balle et al. 2018 factorized prior with ReLU {_LOCAL}"),
        ("bmshj2018-hyperprior", 4, "ScaleHyperprior", "Bmshj2018HyperpriorCodec", _H,
         f"Balle et al. 2018 scale hyperprior {_LOCAL}"),
        ("mbt2018-mean", 5, "MeanScaleHyperprior", "Mbt2018MeanCodec", _H,
         f"Minnen et al. 2018 mean-scale hyperprior {_LOCAL}"),
        ("mbt2018", 6, "JointAutoregressiveHierarchicalPriors", "Mbt2018Codec", _H,
         f"Minnen et al. 2018 joint autoregressive + hyperprior {_LOCAL}"),
        ("cheng2020-anchor", 7, "Cheng2020Anchor", "Cheng2020AnchorCodec", _H,
         f"Cheng et al. 2020 anchor {_LOCAL}", _CHENG2020_N),
        ("cheng2020-attn", 8, "Cheng2020Attention", "Cheng2020AttentionCodec", _H,
         f"Cheng et al. 2020 with attention {_LOCAL}", _CHENG2020_N),
    )
}
"""Spec name -> architecture, in registry order (CompressAI's `model_architectures`)."""

ARCH_IDS: dict[str, int] = {name: arch.payload_id for name, arch in ARCHITECTURES.items()}
"""Spec name -> payload architecture id."""
