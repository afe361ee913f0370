"""InvCompress (paper size and mini): exact INN inversion, identity init, training forward, bit-exact codec
round trips on both context paths, path mismatch refusal, parameter counts. All models here are untrained."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.errors import ModelMismatchError
from invlab.flows import DoubleAffineCoupling
from invlab.io.images import crop, pad_to_multiple, to_tensor, to_uint8
from invlab.models import count_parameters, create_model
from invlab.models.invcompress.blocks import GroupAverage, GroupTile


@pytest.fixture
def kodak_crop(kodak_dir) -> torch.Tensor:
    """A 64x96 crop of kodim23 padded to 64x128 (the model pads to a multiple of 64)."""
    from PIL import Image

    with Image.open(kodak_dir / "kodim23.png") as img:
        rgb = np.asarray(img.convert("RGB"))[180:244, 280:376].copy()
    x, _ = pad_to_multiple(to_tensor(rgb), 64)
    return x


def _randomise_couplings(model: torch.nn.Module) -> None:
    """Random weights for the zero-init coupling outputs, so inversion is tested on a non-identity map."""
    for m in model.modules():
        if isinstance(m, DoubleAffineCoupling):
            for net in (m.g1, m.h1, m.g2, m.h2):
                torch.nn.init.normal_(net[-1].weight, std=0.05)


def _coding_model(name: str, **overrides):
    model = create_model(name, **overrides).eval()
    model.update(force=True)
    return model


@pytest.mark.parametrize("name", ["invcompress-mini", "invcompress"])
def test_inn_exact_inversion(name):
    model = create_model(name)
    _randomise_couplings(model)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        v = model.inn(x)
        assert v.shape == (2, 768, 4, 4)
        assert (model.inn.inverse(v) - x).abs().max().item() <= 1e-5


def test_feature_enhancement_and_couplings_start_as_identity():
    """FE (zero-init last dense conv) and every coupling (zero-init last conv) are the identity at init.

    The attention blocks use CompressAI's default init, as in the official code, so they are not."""
    model = create_model("invcompress-mini")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.fe_enc(x), x) and torch.equal(model.fe_dec(x), x)
        for m in model.modules():
            if isinstance(m, DoubleAffineCoupling):
                v = torch.randn(1, m.split * 4, 8, 8)
                assert torch.allclose(m(v), v, atol=0, rtol=0)


def test_channel_squeeze_average_then_tile():
    y = torch.randn(1, 96, 4, 4)
    v = GroupTile(8)(y)
    assert v.shape == (1, 768, 4, 4) and torch.equal(v[:, 96 * 3: 96 * 4], y)
    assert torch.allclose(GroupAverage(96)(v), y, atol=1e-6)


@pytest.mark.parametrize("overrides", [{}, {"context": "checkerboard"}, {"fe": False}, {"acs": "conv1x1"},
                                       {"acs": "average"}])
def test_training_forward_finite_loss_and_grads(overrides):
    model = create_model("invcompress-mini", **overrides).train()
    x = torch.rand(2, 3, 64, 64)
    out = model(x)
    assert set(out["likelihoods"]) == {"y", "z"}
    losses = model.rd_loss(x, out, torch.zeros(2))
    assert math.isfinite(losses["loss"].item())
    losses["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", ["invcompress-mini", "invcompress-mini-cb", "invcompress", "invcompress-mini-nofe",
                                  "invcompress-mini-conv1x1"])
def test_codec_round_trip_is_bit_exact(name, kodak_crop):
    model = _coding_model(name)
    with torch.no_grad():
        enc = model.compress(kodak_crop)
        dec = model.decompress(enc["strings"], enc["shape"])
        encoder_recon = model.g_s(enc["y_hat"]).clamp(0, 1)
        estimated = model(kodak_crop)["x_hat"].clamp(0, 1)  # eval forward: round(y - mu) + mu, like the codec
    assert enc["shape"]["context"] == model.context
    assert all(isinstance(s, bytes) for s in enc["strings"])
    assert torch.equal(dec["x_hat"], encoder_recon)
    assert (estimated - dec["x_hat"]).abs().max().item() < 1e-4


def test_other_context_path_is_refused(kodak_crop):
    cb, ar = _coding_model("invcompress-mini-cb"), _coding_model("invcompress-mini")
    with torch.no_grad():
        enc = cb.compress(kodak_crop)
    with pytest.raises(ModelMismatchError, match="checkerboard"):
        ar.decompress(enc["strings"], enc["shape"])


def test_learned_codec_file_round_trip(small_rgb):
    codec = LearnedCodec("invcompress-mini-cb", pretrained=False)
    data = codec.encode(small_rgb, 0)
    model = codec.model(0)
    with torch.no_grad():
        x, _ = pad_to_multiple(to_tensor(small_rgb), model.pad_multiple)
        expected = to_uint8(crop(model.g_s(model.compress(x)["y_hat"]).clamp(0, 1), *small_rgb.shape[:2]))
    np.testing.assert_array_equal(codec.decode(data), expected)


@pytest.mark.parametrize("name, overrides, expected_m", [
    ("invcompress", {}, 43.26),  # the paper's count, M = N = 128
    ("invcompress", {"lambdas": [0.015]}, 50.03),  # q5-q8 use M = N = 192
    ("invcompress-mini", {}, 3.80),  # the mini's target size
])
def test_parameter_counts(name, overrides, expected_m):
    millions = count_parameters(create_model(name, **overrides)) / 1e6
    assert abs(millions - expected_m) / expected_m < 0.05, millions


def test_fixed_rate_family():
    model = create_model("invcompress-mini")
    assert not model.variable_rate and len(model.lambdas) == 1
    assert model.family_lambdas == (0.0032, 0.0075, 0.015, 0.03, 0.09)
    assert create_model("invcompress").family_lambdas[:4] == (0.0016, 0.0024, 0.0032, 0.0075)
    with pytest.raises(ValueError, match="fixed-rate"):
        create_model("invcompress-mini", lambdas=[0.0032, 0.0075])


@pytest.mark.parametrize("name, dropped, replacement", [
    ("invcompress-mini-nofe", ("fe_enc", "fe_dec"), torch.nn.Identity),
    ("invcompress-mini-conv1x1", ("acs_enc", "acs_dec"), torch.nn.Conv2d),
])
def test_ablations_change_one_part_and_keep_the_rest(name, dropped, replacement):
    """Each registered ablation is invcompress-mini with one part swapped: the rest has the same tensors."""
    from invlab.models import get_spec

    assert get_spec(name).ablation_of == "invcompress-mini" and get_spec(name).published is None
    full, ablated = create_model("invcompress-mini"), create_model(name)
    assert all(isinstance(getattr(ablated, part), replacement) for part in dropped)

    def kept(model):
        return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.startswith(dropped)}

    assert kept(full) == kept(ablated)
    assert ablated.family_lambdas == full.family_lambdas and ablated.context == full.context


def test_trained_eval_forward_is_the_decoded_image(kodak_dir):
    """With the shipped weights, the eval forward's image is the decoder's, bit for bit.

    The parallel fixed point the forward used before (full-tensor context convolution) flipped a symbol where
    ``y - mu`` lay near a half, so on this crop the decoded image differed from it by one level.
    """
    from PIL import Image

    from invlab.eval.measure import learned_extras, measure

    codec = LearnedCodec("invcompress-mini", pretrained=True)
    with Image.open(kodak_dir / "kodim01.png") as img:
        rgb = np.asarray(img.convert("RGB"))[:128, :128].copy()
    row = measure(codec, rgb, 1.0, learned_extras)
    assert row["decode_matches_forward"] and row["forward_max_abs_diff"] == 0
