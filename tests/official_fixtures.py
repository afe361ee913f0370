"""Fixtures made with the seed papers' official code (``scripts/official/make_fixtures.py``), and the rule that
fills an official state dict with fixed random weights.

A fixture keeps the official model's tensor names and shapes, its small tensors (biases, entropy-model
parameters), the k x k pattern of each convolution mask, a fixed input crop and the official outputs; its large
weights are not stored but regenerated here from their name and shape (:func:`fill`), exactly as the generating
script filled them before running the official code. So a full-size network costs about a megabyte to check.
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
    return key.endswith("weight") and len(shape) in (2, 4) and torch.Size(shape).numel() > 4096


def fill(key: str, shape: list[int] | torch.Size) -> torch.Tensor:
    """A fixed random tensor for ``key``: a well-conditioned matrix (identity + 0.1 noise) for a square 2-D weight
    (an invertible 1x1 convolution), 0.3/sqrt(fan-in) Gaussian weights otherwise."""
    shape = list(shape)
    w = torch.randn(*shape, generator=_generator(key), dtype=torch.float64)
    if len(shape) == 2 and shape[0] == shape[1]:
        return (torch.eye(shape[0], dtype=torch.float64) + 0.1 * w / shape[0] ** 0.5).float()
    fan_in = torch.Size(shape[1:]).numel()
    return (w * 0.3 / fan_in**0.5).float()


def is_mask(key: str, shape: list[int] | torch.Size) -> bool:
    """A convolution's fixed mask, stored as its k x k pattern (the same for every channel pair)."""
    return key.endswith("mask") and len(shape) == 4


def small_bias(key: str, shape: list[int] | torch.Size) -> torch.Tensor:
    """Biases start at zero in the official code: small random values instead, so that a wrong mapping shows."""
    return 0.02 * torch.randn(*list(shape), generator=_generator(key))


def official_state(fixture: dict) -> dict[str, torch.Tensor]:
    """The official state dict a fixture was made with, in the official names and order."""
    gains = fixture.get("kernel_gains", {})  # ANFIC's Fourier-domain kernels: gain * fill(), 3-D

    def tensor(key: str, shape: list[int]) -> torch.Tensor:
        if key in gains:
            return gains[key] * fill(key, shape)
        if generated(key, shape):
            return fill(key, shape)
        if is_mask(key, shape):
            return fixture["masks"][key].expand(shape).clone()
        return fixture["stored"][key]

    return {k: tensor(k, s) for k, s in fixture["keys"]}


def load_fixture(name: str) -> dict:
    return torch.load(FIXTURES / name, map_location="cpu", weights_only=True)


def converted_model(family: str, name: str) -> tuple[dict, torch.nn.Module]:
    """Fixture ``name`` and the eval-mode invlab model its official weights convert into (``family``'s converter)."""
    from invlab.models import create_model
    from invlab.official import CONVERTERS
    from invlab.weights import fit_weights

    fixture = load_fixture(name)
    converted = CONVERTERS[family](official_state(fixture))
    model = create_model(converted.model, **converted.config)
    fit_weights(model, converted.state_dict, name, converted.model)
    return fixture, model.eval()
