"""Every invertible block, and random stacks of them, invert exactly (<= 1e-5 in fp32)."""

from __future__ import annotations

import random

import pytest
import torch

from invlab.flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    DoubleAffineCoupling,
    InvConv1x1,
    InvConv1x1LU,
    InvertibleSequence,
    InvUnit,
    MultiScaleFlow,
    Squeeze,
    Unsqueeze,
)
from invlab.flows.coupling import bounded_scale
from invlab.flows.units import conv_conditioner, residual_conditioner

TOL = 1e-5


def _randomise(module: torch.nn.Module) -> None:
    """Give zero-initialised heads non-zero weights so the test exercises a non-identity map."""
    with torch.no_grad():
        for p in module.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)


def _blocks(c: int):
    cond = conv_conditioner(8)
    return {
        "squeeze": (Squeeze(2), c),
        "unsqueeze": (Unsqueeze(2), 4 * c),
        "inv1x1": (InvConv1x1(c), c),
        "inv1x1_lu": (InvConv1x1LU(c), c),
        "actnorm": (ActNorm(c), c),
        "affine": (AffineCoupling(c, cond), c),
        "affine_residual_cond": (AffineCoupling(c, residual_conditioner(8)), c),
        "additive": (AdditiveCoupling(c, cond), c),
        "double_affine": (DoubleAffineCoupling(max(c, 4), cond), max(c, 4)),
        "invunit": (InvUnit(c, cond), c),
        "invunit_lu": (InvUnit(c, cond, lu=True), c),
    }


@pytest.mark.parametrize("channels", [3, 5, 12])
@pytest.mark.parametrize("name", list(_blocks(3)))
def test_block_inverts_exactly(name: str, channels: int) -> None:
    block, c = _blocks(channels)[name]
    _randomise(block)
    x = torch.randn(2, c, 6, 10)  # odd channel counts, non-square
    block.train()
    y = block(x)  # first call initialises ActNorm from data
    block.eval()
    y = block(x)
    assert y.shape[1:] == block.output_shape(tuple(x.shape[1:]))
    x_rec = block.inverse(y)
    assert (x_rec - x).abs().max().item() <= TOL


@pytest.mark.parametrize("seed", range(4))
def test_random_stack_inverts_exactly(seed: int) -> None:
    rng = random.Random(seed)
    c = rng.choice([3, 5, 7])
    blocks, channels = [], c
    for _ in range(6):
        kind = rng.choice(["squeeze", "inv1x1", "inv1x1_lu", "affine", "additive", "invunit"])
        if kind == "squeeze":
            blocks.append(Squeeze(2))
            channels *= 4
            continue
        blocks.append(_blocks(channels)[kind][0])
    stack = InvertibleSequence(blocks)
    _randomise(stack)
    x = torch.randn(1, c, 32, 48)
    stack.train()
    stack(x)
    stack.eval()
    y = stack(x)
    assert y.shape[1:] == stack.output_shape((c, 32, 48))
    assert (stack.inverse(y) - x).abs().max().item() <= TOL


def test_multiscale_factor_out_and_inverse() -> None:
    cond = conv_conditioner(8)
    flow = MultiScaleFlow(
        [InvertibleSequence([Squeeze(2), InvUnit(12, cond)]),
         InvertibleSequence([Squeeze(2), InvUnit(24, cond)]),
         InvertibleSequence([Squeeze(2), InvUnit(48, cond)])],
        factor_out=[6, 12], final_split=[24, 24],
    )
    _randomise(flow)
    x = torch.rand(1, 3, 16, 24)
    flow.train()
    flow(x)
    flow.eval()
    latents = flow(x)
    assert [tuple(y.shape[1:]) for y in latents] == flow.latent_shapes((3, 16, 24))
    assert [y.shape[1] for y in latents] == [6, 12, 24, 24]
    assert sum(y.numel() for y in latents) == x.numel()  # bijective: no dimension reduction
    assert (flow.inverse(latents) - x).abs().max().item() <= TOL
    # inverting one level alone gives the tensor that entered it
    h_in_last = flow.inverse_level(2, torch.cat(latents[2:], dim=1))
    assert h_in_last.shape[1:] == (12, 4, 6)


def test_coupling_starts_as_identity_and_scale_is_bounded() -> None:
    block = AffineCoupling(6, conv_conditioner(8))
    x = torch.randn(1, 6, 4, 4)
    assert torch.equal(block(x), x)
    s = torch.linspace(-100, 100, 11)
    scale = bounded_scale(s)
    assert scale.min() >= torch.exp(torch.tensor(-1.0)) - 1e-6 and scale.max() <= torch.exp(torch.tensor(1.0)) + 1e-6


def test_actnorm_data_init_and_eval_guard() -> None:
    norm = ActNorm(4)
    norm.eval()
    with pytest.raises(RuntimeError):
        norm(torch.randn(1, 4, 2, 2))
    norm.train()
    y = norm(torch.randn(8, 4, 5, 5) * 3 + 2)
    assert y.mean().abs() < 1e-4 and (y.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-3
    assert bool(norm.initialized) and "initialized" in norm.state_dict()


def test_squeeze_rejects_odd_sizes() -> None:
    with pytest.raises(ValueError, match="multiples of 2"):
        Squeeze(2)(torch.zeros(1, 3, 5, 4))
