"""Checkerboard (two-pass) spatial context: anchor masks and the multistage masked convolution stack.

A slice is coded in two passes: the *anchors* (one colour of a checkerboard) first, with no spatial
context, then the *non-anchors*, whose context is computed from the decoded anchors only.
MSINN-VRLIC deepens the usual single masked conv into a "multistage" stack: the first 3x3 mask keeps the
4 cross neighbours (for a non-anchor these are all anchors), the later ones keep the 4 diagonals and the
centre (same colour as the output position). Stacked, they widen the receptive field while a non-anchor's
output still depends on anchors only; the output is zeroed at anchor positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from invlab.layers import ChannelsLast

CROSS_MASK = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
DIAGONAL_MASK = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])


def anchor_mask(height: int, width: int, colour: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Bool (H, W) mask, True at anchors: positions with ``(row + col) % 2 == colour``."""
    rows = torch.arange(height, device=device)[:, None]
    cols = torch.arange(width, device=device)[None, :]
    return (rows + cols) % 2 == colour


class MultistageMaskedConv2d(nn.Conv2d):
    """3x3 conv whose kernel is multiplied by a fixed mask on the fly (weights are never mutated).

    ``mask_type="cross"`` keeps the 4 cross neighbours; ``"diagonal"`` keeps the 4 diagonals and the centre.
    """

    def __init__(self, in_channels: int, out_channels: int, mask_type: str):
        super().__init__(in_channels, out_channels, kernel_size=3, padding=1)
        masks = {"cross": CROSS_MASK, "diagonal": DIAGONAL_MASK}
        if mask_type not in masks:
            raise ValueError(f"mask_type must be one of {sorted(masks)}, got {mask_type!r}")
        self.register_buffer("mask", masks[mask_type].clone()[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=1)


class MultistageContext(nn.Module):
    """Spatial context for the non-anchor pass: cross-masked conv, then diagonal+centre masked convs (GELU).

    ``forward(y_anchors, anchors)`` takes the slice with only its anchors filled in (zeros elsewhere) and
    the bool (H, W) anchor mask; it returns ``c_out`` channels that are zero at anchor positions.
    """

    def __init__(self, in_channels: int, width: int, out_channels: int, layers: int = 4):
        super().__init__()
        widths = [in_channels] + [width] * (layers - 1) + [out_channels]
        convs: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            convs.append(MultistageMaskedConv2d(c_in, c_out, "cross" if i == 0 else "diagonal"))
            if i < layers - 1:
                convs.append(nn.GELU())
        self.net = ChannelsLast(*convs)  # one layout, so encoder and decoder agree

    def forward(self, y_anchors: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
        out = self.net(y_anchors)
        return out * (~anchors).to(out.dtype)
