"""MSINN-VRLIC's per-slice entropy model and the three coders its coarse-to-fine walk plugs in.

A *slice* is one latent (y5 ... y1). :class:`SliceEntropyModel` holds its networks (channel context,
multistage spatial context, parameter fusion, latent residual prediction). The walk that visits the
slices lives in :mod:`invlab.models.msinn`; what differs between training, encoding and decoding is only
the coder it is given:

- :class:`LikelihoodCoder`: training/evaluation. Noise (training) or rounding (eval) for the likelihood,
  straight-through rounding for the reconstruction (mixed quantisation); records likelihood maps.
- :class:`RansEncodingCoder`: rounds the gained residual and queues symbols + scale indices; one rANS
  stream at the end.
- :class:`RansDecodingCoder`: reads the symbols back from that stream in the same order.

Every coder maps ``(y or None, scale, mean, gain, positions)`` to the rounded residual ``q`` (valid at
``positions``); the caller reconstructs ``q * inverse_gain + mean``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from compressai.entropy_models import GaussianConditional
from compressai.ops import quantize_ste
from torch import nn

from invlab.entropy.checkerboard import MultistageContext
from invlab.entropy.rans import TableDecoder, TableEncoder


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


def scale_indexes(gaussian: GaussianConditional, scales: torch.Tensor) -> torch.Tensor:
    """``gaussian.build_indexes(scales)`` (the scale-table bin of each σ) by binary search, not 63 passes."""
    table = gaussian.scale_table
    return torch.searchsorted(table[:-1], scales.contiguous(), right=False).int()


class LikelihoodCoder:
    """Training / evaluation: likelihoods of the (noisy or rounded) residual, STE-rounded reconstruction."""

    def __init__(self, gaussian: GaussianConditional):
        self.gaussian = gaussian
        self.likelihoods: dict[str, torch.Tensor] = {}

    def code(self, key: str, y: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        r = (y - mean) * gain
        _, lk = self.gaussian(r, scale)
        self.likelihoods[key] = torch.where(positions, lk, self.likelihoods.get(key, lk))
        return quantize_ste(r) if self.gaussian.training else torch.round(r)


def _tables(gaussian: GaussianConditional) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return gaussian.quantized_cdf, gaussian.cdf_length.reshape(-1), gaussian.offset.reshape(-1)


class RansEncodingCoder:
    """Rounds residuals and codes (symbol, scale index) pairs, one coder call per slice; :meth:`finish`
    returns the one stream (the decoder decodes slice by slice, in the same calls)."""

    def __init__(self, gaussian: GaussianConditional):
        self.gaussian = gaussian
        self.encoder = TableEncoder()
        self.tables = _tables(gaussian)

    def code(self, key: str, y: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        q = torch.round((y - mean) * gain)
        self.encoder.encode_with_indexes(q[..., positions].reshape(-1),
                                         scale_indexes(self.gaussian, scale[..., positions]).reshape(-1), *self.tables)
        return q

    def finish(self) -> bytes:
        return self.encoder.flush()


class RansDecodingCoder:
    """Reads the symbols of :class:`RansEncodingCoder`'s stream back, in the same order; :meth:`finish`
    verifies the stream was consumed exactly and the symbols are the encoder's."""

    def __init__(self, gaussian: GaussianConditional, stream: bytes):
        self.gaussian = gaussian
        self.decoder = TableDecoder()
        self.decoder.set_stream(stream)
        self.tables = _tables(gaussian)

    def code(self, key: str, y: None, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        indexes = scale_indexes(self.gaussian, scale[..., positions])
        values = self.decoder.decode_stream(indexes.reshape(-1), *self.tables)
        q = torch.zeros_like(scale)
        q[..., positions] = torch.tensor(values, dtype=q.dtype, device=q.device).reshape(indexes.shape)
        return q

    def finish(self) -> None:
        self.decoder.finish()
