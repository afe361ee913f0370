"""Gain tables for continuous variable rate (Cui et al.; MSINN-VRLIC's extended gain units)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from compressai.ops import LowerBound
from torch import nn


class GainTable(nn.Module):
    """A learned (A anchors x C channels) table of positive gains, lower-bounded at ``bound``.

    ``forward(rate)`` takes rates of shape (B,) in [0, A-1] (fractional allowed) and returns (B, C)
    gains, interpolated geometrically between neighbouring anchors:
    ``g_lo ** (1 - t) * g_hi ** t`` with ``t = rate - floor(rate)``.
    """

    def __init__(self, anchors: int, channels: int, init: float | Sequence[float] = 1.0, bound: float = 0.01):
        super().__init__()
        if isinstance(init, (int, float)):
            table = torch.full((anchors, channels), float(init))
        else:
            if len(init) != anchors:
                raise ValueError("init needs one value per anchor")
            table = torch.tensor([[float(v)] * channels for v in init])
        self.table = nn.Parameter(table)
        self.lower_bound = LowerBound(bound)

    @property
    def anchors(self) -> int:
        return self.table.shape[0]

    def forward(self, rate: torch.Tensor) -> torch.Tensor:
        table = self.lower_bound(self.table)
        rate = rate.to(table.device, torch.float32).clamp(0, self.anchors - 1)
        lo = rate.floor().long().clamp(max=self.anchors - 1)
        hi = (lo + 1).clamp(max=self.anchors - 1)
        t = (rate - lo.float())[:, None]
        return torch.exp((1 - t) * torch.log(table[lo]) + t * torch.log(table[hi]))

    @torch.no_grad()
    def widen(self, new_anchors: int, steps: Sequence[float] | None = None) -> None:
        """Append anchors extrapolated geometrically from the last two rows (MSINN-VRLIC's 8 -> 12 widening).

        See :func:`extrapolate_rows`; ``steps`` default to 1, 2, ... (the last step repeated).
        """
        self.table = nn.Parameter(extrapolate_rows(self.table.data, new_anchors, steps,
                                                    float(self.lower_bound.bound)))


def extrapolate_rows(table: torch.Tensor, anchors: int, steps: Sequence[float] | None = None,
                     bound: float = 0.01) -> torch.Tensor:
    """Grow an (A x C) gain table to ``anchors`` rows, continuing its last step per channel in the log domain.

    New row k is ``last * (last / previous) ** steps[k]``: ``steps`` are the new anchors' distances past the
    last one in units of the last step (default 1, 2, ...; MSINN gives them in log-λ, so a gain keeps
    following its √λ-like trend). With a single row the new rows copy it. The step is taken on the rows as
    ``forward`` sees them (floored at ``bound``); the existing rows are returned unchanged, in their dtype.
    """
    extra = anchors - table.shape[0]
    if extra < 0:
        raise ValueError(f"cannot shrink a {table.shape[0]}-anchor table to {anchors}")
    steps = list(range(1, extra + 1)) if steps is None else list(steps)
    if len(steps) != extra:
        raise ValueError(f"need {extra} steps, got {len(steps)}")
    if extra == 0:
        return table.clone()
    log = table.float().clamp(min=bound).log()
    step = log[-1] - log[-2] if table.shape[0] > 1 else torch.zeros_like(log[-1])
    distances = torch.tensor(steps, dtype=log.dtype, device=log.device)[:, None]
    grown = (log[-1] + distances * step).exp().to(table.dtype)
    return torch.cat([table, grown], dim=0)
