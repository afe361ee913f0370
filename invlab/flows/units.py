"""Composite invertible units and standard conditioners."""

from __future__ import annotations

from torch import nn

from invlab.flows.actnorm import ActNorm
from invlab.flows.base import InvertibleSequence
from invlab.flows.conv1x1 import InvConv1x1, InvConv1x1LU
from invlab.flows.coupling import AffineCoupling, SubnetConstructor


def residual_conditioner(hidden: int) -> SubnetConstructor:
    """MSINN-style conditioner: CompressAI ``ResidualBlock(c_in -> hidden)`` then a 1x1 head (zero-init)."""
    from compressai.layers import ResidualBlock

    def make(c_in: int, c_out: int) -> nn.Module:
        return nn.Sequential(ResidualBlock(c_in, hidden), nn.Conv2d(hidden, c_out, 1))

    return make


def conv_conditioner(hidden: int, kernel: int = 3) -> SubnetConstructor:
    """Plain conditioner: conv k x k, LeakyReLU, conv 1x1, LeakyReLU, conv k x k (last one zero-init)."""

    def make(c_in: int, c_out: int) -> nn.Module:
        pad = kernel // 2
        return nn.Sequential(
            nn.Conv2d(c_in, hidden, kernel, padding=pad),
            nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, hidden, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, c_out, kernel, padding=pad),
        )

    return make


class InvUnit(InvertibleSequence):
    """ActNorm + invertible 1x1 conv (plain or LU) + bounded affine coupling (MSINN-VRLIC's InvUnit)."""

    def __init__(self, channels: int, subnet_constructor: SubnetConstructor, lu: bool = False,
                 actnorm: bool = True):
        blocks = [ActNorm(channels)] if actnorm else []
        blocks += [InvConv1x1LU(channels) if lu else InvConv1x1(channels),
                   AffineCoupling(channels, subnet_constructor)]
        super().__init__(blocks)
