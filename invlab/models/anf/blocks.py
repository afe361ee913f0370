"""Layers of the ANF family: conv stacks, the augmented flow step, QE, the split network.

- Conv stacks: :func:`analysis_transform` / :func:`synthesis_transform` (Conv/TConv 5x5 stride 2 with GDN/IGDN,
  ANFIC's m_i and μ_i) and their multi-scale versions built on LSUnit type A (:class:`LSUnitAnalysis`,
  :class:`LSUnitSynthesis`).
- :class:`AdditiveAutoencodingStep`: one additive augmented-flow step, ``z <- z + m(x)`` then ``x <- x - μ(z)``,
  with the conv stacks injected.
- :class:`QualityEnhancement` (ANFIC's post-filter) and :class:`LatentSplit` (MS-ANFIC's latent split network).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import nn

from invlab.entropy.mixture import FLOAT, MixtureArithmetic

#: an ANF latent: one tensor (single-scale) or one tensor per level, fine to coarse (multi-scale)
Latent = torch.Tensor | list[torch.Tensor]


# ---------------------------------------------------------------------- conv stacks
def analysis_convs(c_in: int, filters: int, stages: int) -> list[nn.Module]:
    """``stages`` x (Conv 5x5/2, GDN): the front every analysis transform shares."""
    layers: list[nn.Module] = []
    for i in range(stages):
        layers += [conv(c_in if i == 0 else filters, filters, 5, 2), GDN(filters)]
    return layers


def synthesis_convs(filters: int, c_out: int, stages: int) -> list[nn.Module]:
    """``stages`` x (IGDN, TConv 5x5/2), the last one to ``c_out``: the back every synthesis transform shares."""
    layers: list[nn.Module] = []
    for i in range(stages):
        layers += [GDN(filters, inverse=True), deconv(filters, c_out if i == stages - 1 else filters, 5, 2)]
    return layers


def analysis_transform(filters: int, latent_channels: int, c_in: int = 3) -> nn.Sequential:
    """ANFIC's m_i: three (Conv 5x5/2, GDN), then Conv 5x5/2 to the latent at H/16 (no GDN)."""
    return nn.Sequential(*analysis_convs(c_in, filters, 3), conv(filters, latent_channels, 5, 2))


def synthesis_transform(filters: int, latent_channels: int, c_out: int = 3) -> nn.Sequential:
    """ANFIC's μ_i: TConv 5x5/2 from the latent, then three (IGDN, TConv 5x5/2); no IGDN at the end."""
    return nn.Sequential(deconv(latent_channels, filters, 5, 2), *synthesis_convs(filters, c_out, 3))


class LSUnitAnalysis(nn.Module):
    """LSUnit type A, analysis side [inferred from the M-ANFIC caption and RDONet]: H/8 features -> latent levels.

    ``v1 = Conv5x5/2(f)`` at H/16 and ``v_{n+1} = Conv5x5/2(GDN(v_n))``, each level computed from the unmasked
    finer one; the flow step masks the levels ("latent space is masked according to an external mask").
    """

    def __init__(self, filters: int, channels: Sequence[int]):
        super().__init__()
        self.first = conv(filters, channels[0], 5, 2)
        self.down = nn.ModuleList(
            nn.Sequential(GDN(c_fine), conv(c_fine, c_coarse, 5, 2))
            for c_fine, c_coarse in zip(channels[:-1], channels[1:], strict=True)
        )

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        levels = [self.first(features)]
        for down in self.down:
            levels.append(down(levels[-1]))
        return levels


class LSUnitSynthesis(nn.Module):
    """LSUnit type A, synthesis side [inferred]: latent levels -> H/8 features.

    Coarse to fine, ``u_L = v̂_L`` and ``u_n = Conv(cat(v̂_n, TConv5x5/2(u_{n+1})))`` ("two signals entering the
    same convolution" = concatenation), then TConv 5x5/2 from ``u_1``.
    """

    def __init__(self, channels: Sequence[int], filters: int, merge_kernel: int = 5):
        super().__init__()
        pairs = list(zip(channels[:-1], channels[1:], strict=True))
        self.up = nn.ModuleList(deconv(c_coarse, c_fine, 5, 2) for c_fine, c_coarse in pairs)
        self.merge = nn.ModuleList(conv(2 * c_fine, c_fine, merge_kernel, 1) for c_fine, _ in pairs)
        self.last = deconv(channels[0], filters, 5, 2)

    def forward(self, levels: list[torch.Tensor]) -> torch.Tensor:
        u = levels[-1]
        for n in reversed(range(len(levels) - 1)):
            u = self.merge[n](torch.cat([levels[n], self.up[n](u)], dim=1))
        return self.last(u)


def multiscale_analysis_transform(filters: int, channels: Sequence[int], c_in: int = 3) -> nn.Sequential:
    """M-ANFIC's m_i: ANFIC's front (three Conv 5x5/2 + GDN), then LSUnit type A instead of the last conv."""
    return nn.Sequential(*analysis_convs(c_in, filters, 3), LSUnitAnalysis(filters, channels))


def multiscale_synthesis_transform(
    filters: int, channels: Sequence[int], c_out: int = 3, merge_kernel: int = 5
) -> nn.Sequential:
    """M-ANFIC's μ_i: LSUnit type A (levels -> H/8 features), then ANFIC's back (three IGDN + TConv 5x5/2)."""
    return nn.Sequential(LSUnitSynthesis(channels, filters, merge_kernel), *synthesis_convs(filters, c_out, 3))


# ---------------------------------------------------------------------- the augmented flow step
def _masked(delta: Latent, masks: list[torch.Tensor] | None) -> Latent:
    if masks is None:
        return delta
    if not isinstance(delta, list):
        raise ValueError("masks need a multi-scale analysis transform (a list of latent levels)")
    return [d * m for d, m in zip(delta, masks, strict=True)]


def _combine(z: Latent, delta: Latent, sign: float) -> Latent:
    if isinstance(z, list):
        return [a + sign * b for a, b in zip(z, delta, strict=True)]
    return z + sign * delta


class AdditiveAutoencodingStep(nn.Module):
    """One additive augmented-flow step (ANFIC's autoencoding transform with the multiplicative terms disabled).

    encode ``z <- z + mask ⊙ m(x)``, decode ``x <- x - μ(z)``; ``m`` (analysis) and ``μ`` (synthesis) are injected
    conv stacks. ``z`` is a tensor, or a list of levels for multi-scale stacks (then ``masks`` zero the levels'
    unused positions; ``None`` means all used). ``z = None`` stands for the all-zero initial augmented latent.

    Invariant (any m, μ, masks): ``inverse(*forward(x, z))`` gives ``(x, z)`` back up to float rounding.
    """

    def __init__(self, analysis: nn.Module, synthesis: nn.Module):
        super().__init__()
        self.analysis = analysis
        self.synthesis = synthesis

    def encode(self, x: torch.Tensor, z: Latent | None, masks: list[torch.Tensor] | None = None) -> Latent:
        delta = _masked(self.analysis(x), masks)
        return delta if z is None else _combine(z, delta, 1.0)

    def decode(self, x: torch.Tensor, z: Latent) -> torch.Tensor:
        return x - self.synthesis(z)

    def undo_decode(self, x: torch.Tensor, z: Latent) -> torch.Tensor:
        return x + self.synthesis(z)

    def undo_encode(self, x: torch.Tensor, z: Latent, masks: list[torch.Tensor] | None = None) -> Latent:
        return _combine(z, _masked(self.analysis(x), masks), -1.0)

    def forward(
        self, x: torch.Tensor, z: Latent | None = None, masks: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, Latent]:
        z = self.encode(x, z, masks)
        return self.decode(x, z), z

    def inverse(
        self, x: torch.Tensor, z: Latent, masks: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, Latent]:
        x = self.undo_decode(x, z)
        return x, self.undo_encode(x, z, masks)


# ---------------------------------------------------------------------- post-filter and split network
class ResidualBlock(nn.Module):
    """conv 3x3, LeakyReLU(0.2), conv 3x3, plus the input."""

    def __init__(self, filters: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(filters, filters, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(filters, filters, 3, padding=1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class QualityEnhancement(nn.Module):
    """ANFIC's QE post-filter ("DeQuantizationModule"): conv 3->F, residual blocks, conv F->F plus the first conv's
    output, conv F->3, plus the input image."""

    def __init__(self, filters: int = 64, blocks: int = 6, channels: int = 3):
        super().__init__()
        self.head = nn.Conv2d(channels, filters, 3, padding=1)
        self.blocks = nn.Sequential(*(ResidualBlock(filters) for _ in range(blocks)))
        self.mid = nn.Conv2d(filters, filters, 3, padding=1)
        self.tail = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        return x + self.tail(self.mid(self.blocks(features)) + features)


class LatentSplit(nn.Module):
    """MS-ANFIC's latent split network and its synthesis twin (layers [inferred], no activations).

    Split: ``v1 = z`` (H/16), ``v_{n+1} = Conv3x3/2(v_n)``. Merge, coarse to fine: ``u_L = v̂_L``,
    ``u_n = Conv(cat(v̂_n, TConv3x3/2(u_{n+1})))`` (``merge_kernel``, 1x1 by default) and ``ẑ = u_1``. The
    upsampled partial merge ``TConv(u_{n+1})`` is also level n's conditioning (type-B hyperprior), so no extra
    upsampler is needed.
    """

    def __init__(self, channels: Sequence[int], kernel: int = 3, merge_kernel: int = 1):
        super().__init__()
        pairs = list(zip(channels[:-1], channels[1:], strict=True))
        self.down = nn.ModuleList(conv(c_fine, c_coarse, kernel, 2) for c_fine, c_coarse in pairs)
        self.up = nn.ModuleList(deconv(c_coarse, c_fine, kernel, 2) for c_fine, c_coarse in pairs)
        self.merge = nn.ModuleList(conv(2 * c_fine, c_fine, merge_kernel, 1) for c_fine, _ in pairs)

    def split(self, z: torch.Tensor) -> list[torch.Tensor]:
        levels = [z]
        for down in self.down:
            levels.append(down(levels[-1]))
        return levels

    def upsampled(self, levels: Sequence[torch.Tensor | None], level: int, arith: MixtureArithmetic = FLOAT
                  ) -> torch.Tensor:
        """The coarser levels (> ``level``, decoded) merged and brought to ``level``'s resolution (in ``arith``)."""
        return arith.apply(self.up[level], self.merged(levels, level + 1, arith))

    def merged(self, levels: Sequence[torch.Tensor | None], level: int = 0, arith: MixtureArithmetic = FLOAT
               ) -> torch.Tensor:
        """``u_level``: levels ``level`` ... L merged (``merged(levels)`` is ẑ), in ``arith``'s representation."""
        u = arith.value(levels[-1])
        for n in reversed(range(level, len(levels) - 1)):
            u = arith.apply(self.merge[n], torch.cat([arith.value(levels[n]), arith.apply(self.up[n], u)], dim=1))
        return u
