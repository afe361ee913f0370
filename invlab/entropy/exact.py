"""Entropy parameters that every CPU computes alike: integer networks evaluated exactly, tables from scalar math.

A file decodes only where the decoder picks, for every symbol, the probability table the encoder picked. When the
parameters that choose it (σ, μ) come out of float convolutions, their last bits depend on the CPU's kernels
(oneDNN's instruction set, ATen's vectorised code), and a σ near the boundary of two tables lands on either side.
Here the networks that compute them run in fixed point, exactly:

- activations are integers ``a`` standing for ``a · 2^-FRACTION_BITS``, clamped to ±``ACTIVATION_LIMIT``;
- smooth nonlinearities (GELU, tanh) are tables over the activations' grid, computed once with Python's scalar
  ``math`` (:class:`ExactLookup`);
- each layer's weights are integers per output channel, ``w_int = round(w · 2^e)`` with the largest ``e`` that
  keeps them within ±2^15 (``WEIGHT_BITS``), its bias ``round(b · 2^(e + FRACTION_BITS))``;
- a layer's sum is computed in float64 on integer values: every product and every partial sum is an integer below
  2^53 (checked when the layer is built: fan-in x max |w_int| x ``ACTIVATION_LIMIT``), so it is exact in any
  order, on any kernel; it is brought back to the activation scale by a rounding division by a power of two
  (exact too), then clamped; ReLU is exact on integers, LeakyReLU multiplies by a 16-bit fixed-point slope;
- the table index is found among integer thresholds ``floor(table[k] · 2^FRACTION_BITS)``.

Why float64 on integers and not integer kernels: PyTorch's CPU convolutions for integer tensors are not offered
(and would be slow), while float64 convolution is everywhere and exact under the bound above. It costs time only
where the networks are large (the hyper-synthesis of a baseline runs at 1/16 of the image's resolution).

The integer form is derived from the float weights when a model is loaded, by elementwise rounding of exactly
representable values, so every machine derives the same integers from the same weight file; nothing new is stored.
The probability tables are computed the same way everywhere too: the Gaussian scale table and its CDFs with
Python's scalar ``math`` in float64 (:func:`exact_gaussian_tables`), a factorised prior's CDFs in float64
(:func:`float64_bottleneck_tables`; a rounding flip there would need a float64 difference at a 16-bit boundary).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import MaskedConv2d
from torch import nn

from invlab.entropy.checkerboard import MultistageMaskedConv2d
from invlab.layers import ChannelsLast

FRACTION_BITS = 12  # activations: a · 2^-12
ACTIVATION_LIMIT = 2**23 - 1  # |a| ≤ this, i.e. |value| < 2048
WEIGHT_BITS = 16  # |w_int| ≤ 2^15
BIAS_BITS = 48  # |b_int| < 2^48
SLOPE_BITS = 16  # LeakyReLU's slope as round(slope · 2^16) / 2^16
EXACT_LIMIT = 2.0**53  # float64 holds every integer below this exactly
ONE = float(2**FRACTION_BITS)
BAND_PIXELS = 64 * 64  # larger convolutions run a band of rows at a time (the same sums, less memory)
LOOKUP_CHANNELS = 8  # tables are looked up this many channels at a time (small temporaries)


def to_fixed(x: torch.Tensor) -> torch.Tensor:
    """A float tensor as activations (float64 integers); ``x`` must be the same on every machine (e.g. symbols
    plus stored medians, which float32 adds exactly alike everywhere)."""
    return torch.round(x.double() * ONE).clamp_(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)


def from_fixed(a: torch.Tensor) -> torch.Tensor:
    """Activations as float32 values (exact: |a| < 2^24)."""
    return (a / ONE).float()


class ExactLayer:
    """One layer of an :class:`ExactNet` (plain tensors, not an ``nn.Module``: it is derived, never stored)."""

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ExactConv(ExactLayer):
    """A ``Conv2d`` or ``ConvTranspose2d`` with integer weights per output channel, summed exactly in float64
    (``padding``: instead of the convolution's own, e.g. 0 for a context read on a crop of its window's size)."""

    def __init__(self, conv: nn.Conv2d | nn.ConvTranspose2d, padding: tuple[int, int] | None = None):
        transposed = isinstance(conv, nn.ConvTranspose2d)
        if conv.groups != 1 or conv.dilation != (1, 1) or conv.padding_mode != "zeros":
            raise ValueError(f"{conv} is not supported by the exact arithmetic")
        w = conv.weight.detach()
        mask = getattr(conv, "mask", None)
        if mask is not None:  # a context model's masked kernel: the weights it convolves with
            w = w * mask
        w = w.double().cpu()
        out_dim = 1 if transposed else 0
        per_out = w.transpose(0, out_dim).reshape(w.shape[out_dim], -1).abs().amax(dim=1)
        # max|w| < 2^k (frexp: exact, the same everywhere), so max|w| · 2^e ≤ 2^15 with e = 15 - k; and the bias
        # within 2^BIAS_BITS: |b| < 2^kb, e ≤ BIAS_BITS - FRACTION_BITS - kb (binds only for a channel whose weights
        # are negligible beside its bias, e.g. all zero)
        _, k = torch.frexp(per_out.clamp_min(2.0**-60))
        bias = torch.zeros(len(k), dtype=torch.float64) if conv.bias is None else conv.bias.detach().double().cpu()
        _, kb = torch.frexp(bias.abs().clamp_min(2.0**-60))
        e = torch.minimum(WEIGHT_BITS - 1 - k, BIAS_BITS - FRACTION_BITS - kb).double()
        shape = [1, -1, 1, 1] if transposed else [-1, 1, 1, 1]
        self.weight = torch.round(w * torch.pow(2.0, e).reshape(shape))
        self.bias = torch.round(bias * torch.pow(2.0, e + FRACTION_BITS)).reshape(1, -1, 1, 1)
        self.unscale = torch.pow(2.0, -e).reshape(1, -1, 1, 1)  # back to the activation scale: a power of two
        self.transposed, self.stride = transposed, conv.stride
        self.padding = conv.padding if padding is None else padding
        self.output_padding = conv.output_padding if transposed else None
        fan_in = w[0].numel() if not transposed else w[0].numel() // w.shape[1] * w.shape[0]  # in x k x k
        bound = fan_in * float(self.weight.abs().max()) * ACTIVATION_LIMIT + float(self.bias.abs().max())
        if bound >= EXACT_LIMIT:
            raise ValueError(f"{conv}: sums up to {bound:.3g} are not exact in float64")

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            acc = F.conv_transpose2d(a, self.weight, None, self.stride, self.padding, self.output_padding)
        elif self.stride == (1, 1) and a.shape[-2] * a.shape[-1] > BAND_PIXELS:
            acc = self._in_bands(a)
        else:
            acc = F.conv2d(a, self.weight, None, self.stride, self.padding)
        # (acc + bias) · unscale + 0.5, floored, in place: the same operations, no temporaries of the output's size
        return acc.add_(self.bias).mul_(self.unscale).add_(0.5).floor_().clamp_(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)

    def _in_bands(self, a: torch.Tensor) -> torch.Tensor:
        """The same sums, a band of rows at a time (float64 convolution unfolds its input: this bounds the memory);
        every sum is exact, so the bands give the very numbers of one convolution."""
        pad_h, pad_w = self.padding
        height, width = a.shape[-2:]
        out_h = height + 2 * pad_h - self.weight.shape[-2] + 1
        rows = max(1, BAND_PIXELS // width)
        padded = F.pad(a, (0, 0, pad_h, pad_h))
        out = a.new_empty(a.shape[0], self.weight.shape[0], out_h, width + 2 * pad_w - self.weight.shape[-1] + 1)
        for r in range(0, out_h, rows):
            band = padded[..., r : r + min(rows, out_h - r) + self.weight.shape[-2] - 1, :]
            out[..., r : r + rows, :] = F.conv2d(band, self.weight, None, 1, (0, pad_w))
        return out


class ExactReLU(ExactLayer):
    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return a.clamp_min(0.0)


class ExactLeakyReLU(ExactLayer):
    def __init__(self, slope: float):
        self.slope = float(round(slope * 2**SLOPE_BITS))

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return torch.where(a >= 0, a, torch.floor(a * self.slope / 2**SLOPE_BITS))


class ExactLookup(ExactLayer):
    """A smooth function as a table over the activations' grid on [-limit, limit] (scalar float64 ``math``, the
    same on every CPU kernel); beyond it the table's end values (the function is flat there to within half a step
    of the grid), or with ``identity_above`` the activation itself above ``limit`` (GELU)."""

    def __init__(self, function: Callable[[float], float], limit: float, identity_above: bool = False):
        self.reach = int(limit * ONE)
        self.table = torch.tensor([round(function(k / ONE) * ONE) for k in range(-self.reach, self.reach + 1)],
                                  dtype=torch.float64)
        self.identity_above = identity_above

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(a)
        chunks = (a.split(LOOKUP_CHANNELS, 1), out.split(LOOKUP_CHANNELS, 1)) if a.dim() > 1 else ((a,), (out,))
        for part, into in zip(*chunks, strict=True):  # a few channels at a time: small temporaries
            into.copy_(self.table.take(part.clamp(-self.reach, self.reach).add_(self.reach).long()))
            if self.identity_above:
                above = part > self.reach
                into[above] = part[above]
        return out


@functools.lru_cache(maxsize=1)
def exact_gelu() -> ExactLookup:
    """GELU, x·Φ(x): within half a grid step of 0 below -8 and of x above 8."""
    return ExactLookup(lambda x: 0.5 * x * math.erfc(-x / math.sqrt(2.0)), 8.0, identity_above=True)


@functools.lru_cache(maxsize=1)
def exact_tanh() -> ExactLookup:
    """tanh: ±1 to within half a grid step beyond ±10."""
    return ExactLookup(math.tanh, 10.0)


class ExactPixelShuffle(ExactLayer):
    """Sub-pixel upsampling: a permutation of the activations, exact as it is."""

    def __init__(self, factor: int):
        self.factor = factor

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(a, self.factor)


_LAYERS: dict[type, Callable[[nn.Module], ExactLayer]] = {
    nn.Conv2d: ExactConv,
    nn.ConvTranspose2d: ExactConv,
    MaskedConv2d: ExactConv,
    MultistageMaskedConv2d: ExactConv,
    nn.PixelShuffle: lambda m: ExactPixelShuffle(m.upscale_factor),
    nn.ReLU: lambda m: ExactReLU(),
    nn.LeakyReLU: lambda m: ExactLeakyReLU(m.negative_slope),
    nn.GELU: lambda m: _exact_gelu_of(m),
}


def _exact_gelu_of(module: nn.GELU) -> ExactLayer:
    if module.approximate != "none":
        raise ValueError("only the exact GELU (approximate='none') has an exact form")
    return exact_gelu()


class ExactNet:
    """An ``nn.Sequential`` (nested ones and their subclasses that only change the memory layout flattened) of
    convolutions, (leaky) ReLUs, GELUs and sub-pixel shuffles, or one convolution, in exact fixed point:
    activations in, activations out."""

    def __init__(self, net: nn.Module):
        modules = _flat(net)
        unsupported = [type(m).__name__ for m in modules if type(m) not in _LAYERS]
        if unsupported:
            raise ValueError(f"no exact form for {unsupported}")
        self.layers = [_LAYERS[type(m)](m) for m in modules]

    @torch.no_grad()
    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            a = layer(a)
        return a


def _flat(net: nn.Module) -> list[nn.Module]:
    if type(net) in (nn.Sequential, ChannelsLast):  # ChannelsLast: a layout, not arithmetic
        return [m for child in net for m in _flat(child)]
    return [net]


# ---------------------------------------------------------------------- tables and indices
def exact_scale_table(low: float = 0.11, high: float = 256.0, levels: int = 64) -> torch.Tensor:
    """CompressAI's default scale table (log-spaced), computed with scalar float64 math, then as float32."""
    step = (math.log(high) - math.log(low)) / (levels - 1)
    return torch.tensor([math.exp(math.log(low) + i * step) for i in range(levels)], dtype=torch.float32)


def scale_thresholds(scale_table: torch.Tensor) -> torch.Tensor:
    """``floor(table[k] · 2^FRACTION_BITS)`` for all but the last entry: σ_int ≤ threshold k ⟺ σ ≤ table[k]."""
    return torch.floor(scale_table[:-1].double() * ONE)


def exact_indexes(scales: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Table indices of fixed-point scales (integers): how many thresholds lie below each, as ``build_indexes``."""
    return torch.searchsorted(thresholds, scales.contiguous(), right=False).int()


def exact_gaussian_tables(gaussian: GaussianConditional) -> None:
    """Set ``gaussian``'s scale table (:func:`exact_scale_table`) and CDF tables, computed with scalar float64
    math (``math.erfc``) instead of vectorised float32 kernels; CompressAI's own quantisation of each pmf."""
    table, cdf, offset, length = _gaussian_tables(float(gaussian.tail_mass), gaussian.entropy_coder_precision)
    gaussian.scale_table, gaussian._quantized_cdf = table.clone(), cdf.clone()
    gaussian._offset, gaussian._cdf_length = offset.clone(), length.clone()


@functools.lru_cache(maxsize=4)
def _gaussian_tables(tail_mass: float, precision: int) -> tuple[torch.Tensor, ...]:
    gaussian = GaussianConditional(None, tail_mass=tail_mass, entropy_coder_precision=precision)
    table = exact_scale_table()
    multiplier = -float(gaussian._standardized_quantile(tail_mass / 2))
    centres = [math.ceil(float(s) * multiplier) for s in table.double()]
    lengths = [2 * c + 1 for c in centres]
    max_length = max(lengths)

    def cumulative(x: float) -> float:
        return 0.5 * math.erfc(-(2**-0.5) * x)

    pmfs = torch.zeros(len(table), max_length, dtype=torch.float64)
    tails = torch.zeros(len(table), 1, dtype=torch.float64)
    for i, (scale, centre) in enumerate(zip(table.double().tolist(), centres, strict=True)):
        # the pmf at |j - centre| = d, for d = 0 ... centre, mirrored (only the first 2·centre + 1 entries are used)
        half = [cumulative((0.5 - d) / scale) - cumulative((-0.5 - d) / scale) for d in range(centre + 1)]
        pmfs[i, : 2 * centre + 1] = torch.tensor(half[:0:-1] + half, dtype=torch.float64)
        tails[i, 0] = 2 * cumulative((-0.5 - centre) / scale)
    lengths_t = torch.tensor(lengths, dtype=torch.int32)
    cdf = gaussian._pmf_to_cdf(pmfs, tails, lengths_t, max_length)
    return table, cdf, -torch.tensor(centres, dtype=torch.int32), lengths_t + 2


def float64_bottleneck_tables(bottleneck: EntropyBottleneck) -> None:
    """Rebuild a factorised prior's CDF tables from a float64 copy of its density (its quantiles stay float32)."""
    twin = EntropyBottleneck(bottleneck.channels, tail_mass=float(bottleneck.tail_mass),
                             init_scale=bottleneck.init_scale, filters=bottleneck.filters,
                             entropy_coder_precision=bottleneck.entropy_coder_precision)
    mine = dict(bottleneck.named_parameters())
    with torch.no_grad():
        for name, parameter in twin.named_parameters():
            parameter.copy_(mine[name])
    twin.double().update(force=True)
    bottleneck._quantized_cdf, bottleneck._offset = twin._quantized_cdf, twin._offset
    bottleneck._cdf_length = twin._cdf_length
