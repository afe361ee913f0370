"""The contract every registered model keeps, tested by being registered: a new model needs no test of its own
to be checked for construction, training forward, rate range, declared spec, stream geometry, and bit-exact
encode -> decode through real files at a small odd size (paper-size models: construction and spec only)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.models import create_model, get_spec, list_models

PAPER_SIZE = {"msinn", "invcompress", "anfic"}
SMALL = [n for n in list_models() if n not in PAPER_SIZE]


@pytest.mark.parametrize("name", list_models())
def test_spec_matches_the_built_model(name) -> None:
    spec = get_spec(name)
    assert spec.family and spec.description and "§" not in spec.description
    model = create_model(name)
    assert spec.variable_rate == model.variable_rate and spec.pad_multiple == model.pad_multiple
    rate_points = model.lambdas if model.variable_rate else model.family_lambdas
    assert spec.lambdas == tuple(rate_points)
    assert model.context_label in (None, spec.context)  # a model with several context paths names its own
    lo, hi = model.rate_range
    assert lo <= hi and (hi > lo) == model.variable_rate
    space = spec.rate_space()
    assert (space.low, space.high) == (lo, hi) and space.continuous == model.variable_rate
    assert model.pad_multiple >= 1 and model.decode_bytes_per_pixel > 0
    m = model.pad_multiple
    assert isinstance(model.stream_geometry(2 * m, 3 * m), dict)


@pytest.mark.parametrize("name", SMALL)
def test_training_forward_gives_a_finite_loss(name) -> None:
    model = create_model(name).train()
    m = max(model.pad_multiple, 32)
    x = torch.rand(2, 3, m, m)
    rate = torch.tensor([0.0, float(len(model.lambdas) - 1)]) if model.variable_rate else torch.zeros(2)
    losses = model.rd_loss(x, model(x, rate), rate)
    assert all(math.isfinite(v.item()) for v in losses.values())
    losses["loss"].backward()


@pytest.mark.parametrize("name", SMALL)
def test_real_files_decode_to_the_encoders_reconstruction(name) -> None:
    codec = LearnedCodec(name, pretrained=False)
    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    for rate in sorted({codec.rates[0], codec.rates[-1]}):
        data, recon = codec.encode_with_reconstruction(rgb, rate)
        image = codec.decode_image(data)
        assert image.matches_encoder is True and np.array_equal(image.rgb, recon), (name, rate)
