"""Layers shared by several model families and entropy models (no family's own blocks live here).

- :class:`ChannelsLast`: a sequence run in channels-last layout (MSINN's conditioners, context nets and
  post-net, the checkerboard context).
- :func:`conv_stack`: k x k convs with GELU between them, channels-last.
- :class:`CausalContextConv2d`: the raster-causal (type-A) masked conv of autoregressive contexts, with the
  mask applied on the fly (ANF's 5x5 context; the serial raster scan in :mod:`invlab.entropy.mixture`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from compressai.layers import MaskedConv2d
from torch import nn


class ChannelsLast(nn.Sequential):
    """A sequence run in channels-last layout (about 2x faster convolutions on CPU), returning NCHW.

    The layout is fixed here, whatever the caller passes, so encoder and decoder always take the same
    convolution path (their results must agree bit for bit).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


def conv_stack(widths: Sequence[int], kernel: int = 3) -> ChannelsLast:
    """k x k convs through ``widths`` (``[c_in, ..., c_out]``) with GELU between them."""
    mods: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        mods += [nn.Conv2d(a, b, kernel, padding=kernel // 2), nn.GELU()]
    return ChannelsLast(*mods[:-1])


class CausalContextConv2d(MaskedConv2d):
    """CompressAI's type-A masked conv (raster-causal), with the mask applied on the fly.

    CompressAI's own forward writes the mask into ``weight.data`` on every call; this one leaves the weights alone.
    """

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.masked_weight(), self.bias)
