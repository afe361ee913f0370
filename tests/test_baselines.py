"""Autoencoder baselines: size, training forward, exact encode -> decode through the learned codec."""

from __future__ import annotations

import json

import pytest
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.models import count_parameters, create_model
from invlab.models.baselines import BASELINE_LAMBDAS
from invlab.train.export import decode_matches_forward

NAMES = ["bmshj2018-hyperprior-mini", "mbt2018-mean-mini"]


@pytest.mark.parametrize("name", NAMES)
def test_size_and_training_forward(name):
    model = create_model(name)
    assert 2.7e6 < count_parameters(model) < 3.8e6
    assert not model.variable_rate and model.family_lambdas == BASELINE_LAMBDAS
    x = torch.rand(2, 3, 64, 64)
    out = model(x, torch.zeros(2))
    assert out["x_hat"].shape == x.shape and set(out["likelihoods"]) == {"y", "z"}
    losses = model.rd_loss(x, out, torch.zeros(2))
    losses["loss"].backward()
    assert torch.isfinite(losses["loss"]) and model.aux_loss().item() > 0


@pytest.mark.parametrize("name", NAMES)
def test_compress_decompress_exact_on_odd_size(name, small_rgb):
    codec = LearnedCodec(name, pretrained=False)
    assert codec.rates == (0.0,)
    model = codec.model(0.0)
    out = model.compress(torch.rand(1, 3, 64, 128))
    assert all(isinstance(s, bytes) for s in out["strings"]) and len(out["strings"]) == 2
    json.dumps(out["shape"])
    assert codec.decode(codec.encode(small_rgb, 0.0)).shape == small_rgb.shape
    assert decode_matches_forward(codec, small_rgb, 0.0)  # decoder output == encoder's reconstruction
