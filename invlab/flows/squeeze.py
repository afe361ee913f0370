"""Space-to-depth squeeze (and its inverse as a block of its own)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from invlab.flows.base import InvertibleModule


class Squeeze(InvertibleModule):
    """Space-to-depth by ``factor``: (C, H, W) -> (C*f*f, H/f, W/f).

    Output channel ``c*f*f + i*f + j`` holds input channel ``c`` at sub-pixel (i, j) (``pixel_unshuffle``).
    H and W must be multiples of ``factor``.
    """

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"Squeeze({self.factor}) needs H, W multiples of {self.factor}; got {h}x{w}")
        return F.pixel_unshuffle(x, self.factor)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(y, self.factor)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = shape
        f = self.factor
        return (c * f * f, h // f, w // f)


class Unsqueeze(InvertibleModule):
    """Depth-to-space: the inverse of :class:`Squeeze` as a forward block."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(x, self.factor)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(y, self.factor)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        c, h, w = shape
        f = self.factor
        return (c // (f * f), h * f, w * f)
