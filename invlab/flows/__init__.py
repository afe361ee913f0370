"""Invertible building blocks. One contract for all: ``forward(x) -> y`` and ``inverse(y) -> x``."""

from invlab.flows.actnorm import ActNorm
from invlab.flows.base import InvertibleModule, InvertibleSequence
from invlab.flows.conv1x1 import InvConv1x1, InvConv1x1LU
from invlab.flows.coupling import AdditiveCoupling, AffineCoupling, DoubleAffineCoupling, bounded_scale
from invlab.flows.multiscale import MultiScaleFlow
from invlab.flows.squeeze import Squeeze, Unsqueeze
from invlab.flows.units import InvUnit

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "DoubleAffineCoupling",
    "InvConv1x1",
    "InvConv1x1LU",
    "InvUnit",
    "InvertibleModule",
    "InvertibleSequence",
    "MultiScaleFlow",
    "Squeeze",
    "Unsqueeze",
    "bounded_scale",
]
