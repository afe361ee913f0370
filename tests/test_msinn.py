"""MSINN-VRLIC: exact INN inversion, bit-exact coding at any real rate, monotone rate, training step, sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.io.images import crop, pad_to_multiple, to_tensor, to_uint8
from invlab.models import create_model
from invlab.models.base import count_parameters
from invlab.models.msinn import LAMBDAS_12
from invlab.weights import load_model


@pytest.fixture(scope="module")
def mini():
    """Untrained msinn-mini with non-identity couplings and post-net."""
    torch.manual_seed(0)
    model = load_model("msinn-mini", pretrained=False)
    _perturb(model)
    return model


def _crop(kodak_dir, h: int, w: int) -> torch.Tensor:
    from PIL import Image

    with Image.open(kodak_dir / "kodim23.png") as img:
        rgb = np.asarray(img.convert("RGB"))[180 : 180 + h, 300 : 300 + w].copy()
    return to_tensor(rgb)


def _perturb(model: torch.nn.Module, std: float = 0.02) -> None:
    """Give the zero-initialised coupling heads random weights, so the couplings are not identities."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.add_(std * torch.randn_like(p))


@pytest.mark.parametrize("name, target", [("msinn", 12.34e6), ("msinn-mini", 2.75e6)])
def test_parameter_count_and_exact_inn_inversion(name, target):
    model = create_model(name)
    assert abs(count_parameters(model) - target) / target < 0.05
    x = torch.rand(2, 3, 32, 48)
    model.flow.train()(x)  # ActNorm data-dependent init
    _perturb(model.flow)
    model.flow.eval()
    with torch.no_grad():
        latents = model.flow(x)
        assert [tuple(y.shape[1:]) for y in latents] == [(6, 16, 24), (12, 8, 12), (24, 4, 6), (48, 2, 3), (48, 2, 3)]
        assert (model.flow.inverse(latents) - x).abs().max() <= 1e-5


def test_training_forward_gives_finite_loss_and_gradients(kodak_dir):
    model = create_model("msinn-mini").train()
    x = torch.cat([_crop(kodak_dir, 32, 48), torch.rand(1, 3, 32, 48)])
    rate = torch.tensor([0.0, 6.5])  # per-sample, fractional allowed
    out = model(x, rate)
    assert out["x_hat"].shape == x.shape and set(out["likelihoods"]) == {"y1", "y2", "y3", "y4", "y5"}
    loss = model.rd_loss(x, out, rate)
    loss["loss"].backward()
    assert torch.isfinite(loss["loss"])
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert model.flow.levels[0].blocks[1].blocks[2].net[1].weight.grad.abs().sum() > 0  # coupling head learns


def _coded(model, x, rate):
    """(the decoder's picture, the encoder's reconstruction, the eval forward's picture) of ``x`` at ``rate``."""
    enc = model.compress(x, rate, reconstruct=True)  # the encoder walks on to the image
    dec = model.decompress(enc["strings"], enc["shape"], rate)
    with torch.inference_mode():
        forward = model(x, rate)["x_hat"].clamp(0, 1)
    return dec["x_hat"], enc["x_hat"], forward


@pytest.mark.parametrize("rate", [0.0, 2.5, 7.0])
def test_decoder_output_equals_encoder_reconstruction(mini, kodak_dir, rate):
    x = _crop(kodak_dir, 48, 32)  # non-square
    enc = mini.compress(x, rate)
    assert len(enc["strings"]) == 1  # one rANS stream for all five slices
    decoded, reconstructed, forward = _coded(mini, x, rate)
    assert mini.compress(x, rate, reconstruct=True)["strings"] == enc["strings"]
    assert torch.equal(decoded, reconstructed)
    assert torch.equal(mini.coded_forward(x, rate)["x_hat"].clamp(0, 1), decoded)
    assert _close(decoded, forward)


def _close(decoded: torch.Tensor, forward: torch.Tensor) -> bool:
    """Whether the exact walk's picture follows the float forward's: its σ and μ differ by the fixed point's
    resolution, so a few symbols round the other way (at most 5 % of the pixels more than one level apart)."""
    error = (decoded - forward).abs()
    return bool(error.mean() < 0.005 and (error > 1 / 255).float().mean() < 0.05)


@pytest.mark.parametrize("rate", [0.0, 7.0])
def test_the_float_walk_decodes_to_the_eval_forward_exactly(kodak_dir, rate):
    """Files made before the exact entropy parameters decode on the float walk, which is the eval forward's."""
    torch.manual_seed(0)
    model = load_model("msinn-mini", pretrained=False, entropy="float")
    _perturb(model)
    decoded, reconstructed, forward = _coded(model, _crop(kodak_dir, 48, 32), rate)
    assert torch.equal(decoded, forward) and torch.equal(reconstructed, forward)


def test_learned_codec_round_trip_is_bit_exact(small_rgb):
    codec = LearnedCodec("msinn-mini", pretrained=False)
    assert codec.rates == tuple(float(i) for i in range(8))
    data = codec.encode(small_rgb, 3.3)
    decoded = codec.decode(data)
    model = codec.model(3.3)
    x, _ = pad_to_multiple(to_tensor(small_rgb), model.pad_multiple)
    with torch.inference_mode():
        recon = to_uint8(crop(model(x, 3.3)["x_hat"].clamp(0, 1), *small_rgb.shape[:2]))
    assert decoded.shape == small_rgb.shape
    assert _close(torch.from_numpy(decoded / 255.0), torch.from_numpy(recon / 255.0))
    data_2, picture = codec.encode_with_reconstruction(small_rgb, 3.3)
    assert data_2 == data and np.array_equal(picture, decoded)


def test_the_kept_analysis_gives_the_same_files(small_rgb):
    """The codec keeps the last image's INN analysis (rate-free): coding it again at another rate reuses it and
    writes the very same file; another image is analysed anew."""
    codec = LearnedCodec("msinn-mini", pretrained=False)
    model = codec.model(2.0)
    assert model.rate_free_analysis
    analysed, analyse = [], model.analyse
    model.analyse = lambda x: analysed.append(x.shape) or analyse(x)
    other = np.ascontiguousarray(small_rgb[::-1])
    files = [codec.encode(rgb, rate) for rgb, rate in [(small_rgb, 2.0), (small_rgb, 5.5), (other, 5.5)]]
    assert len(analysed) == 2  # once per image
    fresh = [LearnedCodec("msinn-mini", pretrained=False).encode(rgb, rate)
             for rgb, rate in [(small_rgb, 2.0), (small_rgb, 5.5), (other, 5.5)]]
    assert files == fresh and files[1] != files[2]


def test_bpp_is_monotonic_in_rate_on_real_bitstreams(mini, kodak_dir):
    x = _crop(kodak_dir, 64, 64)
    sizes = [len(mini.compress(x, r)["strings"][0]) for r in (0.0, 1.0, 2.5, 4.0, 5.5, 7.0)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_fractional_rate_interpolates_gains_geometrically(mini):
    g = mini.gain(torch.tensor([2.0, 2.5, 3.0]))
    assert torch.allclose(g[1], (g[0] * g[2]).sqrt(), rtol=1e-5)
    with pytest.raises(ValueError):
        mini.check_rate(7.5)


def test_variants_without_lrp_and_postnet_round_trip(kodak_dir):
    model = load_model("msinn-mini", pretrained=False, lrp=False, postnet=None)
    assert model.postnet is None and all(s.lrp is None for s in model.slices)
    decoded, reconstructed, forward = _coded(model, _crop(kodak_dir, 32, 32), 1.5)
    assert torch.equal(decoded, reconstructed) and _close(decoded, forward)


def test_paper_size_model_codes_on_cpu(kodak_dir):
    model = load_model("msinn", pretrained=False)
    decoded, reconstructed, forward = _coded(model, _crop(kodak_dir, 32, 32), 4.0)
    assert torch.equal(decoded, reconstructed) and _close(decoded, forward)


def test_widening_to_twelve_anchors():
    model = create_model("msinn-mini")
    state = model.state_dict()
    model.widen_anchors(12)
    assert model.lambdas == LAMBDAS_12 and model.rate_range == (0.0, 11.0)
    # the new rows continue the last step in log λ (0.18 -> 0.32 -> ... -> 1.8: steps of ~0.87 the 0.0932 -> 0.18 one)
    step = model.gain.table[7].log() - model.gain.table[6].log()
    for k in range(8, 12):
        distance = math.log(LAMBDAS_12[k] / 0.18) / math.log(0.18 / 0.0932)
        assert torch.allclose(model.gain.table[k].log(), model.gain.table[7].log() + distance * step, atol=1e-5)
    assert torch.equal(model.gain.table[:8], state["gain.table"])
    # independently: the default tables follow √λ, a straight line in log λ, so the widened 8-anchor tables are
    # those of a model built with 12 anchors
    built = create_model("msinn-mini", anchors=12)
    for name in ("gain", "inverse_gain", "scale_gain"):
        assert torch.allclose(getattr(model, name).table, getattr(built, name).table, rtol=1e-4)
    wide = create_model("msinn-mini", anchors=12)
    wide.load_state_dict(state)  # an 8-anchor checkpoint loads into the 12-anchor model (staged widening)
    for name in ("gain", "inverse_gain", "scale_gain"):  # the same rows as widen_anchors
        assert torch.allclose(wide.state_dict()[f"{name}.table"], model.state_dict()[f"{name}.table"])


def test_extrapolated_gain_rows_continue_the_last_step():
    """Row k = last * (last / previous) ** k per channel; a one-row table is copied; bad sizes are refused."""
    from invlab.entropy.gain import extrapolate_rows

    table = torch.tensor([[0.5, 2.0], [1.0, 1.0]])
    grown = extrapolate_rows(table, 4)
    assert torch.allclose(grown[2:], torch.tensor([[2.0, 0.5], [4.0, 0.25]]))
    assert torch.equal(extrapolate_rows(table[:1], 3), table[:1].repeat(3, 1))  # one row: copies
    with pytest.raises(ValueError):
        extrapolate_rows(table, 1)
    with pytest.raises(ValueError):
        extrapolate_rows(table, 4, steps=[1.0])
    half = extrapolate_rows(table.half(), 3, steps=[0.5])  # fp16 (the shipped files) keeps its dtype
    assert half.dtype == torch.float16 and torch.allclose(half[2].float(), torch.tensor([2**0.5, 2**-0.5]), rtol=1e-3)
    low = extrapolate_rows(torch.tensor([[0.001], [0.02]]), 3, bound=0.01)  # step from the floored rows
    assert low[0, 0] == pytest.approx(0.001) and low[2, 0] == pytest.approx(0.04)


def test_bits_estimate_and_per_scale_maps(mini, kodak_dir):
    x = _crop(kodak_dir, 32, 48)
    view = mini.latent_bits_map(x, 5.0)
    assert view.names == ["y1", "y2", "y3", "y4", "y5"]
    assert [m.shape for m in view.bit_maps] == [(16, 24), (8, 12), (4, 6), (2, 3), (2, 3)]
    assert [y.shape[0] for y in view.latents] == [6, 12, 24, 48, 48]
    assert all(np.isfinite(m).all() and (m >= 0).all() for m in view.bit_maps)
    bits = mini.estimate_bits(x, 5.0)
    assert bits == pytest.approx(view.bits) and view.bpp == pytest.approx(sum(bits.values()) / (32 * 48))
    assert not mini.training


def test_the_twelve_anchor_model_starts_as_the_shipped_eight_anchor_one(kodak_dir):
    """msinn-mini-12 is registered with the 12 λs; the shipped 8-anchor weights load into it (what its training
    starts from, ``--init-from weights/msinn-mini.pt``), and it then codes rates 0-7 exactly as msinn-mini."""
    from invlab.models import get_spec
    from invlab.train.trainer import load_state
    from invlab.weights import weights_path

    spec = get_spec("msinn-mini-12")
    assert spec.lambdas == LAMBDAS_12 and spec.published_curve() == "msinn-12"
    assert spec.rate_space().high == 11
    eight = load_model("msinn-mini", pretrained=True)
    wide = create_model("msinn-mini-12").eval()
    wide.load_state_dict(load_state(weights_path("msinn-mini", None)))
    x = _crop(kodak_dir, 32, 48)
    with torch.inference_mode():
        for rate in (0.0, 3.5, 7.0):
            assert torch.equal(wide(x, rate)["x_hat"], eight(x, rate)["x_hat"])
        # the new rows continue the gains' trend: anchor 11 codes more bits than anchor 7
        assert wide(x, 11.0)["likelihoods"]["y1"].log().sum() < eight(x, 7.0)["likelihoods"]["y1"].log().sum()
        for name in ("gain", "inverse_gain"):
            table = getattr(wide, name).lower_bound(getattr(wide, name).table)
            diffs = table[7:].log().diff(dim=0).mean(1)
            assert ((diffs > 0) if name == "gain" else (diffs < 0)).all()


def test_a_distortion_term_on_the_inns_own_reconstruction_is_a_training_option():
    import torch

    plain, asked = create_model("msinn-mini"), create_model("msinn-mini", xtilde_weight=0.5)
    asked.load_state_dict(plain.state_dict())
    x, rate = torch.rand(2, 3, 32, 32), torch.tensor([1.0, 4.0])
    torch.manual_seed(0)
    a = plain(x, rate)
    torch.manual_seed(0)
    b = asked(x, rate)
    assert "extra_loss" not in a and b["extra_loss"] > 0 and torch.equal(a["x_hat"], b["x_hat"])
    assert asked.config["xtilde_weight"] == 0.5 and "xtilde_weight" not in plain.config  # shipped configs unchanged
