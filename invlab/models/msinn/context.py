"""MSINN-VRLIC's per-slice entropy model: the networks that predict (σ, μ) for one latent.

A *slice* is one latent (y5 ... y1). :class:`SliceEntropyModel` holds its networks (channel context,
multistage spatial context, parameter fusion, latent residual prediction). The walk that visits the
slices lives in :mod:`.model`; the coders it plugs in (training, rANS encoding, rANS
decoding) are :mod:`invlab.entropy.residual`'s.
"""

from __future__ import annotations

import torch
from torch import nn

from invlab.entropy.checkerboard import MultistageContext
from invlab.layers import conv_stack


class SliceEntropyModel(nn.Module):
    """The networks that predict (σ, μ) for one slice of ``channels`` latents.

    ``context_channels`` is the width of the decoded complementary half ĥ at this level (None for the
    first, coarsest slice, whose channel context is a learned per-channel scale and zero mean).
    """

    def __init__(self, channels: int, context_channels: int | None, width: int, lrp: bool = True):
        super().__init__()
        c = channels
        if context_channels is None:
            self.prior_scale = nn.Parameter(torch.ones(c))  # init value [inferred]
            self.channel_context = None
        else:
            self.channel_context = conv_stack([context_channels, width, width, width, width, 2 * c])
        self.spatial_context = MultistageContext(c, width, 2 * c)
        self.fusion = conv_stack([4 * c, 10 * c // 3, 8 * c // 3, 2 * c], kernel=1)
        lrp_in = c + (context_channels or 0)
        self.lrp = conv_stack([lrp_in, width, width, width, width, c]) if lrp else None

    def channel_params(self, h: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """2c channels of channel/scale context; ``like`` is a (B, c, H, W) tensor giving the shape."""
        if self.channel_context is None:
            scale = self.prior_scale[None, :, None, None].expand_as(like)
            return torch.cat([scale, torch.zeros_like(like)], dim=1)
        return self.channel_context(h)

    def fuse(self, context: torch.Tensor, spatial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(σ, μ) from [channel context, spatial context]."""
        scale, mean = self.fusion(torch.cat([context, spatial], dim=1)).chunk(2, dim=1)
        return scale, mean

    def residual_prediction(self, y_hat: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        """LRP output from [ŷ, ĥ] (before the model's 0.5·tanh(.)·g' scaling); needs ``lrp=True``."""
        return self.lrp(y_hat if h is None else torch.cat([y_hat, h], dim=1))
