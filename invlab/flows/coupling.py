"""Coupling layers: half the channels condition an invertible map of the other half.

The conditioner (sub-network) is injected as ``subnet_constructor(c_in, c_out) -> nn.Module`` and must
not change the spatial size. The coupling zero-initialises the conditioner's last convolution, so every
coupling starts as the identity (the stability rule shared by InvCompress and MSINN-VRLIC).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from invlab.flows.base import InvertibleModule

SubnetConstructor = Callable[[int, int], nn.Module]


def bounded_scale(s: torch.Tensor, clamp: float = 1.0) -> torch.Tensor:
    """``exp(clamp * (2 sigmoid(s) - 1))``: a multiplicative factor in [e^-clamp, e^clamp], 1 at s = 0."""
    return torch.exp(clamp * (2.0 * torch.sigmoid(s) - 1.0))


def zero_init_last_conv(net: nn.Module) -> None:
    """Set the weights and bias of the last Conv2d in ``net`` to zero (identity-start coupling)."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("the conditioner has no Conv2d to zero-initialise")
    nn.init.zeros_(convs[-1].weight)
    if convs[-1].bias is not None:
        nn.init.zeros_(convs[-1].bias)


class AffineCoupling(InvertibleModule):
    """Affine coupling with a bounded scale (MSINN-VRLIC form).

    ``x1, x2 = x[:, :k], x[:, k:]``; ``s, t = net(x1)``; ``y2 = (x2 + t) * bounded_scale(s)``; ``y = [x1, y2]``.
    ``k`` defaults to half the channels (rounded down).
    """

    def __init__(self, channels: int, subnet_constructor: SubnetConstructor, split: int | None = None,
                 clamp: float = 1.0):
        super().__init__()
        self.split = channels // 2 if split is None else split
        if not 0 < self.split < channels:
            raise ValueError(f"split {self.split} must be inside (0, {channels})")
        self.clamp = clamp
        self.net = subnet_constructor(self.split, 2 * (channels - self.split))
        zero_init_last_conv(self.net)

    def _scale_shift(self, x1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.net(x1).chunk(2, dim=1)
        return bounded_scale(s, self.clamp), t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        scale, t = self._scale_shift(x1)
        return torch.cat([x1, (x2 + t) * scale], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        scale, t = self._scale_shift(y1)
        return torch.cat([y1, y2 / scale - t], dim=1)


class AdditiveCoupling(InvertibleModule):
    """Additive (NICE) coupling: ``y2 = x2 + net(x1)``; volume preserving."""

    def __init__(self, channels: int, subnet_constructor: SubnetConstructor, split: int | None = None):
        super().__init__()
        self.split = channels // 2 if split is None else split
        if not 0 < self.split < channels:
            raise ValueError(f"split {self.split} must be inside (0, {channels})")
        self.net = subnet_constructor(self.split, channels - self.split)
        zero_init_last_conv(self.net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        return torch.cat([x1, x2 + self.net(x1)], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        return torch.cat([y1, y2 - self.net(y1)], dim=1)


class DoubleAffineCoupling(InvertibleModule):
    """Two-sided affine coupling (InvCompress form), both halves transformed in turn.

    ``x1 = x[:, :k]`` (k = C/4 by default), ``x2 = x[:, k:]``::

        y1 = x1 * bounded_scale(G2(x2)) + H2(x2)
        y2 = x2 * bounded_scale(G1(y1)) + H1(y1)

    The inverse undoes y2 first, then y1.
    """

    def __init__(self, channels: int, subnet_constructor: SubnetConstructor, split: int | None = None,
                 clamp: float = 1.0):
        super().__init__()
        self.split = channels // 4 if split is None else split
        if not 0 < self.split < channels:
            raise ValueError(f"split {self.split} must be inside (0, {channels})")
        c1, c2 = self.split, channels - self.split
        self.clamp = clamp
        self.g1, self.h1 = subnet_constructor(c1, c2), subnet_constructor(c1, c2)
        self.g2, self.h2 = subnet_constructor(c2, c1), subnet_constructor(c2, c1)
        for net in (self.g1, self.h1, self.g2, self.h2):
            zero_init_last_conv(net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, : self.split], x[:, self.split :]
        y1 = x1 * bounded_scale(self.g2(x2), self.clamp) + self.h2(x2)
        y2 = x2 * bounded_scale(self.g1(y1), self.clamp) + self.h1(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, : self.split], y[:, self.split :]
        x2 = (y2 - self.h1(y1)) / bounded_scale(self.g1(y1), self.clamp)
        x1 = (y1 - self.h2(x2)) / bounded_scale(self.g2(x2), self.clamp)
        return torch.cat([x1, x2], dim=1)
