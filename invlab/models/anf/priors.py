"""The entropy model of one ANF latent level: hyperprior + Gaussian mixture.

Without conditioning, :class:`LevelPrior` is ANFIC's hyperprior step (hyper-analysis on ``|v|``, factorised
hyper-latent, Gaussian mixture with optional 5x5 autoregressive context); with conditioning it is LSUnit type B
(the conditional hyperprior of M-ANFIC / MS-ANFIC). It codes itself with a
:class:`~invlab.entropy.mixture.MixtureLevelCoder` (likelihood, rANS encoding or rANS decoding).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianMixtureConditional
from compressai.models.utils import conv, deconv
from torch import nn

from invlab.entropy.mixture import FLOAT, MixtureArithmetic, MixtureLevelCoder
from invlab.layers import CausalContextConv2d


class MixtureHead(nn.Module):
    """1x1 convs ``c_in -> width -> width -> 3·K·C`` (LeakyReLU) giving a K-component Gaussian mixture per element.

    Returns ``(scales, means, weights)``, each (B, K·C, H, W) in CompressAI's component-major layout
    (component k is channels ``k·C ... (k+1)·C - 1``); the weights are a softmax over the K components.
    """

    def __init__(self, c_in: int, width: int, channels: int, mixtures: int = 3):
        super().__init__()
        self.channels, self.mixtures = channels, mixtures
        self.net = nn.Sequential(
            nn.Conv2d(c_in, width, 1),
            nn.LeakyReLU(),
            nn.Conv2d(width, width, 1),
            nn.LeakyReLU(),
            nn.Conv2d(width, 3 * mixtures * channels, 1),
        )

    def split(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scales, means, logits of the weights) of the net's output."""
        scales, means, logits = raw.chunk(3, dim=1)
        return scales, means, logits

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, h, w = features.shape
        scales, means, logits = self.split(self.net(features))
        weights = logits.reshape(b, self.mixtures, self.channels, h, w).softmax(dim=1).reshape_as(logits)
        return scales, means, weights


class LevelPrior(nn.Module):
    """Entropy model of one latent level: (conditional) hyperprior + K-Gaussian mixture, optional AR context.

    ANFIC's hyperprior step (as its code implements it): ``h = h_a(|v|)``, ``ĥ`` factorised
    (EntropyBottleneck), ``params = h_s(ĥ)``; the mixture head reads ``params`` (and, with ``context=True``, the
    5x5 causal context of ``v̂``). ``h_a``: Conv3x3/1 then ``downsampling`` x Conv5x5/2; ``h_s``: ``downsampling``
    x TConv5x5/2 (the last to 3/2 of the hyper width), then TConv3x3/1 to 2C.

    With ``cond_channels > 0`` this is M-ANFIC's LSUnit type B: a conditioning tensor (the upsampled coarser level) is
    concatenated to the input of h_a's first and h_s's last layer. ``hyper_filters``: the hidden widths of the
    factorised density of ``ĥ`` (CompressAI's (3, 3, 3, 3); the official ANFIC code's is (3, 3, 3)).
    """

    def __init__(
        self,
        channels: int,
        hyper_channels: int,
        head_width: int,
        *,
        cond_channels: int = 0,
        downsampling: int = 2,
        context: bool = False,
        mixtures: int = 3,
        activation: Callable[[], nn.Module] = nn.ReLU,
        hyper_filters: Sequence[int] = (3, 3, 3, 3),
    ):
        super().__init__()
        self.channels, self.mixtures, self.downsampling = channels, mixtures, downsampling
        self.cond_channels = cond_channels
        nh = hyper_channels
        h_a: list[nn.Module] = [conv(channels + cond_channels, nh, 3, 1)]
        for _ in range(downsampling):
            h_a += [activation(), conv(nh, nh, 5, 2)]
        self.h_a = nn.Sequential(*h_a)
        widths = [nh] * downsampling + [nh * 3 // 2]
        h_s: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            h_s += [deconv(c_in, c_out, 5, 2), activation()]
        self.h_s = nn.Sequential(*h_s)
        self.h_s_last = deconv(widths[-1] + cond_channels, 2 * channels, 3, 1)
        self.entropy_bottleneck = EntropyBottleneck(nh, filters=tuple(hyper_filters))
        self.context = CausalContextConv2d(channels, 2 * channels, kernel_size=5, padding=2) if context else None
        self.head = MixtureHead((4 if context else 2) * channels, head_width, channels, mixtures)
        self.gaussian_mixture = GaussianMixtureConditional(K=mixtures)

    def _with_condition(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if (cond is None) != (self.cond_channels == 0):
            raise ValueError("a conditional level needs its conditioning tensor, a plain one takes none")
        return x if cond is None else torch.cat([x, cond], dim=1)

    def hyper_analysis(self, v: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.h_a(self._with_condition(v.abs(), cond))

    def hyper_synthesis(
        self, h_hat: torch.Tensor, cond: torch.Tensor | None = None, arith: MixtureArithmetic = FLOAT
    ) -> torch.Tensor:
        """The hyper parameters from ĥ (and the conditioning), both in ``arith``'s representation."""
        return arith.apply(self.h_s_last, self._with_condition(arith.apply(self.h_s, h_hat), cond))

    def mixture(self, params: torch.Tensor, context: torch.Tensor | None = None, arith: MixtureArithmetic = FLOAT):
        """(scales, means, weights) from the hyper parameters (and the context features, for the AR variant); in
        fixed point the weights' logits."""
        return arith.mixture(self.head, params if context is None else torch.cat([params, context], dim=1))

    def code(
        self,
        coder: MixtureLevelCoder,
        arith: MixtureArithmetic,
        names: tuple[str, str],
        v: torch.Tensor | None,
        cond: torch.Tensor | None,
        mask: torch.Tensor | None,
        hyper_size: tuple[int, int],
        analysis_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Code this level with ``coder`` (hyper-latent, then latent); returns v̂. ``v`` is None when decoding;
        ``cond`` is in ``arith``'s representation, which computes the parameters; ``analysis_cond`` is the float
        conditioning the encoder's hyper-analysis reads.

        A level whose mask has no position (in the whole batch) codes nothing, not even its hyper-latent: the
        decoder knows it from the depth map, and v̂ is zero there anyway [ours].
        """
        if mask is not None and not bool(mask.any()):
            coder.skip(names)
            return torch.zeros(mask.shape[0], self.channels, *mask.shape[-2:], device=mask.device)
        h = None if v is None else self.hyper_analysis(v, analysis_cond)
        h_hat = coder.hyper(names[1], self.entropy_bottleneck, h, hyper_size)
        params = self.hyper_synthesis(arith.value(h_hat), cond, arith)
        return coder.latent(names[0], self, v, params, mask, arith)
