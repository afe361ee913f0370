"""The arithmetic of MSINN's coding walk: float (training, and files made before) or exact fixed point.

The walk (:meth:`MSINNVRLIC._walk`) is written once; the operations it needs between the symbols and the next
symbols' tables — gains, the channel and spatial contexts, the fusion, dequantisation, the latent residual
prediction, the inverse of a flow level (the channel context's ĥ) — come from one of two classes:

- :class:`FloatArithmetic`: the model's float networks, as trained.
- :class:`FixedArithmetic`: the same networks in exact fixed point (:mod:`invlab.entropy.exact`): activations are
  integers standing for multiples of 2^-12, convolutions are sums of integers in float64 (exact in any order),
  GELU / tanh / the coupling's bounded scale are tables computed with scalar ``math``, the inverse 1x1 convolutions
  are inverted by scalar Gauss-Jordan elimination, the gains by scalar ``math`` too. Every CPU computes the same
  σ, μ and table index from the same symbols, so a file decodes to the same symbols wherever it is decoded. Only
  the finest level's inverse (to the picture x̃) and the post-net stay float: the picture may differ by float
  rounding across machines, never the symbols. The finest slice's latent residual prediction serves only the picture
  too, and runs in float (about a third of the decoder's fixed-point work).
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from compressai.entropy_models import GaussianConditional
from compressai.layers import ResidualBlock
from torch import nn

from invlab.entropy.exact import (
    ACTIVATION_LIMIT,
    EXACT_LIMIT,
    ONE,
    ExactConv,
    ExactLeakyReLU,
    ExactLookup,
    ExactNet,
    exact_gaussian_tables,
    exact_tanh,
    to_fixed,
)
from invlab.flows.actnorm import ActNorm
from invlab.flows.conv1x1 import InvConv1x1
from invlab.flows.coupling import AffineCoupling
from invlab.flows.squeeze import Squeeze
from invlab.flows.units import InvUnit

if TYPE_CHECKING:
    from invlab.models.msinn.context import SliceEntropyModel
    from invlab.models.msinn.model import MSINNVRLIC

LRP_WEIGHT = 0.5  # ŷ + 0.5·tanh(LRP)·g'
MULTIPLIER_BITS = 20  # per-channel and per-element multipliers: round(m · 2^20)
SCALE_REACH = 20.0  # the coupling's raw scale s: 1/bounded_scale(s) is flat beyond ±20 within 2^-20


class FloatArithmetic:
    """The walk in the model's own float networks (training, evaluation, files without an ``entropy`` option)."""

    dtype = torch.float32

    def __init__(self, model: MSINNVRLIC):
        self.model = model
        self.gaussian = model.gaussian_conditional

    def gains(self, rate, shapes, rate_map):
        return self.model._slice_gains(rate, shapes, rate_map)

    def channel(self, net: SliceEntropyModel, h, like):
        return net.channel_params(h, like)

    def fuse(self, net: SliceEntropyModel, context, spatial):
        return net.fuse(context, spatial)

    def coded(self, scale, scale_gain, mean):
        """(σ, μ) as the coder takes them."""
        return scale * scale_gain, mean

    def dequantise(self, q, inverse_gain, mean):
        return q * inverse_gain + mean

    def spatial(self, net: SliceEntropyModel, y_anchors, anchors):
        return net.spatial_context(y_anchors, anchors)

    def predict_residual(self, net: SliceEntropyModel, y_hat, h, inverse_gain):
        return y_hat + LRP_WEIGHT * torch.tanh(net.residual_prediction(y_hat, h)) * inverse_gain

    def inverse_level(self, index: int, h):
        return self.model.flow.inverse_level(index, h)

    def to_float(self, t):
        return t


class FixedArithmetic:
    """The walk in exact fixed point (see the module docstring); derived from a model's weights, never stored.

    Raises ``ValueError`` for a layer without an exact form (e.g. LU-parametrised 1x1 convolutions)."""

    dtype = torch.float64

    def __init__(self, model: MSINNVRLIC):
        self.model = model
        self.gaussian = GaussianConditional(None).eval()  # eval: the likelihood walk rounds, as the coder does
        exact_gaussian_tables(self.gaussian)
        self.slices = [_ExactSlice(net) for net in model.slices]
        self.levels = [None] + [_ExactLevel(level) for level in list(model.flow.levels)[1:]]  # level 0: float
        self.tables = [_scalar_table(t) for t in model._gain_tables()]
        self.anchors = len(model.lambdas)

    # the gains: scalar math on the rates, the same everywhere
    def gains(self, rate, shapes, rate_map):
        tables = [functools.partial(self._rows, k) for k in range(3)]
        return self.model._slice_gains(rate, shapes, rate_map, tables=tables)

    def _rows(self, which: int, rates: torch.Tensor) -> torch.Tensor:
        """Table ``which``'s gains (N, channels) at rates (N,), float64, each distinct rate computed once."""
        values = rates.tolist()
        known = {r: self._gains_at(which, float(r)) for r in set(values)}
        return torch.tensor([known[r] for r in values], dtype=torch.float64)

    def _gains_at(self, which: int, rate: float) -> list[float]:
        """GainTable's geometric interpolation between anchors, in scalar float64 ``math``."""
        rate = min(max(rate, 0.0), self.anchors - 1.0)
        lo = min(int(math.floor(rate)), self.anchors - 1)
        hi = min(lo + 1, self.anchors - 1)
        t = rate - lo
        table = self.tables[which]
        return [math.exp((1 - t) * math.log(a) + t * math.log(b)) for a, b in zip(table[lo], table[hi], strict=True)]

    def channel(self, net: SliceEntropyModel, h, like):
        return self._slice(net).channel(h, like)

    def fuse(self, net: SliceEntropyModel, context, spatial):
        return self._slice(net).fusion(torch.cat([context, spatial], dim=1)).chunk(2, dim=1)

    def coded(self, scale, scale_gain, mean):
        return scale * scale_gain / ONE, mean / ONE  # σ·s: one rounding of an exact product; both exact otherwise

    def dequantise(self, q, inverse_gain, mean):
        return torch.round(q.double() * inverse_gain * ONE) + mean

    def spatial(self, net: SliceEntropyModel, y_anchors, anchors):
        return self._slice(net).spatial(y_anchors) * (~anchors).double()

    def predict_residual(self, net: SliceEntropyModel, y_hat, h, inverse_gain):
        if net is self.model.slices[0]:  # the finest slice's LRP only serves the picture: float, as the picture
            floating = FloatArithmetic(self.model).predict_residual(net, self.to_float(y_hat), self.to_float(h),
                                                                   inverse_gain.float())
            return to_fixed(floating)
        exact = self._slice(net)
        t = exact_tanh()(exact.lrp(y_hat if h is None else torch.cat([y_hat, h], dim=1)))
        return y_hat + torch.round(LRP_WEIGHT * t * inverse_gain)

    def inverse_level(self, index: int, h):
        if index == 0:  # the picture x̃: float (see the module docstring)
            return self.model.flow.inverse_level(0, self.to_float(h))
        return self.levels[index](h)

    def to_float(self, t):
        return (t / ONE).float()

    def _slice(self, net: SliceEntropyModel) -> _ExactSlice:
        return self.slices[list(self.model.slices).index(net)]


def _scalar_table(table: nn.Module) -> list[list[float]]:
    """A gain table's rows as :class:`GainTable` uses them (floored at its bound), as Python floats."""
    bound = float(table.lower_bound.bound)
    return [[max(float(v), bound) for v in row] for row in table.table.detach().double().tolist()]


class _ExactSlice:
    """One slice's networks in fixed point."""

    def __init__(self, net: SliceEntropyModel):
        self.prior = None if net.channel_context is not None else to_fixed(net.prior_scale.detach())
        self.context = None if net.channel_context is None else ExactNet(net.channel_context)
        self.spatial = ExactNet(net.spatial_context.net)
        self.fusion = ExactNet(net.fusion)
        self.lrp = None if net.lrp is None else ExactNet(net.lrp)

    def channel(self, h, like):
        if self.context is None:
            scale = self.prior[None, :, None, None].expand(like.shape)
            return torch.cat([scale, torch.zeros(like.shape, dtype=torch.float64)], dim=1)
        return self.context(h)


class _ExactLevel:
    """A flow level's inverse (units in reverse, then the un-squeeze) in fixed point."""

    def __init__(self, level: nn.Module):
        blocks = list(level.blocks)
        if not isinstance(blocks[0], Squeeze) or not all(isinstance(b, InvUnit) for b in blocks[1:]):
            raise ValueError("no exact form for this flow level (squeeze + InvUnits expected)")
        self.factor = blocks[0].factor
        self.steps = [step for unit in reversed(blocks[1:]) for step in reversed(_exact_unit(unit))]

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            a = step(a)
        return F.pixel_shuffle(a, self.factor)


def _exact_unit(unit: InvUnit) -> list:
    steps = []
    for block in unit.blocks:
        if isinstance(block, ActNorm):
            steps.append(_ExactActNormInverse(block))
        elif type(block) is InvConv1x1:
            steps.append(_ExactConv1x1Inverse(block))
        elif isinstance(block, AffineCoupling):
            steps.append(_ExactCouplingInverse(block))
        else:
            raise ValueError(f"no exact inverse for {type(block).__name__}")
    return steps


def _multiply(a: torch.Tensor, multiplier: torch.Tensor) -> torch.Tensor:
    """a · m / 2^MULTIPLIER_BITS, rounded: ``multiplier`` holds integers round(m · 2^MULTIPLIER_BITS)."""
    return torch.floor(a * multiplier / 2.0**MULTIPLIER_BITS + 0.5).clamp_(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)


class _ExactActNormInverse:
    """y · exp(-log_scale) - bias, per channel."""

    def __init__(self, norm: ActNorm):
        scales = [math.exp(-v) for v in norm.log_scale.detach().double().reshape(-1).tolist()]
        self.multiplier = torch.tensor([round(v * 2**MULTIPLIER_BITS) for v in scales],
                                       dtype=torch.float64).reshape(1, -1, 1, 1)
        if float(self.multiplier.max()) * ACTIVATION_LIMIT >= EXACT_LIMIT:
            raise ValueError("an ActNorm scale too large for exact products")
        self.bias = to_fixed(norm.bias.detach())

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return _multiply(a, self.multiplier) - self.bias


class _ExactConv1x1Inverse:
    """The inverse 1x1 convolution, its matrix inverted by scalar Gauss-Jordan elimination (the same everywhere)."""

    def __init__(self, conv: InvConv1x1):
        inverse = torch.tensor(_gauss_jordan_inverse(conv.weight.detach().double().tolist()), dtype=torch.float64)
        layer = nn.Conv2d(inverse.shape[1], inverse.shape[0], 1, bias=False).double()
        with torch.no_grad():
            layer.weight.copy_(inverse[:, :, None, None])
        self.conv = ExactConv(layer)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        return self.conv(a)


def _gauss_jordan_inverse(matrix: list[list[float]]) -> list[list[float]]:
    """The inverse of a square matrix by Gauss-Jordan elimination with partial pivoting, in scalar float64."""
    n = len(matrix)
    rows = [list(map(float, row)) + [1.0 if i == j else 0.0 for j in range(n)] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        if rows[pivot][col] == 0.0:
            raise ValueError("a 1x1 convolution's matrix is singular")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        p = rows[col][col]
        rows[col] = [v / p for v in rows[col]]
        pivot_row = rows[col]
        for r in range(n):
            if r != col and rows[r][col] != 0.0:
                f = rows[r][col]
                rows[r] = [v - f * w for v, w in zip(rows[r], pivot_row, strict=True)]
    return [row[n:] for row in rows]


@functools.lru_cache(maxsize=4)
def _inverse_scale_table(clamp: float) -> ExactLookup:
    """1 / bounded_scale(s) = exp(-clamp · (2σ(s) - 1)) as multipliers round(· 2^MULTIPLIER_BITS) over s's grid
    (saturated beyond ±SCALE_REACH)."""
    return ExactLookup(lambda s: math.exp(-clamp * (2.0 / (1.0 + math.exp(-s)) - 1.0)) * 2**MULTIPLIER_BITS / ONE,
                       SCALE_REACH)


class _ExactCouplingInverse:
    """x2 = y2 / bounded_scale(s) - t with (s, t) = net(y1); the conditioner a ResidualBlock and a 1x1 head."""

    def __init__(self, coupling: AffineCoupling):
        layers = [m for m in coupling.net] if isinstance(coupling.net, nn.Sequential) else [coupling.net]
        if len(layers) != 2 or type(layers[0]) is not ResidualBlock or type(layers[1]) is not nn.Conv2d:
            raise ValueError("no exact form for this coupling's conditioner (ResidualBlock + 1x1 conv expected)")
        block = layers[0]
        self.conv1, self.conv2 = ExactConv(block.conv1), ExactConv(block.conv2)
        self.relu = ExactLeakyReLU(block.leaky_relu.negative_slope)
        self.skip = None if block.skip is None else ExactConv(block.skip)
        self.head = ExactConv(layers[1])
        self.split = coupling.split
        self.inverse_scale = _inverse_scale_table(float(coupling.clamp))

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        y1, y2 = a[:, : self.split], a[:, self.split :]
        hidden = self.relu(self.conv2(self.relu(self.conv1(y1))))
        hidden = (hidden + (y1 if self.skip is None else self.skip(y1))).clamp_(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)
        s, t = self.head(hidden).chunk(2, dim=1)
        return torch.cat([y1, _multiply(y2, self.inverse_scale(s)) - t], dim=1)
