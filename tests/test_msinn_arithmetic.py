"""MSINN's coding walk in exact fixed point: each piece follows its float original within the grid's resolution,
and gives the same integers however it is computed."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from invlab.entropy.exact import ONE, exact_gelu, exact_tanh, to_fixed
from invlab.models.msinn.arithmetic import FixedArithmetic, FloatArithmetic, _gauss_jordan_inverse
from invlab.weights import load_model


def test_gelu_and_tanh_tables_follow_torch_within_one_step_of_the_grid():
    x = torch.linspace(-12, 12, 20001, dtype=torch.float64)
    a = to_fixed(x)
    for table, function in ((exact_gelu(), F.gelu), (exact_tanh(), torch.tanh)):
        got = table(a)
        assert torch.equal(got, got.round())
        assert (got / ONE - function(a / ONE)).abs().max() <= 1 / ONE


def test_the_scalar_inverse_is_an_inverse_and_the_same_each_time():
    torch.manual_seed(0)
    matrix = torch.linalg.qr(torch.randn(24, 24, dtype=torch.float64))[0] * 1.7
    inverse = torch.tensor(_gauss_jordan_inverse(matrix.tolist()), dtype=torch.float64)
    assert torch.allclose(inverse @ matrix, torch.eye(24, dtype=torch.float64), atol=1e-12)
    assert _gauss_jordan_inverse(matrix.tolist()) == inverse.tolist()


def test_the_fixed_point_walk_follows_the_float_walk_piece_by_piece():
    model = load_model("msinn-mini-12")
    fixed, floating = FixedArithmetic(model), FloatArithmetic(model)
    torch.manual_seed(1)
    shapes = model.flow.latent_shapes((3, 64, 64))
    for rate in (torch.tensor([0.0]), torch.tensor([4.37]), torch.tensor([11.0])):
        for ours, theirs in zip(fixed.gains(rate, shapes, None), floating.gains(rate, shapes, None), strict=True):
            for a, b in zip(ours, theirs, strict=True):
                torch.testing.assert_close(a.float(), b, rtol=2e-6, atol=0)
    for level in (1, 2, 3):  # the channel context's ĥ: one flow level inverted
        channels, size = 12 * 2**level, 64 // 2 ** (level + 1)
        h = torch.randn(1, channels, size, size)
        with torch.no_grad():
            expected = floating.inverse_level(level, h)
        got = fixed.to_float(fixed.inverse_level(level, to_fixed(h)))
        assert (got - expected).abs().max() < 2e-3
    net = model.slices[1]
    h = torch.randn(1, 12, 16, 16)
    with torch.no_grad():
        expected = floating.fuse(net, floating.channel(net, h, h), torch.zeros(1, 24, 16, 16))
    got = fixed.fuse(net, fixed.channel(net, to_fixed(h), h), torch.zeros(1, 24, 16, 16, dtype=torch.float64))
    for a, b in zip(got, expected, strict=True):
        assert (fixed.to_float(a) - b).abs().max() < 2e-3


def test_the_fixed_point_walk_gives_the_same_integers_with_any_thread_count():
    model = load_model("msinn-mini")
    fixed = FixedArithmetic(model)
    h = to_fixed(torch.randn(1, 96, 12, 12) * 3)
    one = fixed.inverse_level(3, h)
    torch.set_num_threads(2)
    try:
        two = fixed.inverse_level(3, h.contiguous(memory_format=torch.channels_last))
    finally:
        torch.set_num_threads(1)
    assert torch.equal(one, two) and torch.equal(one, one.round())
