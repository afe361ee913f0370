"""Multi-scale container: run a level, factor part of its output out as a latent, pass the rest down."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from invlab.flows.base import InvertibleModule


class MultiScaleFlow(nn.Module):
    """RealNVP/Glow-style factor-out over ``len(levels)`` levels.

    Level ``i`` maps the tensor it receives (``levels[i]``, typically squeeze + units); for every level
    but the last, the first ``factor_out[i]`` channels of its output are emitted as a latent and the
    rest is passed down. The last level's output is cut into ``final_split`` chunks (all emitted).

    ``forward(x)`` returns the latents fine to coarse: ``[y_1, ..., y_{L-1}, *final chunks]``;
    ``inverse(latents)`` rebuilds ``x`` exactly. :meth:`inverse_level` inverts one level alone, which
    MSINN-VRLIC's channel context uses to turn already-decoded coarse latents into the complementary
    half of the next finer level.
    """

    def __init__(self, levels: Sequence[InvertibleModule], factor_out: Sequence[int],
                 final_split: Sequence[int] | None = None):
        super().__init__()
        if len(factor_out) != len(levels) - 1:
            raise ValueError("factor_out needs one entry per level except the last")
        self.levels = nn.ModuleList(levels)
        self.factor_out = list(factor_out)
        self.final_split = list(final_split) if final_split else None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        latents = []
        h = x
        for i, level in enumerate(self.levels):
            h = level(h)
            if i < len(self.levels) - 1:
                k = self.factor_out[i]
                latents.append(h[:, :k])
                h = h[:, k:]
        if self.final_split:
            latents.extend(torch.split(h, self.final_split, dim=1))
        else:
            latents.append(h)
        return latents

    def inverse_level(self, index: int, h: torch.Tensor) -> torch.Tensor:
        """Invert level ``index`` alone: its full output -> its input."""
        return self.levels[index].inverse(h)

    def inverse(self, latents: Sequence[torch.Tensor]) -> torch.Tensor:
        n_final = len(self.final_split) if self.final_split else 1
        fine, final = list(latents[: len(latents) - n_final]), list(latents[len(latents) - n_final :])
        h = torch.cat(final, dim=1)
        for i in reversed(range(len(self.levels))):
            if i < len(self.levels) - 1:
                h = torch.cat([fine[i], h], dim=1)
            h = self.levels[i].inverse(h)
        return h

    def latent_shapes(self, shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
        """Shapes (C, H, W) of the latents :meth:`forward` emits for an input of ``shape``."""
        out = []
        for i, level in enumerate(self.levels):
            shape = level.output_shape(shape)
            if i < len(self.levels) - 1:
                k = self.factor_out[i]
                out.append((k, *shape[1:]))
                shape = (shape[0] - k, *shape[1:])
        if self.final_split:
            out.extend((c, *shape[1:]) for c in self.final_split)
        else:
            out.append(tuple(shape))
        return out
