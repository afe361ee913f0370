"""Checkerboard masks and the multistage masked context: non-anchors see anchors only; anchors see nothing."""

from __future__ import annotations

import pytest
import torch

from invlab.entropy.checkerboard import MultistageContext, MultistageMaskedConv2d, anchor_mask
from invlab.entropy.residual import scale_indexes


def test_anchor_masks_are_complementary_checkerboards():
    a0, a1 = anchor_mask(4, 5, 0), anchor_mask(4, 5, 1)
    assert torch.equal(a0, ~a1)
    assert a0[0, 0] and not a0[0, 1] and not a0[1, 0] and a0[1, 1]


def test_masked_conv_uses_a_functional_mask():
    conv = MultistageMaskedConv2d(2, 3, "cross")
    before = conv.weight.detach().clone()
    conv(torch.randn(1, 2, 6, 6)).sum().backward()
    assert torch.equal(conv.weight.detach(), before)  # weights are never multiplied in place
    assert torch.all(conv.weight.grad[..., [0, 0, 1, 2, 2], [0, 2, 1, 0, 2]] == 0)  # corners and centre masked
    assert "mask" not in conv.state_dict()
    with pytest.raises(ValueError):
        MultistageMaskedConv2d(2, 3, "square")


@pytest.mark.parametrize("colour", [0, 1])
def test_non_anchors_depend_on_anchors_only(colour):
    torch.manual_seed(colour)
    net = MultistageContext(3, 8, 6).double()
    h, w = 10, 12
    anchors = anchor_mask(h, w, colour)
    y = torch.randn(1, 3, h, w, dtype=torch.float64)
    out = net(y, anchors)
    assert torch.all(out[..., anchors] == 0)  # anchors get zero context

    y_other = torch.where(anchors, y, torch.randn_like(y))  # change every non-anchor input
    assert torch.allclose(net(y_other, anchors), out, atol=1e-12, rtol=0)

    col = 5 if anchors[5, 5] else 6
    y_anchor = y.clone()
    y_anchor[0, 0, 5, col] += 1.0  # change one anchor
    changed = (net(y_anchor, anchors) - out).abs().sum(1)[0] > 0
    assert changed.any() and not changed[anchors].any()
    # the 4-layer stack reaches beyond a single 3x3 window (multistage widening)
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert (rows - 5).abs().max() >= 2


def test_scale_indexes_match_compressai_build_indexes():
    from compressai.entropy_models import GaussianConditional
    from compressai.models.base import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())
    table = gc.scale_table
    scales = torch.cat([torch.rand(5000) * 300, table, table + 1e-5, table - 1e-5, torch.tensor([-1.0, 0.0, 1e9])])
    assert torch.equal(scale_indexes(gc, scales), gc.build_indexes(scales))
