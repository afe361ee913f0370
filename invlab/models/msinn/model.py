"""MSINN-VRLIC (Tu et al., IEEE TMM 2025): one bijective multi-scale INN whose rate moves continuously.

Transform: 4 levels of ``Squeeze(2) + InvUnit x depth`` with factor-out latents y1 (6 @ H/2), y2 (12 @ H/4),
y3 (24 @ H/8) and a final split into y4, y5 (48 @ H/16 each): 3·H·W values, no dimension reduction.
Entropy model (no hyperprior): the latents are coded coarse to fine, y5 -> y1. For each slice

1. channel context ``cc(ĥ)`` from ĥ, the decoded complementary half at that level, obtained by running the
   inverse INN on everything decoded so far (for y5: a learned per-channel scale, zero mean);
2. two-pass checkerboard: anchors first (no spatial context), then non-anchors with the multistage masked
   context of the decoded anchors; the anchor colour alternates from slice to slice (y5's: ``anchor_colour``);
3. parameter fusion -> (σ, μ);
4. extended gain units: ``r = (y - μ)·g_q``, symbol ``round(r)``, likelihood ``N(0, σ·s_q)``,
   ``ŷ = round(r)·g'_q + μ``; g, g', s are (anchors x 138) tables interpolated geometrically in ``rate``;
5. latent residual prediction: ``ŷ += 0.5·tanh(LRP([ŷ, ĥ]))·g'_q``.

The inverse level that turns ``[ŷ_i, ĥ]`` into the next ĥ also synthesises the image, so the walk ends
with x̃; an optional post-net gives ``x̂ = x̃ + 0.3·P(x̃)``. The walk is written once (:meth:`_walk`) and
driven by a coder from :mod:`invlab.entropy.residual` (training, rANS encoding, rANS decoding).
All slices share one rANS stream, anchors then non-anchors per slice.

Our choices where the paper/code differ or are silent:
- gain init ``"sqrt-lambda"`` (default, [ours]): ``g_q = s_q = sqrt(λ_q / 0.013)``, ``g'_q = 1 / g_q``, so
  the untrained model already spreads rates (MSE-optimal step ∝ 1/sqrt(λ)); ``"paper"`` starts all at 1;
- inputs are padded to a multiple of 16 (what the INN needs; the official eval pads to 64);
- pass-1 fusion sees zeros in place of the spatial context [inferred].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from compressai.entropy_models import GaussianConditional
from torch import nn

from invlab.entropy.checkerboard import anchor_mask
from invlab.entropy.gain import GainTable, extrapolate_rows
from invlab.entropy.residual import ResidualCoder, ResidualLikelihoodCoder, ResidualRansDecoder, ResidualRansEncoder
from invlab.flows import InvertibleSequence, InvUnit, MultiScaleFlow, Squeeze
from invlab.flows.coupling import SubnetConstructor
from invlab.flows.units import residual_conditioner
from invlab.layers import ChannelsLast
from invlab.models.base import InvlabModel, eval_mode
from invlab.models.msinn import LAMBDAS_12
from invlab.models.msinn.arithmetic import FixedArithmetic, FloatArithmetic
from invlab.models.msinn.context import SliceEntropyModel
from invlab.models.msinn.postnet import POSTNET_WEIGHT, build_postnet

#: channels of y1 ... y5
LATENT_CHANNELS = (6, 12, 24, 48, 48)
#: anchor whose gains are 1 under the "sqrt-lambda" init
REFERENCE_LAMBDA = 0.0130


@dataclass
class LatentBits:
    """Per-scale view of one image at one rate (eval-mode estimate, batch 1): names y1 ... y5 fine to coarse."""

    names: list[str]
    latents: list[np.ndarray]  # y_i (C, H_i, W_i), INN output before quantisation
    y_hats: list[np.ndarray]  # ŷ_i as the decoder sees it (after gains, rounding and LRP)
    bit_maps: list[np.ndarray]  # (H_i, W_i) estimated bits per position, summed over channels
    num_pixels: int

    @property
    def bits(self) -> dict[str, float]:
        return {n: float(m.sum()) for n, m in zip(self.names, self.bit_maps, strict=True)}

    @property
    def bpp(self) -> float:
        return sum(self.bits.values()) / self.num_pixels


def _channels_last(make: SubnetConstructor) -> SubnetConstructor:
    """The same conditioner (same parameter names), run in channels-last layout (faster on CPU)."""
    return lambda c_in, c_out: ChannelsLast(*make(c_in, c_out))


class MSINNVRLIC(InvlabModel):
    """The MSINN-VRLIC codec; ``rate`` is any real in [0, anchors - 1]."""

    # 1.5x benchmarks/decode_memory.py's figure at 512² with exact entropy parameters (912 bytes per pixel, 695 at
    # 1024²; smaller images add a fixed ~50 MB of tables and float64 buffers: 3949 per pixel at 128²; float path 908)
    decode_bytes_per_pixel = 1400.0

    variable_rate = True
    pad_multiple = 16

    def __init__(self, depths: tuple[int, ...] = (4, 4, 4, 4), hidden: tuple[int, ...] = (128, 128, 128, 192),
                 context_width: int = 128, postnet: str | None = "unet", lrp: bool = True, anchors: int = 8,
                 gain_init: str = "sqrt-lambda", lu: bool = False, anchor_colour: int = 0, padding: str = "replicate",
                 xtilde_weight: float = 0.0, stable: bool = False, entropy: str = "exact"):
        """``anchor_colour``: the checkerboard colour ``(row + col) % 2`` of y5's anchors (the colour alternates from
        slice to slice); invlab's models use 0, the official code 1 (its weights convert with 1). ``padding``:
        ``"replicate"`` to a multiple of 16, or ``"official"`` (zeros, centred, to 64; see ``use_padding``).
        ``xtilde_weight``: training only, a distortion term on the INN's own reconstruction x̃ (before the post-net)
        with this weight beside the one on x̂, so that x̃ is asked to be good too (0: the paper's loss).
        ``stable``: the stable re-encoding mode (the same weights; coding leaves out the latent residual prediction
        and the post-net, so the decoder's picture is the INN's exact inverse of the coded latents).
        ``entropy``: ``"exact"`` (files code their symbols' tables from entropy parameters every CPU computes alike,
        :mod:`.arithmetic`) or ``"float"`` (the trained float networks; files made before, which carry no
        ``entropy`` option). Training runs the float networks either way; files, :meth:`coded_forward` and the analysis
        helpers the chosen arithmetic."""
        if entropy not in ("exact", "float"):
            raise ValueError(f"entropy must be 'exact' or 'float', got {entropy!r}")
        if not 2 <= anchors <= len(LAMBDAS_12):
            raise ValueError(f"anchors must be in [2, {len(LAMBDAS_12)}]")
        if anchor_colour not in (0, 1):
            raise ValueError(f"anchor_colour must be 0 or 1, got {anchor_colour!r}")
        super().__init__(lambdas=LAMBDAS_12[:anchors])
        self.anchor_colour = anchor_colour
        self.use_padding(padding)
        self.config: dict[str, Any] = dict(depths=list(depths), hidden=list(hidden), context_width=context_width,
                                           postnet=postnet, lrp=lrp, anchors=anchors, gain_init=gain_init, lu=lu,
                                           anchor_colour=anchor_colour, padding=padding,
                                           **({"xtilde_weight": xtilde_weight} if xtilde_weight else {}))
        self.xtilde_weight = float(xtilde_weight)
        self.stable = bool(stable)
        self.entropy = entropy
        self._fixed: FixedArithmetic | None = None  # derived from the weights when first needed, never stored
        levels = []
        for i, (depth, width) in enumerate(zip(depths, hidden, strict=True)):
            cond = _channels_last(residual_conditioner(width))
            levels.append(InvertibleSequence([Squeeze(2)] + [InvUnit(12 * 2**i, cond, lu=lu) for _ in range(depth)]))
        self.flow = MultiScaleFlow(levels, factor_out=LATENT_CHANNELS[:3], final_split=LATENT_CHANNELS[3:])
        last = len(LATENT_CHANNELS) - 1  # y5, coded first, has no channel context
        self.slices = nn.ModuleList(
            SliceEntropyModel(c, None if i == last else c, context_width, lrp) for i, c in enumerate(LATENT_CHANNELS)
        )
        self.gain, self.inverse_gain, self.scale_gain = self._make_gain_tables(gain_init)
        self.gaussian_conditional = GaussianConditional(None)
        self.postnet = build_postnet(postnet)

    def _make_gain_tables(self, gain_init: str) -> tuple[GainTable, GainTable, GainTable]:
        if gain_init == "paper":
            g = [1.0] * len(self.lambdas)
        elif gain_init == "sqrt-lambda":
            g = [math.sqrt(lam / REFERENCE_LAMBDA) for lam in self.lambdas]
        else:
            raise ValueError(f"gain_init must be 'paper' or 'sqrt-lambda', got {gain_init!r}")
        total, anchors = sum(LATENT_CHANNELS), len(self.lambdas)
        return (GainTable(anchors, total, init=g), GainTable(anchors, total, init=[1 / v for v in g]),
                GainTable(anchors, total, init=g))

    def _gain_tables(self) -> tuple[GainTable, GainTable, GainTable]:
        return self.gain, self.inverse_gain, self.scale_gain

    # ------------------------------------------------------------------ the coarse-to-fine walk
    def _slice_gains(self, rate: torch.Tensor, shapes: list[tuple[int, int, int]],
                     rate_map: torch.Tensor | None = None,
                     tables: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None,
                     ) -> list[tuple[torch.Tensor, ...]]:
        """Per latent (y1 ... y5): (g, g', s), each (B, c, 1, 1); with ``rate_map`` (B, rows, cols), one rate per
        16x16-pixel block (:data:`invlab.rate_map.BLOCK`), each (B, c, H_i, W_i): the block's gains at every position
        in it. ``tables``: what maps rates (N,) to the three gain rows (N, 138) (default the gain tables' float
        forward; the exact arithmetic gives its scalar-math ones)."""
        tables = self._gain_tables() if tables is None else tables
        if rate_map is None:
            chunks = [torch.split(t(rate)[:, :, None, None], LATENT_CHANNELS, dim=1) for t in tables]
            return list(zip(*chunks, strict=True))
        b, rows, cols = rate_map.shape
        gains = []
        for table in tables:
            per_block = table(rate_map.reshape(-1)).reshape(b, rows, cols, -1).permute(0, 3, 1, 2)
            parts = []
            for part, (_, height, width) in zip(torch.split(per_block, LATENT_CHANNELS, dim=1), shapes, strict=True):
                if height % rows or width % cols or height // rows != width // cols:
                    raise ValueError(f"a {rows}x{cols} rate map does not tile a {height}x{width} latent")
                f = height // rows
                parts.append(part.repeat_interleave(f, dim=2).repeat_interleave(f, dim=3))
            gains.append(parts)
        return list(zip(*gains, strict=True))

    def _code_slice(self, arith: FloatArithmetic | FixedArithmetic, coder: ResidualCoder, key: str,
                    net: SliceEntropyModel, y: torch.Tensor | None, h: torch.Tensor | None, like: torch.Tensor,
                    gain: torch.Tensor, inverse_gain: torch.Tensor, scale_gain: torch.Tensor,
                    colour: int) -> torch.Tensor:
        """Anchors, then non-anchors with the spatial context of the decoded anchors; ŷ before LRP."""
        anchors = anchor_mask(*like.shape[-2:], colour, like.device)
        context = arith.channel(net, h, like)
        scale, mean = arith.fuse(net, context, torch.zeros_like(context))
        q = coder.code(key, y, *arith.coded(scale, scale_gain, mean), gain, anchors)
        y_anchors = torch.where(anchors, arith.dequantise(q, inverse_gain, mean), like)
        scale, mean = arith.fuse(net, context, arith.spatial(net, y_anchors, anchors))
        q = coder.code(key, y, *arith.coded(scale, scale_gain, mean), gain, ~anchors)
        return torch.where(anchors, y_anchors, arith.dequantise(q, inverse_gain, mean))

    def _walk(self, coder: ResidualCoder, rate: torch.Tensor, size: tuple[int, int],
              latents: list[torch.Tensor] | None = None, synthesize: bool = True,
              rate_map: torch.Tensor | None = None,
              arith: FloatArithmetic | FixedArithmetic | None = None) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        """Code y5 -> y1 with ``coder``; returns (x̃, [ŷ1 ... ŷ5]). ``latents`` is None when decoding.

        With ``synthesize=False`` (the encoder) it stops once y1's symbols are coded and returns no x̃:
        y1's LRP and the last inverse level only serve the reconstruction. ``rate_map``: see :meth:`compress`.
        ``arith``: the arithmetic between symbols and tables (:mod:`.arithmetic`; default the float networks).
        """
        arith = arith or FloatArithmetic(self)
        shapes = self.flow.latent_shapes((3, *size))
        gains = arith.gains(rate, shapes, rate_map)
        last_level = len(self.flow.levels) - 1
        y_hats: list[torch.Tensor] = [torch.empty(0)] * len(shapes)
        h = None
        for step, i in enumerate(reversed(range(len(shapes)))):
            net, (g, g_inv, s) = self.slices[i], gains[i]
            like = torch.zeros(rate.shape[0], *shapes[i], device=rate.device, dtype=arith.dtype)
            y = None if latents is None else latents[i]
            y_hat = self._code_slice(arith, coder, f"y{i + 1}", net, y, h, like, g, g_inv, s,
                                     (step + self.anchor_colour) % 2)
            if i == 0 and not synthesize:
                y_hats[i] = arith.to_float(y_hat)
                return None, [arith.to_float(t) for t in y_hats]
            if net.lrp is not None and not self.stable:
                y_hat = arith.predict_residual(net, y_hat, h, g_inv)
            y_hats[i] = y_hat
            h = y_hat if h is None else arith.inverse_level(min(i, last_level), torch.cat([y_hat, h], 1))
        return h, [arith.to_float(t) for t in y_hats]

    def _coding_arithmetic(self) -> FloatArithmetic | FixedArithmetic:
        """The arithmetic of real files: exact fixed point (built once) or the float networks."""
        if self.entropy == "float":
            return FloatArithmetic(self)
        if self._fixed is None:
            self._fixed = FixedArithmetic(self)
        return self._fixed

    def _postprocess(self, x_tilde: torch.Tensor) -> torch.Tensor:
        if self.postnet is None or self.stable:
            return x_tilde
        return x_tilde + POSTNET_WEIGHT * self.postnet(x_tilde)

    def _rate_tensor(self, rate: torch.Tensor | float | None, x: torch.Tensor) -> torch.Tensor:
        if rate is None or not torch.is_tensor(rate):
            return torch.full((x.shape[0],), self.check_rate(rate), device=x.device)
        return rate.to(x.device, torch.float32).expand(x.shape[0])

    # ------------------------------------------------------------------ the model contract
    def forward(self, x: torch.Tensor, rate: torch.Tensor | float | None = None) -> dict[str, Any]:
        """Training (noise for the rate, STE rounding for the reconstruction) or eval (rounding); rate (B,).
        ``"x_tilde"``: the INN's own reconstruction, before the post-net."""
        rate_t = self._rate_tensor(rate, x)
        out = self._likelihood_walk(x, rate_t, FloatArithmetic(self))
        x_tilde = out["x_tilde"]
        if self.xtilde_weight:
            mse = (x_tilde - x).pow(2).mean(dim=(1, 2, 3))
            out["extra_loss"] = self.xtilde_weight * 255.0**2 * (self.lambda_of(rate_t) * mse).mean()
        return out

    def _likelihood_walk(self, x: torch.Tensor, rate: torch.Tensor,
                         arith: FloatArithmetic | FixedArithmetic) -> dict[str, Any]:
        coder = ResidualLikelihoodCoder(arith.gaussian)
        x_tilde, _ = self._walk(coder, rate, x.shape[-2:], self.flow(x), arith=arith)
        coded = coder.finish()
        likelihoods = {f"y{i + 1}": coded[f"y{i + 1}"] for i in range(len(LATENT_CHANNELS))}
        return {"x_hat": self._postprocess(x_tilde), "likelihoods": likelihoods, "x_tilde": x_tilde}

    @torch.inference_mode()
    def coded_forward(self, x: torch.Tensor, rate: torch.Tensor | float | None = None) -> dict[str, Any]:
        """The eval forward in the files' arithmetic (exact fixed point by default): ``"x_hat"`` is the decoder's."""
        with eval_mode(self):
            return self._likelihood_walk(x, self._rate_tensor(rate, x), self._coding_arithmetic())

    #: ``compress(..., reconstruct=True)`` also returns the decoder's output (see :meth:`compress`)
    reconstructs_at_encoder = True
    #: the INN's forward pass (the latents y1 ... y5) does not see the rate: only the gains and the entropy model do
    rate_free_analysis = True
    #: ``compress``/``decompress`` take a ``rate_map``: the gains are per position, so the rate may vary by block
    rate_maps = True
    #: ``stable=True``: coding without the LRP and the post-net, the two parts that break the inverse
    stable_mode = True
    reencoding_ablations: ClassVar[dict[str, tuple[str, ...]]] = {
        "post-net off": ("post-net",), "LRP off": ("LRP",), "post-net and LRP off": ("post-net", "LRP"),
        "g·g' = 1": ("gain product",)}

    @torch.no_grad()
    def ablate(self, parts: tuple[str, ...]) -> None:
        """``"post-net"``: decode without it; ``"LRP"``: without the latent residual prediction; ``"gain product"``:
        the inverse gain table set to 1 / the gain table (geometric interpolation keeps g·g' exactly 1)."""
        self._fixed = None  # derived from the parts as they were
        for part in parts:
            if part == "post-net":
                self.postnet = None
            elif part == "LRP":
                for net in self.slices:
                    net.lrp = None
            elif part == "gain product":
                self.inverse_gain.table.copy_(1.0 / self.gain.lower_bound(self.gain.table))
            else:
                raise ValueError(f"MSINN has no part {part!r} to switch off")

    @torch.inference_mode()
    def analyse(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The latents y1 ... y5 of the INN's forward pass (the same at every rate)."""
        return self.flow(x)

    @torch.inference_mode()
    def compress(self, x: torch.Tensor, rate: float | None = None, reconstruct: bool = False,
                 analysis: list[torch.Tensor] | None = None, rate_map: torch.Tensor | None = None) -> dict[str, Any]:
        """One rANS stream. With ``reconstruct`` the walk goes on to the image and ``"x_hat"`` is what
        :meth:`decompress` returns for this stream (bit for bit; about 0.3 s more than encoding alone).
        ``analysis``: :meth:`analyse` of this ``x``, when the caller kept it (one image at several rates).
        ``rate_map`` (1, H/16, W/16): a rate per 16x16 block of ``x`` instead of ``rate`` (the decoder needs it too)."""
        if x.shape[0] != 1:
            raise ValueError("compress codes one image at a time (batch 1)")
        latents = self.analyse(x) if analysis is None else analysis
        arith = self._coding_arithmetic()
        coder = ResidualRansEncoder(arith.gaussian)
        x_tilde, _ = self._walk(coder, self._rate_tensor(rate, x), x.shape[-2:], latents, synthesize=reconstruct,
                                rate_map=rate_map, arith=arith)
        out: dict[str, Any] = {"strings": coder.finish(), "shape": {"size": list(x.shape[-2:])}}
        if reconstruct:
            out["x_hat"] = self._postprocess(x_tilde).clamp(0, 1)
        return out

    stream_count = 1

    def stream_geometry(self, height: int, width: int) -> dict:
        return {"size": [height, width]}

    @torch.inference_mode()
    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None,
                   rate_map: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        device = self.gain.table.device
        rate_t = torch.tensor([self.check_rate(rate)], device=device)
        arith = self._coding_arithmetic()
        coder = ResidualRansDecoder(arith.gaussian, strings[0])
        x_tilde, _ = self._walk(coder, rate_t, tuple(shape["size"]), rate_map=rate_map, arith=arith)
        coder.finish()
        return {"x_hat": self._postprocess(x_tilde).clamp(0, 1)}

    # ------------------------------------------------------------------ analysis helpers
    @torch.inference_mode()
    def latent_bits_map(self, x: torch.Tensor, rate: float | None = None,
                        rate_map: torch.Tensor | None = None) -> LatentBits:
        """Latents, decoded latents and estimated bits per position per scale (eval-mode, batch 1); ``rate_map``:
        as in :meth:`compress`."""
        if x.shape[0] != 1:
            raise ValueError("latent_bits_map takes one image (batch 1)")
        with eval_mode(self):
            arith = self._coding_arithmetic()
            coder = ResidualLikelihoodCoder(arith.gaussian)
            latents = self.flow(x)
            _, y_hats = self._walk(coder, self._rate_tensor(rate, x), x.shape[-2:], latents, rate_map=rate_map,
                                   arith=arith)
        names = [f"y{i + 1}" for i in range(len(latents))]
        likelihoods = coder.finish()
        bit_maps = [(-torch.log2(likelihoods[n][0])).sum(0).cpu().numpy() for n in names]
        return LatentBits(names, [y[0].cpu().numpy() for y in latents], [y[0].cpu().numpy() for y in y_hats],
                          bit_maps, x.shape[-2] * x.shape[-1])

    @torch.inference_mode()
    def scale_symbols(self, x: torch.Tensor, rate: float) -> dict[str, torch.Tensor]:
        """y1 ... y5's symbols, round((y − μ)·g) as the encoder codes them (the walk stops after y1's)."""
        with eval_mode(self):
            arith = self._coding_arithmetic()
            coder = ResidualLikelihoodCoder(arith.gaussian)
            self._walk(coder, self._rate_tensor(rate, x), x.shape[-2:], self.flow(x), synthesize=False, arith=arith)
        return {f"y{i + 1}": coder.symbols[f"y{i + 1}"].to(torch.int32) for i in range(len(LATENT_CHANNELS))}

    def scale_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """y1 (fine) ... y5 (coarse), the INN's output before quantisation."""
        return {f"y{i + 1}": y for i, y in enumerate(self.flow(x))}

    def scale_bits(self, x: torch.Tensor, rate: float) -> dict[str, torch.Tensor]:
        view = self.latent_bits_map(x, rate)
        return {name: torch.as_tensor(bits) for name, bits in zip(view.names, view.bit_maps, strict=True)}

    def estimate_bits(self, x: torch.Tensor, rate: float | None = None) -> dict[str, float]:
        """Estimated bits per latent (sum of -log2 likelihoods of the rounded residuals; batch 1)."""
        return self.latent_bits_map(x, rate).bits

    #: ``entropy="exact"`` (the default): the tables of a file's symbols come from fixed-point arithmetic
    exact_entropy = True

    @property
    def coding_options(self) -> dict[str, Any]:
        return {**super().coding_options, **({"anchor_colour": self.anchor_colour} if self.anchor_colour else {}),
                **({"entropy": "exact"} if self.entropy == "exact" else {})}

    @property
    def coding_switches(self) -> list[str]:
        if self.stable:
            return ["stable re-encoding mode (post-net and LRP left out)"]
        return [f"post-net {self.config['postnet'] or 'off'}", f"LRP {'on' if self.config['lrp'] else 'off'}"]

    # ------------------------------------------------------------------ rate range
    @torch.no_grad()
    def widen_anchors(self, anchors: int = 12) -> None:
        """Staged widening (8 -> 12 anchors): new gain rows extrapolate the last step in log-λ; λ list extended."""
        if not len(self.lambdas) < anchors <= len(LAMBDAS_12):
            raise ValueError(f"can widen from {len(self.lambdas)} up to {len(LAMBDAS_12)} anchors, not {anchors}")
        steps = _log_lambda_steps(len(self.lambdas), anchors)
        for table in self._gain_tables():
            table.widen(anchors, steps)
        self.lambdas = LAMBDAS_12[:anchors]
        self.config["anchors"] = anchors

    def load_state_dict(self, state_dict, strict: bool = True):
        """Also loads a checkpoint with fewer anchors (staged widening: the missing gain rows extrapolate the
        last step in log-λ, as :meth:`widen_anchors`)."""
        state = dict(state_dict)
        for name in ("gain", "inverse_gain", "scale_gain"):
            key = f"{name}.table"
            if key in state and state[key].shape[0] < len(self.lambdas):
                have = state[key].shape[0]
                state[key] = extrapolate_rows(state[key], len(self.lambdas), _log_lambda_steps(have, len(self.lambdas)))
        self._fixed = None  # derived from the old weights
        return super().load_state_dict(state, strict=strict)


def _log_lambda_steps(have: int, anchors: int) -> list[float]:
    """The new anchors' distances past anchor ``have - 1``, in units of its last step in log λ (LAMBDAS_12)."""
    lambdas = np.log(np.asarray(LAMBDAS_12[:anchors]))
    if have < 2:
        return [1.0] * (anchors - have)
    last_step = lambdas[have - 1] - lambdas[have - 2]
    return [float((lambdas[k] - lambdas[have - 1]) / last_step) for k in range(have, anchors)]


def msinn(**overrides) -> MSINNVRLIC:
    model = MSINNVRLIC(**overrides)
    model.decode_bytes_per_pixel = 4 * MSINNVRLIC.decode_bytes_per_pixel  # [not measured] paper width: 4x the mini's
    return model


def msinn_mini(**overrides) -> MSINNVRLIC:
    config: dict[str, Any] = dict(depths=(2, 2, 2, 2), hidden=(64, 64, 64, 96), context_width=64, postnet="mini")
    return MSINNVRLIC(**{**config, **overrides})


def msinn_mini_12(**overrides) -> MSINNVRLIC:
    """msinn-mini with 12 anchors; an 8-anchor msinn-mini state loads into it (new gain rows: see widen_anchors)."""
    return msinn_mini(**{"anchors": 12, **overrides})
