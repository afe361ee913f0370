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
    def widen(self, new_anchors: int) -> None:
        """Append anchors as copies of the last row (MSINN-VRLIC's 8 -> 12 anchor widening)."""
        extra = self.table[-1:].repeat(new_anchors - self.anchors, 1)
        self.table = nn.Parameter(torch.cat([self.table.data, extra], dim=0))
