"""Gaussian-mixture probability tables that every CPU builds alike, from fixed-point mixture parameters.

CompressAI's ``GaussianMixtureConditional._build_cdf`` builds one table per element from float32 scales, means
and weights with vectorised ``erf`` and a float32 cumulative sum: their last bits follow the CPU's kernels, and so
may a table entry. Here every step is either exact or an IEEE basic operation (+, -, x, /, floor: correctly
rounded, hence the same on every kernel), applied elementwise in a fixed order:

- the parameters are fixed-point activations (:mod:`invlab.entropy.exact`): σ and μ are exact multiples of 2^-12;
  σ is clamped to [0.11, 256] as CompressAI does;
- the weights are a softmax over the K components from a table of ``exp`` on the activations' grid (scalar
  ``math``, rounded to integers): ``w_k = e_k / (e_1 + ... + e_K)``, a sum of integers and one division;
- Φ, the standard normal CDF, is a table on a 1/256 grid over [-12, 12] (scalar ``math``, rounded to 2^-40),
  read by linear interpolation (error below 5·10^-7, far under the tables' 2^-16 resolution);
- a symbol's probability is the mixture of ``Φ((s + ½ - μ)/σ) - Φ((s - ½ - μ)/σ)``;
- the frequencies are integers: ``floor(p · M) + 1`` for each of the 2A + 1 symbols (so none is zero), with
  ``M = 2^16 - 1 - (2A + 1)``; what is left of 2^16 - 1 goes to the most frequent symbol (the first on ties), and
  the last slot (the coder's overflow symbol) gets 1, as in CompressAI's tables. Sums of integers are exact.

The tables' layout is CompressAI's (``cdf``, ``length = 2A + 3``, ``offset = -A``), so the same rANS coder reads them.
"""

from __future__ import annotations

import functools
import math

import torch
from compressai.entropy_models import GaussianMixtureConditional
from torch import nn

from invlab.entropy.exact import ONE, ExactConv, ExactNet, to_fixed
from invlab.layers import CausalContextConv2d

PRECISION = 16  # the tables' total is 2^16
SCALE_BOUNDS = (0.11, 256.0)  # σ is clamped to this range (CompressAI's)
PHI_STEPS = 256  # Φ's table: this many entries per unit of z
PHI_REACH = 12.0  # ... over [-12, 12]; beyond it Φ is 0 or 1 to within 2^-40
PHI_BITS = 40  # Φ's entries rounded to multiples of 2^-40
EXP_REACH = 32.0  # exp(-d) for logit differences d in [0, 32] on the activations' grid; beyond it exp(-32)
EXP_BITS = 40  # exp's entries as integers round(exp(-d) · 2^40)


@functools.lru_cache(maxsize=1)
def _phi_table() -> torch.Tensor:
    steps = int(PHI_REACH * PHI_STEPS)
    values = [round(0.5 * math.erfc(-(k / PHI_STEPS) / math.sqrt(2.0)) * 2**PHI_BITS) / 2**PHI_BITS
              for k in range(-steps, steps + 1)]
    return torch.tensor(values + [values[-1]], dtype=torch.float64)  # one entry past the end: interpolation at Z


@functools.lru_cache(maxsize=1)
def _exp_table() -> torch.Tensor:
    reach = int(EXP_REACH * ONE)
    return torch.tensor([float(round(math.exp(-k / ONE) * 2**EXP_BITS)) for k in range(reach + 1)],
                        dtype=torch.float64)


def standard_normal_cdf(z: torch.Tensor) -> torch.Tensor:
    """Φ(z) (float64) from the table, by linear interpolation: basic operations only, the same on every CPU."""
    table = _phi_table()
    u = (z.clamp(-PHI_REACH, PHI_REACH) + PHI_REACH) * PHI_STEPS  # exact shift; one rounded product
    index = torch.floor(u)
    t = u - index
    i = index.long()
    low = table.take(i)
    return low + t * (table.take(i + 1) - low)


def mixture_weights(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 0 of fixed-point logits (K, N): integers from the exp table, one division per weight."""
    differences = (logits.amax(dim=0, keepdim=True) - logits).clamp_(0, EXP_REACH * ONE)  # exact: integers
    e = _exp_table().take(differences.long())
    total = e[0].clone()
    for k in range(1, e.shape[0]):  # a fixed order (exact anyway: integers below 2^53)
        total += e[k]
    return e / total


def exact_mixture_cdfs(
    scales: torch.Tensor, means: torch.Tensor, logits: torch.Tensor, abs_max: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rANS tables (cdfs, lengths, offsets) over the values [-A, A] for N elements; inputs are fixed-point
    activations (float64 integers), each (K, N): the components' σ, μ and the weights' logits."""
    low, high = (math.floor(b * ONE) for b in SCALE_BOUNDS)
    sigma = scales.clamp(low, high) / ONE  # exact: a power-of-two division of integers below 2^24
    mu = means / ONE
    weights = mixture_weights(logits)
    bounds = torch.arange(-abs_max, abs_max + 2, dtype=torch.float64) - 0.5  # s - ½ for s = -A ... A + 1
    pmf = None
    for k in range(scales.shape[0]):
        cdf = standard_normal_cdf((bounds - mu[k, :, None]) / sigma[k, :, None])
        part = (cdf[:, 1:] - cdf[:, :-1]) * weights[k, :, None]
        pmf = part if pmf is None else pmf.add_(part)
    symbols = 2 * abs_max + 1
    total = 2**PRECISION - 1
    frequencies = torch.floor(pmf * float(total - symbols)).long().add_(1)
    left = total - frequencies.sum(dim=1)  # >= 0: the probabilities sum to at most 1 (to within float rounding)
    frequencies[torch.arange(len(frequencies)), frequencies.argmax(dim=1)] += left
    n = len(frequencies)
    cdf = torch.zeros(n, symbols + 2, dtype=torch.int64)
    torch.cumsum(frequencies, dim=1, out=cdf[:, 1:-1])
    cdf[:, -1] = total + 1
    return cdf.int(), torch.full((n,), symbols + 2, dtype=torch.int32), torch.full((n,), -abs_max, dtype=torch.int32)


class FixedMixtureArithmetic:
    """A :class:`~invlab.entropy.mixture.MixtureArithmetic` in exact fixed point: every network between the symbols
    and the tables runs as an :class:`~invlab.entropy.exact.ExactNet` (derived from the float weights on first use,
    kept for this model), and the tables are :func:`exact_mixture_cdfs`. Build a new one when the weights change."""

    def __init__(self):
        self._nets: dict[nn.Module, ExactNet | ExactConv] = {}

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return to_fixed(x)

    def apply(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if module not in self._nets:
            self._nets[module] = ExactNet(module)
        return self._nets[module](x)

    def mixture(self, head: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scales, means, logits): the weights stay logits, :func:`exact_mixture_cdfs` takes their softmax."""
        return head.split(self.apply(head.net, features))

    def context(self, context: CausalContextConv2d, window: torch.Tensor) -> torch.Tensor:
        if context not in self._nets:
            self._nets[context] = ExactConv(context, padding=(0, 0))  # read on its window: no padding
        return self._nets[context](to_fixed(window))

    def tables(
        self, gmm: GaussianMixtureConditional, scales: torch.Tensor, means: torch.Tensor, weights: torch.Tensor,
        abs_max: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return exact_mixture_cdfs(scales, means, weights, abs_max)
