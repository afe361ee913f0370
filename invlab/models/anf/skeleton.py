"""The ANF family's shared skeleton: :class:`AugmentedFlowCodec`.

ANF steps on the pair (x, z), z starting at 0, then one entropy model per latent level and ANFIC's QE
post-filter. Encoding runs every step up to the last one's encode; ``ẑ = Q(z_N)`` is entropy coded and the
image residual ``x_N`` is dropped: the decoder assumes ``x_N = 0`` and undoes the steps last to first.
Training adds ``λ2·mean(x_N²)`` as ``out["extra_loss"]``, which is what makes that assumption hold.

The latent levels are coded by one coarse-to-fine walk (:meth:`AugmentedFlowCodec._walk`) run with a
likelihood, rANS-encoding or rANS-decoding coder (:mod:`invlab.entropy.mixture`) and an arithmetic for the entropy
parameters: float for training, exact fixed point for files (``entropy="exact"``, the default: the hyper-synthesis,
the conditioning, the context and the mixture head as integer networks, the mixture tables built alike on every CPU,
:mod:`invlab.entropy.exact_mixture`; files made before carry no ``entropy`` option and decode on the float path).
The symbols are ``round(v)`` either way, so the arithmetic changes the tables (the rate), never the picture. The
stream header is the image size and each level's symbol range. ANFIC (:mod:`invlab.models.anf.anfic`) has one level;
M-ANFIC and MS-ANFIC (:mod:`invlab.models.anf.manfic`) add masked multi-scale latents through the hooks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from invlab.entropy.exact import float64_bottleneck_tables
from invlab.entropy.exact_mixture import FixedMixtureArithmetic
from invlab.entropy.mixture import (
    FLOAT,
    MAX_ABS_SYMBOL,
    MixtureArithmetic,
    MixtureLevelCoder,
    MixtureLikelihoodCoder,
    MixtureRansDecoder,
    MixtureRansEncoder,
)
from invlab.errors import BitstreamError
from invlab.io.images import MAX_PIXELS
from invlab.models.anf.blocks import AdditiveAutoencodingStep, Latent
from invlab.models.anf.priors import LevelPrior
from invlab.models.base import InvlabModel, eval_mode

#: λ per rate index of the minis (train 0.0130, fine-tune the others from it; the baselines' set)
#: the λ a model trains at unless told otherwise (the minis' full-schedule point)
DEFAULT_LAMBDA = 0.0130


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
        stable: bool = False,
        entropy: str = "exact",
    ):
        super().__init__(lambdas=tuple(lambdas))
        if entropy not in ("exact", "float"):
            raise ValueError(f"entropy must be 'exact' or 'float', got {entropy!r}")
        self.entropy = entropy
        self._fixed: FixedMixtureArithmetic | None = None  # built on first use, after the weights are in
        self.stable = bool(stable)
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

    #: ``entropy="exact"`` (the default): the tables of a file's symbols come from fixed-point arithmetic
    exact_entropy = True

    @property
    def coding_options(self) -> dict[str, Any]:
        return {**super().coding_options, **({"entropy": "exact"} if self.entropy == "exact" else {})}

    def update(self, scale_table: Any = None, force: bool = False, **kwargs: Any) -> bool:
        """The float tables (CompressAI's), or with exact entropy parameters the hyper-latents' tables from float64
        densities; the fixed-point networks are derived again from the current weights on first use."""
        updated = super().update(scale_table=scale_table, force=force, **kwargs)
        self._fixed = None
        if self.entropy == "exact":
            for prior in self.priors:
                float64_bottleneck_tables(prior.entropy_bottleneck)
        return updated

    def _coding_arithmetic(self) -> MixtureArithmetic:
        """The arithmetic of real files: exact fixed point (derived once) or the float networks."""
        if self.entropy == "float":
            return FLOAT
        if self._fixed is None:
            self._fixed = FixedMixtureArithmetic()
        return self._fixed

    #: ``stable=True``: decoding without the QE post-filter (re-encoding then keeps its symbols: docs/measuring.md)
    stable_mode = True
    reencoding_ablations: ClassVar[dict[str, tuple[str, ...]]] = {"QE off": ("QE",)}

    def ablate(self, parts: tuple[str, ...]) -> None:
        """``"QE"``: decode without the quantisation-error post-filter."""
        for part in parts:
            if part != "QE":
                raise ValueError(f"{type(self).__name__} has no part {part!r} to switch off")
            self.qe = nn.Identity()

    @property
    def level_names(self) -> list[tuple[str, str]]:
        """(latent, hyper-latent) likelihood keys per level: CompressAI's ("y", "z") for a single level, else
        ("v1", "h1"), ("v2", "h2"), ... fine to coarse."""
        if len(self.priors) == 1:
            return [("y", "z")]
        return [(f"v{n + 1}", f"h{n + 1}") for n in range(len(self.priors))]

    @property
    def x2_penalty_weight(self) -> float:
        """λ2 of the ``λ2·mean(x2²)`` term: ``x2_weight``·λ·255² [inferred]."""
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

    def _condition(
        self, level: int, levels: list[torch.Tensor | None], arith: MixtureArithmetic = FLOAT
    ) -> torch.Tensor | None:
        """Level ``level``'s conditioning from the decoded coarser levels (float symbols), in ``arith``'s
        representation (None: an unconditioned level)."""
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
        """The decoder: x_N = 0, undo the steps last to first, QE (not in the stable mode). ``mu_last`` = μ_N(ẑ) if
        already computed."""
        step_masks = self._step_masks(masks)
        x = self.steps[-1].synthesis(z_hat) if mu_last is None else mu_last
        z = z_hat
        for i in reversed(range(len(self.steps) - 1)):
            z = self.steps[i + 1].undo_encode(x, z, step_masks)
            x = self.steps[i].undo_decode(x, z)
        return x if self.stable else self.qe(x)

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
        coder: MixtureLevelCoder,
        levels: list[torch.Tensor] | None,
        masks: list[torch.Tensor] | None,
        size: Sequence[int],
        arith: MixtureArithmetic = FLOAT,
    ) -> list[torch.Tensor]:
        """Code the levels coarse to fine with ``coder``, the parameters in ``arith``; returns the decoded levels
        (fine to coarse). ``levels`` is None when decoding; ``size`` is the (padded) image size.
        """
        decoded: list[torch.Tensor | None] = [None] * len(self.priors)
        for n in reversed(range(len(self.priors))):
            condition = self._condition(n, decoded, arith)
            analysis_condition = None
            if levels is not None:  # the encoder's hyper-analysis reads the float conditioning
                analysis_condition = condition if arith is FLOAT else self._condition(n, decoded)
            decoded[n] = self.priors[n].code(
                coder,
                arith,
                self.level_names[n],
                None if levels is None else levels[n],
                condition,
                None if masks is None else masks[n],
                self._hyper_size(n, size),
                analysis_condition,
            )
        return decoded

    def _forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None) -> dict[str, Any]:
        """Training (noise) or estimation (rounding; equals the decoder): x̂, likelihoods and the x2 penalty."""
        x_last, z = self._analyse(x, masks)
        coder = MixtureLikelihoodCoder()
        z_hat = self._merge(self._walk(coder, self._levels(z, masks), masks, x.shape[-2:]))
        mu_last = self.steps[-1].synthesis(z_hat)
        x2_mse = (x_last - mu_last).pow(2).mean()  # x2 = x_{N-1} - μ_N(ẑ), assumed 0 by the decoder
        return {
            "x_hat": self._synthesize(z_hat, masks, mu_last),
            "likelihoods": coder.finish(),
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
        coder = MixtureRansEncoder()
        decoded = self._walk(coder, self._levels(z, masks), masks, x.shape[-2:], self._coding_arithmetic())
        return coder.finish(), {"size": [int(v) for v in x.shape[-2:]], "abs_max": coder.abs_max}, decoded

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
        coder = MixtureRansDecoder(strings, abs_max)
        decoded = self._walk(coder, None, masks, size, self._coding_arithmetic())
        coder.finish()
        return self._synthesize(self._merge(decoded), masks).clamp(0, 1)

    @torch.no_grad()
    def scale_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The decoded levels the encoder codes (one encoder run): ``y`` (ANFIC), or ``v1`` fine ... ``vL`` coarse
        (zero outside each level's mask)."""
        y_hat = self.compress(x)["y_hat"]
        levels = y_hat if isinstance(y_hat, list) else [y_hat]
        return {latent: y for (latent, _), y in zip(self.level_names, levels, strict=True)}

    def scale_bits(self, x: torch.Tensor, rate: float) -> dict[str, torch.Tensor]:
        """Latents and hyper-latents, fine to coarse (see :meth:`latent_bits_map`)."""
        return self.latent_bits_map(x, rate)

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
