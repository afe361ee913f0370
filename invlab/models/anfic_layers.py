"""Building blocks of the ANFIC family: ANFIC, M-ANFIC and MS-ANFIC (architectures.md §4-§6).

- Conv stacks: :func:`analysis_transform` / :func:`synthesis_transform` (Conv/TConv 5x5 stride 2 with GDN/IGDN,
  ANFIC's m_i and μ_i) and their multi-scale versions built on LSUnit type A (:class:`LSUnitAnalysis`,
  :class:`LSUnitSynthesis`).
- :class:`AdditiveAutoencodingStep`: one additive augmented-flow step, ``z <- z + m(x)`` then ``x <- x - μ(z)``,
  with the conv stacks injected.
- :class:`LevelPrior`: the entropy model of one latent level. Without conditioning it is ANFIC's hyperprior step
  (hyper-analysis on ``|v|``, factorised hyper-latent, Gaussian mixture with optional 5x5 autoregressive
  context); with conditioning it is LSUnit type B (the conditional hyperprior of M-ANFIC / MS-ANFIC).
- Coders that a model's one coarse-to-fine walk plugs in: :class:`LikelihoodCoder` (training noise / rounding,
  likelihoods), :class:`EncodingCoder` and :class:`DecodingCoder` (rANS, bit-exact; mixture CDFs built per
  element by CompressAI's ``GaussianMixtureConditional``).
- :class:`QualityEnhancement` (ANFIC's post-filter), :class:`LatentSplit` (MS-ANFIC's latent split network) and
  the quadtree depth maps that say which latent level represents each block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianMixtureConditional
from compressai.layers import GDN, MaskedConv2d
from compressai.models.utils import conv, deconv
from torch import nn

from invlab.entropy.rans import TableDecoder, TableEncoder
from invlab.errors import BitstreamError

#: an ANF latent: one tensor (single-scale) or one tensor per level, fine to coarse (multi-scale)
Latent = torch.Tensor | list[torch.Tensor]
#: largest |symbol| the mixture coder takes (its CDFs span [-A, A] with at least 1/2^16 per value)
MAX_ABS_SYMBOL = 4096
#: CDF entries built per chunk when a whole latent level is coded in parallel (bounds memory)
CDF_CHUNK_ENTRIES = 1 << 21


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
    """MS-ANFIC's latent split network and its synthesis twin (§6; layers [inferred], no activations).

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

    def upsampled(self, levels: Sequence[torch.Tensor | None], level: int) -> torch.Tensor:
        """The coarser levels (> ``level``, decoded) merged and brought to ``level``'s resolution."""
        return self.up[level](self.merged(levels, level + 1))

    def merged(self, levels: Sequence[torch.Tensor | None], level: int = 0) -> torch.Tensor:
        """``u_level``: levels ``level`` ... L merged (``merged(levels)`` is ẑ)."""
        u = levels[-1]
        for n in reversed(range(level, len(levels) - 1)):
            u = self.merge[n](torch.cat([levels[n], self.up[n](u)], dim=1))
        return u


# ---------------------------------------------------------------------- entropy model of one level
class CausalContextConv2d(MaskedConv2d):
    """CompressAI's type-A masked conv (5x5 raster-causal), with the mask applied on the fly.

    CompressAI's own forward writes the mask into ``weight.data`` on every call; this one leaves the weights alone.
    """

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.masked_weight(), self.bias)


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

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, _, h, w = features.shape
        scales, means, logits = self.net(features).chunk(3, dim=1)
        weights = logits.reshape(b, self.mixtures, self.channels, h, w).softmax(dim=1).reshape_as(logits)
        return scales, means, weights


class LevelPrior(nn.Module):
    """Entropy model of one latent level: (conditional) hyperprior + K-Gaussian mixture, optional AR context.

    ANFIC's hyperprior step (§4.2, as its code implements it): ``h = h_a(|v|)``, ``ĥ`` factorised
    (EntropyBottleneck), ``params = h_s(ĥ)``; the mixture head reads ``params`` (and, with ``context=True``, the
    5x5 causal context of ``v̂``). ``h_a``: Conv3x3/1 then ``downsampling`` x Conv5x5/2; ``h_s``: ``downsampling``
    x TConv5x5/2 (the last to 3/2 of the hyper width), then TConv3x3/1 to 2C.

    With ``cond_channels > 0`` this is LSUnit type B (§5): a conditioning tensor (the upsampled coarser level) is
    concatenated to the input of h_a's first and h_s's last layer.
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
        self.entropy_bottleneck = EntropyBottleneck(nh)
        self.context = CausalContextConv2d(channels, 2 * channels, kernel_size=5, padding=2) if context else None
        self.head = MixtureHead((4 if context else 2) * channels, head_width, channels, mixtures)
        self.gaussian_mixture = GaussianMixtureConditional(K=mixtures)

    def _with_condition(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if (cond is None) != (self.cond_channels == 0):
            raise ValueError("a conditional level needs its conditioning tensor, a plain one takes none")
        return x if cond is None else torch.cat([x, cond], dim=1)

    def hyper_analysis(self, v: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.h_a(self._with_condition(v.abs(), cond))

    def hyper_synthesis(self, h_hat: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.h_s_last(self._with_condition(self.h_s(h_hat), cond))

    def mixture(self, params: torch.Tensor, context: torch.Tensor | None = None):
        """(scales, means, weights) from the hyper parameters (and the context features, for the AR variant)."""
        return self.head(params if context is None else torch.cat([params, context], dim=1))

    def code(
        self,
        coder: LevelCoder,
        names: tuple[str, str],
        v: torch.Tensor | None,
        cond: torch.Tensor | None,
        mask: torch.Tensor | None,
        hyper_size: tuple[int, int],
    ) -> torch.Tensor:
        """Code this level with ``coder`` (hyper-latent, then latent); returns v̂. ``v`` is None when decoding.

        A level whose mask has no position (in the whole batch) codes nothing, not even its hyper-latent: the
        decoder knows it from the depth map, and v̂ is zero there anyway [ours].
        """
        if mask is not None and not bool(mask.any()):
            coder.skip(names)
            return torch.zeros(mask.shape[0], self.channels, *mask.shape[-2:], device=mask.device)
        h = None if v is None else self.hyper_analysis(v, cond)
        h_hat = coder.hyper(names[1], self.entropy_bottleneck, h, hyper_size)
        return coder.latent(names[0], self, v, self.hyper_synthesis(h_hat, cond), mask)


# ---------------------------------------------------------------------- coders
class LevelCoder(Protocol):
    """What a level's walk plugs in: training/estimation, encoding or decoding (``h``/``v`` None when decoding)."""

    def hyper(self, name: str, eb: EntropyBottleneck, h: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        """Code a hyper-latent; returns ĥ."""

    def latent(
        self, name: str, prior: LevelPrior, v: torch.Tensor | None, params: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Code a latent level at the positions of ``mask`` (all when None); returns v̂ (zero elsewhere)."""

    def skip(self, names: tuple[str, str]) -> None:
        """A level with no positions: nothing is coded (the stream keeps its place, empty)."""


class LikelihoodCoder:
    """Training (additive uniform noise) or estimation (rounding): records likelihoods by name, returns v̂."""

    def __init__(self):
        self.likelihoods: dict[str, torch.Tensor] = {}

    def skip(self, names: tuple[str, str]) -> None:
        pass  # no bits: no likelihoods

    def hyper(self, name: str, eb: EntropyBottleneck, h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h_hat, likelihoods = eb(h)
        self.likelihoods[name] = likelihoods
        return h_hat

    def latent(
        self, name: str, prior: LevelPrior, v: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        gmm = prior.gaussian_mixture
        v_hat = gmm.quantize(v, "noise" if gmm.training else "dequantize")  # round(v), no mean subtracted [inferred]
        if mask is not None:
            v_hat = torch.where(mask, v_hat, torch.zeros_like(v_hat))
        context = None if prior.context is None else prior.context(v_hat)
        likelihoods = gmm._likelihood(v_hat, *prior.mixture(params, context))
        if gmm.use_likelihood_bound:
            likelihoods = gmm.likelihood_lower_bound(likelihoods)
        if mask is not None:
            likelihoods = torch.where(mask, likelihoods, torch.ones_like(likelihoods))  # unused: 0 bits
        self.likelihoods[name] = likelihoods
        return v_hat


def mixture_cdfs(
    gmm: GaussianMixtureConditional, scales: torch.Tensor, means: torch.Tensor, weights: torch.Tensor, abs_max: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rANS tables for N elements over the values [-A, A]: (cdfs, lengths, offsets); inputs are (K, N).

    The CDFs come from CompressAI's ``GaussianMixtureConditional._build_cdf`` (which edits its inputs in place,
    hence the copies); encoder and decoder call this with identical tensors, so the tables agree bit for bit.
    """
    cdf = gmm._build_cdf(scales.clone(), means.clone(), weights.clone(), abs_max)
    n = cdf.shape[0]
    return cdf, torch.full((n,), cdf.shape[1], dtype=torch.int32), torch.full((n,), -abs_max, dtype=torch.int32)


def _mixture_chunks(
    prior: LevelPrior, params: torch.Tensor, positions: torch.Tensor, abs_max: int
) -> Iterator[tuple[int, int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """(start, end, tables) over the coded elements (channel-major, then the selected positions in raster order)."""
    k, c = prior.mixtures, prior.channels
    flat = [t.reshape(k, c, *t.shape[-2:])[:, :, positions].reshape(k, -1) for t in prior.mixture(params)]
    total = flat[0].shape[1]
    step = max(1, CDF_CHUNK_ENTRIES // (2 * abs_max + 3))
    for start in range(0, total, step):
        end = min(total, start + step)
        yield start, end, mixture_cdfs(prior.gaussian_mixture, *(t[:, start:end] for t in flat), abs_max)


def raster_scan(
    prior: LevelPrior, params: torch.Tensor, abs_max: int, code_position: Callable[[int, int, tuple], torch.Tensor]
) -> torch.Tensor:
    """The serial 5x5-context walk (raster order), shared by encoder and decoder; returns v̂ (1, C, H, W).

    At each position the causal context is computed on the decoded 5x5 crop (the same crop and float ops on
    both sides), the mixture's CDFs are built and ``code_position(i, j, tables)`` codes the C values there.
    """
    ctx = prior.context
    kernel = ctx.kernel_size[0]
    pad = kernel // 2
    weight = ctx.masked_weight()
    k, c = prior.mixtures, prior.channels
    _, _, height, width = params.shape
    v_hat = params.new_zeros(1, c, height + 2 * pad, width + 2 * pad)
    for i in range(height):
        for j in range(width):
            features = F.conv2d(v_hat[:, :, i : i + kernel, j : j + kernel], weight, ctx.bias)
            scales, means, weights = prior.mixture(params[:, :, i : i + 1, j : j + 1], features)
            tables = mixture_cdfs(
                prior.gaussian_mixture, scales.reshape(k, c), means.reshape(k, c), weights.reshape(k, c), abs_max
            )
            v_hat[0, :, i + pad, j + pad] = code_position(i, j, tables)
    return v_hat[:, :, pad : pad + height, pad : pad + width]


def _positions(mask: torch.Tensor | None, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Bool (H, W): where the level is coded (batch 1)."""
    if mask is None:
        return torch.ones(height, width, dtype=torch.bool, device=device)
    return mask[0, 0]


class EncodingCoder:
    """rANS encoding: one string per hyper-latent (EntropyBottleneck) and per latent level (mixture CDFs).

    A level's values are ``round(v)`` at its used positions; ``abs_max`` (max |value|, the CDFs' range) is
    recorded per level for the stream header.
    """

    def __init__(self):
        self.strings: list[bytes] = []
        self.abs_max: list[int] = []

    def skip(self, names: tuple[str, str]) -> None:
        self.strings += [b"", b""]
        self.abs_max.append(0)

    def hyper(self, name: str, eb: EntropyBottleneck, h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        strings = eb.compress(h)
        self.strings.append(strings[0])
        return eb.decompress(strings, size)

    def latent(
        self, name: str, prior: LevelPrior, v: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        v_hat = torch.round(v)
        if mask is not None:
            v_hat = torch.where(mask, v_hat, torch.zeros_like(v_hat))
        abs_max = int(v_hat.abs().max().item()) if v_hat.numel() else 0
        if abs_max > MAX_ABS_SYMBOL:
            raise ValueError(f"latent {name} reaches |{abs_max}|, above the mixture coder's range {MAX_ABS_SYMBOL}")
        self.abs_max.append(abs_max)
        positions = _positions(mask, *v.shape[-2:], v.device)
        if not positions.any():  # nothing to code (CompressAI's flush crashes on an empty buffer)
            self.strings.append(b"")
            return v_hat
        encoder = TableEncoder()
        if prior.context is None:
            symbols = v_hat[0][:, positions].reshape(-1).int()
            for start, end, tables in _mixture_chunks(prior, params, positions, abs_max):
                encoder.encode_with_indexes(symbols[start:end].tolist(), list(range(end - start)), *tables)
        else:
            if mask is not None:
                raise ValueError("the autoregressive context codes whole levels only (no masks)")

            def code_position(i: int, j: int, tables: tuple) -> torch.Tensor:
                values = v_hat[0, :, i, j]
                encoder.encode_with_indexes(values.int().tolist(), list(range(prior.channels)), *tables)
                return values

            raster_scan(prior, params, abs_max, code_position)
        self.strings.append(encoder.flush())
        return v_hat


class DecodingCoder:
    """Reads :class:`EncodingCoder`'s strings back in the same order (``abs_max`` from the stream header)."""

    def __init__(self, strings: Sequence[bytes], abs_max: Sequence[int]):
        self.strings = iter(strings)
        self.abs_max = iter(abs_max)

    def skip(self, names: tuple[str, str]) -> None:
        if next(self.strings) or next(self.strings) or next(self.abs_max):
            raise BitstreamError(f"level {names[0]} has no blocks in the mask but its streams are not empty")

    def hyper(self, name: str, eb: EntropyBottleneck, h: None, size: tuple[int, int]) -> torch.Tensor:
        return eb.decompress([next(self.strings)], size)

    def latent(
        self, name: str, prior: LevelPrior, v: None, params: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        abs_max, stream = next(self.abs_max), next(self.strings)
        c, (height, width) = prior.channels, params.shape[-2:]
        positions = _positions(mask, height, width, params.device)
        if not positions.any():
            return params.new_zeros(1, c, height, width)
        decoder = TableDecoder()
        decoder.set_stream(stream)
        if prior.context is not None:
            if mask is not None:
                raise ValueError("the autoregressive context codes whole levels only (no masks)")
            indexes = list(range(c))

            def code_position(i: int, j: int, tables: tuple) -> torch.Tensor:
                return torch.tensor(decoder.decode_stream(indexes, *tables), dtype=params.dtype, device=params.device)

            v_hat = raster_scan(prior, params, abs_max, code_position)
            decoder.finish()
            return v_hat
        values: list[int] = []
        for start, end, tables in _mixture_chunks(prior, params, positions, abs_max):
            values += decoder.decode_stream(list(range(end - start)), *tables)
        decoder.finish()
        v_hat = params.new_zeros(1, c, height, width)
        v_hat[0][:, positions] = torch.tensor(values, dtype=params.dtype, device=params.device).reshape(c, -1)
        return v_hat


# ---------------------------------------------------------------------- quadtree depth maps
def uniform_depth_map(
    batch: int, grid: tuple[int, int], level: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Every block at ``level`` (0 = the finest latent v1): (B, Hb, Wb) long."""
    return torch.full((batch, *grid), level, dtype=torch.long, device=device)


def random_depth_map(
    batch: int, grid: tuple[int, int], levels: int, uniform_prob: float = 0.1, device: torch.device | str | None = None
) -> torch.Tensor:
    """Training masks (RDONet): each block at a uniformly random level; with probability ``uniform_prob`` each,
    a sample is all-finest or all-coarsest instead (design §8.5)."""
    depth = torch.randint(0, levels, (batch, *grid), device=device)
    draw = torch.rand(batch, device=device)
    depth[draw < uniform_prob] = 0
    depth[(draw >= uniform_prob) & (draw < 2 * uniform_prob)] = levels - 1
    return depth


def level_masks(depth_map: torch.Tensor, strides: Sequence[int], granularity: int) -> list[torch.Tensor]:
    """Bool masks (B, 1, h_n, w_n), one per level: True where the block's level is n.

    ``strides[n]`` is level n's pixels per latent position; a block (``granularity`` pixels) covers
    (granularity / stride)² positions of a level. The masks are complementary: each block is on one level.
    """
    masks = []
    for n, stride in enumerate(strides):
        if granularity % stride:
            raise ValueError(f"block size {granularity} must be a multiple of level {n + 1}'s stride {stride}")
        factor = granularity // stride
        mask = (depth_map == n)[:, None]
        masks.append(mask.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3))
    return masks


def block_sums(values: torch.Tensor, stride: int, granularity: int) -> torch.Tensor:
    """(B, h, w) per-position values (``stride`` pixels per position) -> (B, Hb, Wb) totals per block.

    Positions coarser than a block spread their value evenly over the blocks they cover.
    """
    if stride <= granularity:
        factor = granularity // stride
        b, h, w = values.shape
        return values.reshape(b, h // factor, factor, w // factor, factor).sum(dim=(2, 4))
    factor = stride // granularity
    return values.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2) / factor**2


def _bits_per_block(levels: int) -> int:
    return max(1, math.ceil(math.log2(levels)))


def pack_depth_map(depth_map: torch.Tensor, levels: int) -> bytes:
    """A (Hb, Wb) depth map as a compact stream: ceil(log2(levels)) bits per block, raster order."""
    bits = _bits_per_block(levels)
    values = depth_map.reshape(-1).cpu().numpy().astype(np.uint8)
    planes = (values[:, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1
    return np.packbits(planes.reshape(-1)).tobytes()


def unpack_depth_map(data: bytes, grid: tuple[int, int], levels: int) -> torch.Tensor:
    """Inverse of :func:`pack_depth_map`: (1, Hb, Wb) long; a stream of the wrong size or with a level out of
    range raises :class:`BitstreamError`."""
    bits = _bits_per_block(levels)
    count = grid[0] * grid[1]
    if len(data) != math.ceil(count * bits / 8):
        raise BitstreamError(
            f"mask stream has {len(data)} bytes, expected {math.ceil(count * bits / 8)} for {grid[0]}x{grid[1]} blocks"
        )
    planes = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    values = (planes.astype(np.int64) << np.arange(bits - 1, -1, -1)).sum(axis=1)
    if values.max(initial=0) >= levels:
        raise BitstreamError(f"mask stream names level {values.max() + 1}; this model has {levels}")
    return torch.from_numpy(values).reshape(1, *grid)
