"""ANFIC: "Image Compression Using Augmented Normalizing Flows" (Ho, Chan, Peng, Hang, Domański; IEEE OJCAS 2021).

Transform (architectures.md §4.1): two additive augmented-flow steps on the pair (x, z), z starting at 0.
Encoding runs ``z1 = m1(x)``, ``x1 = x - μ1(z1)``, ``z2 = z1 + m2(x1)``; ``ẑ2 = Q(z2)`` is entropy coded and the
image residual ``x2 = x1 - μ2(ẑ2)`` is dropped. The decoder assumes ``x2 = 0``: ``x̂1 = μ2(ẑ2)``,
``ẑ1 = ẑ2 - m2(x̂1)``, ``x̂ = QE(x̂1 + μ1(ẑ1))``. Training adds ``λ2·mean(x2²)`` as ``out["extra_loss"]``, which is
what makes that assumption hold.

Entropy model (§4.2): hyperprior on |z2| and a 3-component Gaussian mixture per element. ``context="ar"`` adds
the 5x5 autoregressive context, coded serially in raster order (bit-exact; slow, one CDF build per position);
``context="none"`` is the hyperprior-only variant, the "comparable single-scale" baseline of §6 / §8.4.

:class:`AugmentedFlowCodec` holds what the family shares: the steps, one entropy model per latent level, QE,
the one coarse-to-fine walk (run by a training, encoding or decoding coder), the x2 penalty and the stream
header. M-ANFIC and MS-ANFIC (:mod:`invlab.models.manfic`) add masked multi-scale latents on top of it.

Follows the paper / official code (dororojames/ANFIC @00a7acd):
- additive couplings only ("-DM"), 2 steps, decoding with x2 = 0, the QE post-filter (conv, residual blocks,
  conv + skip, conv + input skip);
- m_i = 4 x Conv5x5/2 with GDN after the first three; μ_i = 4 x TConv5x5/2 with IGDN after the first three;
- the hyperprior as the code implements it: h_a(|z2|) = Conv3x3/1, Conv5x5/2, Conv5x5/2 (ReLU); factorised h
  (EntropyBottleneck, filters (3,3,3), init scale 10); h_s = TConv5x5/2, TConv5x5/2 (to 1.5 Nh), TConv3x3/1 to
  2M; 5x5 type-A context M -> 2M; 1x1 parameter net 4M -> W -> W -> 9M (LeakyReLU) giving a K = 3 mixture
  (scales lower-bounded at 0.11, softmax weights); additive-noise quantisation in training;
- paper size F = 128, M = 320, Nh = 192, W = 640, QE 64 x 6: 22.66 M parameters, as §4.4 counts.
Inferred / ours:
- plain convs instead of the RDFT-reparameterised "SignalConv", CompressAI's GDN; rANS instead of torchac;
- mixture symbols are ``round(z2)`` (no mean subtracted, as CompressAI's GaussianMixtureConditional), so the
  reconstruction never depends on the context and the eval-mode forward equals the decoder bit for bit;
- λ2 = ``x2_weight``·λ·255² with ``x2_weight = 1`` (§8.4's starting point; the paper's λ2 is unknown);
- training decodes x̂ from the noisy ẑ2 with x2 = 0 (the real decoder's path, with noise for rounding);
- λ lists: CompressAI's {0.0018 ... 0.0483} for the paper size (the paper's is unknown), §8.1's for the minis.

Sizes: ``anfic`` 22.66 M, ``anfic-mini`` 3.00 M (2.995 M; §8.4: 3.00 M), ``anfic-mini-noctx`` 2.50 M (§8.4: ≈2.5 M).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from invlab.errors import BitstreamError, ModelMismatchError
from invlab.io.images import MAX_PIXELS
from invlab.models.anfic_layers import (
    MAX_ABS_SYMBOL,
    AdditiveAutoencodingStep,
    DecodingCoder,
    EncodingCoder,
    Latent,
    LevelCoder,
    LevelPrior,
    LikelihoodCoder,
    QualityEnhancement,
    analysis_transform,
    synthesis_transform,
)
from invlab.models.base import FIXED_RATE_LAMBDAS, InvlabModel, eval_mode
from invlab.models.registry import register_model

#: λ per rate index, paper size [inferred: CompressAI's set; the paper's list is not retrievable]
PAPER_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
#: λ per rate index of the minis (§8.1: train 0.0130, fine-tune 0.0035 and 0.0483; the baselines' set)
MINI_LAMBDAS = FIXED_RATE_LAMBDAS
#: the λ a model trains at unless told otherwise (§8.1's full-schedule point)
DEFAULT_LAMBDA = 0.0130
CONTEXTS = {"ar": "5x5 autoregressive, serial (faithful)", "none": "hyperprior only (no spatial context)"}


class AugmentedFlowCodec(InvlabModel):
    """ANF steps + one entropy model per latent level + QE, coded by one walk (the family's shared skeleton).

    Levels are indexed fine (0) to coarse and coded coarse to fine. Subclasses build the modules and override
    the hooks :meth:`_levels` (ANF latent -> levels to code), :meth:`_merge` (decoded levels -> ẑ),
    :meth:`_condition` (conditioning tensor of a level), :meth:`_masks` and :meth:`_step_masks`.
    """

    def __init__(
        self,
        steps: Sequence[AdditiveAutoencodingStep],
        priors: Sequence[LevelPrior],
        qe: nn.Module,
        *,
        level_strides: Sequence[int],
        x2_weight: float,
        lambdas: Sequence[float],
        family_lambdas: Sequence[float],
    ):
        super().__init__(lambdas=tuple(lambdas))
        if len(self.lambdas) != 1:
            raise ValueError(f"{type(self).__name__} is fixed-rate: give one λ, got {self.lambdas}")
        self.family_lambdas = tuple(float(v) for v in family_lambdas)
        self.steps = nn.ModuleList(steps)
        self.priors = nn.ModuleList(priors)
        self.qe = qe
        #: pixels per latent position of each level, fine to coarse
        self.level_strides = tuple(int(s) for s in level_strides)
        self.x2_weight = float(x2_weight)
        self.pad_multiple = max(s * 2**p.downsampling for s, p in zip(self.level_strides, priors, strict=True))

    @property
    def level_names(self) -> list[tuple[str, str]]:
        """(latent, hyper-latent) likelihood keys per level: CompressAI's ("y", "z") for a single level, else
        ("v1", "h1"), ("v2", "h2"), ... fine to coarse."""
        if len(self.priors) == 1:
            return [("y", "z")]
        return [(f"v{n + 1}", f"h{n + 1}") for n in range(len(self.priors))]

    @property
    def x2_penalty_weight(self) -> float:
        """λ2 of the ``λ2·mean(x2²)`` term: ``x2_weight``·λ·255² [inferred, §8.4]."""
        return self.x2_weight * self.lambdas[0] * 255.0**2

    # ------------------------------------------------------------------ hooks (single level here)
    def _masks(self, depth_map: torch.Tensor | None) -> list[torch.Tensor] | None:
        if depth_map is not None:
            raise ValueError(f"{type(self).__name__} has one latent level; it takes no depth map")
        return None

    def _step_masks(self, masks: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        """The masks the ANF steps apply to their latent increments (only for multi-scale steps)."""
        return None

    def _levels(self, z: Latent, masks: list[torch.Tensor] | None) -> list[torch.Tensor]:
        return [z]

    def _merge(self, levels: list[torch.Tensor]) -> Latent:
        return levels[0]

    def _condition(self, level: int, levels: list[torch.Tensor | None]) -> torch.Tensor | None:
        return None

    # ------------------------------------------------------------------ transform
    def _analyse(self, x: torch.Tensor, masks: list[torch.Tensor] | None) -> tuple[torch.Tensor, Latent]:
        """Every step up to the last one's encode: (x_{N-1}, z_N) with z_N before quantisation."""
        step_masks = self._step_masks(masks)
        z = None
        for step in self.steps[:-1]:
            x, z = step(x, z, step_masks)
        return x, self.steps[-1].encode(x, z, step_masks)

    def _synthesize(
        self, z_hat: Latent, masks: list[torch.Tensor] | None, mu_last: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The decoder: x_N = 0, undo the steps last to first, QE. ``mu_last`` = μ_N(ẑ) if already computed."""
        step_masks = self._step_masks(masks)
        x = self.steps[-1].synthesis(z_hat) if mu_last is None else mu_last
        z = z_hat
        for i in reversed(range(len(self.steps) - 1)):
            z = self.steps[i + 1].undo_encode(x, z, step_masks)
            x = self.steps[i].undo_decode(x, z)
        return self.qe(x)

    def g_s(self, y_hat: Latent, depth_map: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's reconstruction (clamped to [0, 1]) from decoded latent levels (``compress(x)["y_hat"]``)."""
        levels = y_hat if isinstance(y_hat, list) else [y_hat]
        return self._synthesize(self._merge(levels), self._masks(depth_map)).clamp(0, 1)

    # ------------------------------------------------------------------ the walk over latent levels
    def _hyper_size(self, level: int, size: Sequence[int]) -> tuple[int, int]:
        step = self.level_strides[level] * 2 ** self.priors[level].downsampling
        return size[0] // step, size[1] // step

    def _walk(
        self,
        coder: LevelCoder,
        levels: list[torch.Tensor] | None,
        masks: list[torch.Tensor] | None,
        size: Sequence[int],
    ) -> list[torch.Tensor]:
        """Code the levels coarse to fine with ``coder``; returns the decoded levels (fine to coarse).

        ``levels`` is None when decoding; ``size`` is the (padded) image size.
        """
        decoded: list[torch.Tensor | None] = [None] * len(self.priors)
        for n in reversed(range(len(self.priors))):
            decoded[n] = self.priors[n].code(
                coder,
                self.level_names[n],
                None if levels is None else levels[n],
                self._condition(n, decoded),
                None if masks is None else masks[n],
                self._hyper_size(n, size),
            )
        return decoded

    def _forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None) -> dict[str, Any]:
        """Training (noise) or estimation (rounding; equals the decoder): x̂, likelihoods and the x2 penalty."""
        x_last, z = self._analyse(x, masks)
        coder = LikelihoodCoder()
        z_hat = self._merge(self._walk(coder, self._levels(z, masks), masks, x.shape[-2:]))
        mu_last = self.steps[-1].synthesis(z_hat)
        x2_mse = (x_last - mu_last).pow(2).mean()  # x2 = x_{N-1} - μ_N(ẑ), assumed 0 by the decoder
        return {
            "x_hat": self._synthesize(z_hat, masks, mu_last),
            "likelihoods": coder.likelihoods,
            "extra_loss": self.x2_penalty_weight * x2_mse,
            "x2_mse": x2_mse.detach(),
        }

    # ------------------------------------------------------------------ coding
    def _encode(self, x: torch.Tensor, masks: list[torch.Tensor] | None) -> tuple[list[bytes], dict, list]:
        """(strings, header, decoded levels) for one image; strings: per level, coarse to fine, hyper then latent."""
        if x.shape[0] != 1:
            raise ValueError("compress codes one image at a time (batch 1)")
        if x.shape[-2] % self.pad_multiple or x.shape[-1] % self.pad_multiple:
            raise ValueError(f"pad the image to a multiple of {self.pad_multiple} first, got {tuple(x.shape[-2:])}")
        _, z = self._analyse(x, masks)
        coder = EncodingCoder()
        decoded = self._walk(coder, self._levels(z, masks), masks, x.shape[-2:])
        return coder.strings, {"size": [int(v) for v in x.shape[-2:]], "abs_max": coder.abs_max}, decoded

    def _read_size(self, shape: dict) -> tuple[int, int]:
        try:
            height, width = (int(v) for v in shape["size"])
        except (KeyError, TypeError, ValueError):
            raise BitstreamError(f"stream header has no valid image size: {shape!r}") from None
        if height <= 0 or width <= 0 or height % self.pad_multiple or width % self.pad_multiple:
            raise BitstreamError(f"stream header size {height}x{width} is not a multiple of {self.pad_multiple}")
        if height * width > 4 * MAX_PIXELS:
            raise BitstreamError(f"stream header size {height}x{width} is implausibly large")
        return height, width

    def _decode(self, strings: Sequence[bytes], shape: dict, masks: list[torch.Tensor] | None) -> torch.Tensor:
        """x̂ (clamped) from the per-level strings and the header written by :meth:`_encode`."""
        size = self._read_size(shape)
        abs_max = shape.get("abs_max")
        levels = len(self.priors)
        if (
            not isinstance(abs_max, list)
            or len(abs_max) != levels
            or not all(isinstance(a, int) and 0 <= a <= MAX_ABS_SYMBOL for a in abs_max)
        ):
            raise BitstreamError(f"stream header has an invalid symbol range {abs_max!r}")
        if len(strings) != 2 * levels or not all(isinstance(s, bytes) for s in strings):
            raise BitstreamError(f"expected {2 * levels} entropy-coded streams, got {len(strings)}")
        device = next(self.parameters()).device
        masks = None if masks is None else [m.to(device) for m in masks]
        decoded = self._walk(DecodingCoder(strings, abs_max), None, masks, size)
        return self._synthesize(self._merge(decoded), masks).clamp(0, 1)

    @torch.no_grad()
    def latent_bits_map(
        self, x: torch.Tensor, rate: float | None = None, depth_map: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Estimated bits per position (eval mode, batch 1): {latent or hyper name: (h, w)}, fine to coarse."""
        if x.shape[0] != 1:
            raise ValueError("latent_bits_map takes one image (batch 1)")
        likelihoods = self._estimate(x, depth_map)["likelihoods"]
        h, w = x.shape[-2:]
        maps = {}
        for (latent, hyper), stride, prior in zip(self.level_names, self.level_strides, self.priors, strict=True):
            hyper_stride = stride * 2**prior.downsampling
            for name, step in ((latent, stride), (hyper, hyper_stride)):  # a level without blocks costs nothing
                maps[name] = ((-torch.log2(likelihoods[name][0])).sum(0) if name in likelihoods
                              else torch.zeros(h // step, w // step, device=x.device))
        return maps

    def _estimate(self, x: torch.Tensor, depth_map: torch.Tensor | None) -> dict[str, Any]:
        """The eval-mode forward (rounding), whatever mode the model is in."""
        with eval_mode(self):
            return self._forward(x, self._masks(depth_map))


class ANFIC(AugmentedFlowCodec):
    """ANFIC with configurable size and context (defaults: the released paper model, 22.66 M parameters)."""

    decode_bytes_per_pixel = 2000.0  # 1.5x measured by benchmarks/decode_memory.py: anfic-mini 872, -noctx 1295

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
        lambdas: Sequence[float] = (DEFAULT_LAMBDA,),
        family_lambdas: Sequence[float] = PAPER_LAMBDAS,
    ):
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {sorted(CONTEXTS)}, got {context!r}")
        flow = [
            AdditiveAutoencodingStep(
                analysis_transform(filters, latent_channels), synthesis_transform(filters, latent_channels)
            )
            for _ in range(steps)
        ]
        prior = LevelPrior(latent_channels, hyper_channels, head_width, context=context == "ar", mixtures=mixtures)
        super().__init__(
            flow,
            [prior],
            QualityEnhancement(qe_filters, qe_blocks),
            level_strides=(16,),
            x2_weight=x2_weight,
            lambdas=lambdas,
            family_lambdas=family_lambdas,
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
        self.check_rate(rate)
        strings, header, decoded = self._encode(x, None)
        return {"strings": strings, "shape": {"context": self.context, **header}, "y_hat": decoded[0]}

    @torch.no_grad()
    def stream_geometry(self, height: int, width: int) -> dict:
        return {"context": self.context, "size": [height, width]}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict[str, torch.Tensor]:
        self.check_rate(rate)
        if shape.get("context") != self.context:
            raise ModelMismatchError(
                f"stream was coded with the {shape.get('context')!r} context path; this model decodes "
                f"{self.context!r} only (load the matching ANFIC variant)"
            )
        return {"x_hat": self._decode(strings, shape, None)}


@register_model(
    "anfic", family="anfic", description="ANFIC, paper size (22.7 M; F=128, M=320; GMM + 5x5 AR context, serial)"
)
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


@register_model(
    "anfic-mini", family="anfic", description="ANFIC-mini (3.0 M, F=64, M=96; GMM + 5x5 AR context, serial)"
)
def anfic_mini(**overrides) -> ANFIC:
    return ANFIC(**{**MINI_CONFIG, **overrides})


@register_model(
    "anfic-mini-noctx",
    family="anfic",
    description="ANFIC-mini without context (≈2.5 M; hyperprior + GMM): the single-scale baseline",
)
def anfic_mini_noctx(**overrides) -> ANFIC:
    return ANFIC(**{**MINI_CONFIG, "context": "none", **overrides})


# M-ANFIC and MS-ANFIC live in their own module; importing this one registers the whole family.
import invlab.models.manfic  # noqa: E402,F401
