"""Fixtures made with the seed papers' official code (``scripts/official/make_fixtures.py``), and the rule that
fills an official state dict with fixed random weights.

A fixture keeps the official model's tensor names and shapes, its small tensors (biases, entropy-model
parameters), a fixed input crop and the official outputs; its large weights are not stored but regenerated here
from their name and shape (:func:`fill`), exactly as the generating script filled them before running the official
code. So a full-size network costs well under a megabyte to check.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official"


def _generator(key: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(key.encode()))


def generated(key: str, shape: list[int] | torch.Size) -> bool:
    """Whether the fixture regenerates this tensor from its name and shape instead of storing it."""
    large = torch.Size(shape).numel() > 4096
    return key.endswith("mask") or (key.endswith("weight") and len(shape) in (2, 4) and large)


def fill(key: str, shape: list[int] | torch.Size) -> torch.Tensor:
    """A fixed random tensor for ``key``: a PixelCNN mask A for a context convolution's mask; a well-conditioned
    matrix (identity + noise) for an invertible 1x1 convolution; 0.6/sqrt(fan-in) Gaussian weights otherwise."""
    shape = list(shape)
    if key.endswith("mask"):
        mask = torch.ones(shape)
        h, w = shape[-2:]
        mask[:, :, h // 2, w // 2 :] = 0
        mask[:, :, h // 2 + 1 :] = 0
        return mask
    w = torch.randn(*shape, generator=_generator(key), dtype=torch.float64)
    if len(shape) == 2:
        return (torch.eye(shape[0], dtype=torch.float64) + 0.3 * w / shape[0] ** 0.5).float()
    return (w * 0.6 / (shape[1] * shape[2] * shape[3]) ** 0.5).float()


def small_bias(key: str, shape: list[int] | torch.Size) -> torch.Tensor:
    """Biases start at zero in the official code: small random values instead, so that a wrong mapping shows."""
    return 0.02 * torch.randn(*list(shape), generator=_generator(key))


def official_state(fixture: dict) -> dict[str, torch.Tensor]:
    """The official state dict a fixture was made with, in the official names and order."""
    return {k: fill(k, s) if generated(k, s) else fixture["stored"][k] for k, s in fixture["keys"]}


def load_fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, map_location="cpu", weights_only=True)
