"""Decoder-side post-processing for MSINN-VRLIC: ``x̂ = x̃ + 0.3 · P(x̃)`` (not invertible, decoder only).

- ``"unet"``: the paper-size U-Net (≈1.68 M parameters) invlab's own models use. Stage layout as the paper's;
  the skip/up-sampling wiring and the squeeze-excitation form were [inferred] before the official code was read.
- ``"unet-official"``: the official code's U-Net (1.66 M), for converted official weights: pre-activation ReLU
  residual blocks in the middle, a 16-channel last stage, squeeze-excitation without biases, the encoder skip
  concatenated before the up-sampled features.
- ``"mini"``: conv3x3 3→16, two residual blocks (16→32, 32→32), conv3x3 32→3 (≈34 k; sized for the 2.75 M mini).

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

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1, bias=bias),
                                  nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1, bias=bias), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class ResidualConvBlock(nn.Module):
    """conv3x3, LeakyReLU(0.01), conv3x3, squeeze-excitation, plus a 1x1 skip (the U-Net stage block)."""

    def __init__(self, c_in: int, c_out: int, se_bias: bool = True):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.01),
                                  nn.Conv2d(c_out, c_out, 3, padding=1), SqueezeExcitation(c_out, bias=se_bias))
        self.skip = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class UpStage(nn.Module):
    """1x1 conv + PixelShuffle(2) to ``c_up`` channels, concatenate the encoder skip (after them, or before them
    with ``skip_first``), residual conv block to ``c_out`` (default ``c_up``)."""

    def __init__(self, c_in: int, c_up: int, c_out: int | None = None, skip_first: bool = False,
                 se_bias: bool = True):
        super().__init__()
        self.skip_first = skip_first
        self.up = nn.Sequential(nn.Conv2d(c_in, 4 * c_up, 1), nn.PixelShuffle(2))
        self.block = ResidualConvBlock(2 * c_up, c_up if c_out is None else c_out, se_bias)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        parts = [skip, self.up(x)] if self.skip_first else [self.up(x), skip]
        return self.block(torch.cat(parts, dim=1))


class PreActivationBlock(nn.Module):
    """``x + conv3x3(ReLU(conv3x3(ReLU(x))))`` (the official U-Net's middle blocks)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(self.relu(x))))


class UNetPost(nn.Module):
    """The paper-size post-net P (input H, W must be multiples of 4); ``official``: the official code's variant."""

    def __init__(self, official: bool = False):
        super().__init__()
        se_bias = not official
        self.head = nn.Conv2d(3, 16, 3, padding=1)
        self.down = nn.ModuleList([ResidualConvBlock(16, 32, se_bias), ResidualConvBlock(32, 64, se_bias),
                                   ResidualConvBlock(64, 128, se_bias)])
        self.pool = nn.MaxPool2d(2)
        middle = PreActivationBlock if official else (lambda c: ResidualBlock(c, c))
        self.middle = nn.Sequential(*(middle(128) for _ in range(4)))
        last = 16 if official else 32
        self.up = nn.ModuleList([UpStage(128, 64, skip_first=official, se_bias=se_bias),
                                 UpStage(64, 32, last, skip_first=official, se_bias=se_bias)])
        self.tail = nn.Conv2d(last, 3, 3, padding=1)
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
    """``"unet"``, ``"unet-official"``, ``"mini"`` or None (no post-processing)."""
    if kind is None:
        return None
    builders = {"unet": UNetPost, "unet-official": lambda: UNetPost(official=True), "mini": mini_postnet}
    if kind not in builders:
        raise ValueError(f"postnet must be one of {sorted(builders)} or None, got {kind!r}")
    return builders[kind]()
