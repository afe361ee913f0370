"""Building blocks of InvCompress (Xie et al., ACM MM 2021) that are not generic invertible blocks.

- :class:`FeatureEnhancement`: the non-invertible residual pre/post-processing ``x + 0.2 F(x)``
  (dense block, 1-3-1 convs, dense block), identity at init.
- :func:`bottleneck_conditioner`: the coupling sub-network (k x k, 1 x 1, k x k, LeakyReLU 0.2).
- :func:`inn_level`: one INN level = squeeze + invertible 1x1 conv + C/4-3C/4 double affine couplings.
- :func:`channel_squeeze`: the attentive channel squeeze (group average + attention) and its decoder
  counterpart (attention + copy-and-tile), plus the ablation variants.
- :func:`hyper_networks`: h_a / h_s of the hyperprior (Cheng 2020 form, or Minnen form for the mini).
"""

from __future__ import annotations

import torch
from compressai.layers import AttentionBlock, conv3x3, subpel_conv3x3
from compressai.models.utils import conv, deconv
from torch import nn

from invlab.flows import DoubleAffineCoupling, InvConv1x1, InvertibleSequence, Squeeze
from invlab.flows.coupling import SubnetConstructor

ACS_KINDS = ("attention", "average", "conv1x1")
HYPER_KINDS = ("cheng", "minnen")


def _xavier_scaled(convs: list[nn.Conv2d], scale: float = 0.1) -> None:
    """Xavier-normal weights times ``scale``, zero bias (the official code's init for residual branches)."""
    for c in convs:
        nn.init.xavier_normal_(c.weight)
        c.weight.data.mul_(scale)
        if c.bias is not None:
            nn.init.zeros_(c.bias)


class DenseBlock(nn.Module):
    """Five 3x3 convs with dense connections (ESRGAN style); the last conv is zero-init, so it outputs 0."""

    def __init__(self, c_in: int, c_out: int, growth: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c_in + i * growth, growth, 3, padding=1) for i in range(4))
        self.last = nn.Conv2d(c_in + 4 * growth, c_out, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        _xavier_scaled(list(self.convs))
        nn.init.zeros_(self.last.weight)
        nn.init.zeros_(self.last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for c in self.convs:
            feats.append(self.act(c(torch.cat(feats, dim=1))))
        return self.last(torch.cat(feats, dim=1))


class FeatureEnhancement(nn.Module):
    """``x + 0.2 * F(x)``, F = dense block (3 -> width), 1x1, 3x3, 1x1 convs, dense block (width -> 3).

    Not invertible; the model holds one for encoding and a separate one for decoding. Identity at init.
    """

    def __init__(self, width: int = 64, growth: int = 32, channels: int = 3, residual_scale: float = 0.2):
        super().__init__()
        self.residual_scale = residual_scale
        self.body = nn.Sequential(
            DenseBlock(channels, width, growth),
            nn.Conv2d(width, width, 1),
            nn.Conv2d(width, width, 3, padding=1),
            nn.Conv2d(width, width, 1),
            DenseBlock(width, channels, growth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual_scale * self.body(x)


def bottleneck_conditioner(kernel: int, hidden: int | None = None) -> SubnetConstructor:
    """InvCompress coupling sub-network: conv k x k -> LReLU -> conv 1x1 -> LReLU -> conv k x k.

    ``hidden=None`` makes the hidden width equal to the output width (the paper); the first two convs
    are Xavier x 0.1 (the coupling zero-initialises the last one).
    """

    def make(c_in: int, c_out: int) -> nn.Module:
        width = c_out if hidden is None else hidden
        net = nn.Sequential(
            nn.Conv2d(c_in, width, kernel, padding=kernel // 2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, c_out, kernel, padding=kernel // 2),
        )
        _xavier_scaled([net[0], net[2]])
        return net

    return make


def inn_level(channels_in: int, couplings: int, kernel: int, hidden: int | None = None) -> InvertibleSequence:
    """Squeeze x2, invertible 1x1 conv (orthogonal init), ``couplings`` C/4-3C/4 double affine couplings."""
    c = 4 * channels_in
    cond = bottleneck_conditioner(kernel, hidden)
    return InvertibleSequence(
        [Squeeze(2), InvConv1x1(c)] + [DoubleAffineCoupling(c, cond, split=c // 4) for _ in range(couplings)]
    )


class GroupAverage(nn.Module):
    """ACS squeeze: view C channels as C/M groups of M and average them, ``y_c = mean_g v[g M + c]``."""

    def __init__(self, latent_channels: int):
        super().__init__()
        self.latent_channels = latent_channels

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        b, c, h, w = v.shape
        return v.view(b, c // self.latent_channels, self.latent_channels, h, w).mean(dim=1)


class GroupTile(nn.Module):
    """ACS expansion (decoder): copy every latent channel to all ``groups`` groups, ``v[g M + c] = y_c``."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y.repeat(1, self.groups, 1, 1)


def channel_squeeze(kind: str, channels: int, latent_channels: int) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) pair mapping the INN output (``channels``) to the latent (``latent_channels``).

    ``"attention"`` is the paper's ACS (average + attention; attention + tile, two separate blocks);
    ``"average"`` drops the attention blocks and ``"conv1x1"`` replaces ACS by learned 1x1 convs (ablations).
    """
    if channels % latent_channels:
        raise ValueError(f"latent width {latent_channels} must divide the INN output width {channels}")
    groups = channels // latent_channels
    if kind == "attention":
        return (nn.Sequential(GroupAverage(latent_channels), AttentionBlock(latent_channels)),
                nn.Sequential(AttentionBlock(latent_channels), GroupTile(groups)))
    if kind == "average":
        return GroupAverage(latent_channels), GroupTile(groups)
    if kind == "conv1x1":
        return nn.Conv2d(channels, latent_channels, 1), nn.Conv2d(latent_channels, channels, 1)
    raise ValueError(f"acs must be one of {ACS_KINDS}, got {kind!r}")


def hyper_networks(kind: str, M: int, N: int) -> tuple[nn.Module, nn.Module]:
    """(h_a, h_s): y (M @ /16) -> z (N @ /64) -> 2M channels of hyper parameters @ /16.

    ``"cheng"``: Cheng2020Anchor's 3x3 stacks with sub-pixel upsampling (what InvCompress subclasses);
    ``"minnen"``: the smaller Minnen 2018 form used by the mini (conv 3x3/1, 5x5/2, 5x5/2;
    TConv 5x5/2 twice, conv 3x3).
    """
    act = nn.LeakyReLU
    if kind == "cheng":
        h_a = nn.Sequential(conv3x3(M, N), act(), conv3x3(N, N), act(), conv3x3(N, N, stride=2), act(),
                            conv3x3(N, N), act(), conv3x3(N, N, stride=2))
        wide = N * 3 // 2
        h_s = nn.Sequential(conv3x3(N, N), act(), subpel_conv3x3(N, N, 2), act(), conv3x3(N, wide), act(),
                            subpel_conv3x3(wide, wide, 2), act(), conv3x3(wide, 2 * M))
        return h_a, h_s
    if kind == "minnen":
        h_a = nn.Sequential(conv(M, N, 3, 1), act(), conv(N, N, 5, 2), act(), conv(N, N, 5, 2))
        h_s = nn.Sequential(deconv(N, M, 5, 2), act(), deconv(M, M, 5, 2), act(), conv(M, 2 * M, 3, 1))
        return h_a, h_s
    raise ValueError(f"hyper must be one of {HYPER_KINDS}, got {kind!r}")


def entropy_parameters(M: int) -> nn.Sequential:
    """Pointwise MLP (1x1 convs 4M -> 10M/3 -> 8M/3 -> 2M) from [hyper params, context] to (scales, means)."""
    return nn.Sequential(
        nn.Conv2d(M * 12 // 3, M * 10 // 3, 1), nn.LeakyReLU(),
        nn.Conv2d(M * 10 // 3, M * 8 // 3, 1), nn.LeakyReLU(),
        nn.Conv2d(M * 8 // 3, M * 6 // 3, 1),
    )
