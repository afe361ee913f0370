"""M-ANFIC and MS-ANFIC: multiscale ANFIC (Windsheimer, Brand, Kaup; arXiv 2305.05451).

Both code the image with ANFIC's additive augmented flow (:mod:`invlab.models.anf.skeleton`) but represent the final
latent on several levels, v1 (H/16), v2 (H/32), ... Every ``granularity`` x ``granularity`` block of the image is
represented on exactly one level (a quadtree depth map, as RDONet): the levels are zero outside their blocks
and only their own positions are coded. Levels are coded coarse to fine, each with a type-B conditional
hyperprior (ANFIC's hyperprior with the upsampled coarser level concatenated at the hyper-analysis input and
the hyper-synthesis output) and a 3-component Gaussian mixture; the coarsest level has a plain hyperprior.

- **M-ANFIC** (:class:`MANFIC`): LSUnit type A inside every ANF step (analysis and synthesis), so each step's
  latent increment is multi-scale and masked.
- **MS-ANFIC** (:class:`MSANFIC`): ANFIC's single-scale steps unchanged; a latent split network turns the last
  latent z2 into the levels, and its synthesis twin merges the decoded levels back into ẑ2.

Masks: random during training (each block on a random level; 10 % of the samples all-finest and 10 %
all-coarsest); at coding time an RD search (:meth:`MaskedMultiScaleCodec.choose_depth_map`) picks, per block, the
level with the lowest estimated ``bits + λ·255²·SSE/3`` among the uniform maps, then keeps the cheapest of the
composed map and the uniform ones (``rdo="greedy"`` skips that check; ``rdo_levels`` limits the candidates).
The depth map is the first stream (ceil(log2 L) bits per block).

No public code exists for either model. Follows the paper (captions, abstract, TL;DR):
- ANF steps as ANFIC's (additive, GDN/IGDN, 5x5 stride-2 convs); one fixed-rate model per λ;
- LSUnit A: two signals entering one convolution = concatenation; latents masked by an external mask;
- LSUnit B: ANFIC's hyperprior with leaky ReLUs and v_{n+1} concatenated at the first hyper-encoder and the
  last hyper-decoder layer; MS-ANFIC: one latent split network on the final latent only.
Inferred (marked [inferred] in the code; after RDONet, where the paper is silent):
- level widths, strides, the layers of LSUnit A (``v_{n+1} = Conv5x5/2(GDN(v_n))``; merge = Conv over
  [v̂_n, TConv5x5/2(u_{n+1})]) and of the split network (Conv3x3/2 down, TConv3x3/2 + 1x1 merges, linear);
- M-ANFIC's conditioning upsampler (TConv5x5/2 of v̂_{n+1}); MS-ANFIC reuses its split twin's upsampled partial
  merge as the conditioning instead;
- hyper-latents at H/64 (one stride-2 stage for levels at H/32 and H/64, so MS-ANFIC pads to 128);
- every level uses the ANFIC-style GMM (K = 3) without spatial context, like the single-scale baseline
  ``anfic-mini-noctx`` it is compared with; QE post-filter and the ‖x2‖² penalty as ANFIC;
- quadtree = one level per block at a fixed granularity (32 px, 2 levels for M-ANFIC; 64 px, 3 levels for
  MS-ANFIC); the mask is sent as a packed bit stream; the RD search above;
- [ours] a level with no blocks codes nothing, not even its hyper-latent (its two streams stay empty).

Sizes: ``manfic-mini`` 4.10 M parameters, ``msanfic-mini`` 3.70 M.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from compressai.models.utils import deconv
from torch import nn

from invlab.entropy.mixture import FLOAT, MixtureArithmetic
from invlab.errors import BitstreamError, ModelMismatchError
from invlab.models.anf import MINI_LAMBDAS
from invlab.models.anf.blocks import (
    AdditiveAutoencodingStep,
    Latent,
    LatentSplit,
    QualityEnhancement,
    analysis_transform,
    multiscale_analysis_transform,
    multiscale_synthesis_transform,
    synthesis_transform,
)
from invlab.models.anf.priors import LevelPrior
from invlab.models.anf.quadtree import (
    block_sums,
    level_masks,
    pack_depth_map,
    random_depth_map,
    uniform_depth_map,
    unpack_depth_map,
)
from invlab.models.anf.skeleton import DEFAULT_LAMBDA, AugmentedFlowCodec

RDO_MODES = {
    "full": "per-block choice among uniform maps, then the cheapest of that and the uniform maps",
    "greedy": "per-block choice among uniform maps (one estimation pass per candidate level)",
    "fine": "no search: every block on the finest level",
    "coarse": "no search: every block on the coarsest level",
}
#: resolution of every hyper-latent [inferred]: H/64 (or one stride-2 stage below a coarser level)
HYPER_STRIDE = 64


def _hyper_downsampling(stride: int) -> int:
    """Stride-2 stages of a level's hyper-analysis: down to H/64, at least one [inferred]."""
    return max(1, int(math.log2(HYPER_STRIDE / stride)))


@dataclass
class MaskView:
    """Masks and estimated bits per level for one image (batch 1), for the workbench's mask figure."""

    names: list[str]  # latent levels fine to coarse: v1, v2, ...
    depth_map: np.ndarray  # (Hb, Wb) level of each block, 0 = v1
    granularity: int  # block size in pixels
    masks: list[np.ndarray]  # per level (h_n, w_n) bool: where the level is coded
    bit_maps: list[np.ndarray]  # per level (h_n, w_n) estimated latent bits per position (channels summed)
    hyper_bits: list[float]  # per level, estimated bits of its hyper-latent
    num_pixels: int
    forced: np.ndarray | None = None  # (Hb, Wb) the user's level per block, -1 where the search chose

    @property
    def bits(self) -> dict[str, float]:
        """Estimated bits per level, latent plus hyper-latent."""
        return {n: float(m.sum()) + h for n, m, h in zip(self.names, self.bit_maps, self.hyper_bits, strict=True)}

    @property
    def bpp(self) -> float:
        return sum(self.bits.values()) / self.num_pixels

    @property
    def block_shares(self) -> dict[str, float]:
        """Fraction of the blocks represented on each level."""
        return {n: float((self.depth_map == i).mean()) for i, n in enumerate(self.names)}


class MaskedMultiScaleCodec(AugmentedFlowCodec):
    """Quadtree-masked multi-scale latents on the ANF skeleton: depth maps (random when training, RD-searched
    when coding), the mask stream and the per-level views. Depth-map values: 0 = finest level (v1)."""

    def __init__(
        self, *args: Any, granularity: int, rdo: str = "full", rdo_levels: Sequence[int] | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        if self.pad_multiple % granularity:
            raise ValueError(f"block size {granularity} must divide the padding multiple {self.pad_multiple}")
        if rdo not in RDO_MODES:
            raise ValueError(f"rdo must be one of {sorted(RDO_MODES)}, got {rdo!r}")
        self.granularity = int(granularity)
        self.rdo = rdo
        self.rdo_levels = tuple(range(self.num_levels)) if rdo_levels is None else tuple(int(n) for n in rdo_levels)
        if not self.rdo_levels or not all(0 <= n < self.num_levels for n in self.rdo_levels):
            raise ValueError(f"rdo_levels must name levels in [0, {self.num_levels - 1}], got {rdo_levels}")

    @property
    def num_levels(self) -> int:
        return len(self.priors)

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Blocks per column and row of a (padded) image."""
        return height // self.granularity, width // self.granularity

    def _masks(self, depth_map: torch.Tensor | None) -> list[torch.Tensor] | None:
        if depth_map is None:
            return None
        device = next(self.parameters()).device
        return level_masks(depth_map.to(device), self.level_strides, self.granularity)

    def _check_depth_map(self, depth_map: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        depth_map = torch.as_tensor(depth_map, dtype=torch.long)
        expected = (x.shape[0], *self.grid(*x.shape[-2:]))
        if tuple(depth_map.shape) != expected:
            raise ValueError(f"depth map must have shape {expected} (batch, blocks), got {tuple(depth_map.shape)}")
        if depth_map.min() < 0 or depth_map.max() >= self.num_levels:
            raise ValueError(f"depth-map values must be levels in [0, {self.num_levels - 1}]")
        return depth_map

    def _estimate(self, x: torch.Tensor, depth_map: torch.Tensor | None) -> dict[str, Any]:
        return super()._estimate(x, self.choose_depth_map(x) if depth_map is None else depth_map)

    # ------------------------------------------------------------------ training / estimation
    def forward(
        self, x: torch.Tensor, rate: torch.Tensor | None = None, depth_map: torch.Tensor | None = None
    ) -> dict[str, Any]:
        """Training: random quadtree masks unless ``depth_map`` (B, Hb, Wb) is given; eval: the RD-searched map,
        as :meth:`compress` chooses it (then ``x_hat`` is what :meth:`decompress` returns, before clamping)."""
        if depth_map is None:
            if self.training:
                depth_map = random_depth_map(x.shape[0], self.grid(*x.shape[-2:]), self.num_levels, device=x.device)
            else:
                depth_map = self.choose_depth_map(x)
        depth_map = self._check_depth_map(depth_map, x)
        return {**self._forward(x, self._masks(depth_map)), "depth_map": depth_map}

    def _block_costs(self, x: torch.Tensor, depth_map: torch.Tensor) -> torch.Tensor:
        """Estimated ``bits + λ·255²·SSE/3`` per block (B, Hb, Wb), for the decoder's (clamped) output."""
        out = self._estimate(x, depth_map)
        g = self.granularity
        cost = block_sums((out["x_hat"].clamp(0, 1) - x).pow(2).sum(1), 1, g) * (self.lambdas[0] * 255.0**2 / 3)
        for n, (latent, hyper) in enumerate(self.level_names):
            stride = self.level_strides[n]
            if latent not in out["likelihoods"]:
                continue  # a level without blocks codes nothing
            cost = cost + block_sums(-torch.log2(out["likelihoods"][latent]).sum(1), stride, g)
            hyper_stride = stride * 2 ** self.priors[n].downsampling
            cost = cost + block_sums(-torch.log2(out["likelihoods"][hyper]).sum(1), hyper_stride, g)
        return cost

    @torch.no_grad()
    def rd_cost(self, x: torch.Tensor, depth_map: torch.Tensor) -> torch.Tensor:
        """Estimated RD cost per image (B,): bits + λ·255²·SSE/3, i.e. pixels x the training loss (eval mode)."""
        return self._block_costs(x, self._check_depth_map(depth_map, x)).sum(dim=(1, 2))

    #: ``compress(..., forced=F)``: a user's levels for chosen blocks (F: (1, Hb, Wb), -1 where the search chooses)
    forced_levels = True

    @torch.no_grad()
    def choose_depth_map(self, x: torch.Tensor, search: str | None = None,
                         forced: torch.Tensor | None = None) -> torch.Tensor:
        """The depth map (B, Hb, Wb) to code ``x`` with; ``search`` defaults to the model's ``rdo`` mode.

        Greedy quadtree RD search [inferred from RDONet]: estimate the per-block cost with every block on each
        candidate level, take the cheapest level per block, and (``"full"``) keep that composed map only if its
        own estimated cost beats every uniform candidate, so the result never costs more than those.
        ``forced`` (B, Hb, Wb): a level for chosen blocks (-1 elsewhere), kept in every candidate; the search
        chooses the rest.
        """
        search = self.rdo if search is None else search
        grid = self.grid(*x.shape[-2:])

        def keep(depth: torch.Tensor) -> torch.Tensor:
            if forced is None:
                return depth
            chosen = forced.to(depth.device, torch.long)
            return torch.where(chosen >= 0, chosen, depth)

        if search in ("fine", "coarse"):
            return keep(uniform_depth_map(x.shape[0], grid, 0 if search == "fine" else self.num_levels - 1))
        if search not in RDO_MODES:
            raise ValueError(f"search must be one of {sorted(RDO_MODES)}, got {search!r}")
        candidates = [keep(uniform_depth_map(x.shape[0], grid, n)) for n in self.rdo_levels]
        costs = torch.stack([self._block_costs(x, c).cpu() for c in candidates])  # (N, B, Hb, Wb)
        composed = keep(torch.tensor(self.rdo_levels)[costs.argmin(dim=0)])
        if search == "greedy":
            return composed
        maps = [*candidates, composed]
        totals = torch.stack([*costs.sum(dim=(2, 3)), self.rd_cost(x, composed).cpu()])  # (N + 1, B)
        return torch.stack([maps[c][b] for b, c in enumerate(totals.argmin(dim=0).tolist())])

    # ------------------------------------------------------------------ coding
    @torch.no_grad()
    def compress(
        self, x: torch.Tensor, rate: float | None = None, depth_map: torch.Tensor | None = None,
        forced: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """Batch 1. Strings: [depth map, then per level coarse to fine: hyper-latent, latent]. Also returns
        ``y_hat`` (decoded levels) and ``depth_map`` (given, or RD-searched around the ``forced`` blocks);
        ``g_s(y_hat, depth_map)`` is the decoder's output."""
        if forced is not None:
            self._check_depth_map(forced.clamp_min(0), x)
        chosen = self.choose_depth_map(x, forced=forced) if depth_map is None else depth_map
        depth_map = self._check_depth_map(chosen, x)
        strings, header, decoded = self._encode(x, self._masks(depth_map))
        shape = {"levels": self.num_levels, "granularity": self.granularity, **header}
        return {
            "strings": [pack_depth_map(depth_map[0], self.num_levels), *strings],
            "shape": shape,
            "y_hat": decoded,
            "depth_map": depth_map,
        }

    def stream_depth_map(self, strings: Sequence[bytes], shape: dict) -> torch.Tensor:
        """The depth map (1, Hb, Wb) recorded in a stream."""
        if shape.get("levels") != self.num_levels or shape.get("granularity") != self.granularity:
            raise ModelMismatchError(
                f"stream has {shape.get('levels')} levels in {shape.get('granularity')} px blocks; this model codes "
                f"{self.num_levels} levels in {self.granularity} px blocks"
            )
        if not strings:
            raise BitstreamError("stream has no mask")
        return unpack_depth_map(strings[0], self.grid(*self._read_size(shape)), self.num_levels)

    @torch.no_grad()
    def stream_geometry(self, height: int, width: int) -> dict:
        return {"levels": self.num_levels, "granularity": self.granularity, "size": [height, width]}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict[str, torch.Tensor]:
        depth_map = self.stream_depth_map(strings, shape)
        return {"x_hat": self._decode(strings[1:], shape, self._masks(depth_map))}

    # ------------------------------------------------------------------ analysis helpers
    @torch.no_grad()
    def mask_view(self, x: torch.Tensor, rate: float | None = None, depth_map: torch.Tensor | None = None,
                  forced: torch.Tensor | None = None) -> MaskView:
        """Depth map, per-level masks and estimated bits (batch 1; the RD-searched map unless one is given; with
        ``forced``, searched around the user's blocks, as :meth:`compress` does)."""
        if x.shape[0] != 1:
            raise ValueError("mask_view takes one image (batch 1)")
        chosen = self.choose_depth_map(x, forced=forced) if depth_map is None else depth_map
        depth_map = self._check_depth_map(chosen, x)
        out = self._estimate(x, depth_map)
        names = [latent for latent, _ in self.level_names]
        bits = {k: (-torch.log2(lk[0])).sum(0) for k, lk in out["likelihoods"].items()}
        masks = [m[0, 0].cpu().numpy() for m in self._masks(depth_map)]
        return MaskView(
            names=names,
            depth_map=depth_map[0].cpu().numpy(),
            granularity=self.granularity,
            masks=masks,
            bit_maps=[
                bits[n].cpu().numpy() if n in bits else np.zeros(m.shape) for n, m in zip(names, masks, strict=True)
            ],
            hyper_bits=[float(bits[h].sum()) if h in bits else 0.0 for _, h in self.level_names],
            num_pixels=x.shape[-2] * x.shape[-1],
            forced=None if forced is None else forced[0].cpu().numpy(),
        )


def _conditional_priors(
    channels: Sequence[int],
    hyper_channels: Sequence[int],
    head_widths: Sequence[int],
    cond: Sequence[int],
    strides: Sequence[int],
    mixtures: int,
) -> list[LevelPrior]:
    """One type-B conditional hyperprior per level (LeakyReLU), fine to coarse."""
    return [
        LevelPrior(
            c,
            nh,
            w,
            cond_channels=cc,
            downsampling=_hyper_downsampling(s),
            mixtures=mixtures,
            activation=nn.LeakyReLU,
        )
        for c, nh, w, cc, s in zip(channels, hyper_channels, head_widths, cond, strides, strict=True)
    ]


class MANFIC(MaskedMultiScaleCodec):
    """M-ANFIC: LSUnit type A in every ANF step, type-B conditional hyperpriors (defaults: M-ANFIC-mini)."""

    decode_bytes_per_pixel = 1650.0  # 1.5x benchmarks/decode_memory.py's largest figure (exact entropy): 1081

    def __init__(
        self,
        filters: int = 48,
        level_channels: Sequence[int] = (96, 64),
        hyper_channels: Sequence[int] = (64, 48),
        head_widths: Sequence[int] = (192, 96),
        merge_kernel: int = 5,
        mixtures: int = 3,
        steps: int = 2,
        granularity: int = 32,
        qe_filters: int = 32,
        qe_blocks: int = 3,
        x2_weight: float = 1.0,
        rdo: str = "full",
        rdo_levels: Sequence[int] | None = None,
        lambdas: Sequence[float] = (DEFAULT_LAMBDA,),
        family_lambdas: Sequence[float] = MINI_LAMBDAS,
        stable: bool = False,
        entropy: str = "exact",
    ):
        channels = [int(c) for c in level_channels]
        strides = [16 * 2**n for n in range(len(channels))]
        flow = [
            AdditiveAutoencodingStep(
                multiscale_analysis_transform(filters, channels),
                multiscale_synthesis_transform(filters, channels, merge_kernel=merge_kernel),
            )
            for _ in range(steps)
        ]
        # level n is conditioned on the upsampled v̂_{n+1} (its width kept) [inferred]
        cond = [*channels[1:], 0]
        priors = _conditional_priors(channels, hyper_channels, head_widths, cond, strides, mixtures)
        super().__init__(
            flow,
            priors,
            QualityEnhancement(qe_filters, qe_blocks),
            level_strides=strides,
            x2_weight=x2_weight,
            lambdas=lambdas,
            family_lambdas=family_lambdas,
            stable=stable,
            entropy=entropy,
            granularity=granularity,
            rdo=rdo,
            rdo_levels=rdo_levels,
        )
        self.cond_up = nn.ModuleList(deconv(c, c, 5, 2) for c in channels[1:])  # [inferred]

    def _step_masks(self, masks: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        return masks

    def _levels(self, z: Latent, masks: list[torch.Tensor] | None) -> list[torch.Tensor]:
        return list(z)  # the steps already masked every increment

    def _merge(self, levels: list[torch.Tensor]) -> Latent:
        return list(levels)

    def _condition(
        self, level: int, levels: list[torch.Tensor | None], arith: MixtureArithmetic = FLOAT
    ) -> torch.Tensor | None:
        if level == self.num_levels - 1:
            return None
        return arith.apply(self.cond_up[level], arith.value(levels[level + 1]))


class MSANFIC(MaskedMultiScaleCodec):
    """MS-ANFIC: ANFIC's steps, a latent split network on z2, type-B conditional hyperpriors (defaults: the mini)."""

    decode_bytes_per_pixel = 1750.0  # >= 1.5x benchmarks/decode_memory.py's largest figure (exact entropy): 1166

    def __init__(
        self,
        filters: int = 64,
        level_channels: Sequence[int] = (96, 64, 64),
        hyper_channels: Sequence[int] = (64, 48, 48),
        head_widths: Sequence[int] = (192, 96, 96),
        split_kernel: int = 3,
        split_merge_kernel: int = 1,
        mixtures: int = 3,
        steps: int = 2,
        granularity: int = 64,
        qe_filters: int = 32,
        qe_blocks: int = 3,
        x2_weight: float = 1.0,
        rdo: str = "full",
        rdo_levels: Sequence[int] | None = None,
        lambdas: Sequence[float] = (DEFAULT_LAMBDA,),
        family_lambdas: Sequence[float] = MINI_LAMBDAS,
        stable: bool = False,
        entropy: str = "exact",
    ):
        channels = [int(c) for c in level_channels]
        strides = [16 * 2**n for n in range(len(channels))]
        flow = [
            AdditiveAutoencodingStep(
                analysis_transform(filters, channels[0]), synthesis_transform(filters, channels[0])
            )
            for _ in range(steps)
        ]
        # level n is conditioned on the split twin's upsampled merge of the coarser levels (C_n wide) [inferred]
        cond = [*channels[:-1], 0]
        priors = _conditional_priors(channels, hyper_channels, head_widths, cond, strides, mixtures)
        super().__init__(
            flow,
            priors,
            QualityEnhancement(qe_filters, qe_blocks),
            level_strides=strides,
            x2_weight=x2_weight,
            lambdas=lambdas,
            family_lambdas=family_lambdas,
            stable=stable,
            entropy=entropy,
            granularity=granularity,
            rdo=rdo,
            rdo_levels=rdo_levels,
        )
        self.split = LatentSplit(channels, split_kernel, split_merge_kernel)

    def _levels(self, z: Latent, masks: list[torch.Tensor] | None) -> list[torch.Tensor]:
        levels = self.split.split(z)
        return levels if masks is None else [v * m for v, m in zip(levels, masks, strict=True)]

    def _merge(self, levels: list[torch.Tensor]) -> Latent:
        return self.split.merged(levels)

    def _condition(
        self, level: int, levels: list[torch.Tensor | None], arith: MixtureArithmetic = FLOAT
    ) -> torch.Tensor | None:
        return None if level == self.num_levels - 1 else self.split.upsampled(levels, level, arith)


def manfic_mini(**overrides) -> MANFIC:
    return MANFIC(**overrides)


def msanfic_mini(**overrides) -> MSANFIC:
    return MSANFIC(**overrides)
