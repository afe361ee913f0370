"""Warm starts across related architectures: anfic-mini from anfic-mini-noctx computes what the source computed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from invlab.train.warm_start import load_partial
from invlab.weights import load_model


def test_a_widened_input_starts_at_zero_so_the_new_inputs_change_nothing():
    torch.manual_seed(0)
    old, new = nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(6, 8, 3, padding=1)
    report = load_partial(new, old.state_dict())
    assert report.widened == ["weight"] and report.copied == ["bias"] and not report.fresh
    x, extra = torch.randn(1, 4, 5, 5), torch.randn(1, 2, 5, 5)
    assert torch.equal(new(torch.cat([x, extra], 1)), old(x))


def test_a_transposed_convolution_widens_along_its_first_dimension():
    torch.manual_seed(0)
    old, new = nn.ConvTranspose2d(4, 8, 3, padding=1), nn.ConvTranspose2d(6, 8, 3, padding=1)
    assert load_partial(new, old.state_dict()).widened == ["weight"]
    x, extra = torch.randn(1, 4, 5, 5), torch.randn(1, 2, 5, 5)
    assert torch.equal(new(torch.cat([x, extra], 1)), old(x))


def test_msanfic_mini_warm_from_noctx_takes_the_anf_steps_and_the_finest_level():
    source = load_model("anfic-mini-noctx", pretrained=False)
    model = load_model("msanfic-mini", pretrained=False)
    report = load_partial(model, source.state_dict())
    assert report.widened == ["priors.0.h_a.0.weight", "priors.0.h_s_last.weight"] and not report.unused
    assert {".".join(name.split(".")[:2]) for name in report.fresh} == {
        "priors.1", "priors.2", "split.down", "split.merge", "split.up"}  # the coarser levels and the split network


def test_anfic_mini_warm_from_noctx_starts_with_the_same_mixture_and_a_fresh_context():
    torch.manual_seed(0)
    source = load_model("anfic-mini-noctx", pretrained=False).eval()
    model = load_model("anfic-mini", pretrained=False).eval()
    report = load_partial(model, source.state_dict())
    assert report.widened == ["priors.0.head.net.0.weight"]
    assert {n for n in report.fresh} == {"priors.0.context.weight", "priors.0.context.bias", "priors.0.context.mask"}
    prior, source_prior = model.priors[0], source.priors[0]
    v_hat = torch.randn(1, prior.channels, 6, 6).round()
    params = torch.randn(1, model.priors[0].head.net[0].in_channels - prior.context.out_channels, 6, 6)
    with torch.no_grad():
        for ours, theirs in zip(prior.mixture(params, prior.context(v_hat)), source_prior.mixture(params), strict=True):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


def test_weights_of_another_architecture_are_refused():
    with pytest.raises(ValueError, match="share no parameter"):
        load_partial(nn.Linear(3, 3), {"other.weight": torch.zeros(3, 3)})


def test_a_wider_network_grown_from_a_narrow_one_computes_the_same():
    torch.manual_seed(0)
    narrow = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GELU(), nn.Conv2d(4, 4, 1), nn.GELU(), nn.Conv2d(4, 2, 1))
    wide = nn.Sequential(nn.Conv2d(3, 7, 3, padding=1), nn.GELU(), nn.Conv2d(7, 7, 1), nn.GELU(), nn.Conv2d(7, 2, 1))
    report = load_partial(wide, narrow.state_dict())
    assert report.grown == ["0.weight", "0.bias", "2.weight", "2.bias"] and report.widened == ["4.weight"]
    assert wide[2].weight[4:].abs().sum() > 0  # the new features start from a fresh initialisation
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(wide(x), narrow(x), rtol=0, atol=1e-6)


def test_msinn_mini_at_a_greater_width_starts_as_the_narrow_mini():
    torch.manual_seed(0)
    narrow = load_model("msinn-mini", pretrained=False).eval()
    with torch.no_grad():  # away from the init, whose zero coupling heads would hide a wrong widening
        for p in narrow.parameters():
            p.add_(0.02 * torch.randn_like(p))
    wide = load_model("msinn-mini", pretrained=False, hidden=(96, 96, 96, 128), context_width=96).eval()
    report = load_partial(wide, narrow.state_dict())
    assert report.grown and not report.fresh and not report.unused
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ours, theirs = wide(x, rate=torch.tensor([2.5])), narrow(x, rate=torch.tensor([2.5]))
    torch.testing.assert_close(ours["x_hat"], theirs["x_hat"], rtol=0, atol=1e-5)
