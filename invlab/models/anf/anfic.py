"""ANFIC: "Image Compression Using Augmented Normalizing Flows" (Ho, Chan, Peng, Hang, Domański; IEEE OJCAS 2021).

Transform: two additive augmented-flow steps on the pair (x, z), z starting at 0.
Encoding runs ``z1 = m1(x)``, ``x1 = x - μ1(z1)``, ``z2 = z1 + m2(x1)``; ``ẑ2 = Q(z2)`` is entropy coded and the
image residual ``x2 = x1 - μ2(ẑ2)`` is dropped. The decoder assumes ``x2 = 0``: ``x̂1 = μ2(ẑ2)``,
``ẑ1 = ẑ2 - m2(x̂1)``, ``x̂ = QE(x̂1 + μ1(ẑ1))``. Training adds ``λ2·mean(x2²)`` as ``out["extra_loss"]``, which is
what makes that assumption hold.

Entropy model: hyperprior on |z2| and a 3-component Gaussian mixture per element. ``context="ar"`` adds
the 5x5 autoregressive context, coded serially in raster order (bit-exact; slow, one CDF build per position);
``context="none"`` is the hyperprior-only variant, the "comparable single-scale" baseline MS-ANFIC is compared with.

The family's shared skeleton (:class:`~invlab.models.anf.skeleton.AugmentedFlowCodec`) holds the steps, one
entropy model per latent level, QE, the one coarse-to-fine walk, the x2 penalty and the stream header; ANFIC is
its single-level case. M-ANFIC and MS-ANFIC (:mod:`invlab.models.anf.manfic`) add masked multi-scale latents.

Follows the paper / official code (dororojames/ANFIC @00a7acd):
- additive couplings only ("-DM"), 2 steps, decoding with x2 = 0, the QE post-filter (conv, residual blocks,
  conv + skip, conv + input skip);
- m_i = 4 x Conv5x5/2 with GDN after the first three; μ_i = 4 x TConv5x5/2 with IGDN after the first three;
- the hyperprior as the code implements it: h_a(|z2|) = Conv3x3/1, Conv5x5/2, Conv5x5/2 (ReLU); factorised h
  (EntropyBottleneck, init scale 10; the code's filters (3,3,3) with ``hyper_filters``); h_s = TConv5x5/2,
  TConv5x5/2 (to 1.5 Nh), TConv3x3/1 to 2M; 5x5 type-A context M -> 2M; 1x1 parameter net 4M -> W -> W -> 9M
  (LeakyReLU) giving a K = 3 mixture (scales lower-bounded at 0.11, softmax weights); additive-noise quantisation
  in training;
- paper size F = 128, M = 320, Nh = 192, W = 640, QE 64 x 6: 22.66 M parameters, as the paper counts.
Inferred / ours:
- plain convs instead of the RDFT-reparameterised "SignalConv", CompressAI's GDN (both fold exactly into these:
  :mod:`invlab.official.anfic`); rANS instead of torchac; CompressAI's factorised density with filters (3,3,3,3)
  by default;
- mixture symbols are ``round(z2)`` (no mean subtracted, as CompressAI's GaussianMixtureConditional), so the
  reconstruction never depends on the context and the eval-mode forward equals the decoder bit for bit;
- λ2 = ``x2_weight``·λ·255² with ``x2_weight = 1`` (our starting point; the paper's λ2 is unknown);
- training decodes x̂ from the noisy ẑ2 with x2 = 0 (the real decoder's path, with noise for rounding);
- λ lists: CompressAI's {0.0018 ... 0.0483} for the paper size (the paper's is unknown), the common mini list
  for the minis.

Sizes: ``anfic`` 22.66 M, ``anfic-mini`` 3.00 M (2.995 M), ``anfic-mini-noctx`` 2.50 M.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from invlab.errors import ModelMismatchError
from invlab.models.anf import CONTEXTS, MINI_LAMBDAS, PAPER_LAMBDAS
from invlab.models.anf.blocks import (
    AdditiveAutoencodingStep,
    QualityEnhancement,
    analysis_transform,
    synthesis_transform,
)
from invlab.models.anf.priors import LevelPrior
from invlab.models.anf.skeleton import DEFAULT_LAMBDA, AugmentedFlowCodec


class ANFIC(AugmentedFlowCodec):
    """ANFIC with configurable size and context (defaults: the released paper model, 22.66 M parameters).

    ``hyper_filters``: hidden widths of the hyper-latent's factorised density; invlab's models use CompressAI's
    (3, 3, 3, 3), the official code (3, 3, 3) (:mod:`invlab.official.anfic` sets it for converted weights).
    """

    # 1.5x benchmarks/decode_memory.py's largest figure with exact entropy parameters: anfic-mini 1160, -noctx 1364
    decode_bytes_per_pixel = 2050.0

    def __init__(
        self,
        filters: int = 128,
        latent_channels: int = 320,
        hyper_channels: int = 192,
        head_width: int = 640,
        mixtures: int = 3,
        steps: int = 2,
        context: str = "ar",
        qe_filters: int = 64,
        qe_blocks: int = 6,
        x2_weight: float = 1.0,
        hyper_filters: Sequence[int] = (3, 3, 3, 3),
        lambdas: Sequence[float] = (DEFAULT_LAMBDA,),
        family_lambdas: Sequence[float] = PAPER_LAMBDAS,
        stable: bool = False,
        entropy: str = "exact",
    ):
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {sorted(CONTEXTS)}, got {context!r}")
        flow = [
            AdditiveAutoencodingStep(
                analysis_transform(filters, latent_channels), synthesis_transform(filters, latent_channels)
            )
            for _ in range(steps)
        ]
        prior = LevelPrior(latent_channels, hyper_channels, head_width, context=context == "ar", mixtures=mixtures,
                           hyper_filters=hyper_filters)
        super().__init__(
            flow,
            [prior],
            QualityEnhancement(qe_filters, qe_blocks),
            level_strides=(16,),
            x2_weight=x2_weight,
            lambdas=lambdas,
            family_lambdas=family_lambdas,
            stable=stable,
            entropy=entropy,
        )
        self.context = context

    @property
    def context_label(self) -> str:
        """Which entropy-context path this model codes with (say it next to every number it produces)."""
        return CONTEXTS[self.context]

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> dict[str, Any]:
        """``x_hat``, ``likelihoods`` {"y", "z"}, ``extra_loss`` (λ2·mean(x2²)) and ``x2_mse``.

        In eval mode ``x_hat`` is exactly what :meth:`decompress` returns (before clamping)."""
        return self._forward(x, None)

    @torch.no_grad()
    def compress(self, x: torch.Tensor, rate: float | None = None) -> dict[str, Any]:
        """Batch 1, padded to ``pad_multiple``. Also returns ``y_hat`` (ẑ2, what the decoder will have)."""
        strings, header, decoded = self._encode(x, None)
        return {"strings": strings, "shape": {"context": self.context, **header}, "y_hat": decoded[0]}

    @torch.no_grad()
    def stream_geometry(self, height: int, width: int) -> dict:
        return {"context": self.context, "size": [height, width]}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict[str, torch.Tensor]:
        if shape.get("context") != self.context:
            raise ModelMismatchError(
                f"stream was coded with the {shape.get('context')!r} context path; this model decodes "
                f"{self.context!r} only (load the matching ANFIC variant)"
            )
        return {"x_hat": self._decode(strings, shape, None)}


def anfic(**overrides) -> ANFIC:
    model = ANFIC(**overrides)
    model.decode_bytes_per_pixel = 4 * ANFIC.decode_bytes_per_pixel  # [not measured] paper width: 4x the mini's
    return model


MINI_CONFIG: dict[str, Any] = {
    "filters": 64,
    "latent_channels": 96,
    "hyper_channels": 64,
    "head_width": 192,
    "qe_filters": 32,
    "qe_blocks": 3,
    "family_lambdas": MINI_LAMBDAS,
}


def anfic_mini(**overrides) -> ANFIC:
    return ANFIC(**{**MINI_CONFIG, **overrides})


def anfic_mini_noctx(**overrides) -> ANFIC:
    return ANFIC(**{**MINI_CONFIG, "context": "none", **overrides})

