"""`DenseBlock`: the convolutional subnet inside couplings and conditional Gaussianisation."""

from __future__ import annotations

import torch
from torch import nn

NUM_CONVS = 5


class DenseBlock(nn.Module):
    """Five 3x3 convs with dense concatenation and LeakyReLU(0.2) between them.

    Conv ``i`` sees the input and every earlier conv's output. Convs 1-4 get Xavier-normal
    weights scaled by 0.1 and the last conv is zero, so a fresh block outputs zeros and every
    coupling starts as the identity.
    """

    def __init__(self, in_channels: int, out_channels: int, growth: int) -> None:
        super().__init__()
        widths = [in_channels + i * growth for i in range(NUM_CONVS)]
        outs = [growth] * (NUM_CONVS - 1) + [out_channels]
        self.convs = nn.ModuleList(
            nn.Conv2d(w, o, kernel_size=3, padding=1) for w, o in zip(widths, outs, strict=True)
        )
        self.activation = nn.LeakyReLU(negative_slope=0.2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-normal x 0.1 for the hidden convs, zeros for the output conv; zero biases."""
        for conv in self.convs[:-1]:
            nn.init.xavier_normal_(conv.weight)
            with torch.no_grad():
                conv.weight.mul_(0.1)
            nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs[:-1]:
            features.append(self.activation(conv(torch.cat(features, dim=1))))
        return self.convs[-1](torch.cat(features, dim=1))
