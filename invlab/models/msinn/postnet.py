"""Decoder-side post-processing for MSINN-VRLIC: ``x̂ = x̃ + 0.3 · P(x̃)`` (not invertible, decoder only).

- ``"unet"``: the paper-size U-Net (≈1.68 M parameters; the official one is 1.66 M). Stage layout from the
  design brief; the exact skip/up-sampling wiring and the squeeze-excitation form are [inferred].
- ``"mini"``: conv3x3 3→16, two residual blocks (16→32, 32→32), conv3x3 32→3 (≈34 k; design §8.3).

Both zero-initialise their last convolution, so an untrained post-net is the identity [ours: the paper
does not say how it initialises P].
"""

from __future__ import annotations

import torch
from compressai.layers import ResidualBlock
from torch import nn

from invlab.layers import ChannelsLast

POSTNET_WEIGHT = 0.3


class SqueezeExcitation(nn.Module):
    """Channel attention: global average pool, 1x1 bottleneck (ReLU), 1x1, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class ResidualConvBlock(nn.Module):
    """conv3x3, LeakyReLU(0.01), conv3x3, squeeze-excitation, plus a 1x1 skip (the U-Net stage block)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.01),
                                  nn.Conv2d(c_out, c_out, 3, padding=1), SqueezeExcitation(c_out))
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class UpStage(nn.Module):
    """1x1 conv + PixelShuffle(2), concatenate the encoder skip, residual conv block."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.Sequential(nn.Conv2d(c_in, 4 * c_out, 1), nn.PixelShuffle(2))
        self.block = ResidualConvBlock(2 * c_out, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class UNetPost(nn.Module):
    """The paper-size post-net P (input H, W must be multiples of 4)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(3, 16, 3, padding=1)
        self.down = nn.ModuleList([ResidualConvBlock(16, 32), ResidualConvBlock(32, 64), ResidualConvBlock(64, 128)])
        self.pool = nn.MaxPool2d(2)
        self.middle = nn.Sequential(*(ResidualBlock(128, 128) for _ in range(4)))
        self.up = nn.ModuleList([UpStage(128, 64), UpStage(64, 32)])
        self.tail = nn.Conv2d(32, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # faster CPU convs; see ChannelsLast
        h1 = self.down[0](self.head(x))
        h2 = self.down[1](self.pool(h1))
        h = self.middle(self.down[2](self.pool(h2)))
        h = self.up[1](self.up[0](h, h2), h1)
        return self.tail(h).contiguous()


def mini_postnet() -> ChannelsLast:
    """The ≈34 k-parameter post-net of MSINN-mini."""
    tail = nn.Conv2d(32, 3, 3, padding=1)
    nn.init.zeros_(tail.weight)
    nn.init.zeros_(tail.bias)
    return ChannelsLast(nn.Conv2d(3, 16, 3, padding=1), ResidualBlock(16, 32), ResidualBlock(32, 32), tail)


def build_postnet(kind: str | None) -> nn.Module | None:
    """``"unet"``, ``"mini"`` or None (no post-processing)."""
    if kind is None:
        return None
    builders = {"unet": UNetPost, "mini": mini_postnet}
    if kind not in builders:
        raise ValueError(f"postnet must be one of {sorted(builders)} or None, got {kind!r}")
    return builders[kind]()
