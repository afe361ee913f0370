"""ANFIC, M-ANFIC and MS-ANFIC: sizes, exact flow inversion, training forward with the ‖x2‖² penalty, bit-exact
codec round trips, damaged streams, quadtree masks and the RD mask search. All models here are untrained; the
latent-producing convs are scaled up (:func:`_excite`) so that latents span many quantisation bins."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from invlab.codecs.learned import LearnedCodec
from invlab.errors import BitstreamError, ModelMismatchError
from invlab.io.images import crop, pad_to_multiple, to_tensor, to_uint8
from invlab.models import count_parameters, create_model, list_models
from invlab.models.anf.blocks import LSUnitAnalysis
from invlab.models.anf.quadtree import (
    level_masks,
    pack_depth_map,
    random_depth_map,
    uniform_depth_map,
    unpack_depth_map,
)

KODAK = Path(__file__).resolve().parents[1] / "data" / "kodak"
MINIS = ["anfic-mini", "anfic-mini-noctx", "manfic-mini", "msanfic-mini"]
MULTISCALE = ["manfic-mini", "msanfic-mini"]


@pytest.fixture(scope="module")
def odd_image() -> torch.Tensor:
    """A 70x90 crop of kodim23 (odd-sized: the models pad it)."""
    from PIL import Image

    with Image.open(KODAK / "kodim23.png") as img:
        return to_tensor(np.asarray(img.convert("RGB"))[170:240, 280:370].copy())


def _excite(model: nn.Module, gain: float = 50.0) -> nn.Module:
    """Scale the convs that produce the latents, so the untrained latents cover many integers (|v| ~ 3)."""
    with torch.no_grad():
        scaled = []
        for step in model.steps:
            head = step.analysis[-1]
            scaled += [
                (c, gain)
                for c in ([head.first, *(d[-1] for d in head.down)] if isinstance(head, LSUnitAnalysis) else [head])
            ]
        if hasattr(model, "split"):
            scaled += [(c, 2.5) for c in model.split.down]
        for c, factor in scaled:
            c.weight.mul_(factor)
            c.bias.mul_(factor)
    return model


def _coding_model(name: str, **overrides) -> nn.Module:
    torch.manual_seed(0)
    model = _excite(create_model(name, **overrides)).eval()
    model.update(force=True)
    return model


@pytest.fixture(scope="module")
def coding_models() -> dict[str, nn.Module]:
    return {name: _coding_model(name) for name in MINIS}


def _padded(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return pad_to_multiple(x, model.pad_multiple)[0]


# ---------------------------------------------------------------------- construction and sizes
@pytest.mark.parametrize(
    "name, expected_m",
    [
        ("anfic", 22.66),  # the paper's count (released config)
        ("anfic-mini", 3.00),  # the mini's target size
        ("anfic-mini-noctx", 2.50),  # the sized-down baseline, ≈2.5 M
        ("manfic-mini", 4.07),  # the mini's target size
        ("msanfic-mini", 3.75),  # the mini's target size
    ],
)
def test_every_config_constructs_with_the_documented_size(name, expected_m):
    assert name in list_models()
    model = create_model(name)
    millions = count_parameters(model) / 1e6
    assert abs(millions - expected_m) / expected_m < 0.03, millions
    assert not model.variable_rate and len(model.lambdas) == 1 and len(model.family_lambdas) >= 3
    assert 4 * count_parameters(model) < 16 * 2**20 or name == "anfic"  # minis fit 16 MiB of fp32


def test_family_ordering_of_sizes():
    """MS-ANFIC-mini is smaller than M-ANFIC-mini; the no-context baseline is the smallest."""
    sizes = {n: count_parameters(create_model(n)) for n in MINIS}
    assert sizes["anfic-mini-noctx"] < sizes["anfic-mini"] < sizes["msanfic-mini"] < sizes["manfic-mini"]


def test_fixed_rate_family():
    model = create_model("anfic-mini")
    assert model.lambdas == (0.0130,) and model.family_lambdas == (0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
    assert model.check_rate(None) == 0.0
    with pytest.raises(ValueError, match="fixed-rate"):
        create_model("manfic-mini", lambdas=[0.0035, 0.0130])
    with pytest.raises(ValueError, match="context"):
        create_model("anfic-mini", context="checkerboard")


# ---------------------------------------------------------------------- the flow
@pytest.mark.parametrize("name", ["anfic-mini", "manfic-mini"])
def test_additive_step_inverts_exactly(name):
    model = create_model(name)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        z = model.steps[0].analysis(torch.rand_like(x))
        masks = None
        if isinstance(z, list):  # multi-scale step: random quadtree masks
            masks = level_masks(random_depth_map(2, (2, 2), 2), model.level_strides, model.granularity)
        for step in model.steps:
            x_out, z_out = step(x, z, masks)
            x_back, z_back = step.inverse(x_out, z_out, masks)
            assert (x_back - x).abs().max() <= 1e-5
            for a, b in zip(z_back if masks else [z_back], z if masks else [z], strict=True):
                assert (a - b).abs().max() <= 1e-5


def test_two_step_flow_is_invertible_without_quantisation():
    """Run the augmented flow from (x, z = 0) to (x2, z2) and back: x returns and z returns to 0."""
    model = create_model("anfic-mini")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        out, z = x, None
        for step in model.steps:
            out, z = step(out, z)
        for step in reversed(model.steps):
            out, z = step.inverse(out, z)
    assert (out - x).abs().max() <= 1e-5 and z.abs().max() <= 1e-5


# ---------------------------------------------------------------------- training forward
@pytest.mark.parametrize("name", MINIS)
def test_training_forward_likelihoods_and_x2_penalty(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    x = torch.rand(2, 3, 128, 128)
    out = model(x)
    names = [k for pair in model.level_names for k in pair]
    assert out["x_hat"].shape == x.shape and set(out["likelihoods"]) == set(names)
    for n, (latent, hyper) in enumerate(model.level_names):
        stride = model.level_strides[n]
        assert out["likelihoods"][latent].shape[-2:] == (128 // stride, 128 // stride)
        assert out["likelihoods"][hyper].shape[-1] == 128 // (stride * 2 ** model.priors[n].downsampling)
    assert out["x2_mse"] > 0
    assert torch.allclose(out["extra_loss"], model.x2_penalty_weight * out["x2_mse"])
    assert model.x2_penalty_weight == pytest.approx(0.0130 * 255**2)
    losses = model.rd_loss(x, out, torch.zeros(2))
    base = losses["bpp"] + 255**2 * 0.0130 * losses["mse"]
    assert torch.allclose(losses["loss"], base + out["extra_loss"])  # the penalty reaches the loss
    losses["loss"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.steps[0].analysis[0].weight.grad.abs().sum() > 0


def test_paper_size_anfic_forward_and_round_trip():
    model = _coding_model("anfic")
    x = torch.rand(1, 3, 64, 64)
    enc = model.compress(x)
    with torch.no_grad():
        out = model(x)
    assert out["likelihoods"]["y"].shape == (1, 320, 4, 4) and max(enc["shape"]["abs_max"]) > 1
    assert torch.equal(model.decompress(enc["strings"], enc["shape"])["x_hat"], out["x_hat"].clamp(0, 1))


# ---------------------------------------------------------------------- coding
@pytest.mark.parametrize("name", MINIS)
def test_codec_round_trip_is_bit_exact(name, coding_models, odd_image):
    model = coding_models[name]
    x = _padded(model, odd_image)
    assert x.shape[-2:] == (128, 128)
    enc = model.compress(x)
    assert all(isinstance(s, bytes) for s in enc["strings"])
    shape = json.loads(json.dumps(enc["shape"]))  # what the file header stores
    assert max(shape["abs_max"]) > 1  # the latents are not trivially zero
    dec = model.decompress(enc["strings"], shape)
    with torch.no_grad():
        estimated = model(x)["x_hat"].clamp(0, 1)  # eval forward: the same masks and rounding as the codec
        encoder_side = model.g_s(enc["y_hat"], enc.get("depth_map"))
    assert torch.equal(dec["x_hat"], encoder_side)
    assert torch.equal(dec["x_hat"], estimated)


@pytest.mark.parametrize("name", ["anfic-mini", "anfic-mini-noctx"])
def test_stream_size_matches_the_likelihood_estimate(name, odd_image):
    """With a well-specified mixture (σ = 3 everywhere) the real stream costs what the likelihoods say."""
    model = _coding_model(name)
    head = model.priors[0].head.net[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[: head.out_channels // 3] = 3.0  # scales; means 0, equal weights
    x = _padded(model, odd_image)
    enc = model.compress(x)
    bits = model.latent_bits_map(x)
    assert set(bits) == {"y", "z"} and bits["y"].shape == (8, 8)
    real, estimated = 8 * len(enc["strings"][1]), float(bits["y"].sum())
    assert abs(real - estimated) <= 0.02 * estimated + 64


def test_learned_codec_file_round_trip_and_damaged_files(small_rgb):
    codec = LearnedCodec("msanfic-mini", pretrained=False)
    data = codec.encode(small_rgb, 0)
    model = codec.model(0)
    x, _ = pad_to_multiple(to_tensor(small_rgb), model.pad_multiple)
    with torch.no_grad():
        expected = to_uint8(crop(model(x)["x_hat"].clamp(0, 1), *small_rgb.shape[:2]))
    np.testing.assert_array_equal(codec.decode(data), expected)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    for damaged in (data[: len(data) // 2], data[:-1], bytes(flipped)):
        with pytest.raises(BitstreamError):
            codec.decode(damaged)


@pytest.mark.parametrize("name", ["anfic-mini", "manfic-mini"])
def test_malformed_streams_raise_invlab_errors(name, coding_models, odd_image):
    model = coding_models[name]
    enc = model.compress(_padded(model, odd_image))
    strings, shape = enc["strings"], enc["shape"]
    with pytest.raises(BitstreamError, match="streams"):
        model.decompress(strings[:-1], shape)
    for bad in ({**shape, "size": [100, 128]}, {**shape, "size": "x"}, {**shape, "abs_max": [10**6] * 3}):
        with pytest.raises(BitstreamError):
            model.decompress(strings, bad)
    # a flipped byte anywhere in an entropy-coded stream is detected (symbol checksum), never decoded silently
    for i, stream in enumerate(strings):
        for pos in sorted({0, len(stream) // 2, len(stream) - 1}) if stream else []:
            damaged = list(strings)
            damaged[i] = stream[:pos] + bytes([stream[pos] ^ 0x5A]) + stream[pos + 1:]
            with pytest.raises(BitstreamError):
                model.decompress(damaged, shape)


def test_stream_of_another_variant_is_refused(coding_models, odd_image):
    ar, noctx = coding_models["anfic-mini"], coding_models["anfic-mini-noctx"]
    enc = noctx.compress(_padded(noctx, odd_image))
    with pytest.raises(ModelMismatchError, match="'none'"):
        ar.decompress(enc["strings"], enc["shape"])
    manfic, msanfic = coding_models["manfic-mini"], coding_models["msanfic-mini"]
    enc = manfic.compress(_padded(manfic, odd_image))
    with pytest.raises(ModelMismatchError, match="levels"):
        msanfic.decompress(enc["strings"], enc["shape"])


# ---------------------------------------------------------------------- masks
def test_depth_map_stream_round_trip_and_errors():
    for levels in (2, 3):
        depth = torch.randint(0, levels, (5, 7))
        data = pack_depth_map(depth, levels)
        assert len(data) == math.ceil(35 * (1 if levels == 2 else 2) / 8)
        assert torch.equal(unpack_depth_map(data, (5, 7), levels)[0], depth)
    with pytest.raises(BitstreamError, match="bytes"):
        unpack_depth_map(b"\x00", (5, 7), 3)
    with pytest.raises(BitstreamError, match="level"):
        unpack_depth_map(b"\xff" * 9, (5, 7), 3)  # value 3 with three levels


def test_training_masks_are_random_complementary_quadtrees():
    torch.manual_seed(0)
    depth = random_depth_map(400, (2, 2), 3)
    flat = depth.reshape(400, -1)
    assert set(depth.unique().tolist()) == {0, 1, 2}
    all_fine, all_coarse = (flat == 0).all(1).float().mean(), (flat == 2).all(1).float().mean()
    assert 0.07 < all_fine < 0.16 and 0.07 < all_coarse < 0.16  # 10 % each, plus chance
    masks = level_masks(depth, (16, 32, 64), 64)
    assert [m.shape[-1] for m in masks] == [8, 4, 2]
    coverage = sum(torch.nn.functional.interpolate(m.float(), size=(32, 32)) for m in masks)
    assert torch.equal(coverage, torch.ones_like(coverage))  # every block on exactly one level


@pytest.mark.parametrize("name", MULTISCALE)
def test_training_forward_draws_random_masks(name):
    torch.manual_seed(0)
    model = create_model(name).train()
    maps = [model(torch.rand(4, 3, 128, 128))["depth_map"] for _ in range(3)]
    assert all(m.shape == (4, *model.grid(128, 128)) for m in maps)
    assert len({tuple(m.reshape(-1).tolist()) for m in maps}) == 3


@pytest.mark.parametrize("name", MULTISCALE)
def test_mask_in_the_stream_is_honoured(name, coding_models, odd_image):
    model = coding_models[name]
    x = _padded(model, odd_image)
    grid = model.grid(*x.shape[-2:])
    depth = (torch.arange(grid[0] * grid[1]).reshape(1, *grid) % model.num_levels).long()  # every level used
    enc = model.compress(x, depth_map=depth)
    assert torch.equal(model.stream_depth_map(enc["strings"], enc["shape"]), depth)
    for level, mask in zip(enc["y_hat"], level_masks(depth, model.level_strides, model.granularity), strict=True):
        assert not (level * ~mask).any()  # each level is zero outside its blocks
    dec = model.decompress(enc["strings"], enc["shape"])["x_hat"]
    with torch.no_grad():
        assert torch.equal(dec, model(x, depth_map=depth)["x_hat"].clamp(0, 1))
        uniform = model(x, depth_map=uniform_depth_map(1, grid, 0))["x_hat"].clamp(0, 1)
    assert not torch.equal(dec, uniform)
    other = (depth + 1) % model.num_levels  # every level still used, other blocks
    tampered = [pack_depth_map(other[0], model.num_levels), *enc["strings"][1:]]
    with pytest.raises(BitstreamError):  # the decoder reads the mask; symbols read under another one are refused
        model.decompress(tampered, enc["shape"])
    emptied = uniform_depth_map(1, grid, model.num_levels - 1)  # finer levels empty, their streams are not
    with pytest.raises(BitstreamError):
        model.decompress([pack_depth_map(emptied[0], model.num_levels), *enc["strings"][1:]], enc["shape"])


@pytest.mark.parametrize("name", MULTISCALE)
def test_a_level_without_blocks_codes_nothing(name, coding_models, odd_image):
    model = coding_models[name]
    x = _padded(model, odd_image)
    depth = uniform_depth_map(1, model.grid(*x.shape[-2:]), 0)  # every block on the finest level
    enc = model.compress(x, depth_map=depth)
    assert all(s == b"" for s in enc["strings"][1:-2])  # coarser levels: no hyper-latent, no latent
    assert enc["shape"]["abs_max"][:-1] == [0] * (model.num_levels - 1)  # coded coarse to fine
    with torch.no_grad():
        out = model(x, depth_map=depth)
        assert set(out["likelihoods"]) == {"v1", "h1"}  # the estimate counts no bits for them either
        assert torch.equal(model.decompress(enc["strings"], enc["shape"])["x_hat"], out["x_hat"].clamp(0, 1))


@pytest.mark.parametrize("name", MULTISCALE)
def test_rd_search_is_never_costlier_than_uniform_masks(name, coding_models, odd_image):
    model = coding_models[name]
    x = _padded(model, odd_image)
    grid = model.grid(*x.shape[-2:])
    chosen = model.choose_depth_map(x)
    cost = model.rd_cost(x, chosen)
    for level in range(model.num_levels):
        assert cost <= model.rd_cost(x, uniform_depth_map(1, grid, level))
    greedy = model.choose_depth_map(x, "greedy")
    assert greedy.shape == chosen.shape and 0 <= greedy.min() and greedy.max() < model.num_levels
    assert (model.choose_depth_map(x, "coarse") == model.num_levels - 1).all()
    limited = create_model(name, rdo_levels=[0])
    assert (limited.choose_depth_map(x) == 0).all()


@pytest.mark.parametrize("name", MULTISCALE)
def test_mask_view_reports_masks_and_bits_per_level(name, coding_models, odd_image):
    model = coding_models[name]
    x = _padded(model, odd_image)
    view = model.mask_view(x)
    assert view.names == [f"v{n + 1}" for n in range(model.num_levels)]
    assert view.depth_map.shape == model.grid(128, 128) and sum(view.block_shares.values()) == pytest.approx(1)
    for n, (mask, bits) in enumerate(zip(view.masks, view.bit_maps, strict=True)):
        assert mask.shape == bits.shape == (128 // model.level_strides[n],) * 2
        assert (bits[~mask] == 0).all() and (bits >= 0).all()
    maps = model.latent_bits_map(x)
    total = sum(float(m.sum()) for m in maps.values())
    assert view.bpp == pytest.approx(total / (128 * 128), rel=1e-5)
    enc = model.compress(x)
    assert np.array_equal(view.depth_map, enc["depth_map"][0].numpy())  # the same RD-searched map
