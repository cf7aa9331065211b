"""Starting points for training an `INNEnhancer` other than the paper's.

``identity``: the network starts as "keep the decoded image". Every coupling already starts as
the identity (its DenseBlocks end in a zero conv); on top of that the colour matrices and the
Gaussianisation mean are set so that

- forward: ``x -> (y, z) = (x, 0)``;
- inverse: ``(y, z) -> y + sigma(y) * sum_i z_i / ((k + 1) * gain)``, so at z = 0 the output is
  the decoded image itself, and training can only move T = 0 from the codec's PSNR upwards
  instead of first having to undo a random colour transform.

`gain` sets the latent's scale against the pixel residual: in the forward pass
``z = gain * (x - y) / sigma``, so ``gain ~ 1 / RMSE(decoded)`` makes z of unit variance and a
unit-temperature sample add noise of about the codec error's size (``RMSE / 2`` for k = 1)
instead of saturated colour (the paper's YUV start maps z ~ N(0, I) to ~0.5 per pixel).
"""

from __future__ import annotations

import torch

from innrsic.enhancer.blocks import DenseBlock
from innrsic.enhancer.network import INNEnhancer
from innrsic.errors import ConfigError


def _pass_through(block: DenseBlock, gain: float) -> None:
    """Make `block`'s output ``gain * input[c % 3]`` per output channel c (centre taps of its
    last conv, whose first input channels are the block input)."""
    last = block.convs[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        for channel in range(last.out_channels):
            last.weight[channel, channel % 3, 1, 1] = gain


@torch.no_grad()
def identity_initialise(net: INNEnhancer, gain: float) -> INNEnhancer:
    """Set `net` (freshly built) to the identity start described in the module docstring."""
    if not gain > 0:
        raise ConfigError(f"latent gain must be > 0, got {gain!r}")
    parts = net.config.expansion + 1
    eye = torch.eye(3)
    matrices = net.expansion.matrices
    matrices[0] = parts * eye
    for index in range(1, parts):
        matrices[index] = parts * gain * eye
    _pass_through(net.gaussianize.mean, gain)
    return net
