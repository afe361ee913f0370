"""Quadtree depth maps of the multi-scale ANF models: which latent level represents each block, and its stream.

A depth map (B, Hb, Wb) gives each ``granularity`` x ``granularity`` block its level (0 = the finest latent v1);
:func:`level_masks` turns it into one mask per level; :func:`pack_depth_map` / :func:`unpack_depth_map` are the
mask stream format (ceil(log2 L) bits per block, raster order).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from invlab.errors import BitstreamError


def uniform_depth_map(
    batch: int, grid: tuple[int, int], level: int, device: torch.device | str | None = None
) -> torch.Tensor:
    """Every block at ``level`` (0 = the finest latent v1): (B, Hb, Wb) long."""
    return torch.full((batch, *grid), level, dtype=torch.long, device=device)


def random_depth_map(
    batch: int, grid: tuple[int, int], levels: int, uniform_prob: float = 0.1, device: torch.device | str | None = None
) -> torch.Tensor:
    """Training masks (RDONet): each block at a uniformly random level; with probability ``uniform_prob`` each,
    a sample is all-finest or all-coarsest instead [ours]."""
    depth = torch.randint(0, levels, (batch, *grid), device=device)
    draw = torch.rand(batch, device=device)
    depth[draw < uniform_prob] = 0
    depth[(draw >= uniform_prob) & (draw < 2 * uniform_prob)] = levels - 1
    return depth


def level_masks(depth_map: torch.Tensor, strides: Sequence[int], granularity: int) -> list[torch.Tensor]:
    """Bool masks (B, 1, h_n, w_n), one per level: True where the block's level is n.

    ``strides[n]`` is level n's pixels per latent position; a block (``granularity`` pixels) covers
    (granularity / stride)² positions of a level. The masks are complementary: each block is on one level.
    """
    masks = []
    for n, stride in enumerate(strides):
        if granularity % stride:
            raise ValueError(f"block size {granularity} must be a multiple of level {n + 1}'s stride {stride}")
        factor = granularity // stride
        mask = (depth_map == n)[:, None]
        masks.append(mask.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3))
    return masks


def block_sums(values: torch.Tensor, stride: int, granularity: int) -> torch.Tensor:
    """(B, h, w) per-position values (``stride`` pixels per position) -> (B, Hb, Wb) totals per block.

    Positions coarser than a block spread their value evenly over the blocks they cover.
    """
    if stride <= granularity:
        factor = granularity // stride
        b, h, w = values.shape
        return values.reshape(b, h // factor, factor, w // factor, factor).sum(dim=(2, 4))
    factor = stride // granularity
    return values.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2) / factor**2


def _bits_per_block(levels: int) -> int:
    return max(1, math.ceil(math.log2(levels)))


def pack_depth_map(depth_map: torch.Tensor, levels: int) -> bytes:
    """A (Hb, Wb) depth map as a compact stream: ceil(log2(levels)) bits per block, raster order."""
    bits = _bits_per_block(levels)
    values = depth_map.reshape(-1).cpu().numpy().astype(np.uint8)
    planes = (values[:, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1
    return np.packbits(planes.reshape(-1)).tobytes()


def unpack_depth_map(data: bytes, grid: tuple[int, int], levels: int) -> torch.Tensor:
    """Inverse of :func:`pack_depth_map`: (1, Hb, Wb) long; a stream of the wrong size or with a level out of
    range raises :class:`BitstreamError`."""
    bits = _bits_per_block(levels)
    count = grid[0] * grid[1]
    if len(data) != math.ceil(count * bits / 8):
        raise BitstreamError(
            f"mask stream has {len(data)} bytes, expected {math.ceil(count * bits / 8)} for {grid[0]}x{grid[1]} blocks"
        )
    planes = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    values = (planes.astype(np.int64) << np.arange(bits - 1, -1, -1)).sum(axis=1)
    if values.max(initial=0) >= levels:
        raise BitstreamError(f"mask stream names level {values.max() + 1}; this model has {levels}")
    return torch.from_numpy(values).reshape(1, *grid)
