"""Official checkpoints convert into invlab weights that compute what the official code computed.

The fixtures (``tests/fixtures/official``, made by ``scripts/official/make_fixtures.py`` with the official code at
full size; see ``tests/official_fixtures.py``) hold the official latents, likelihoods and reconstruction of a
fixed input under fixed random weights. Conversion must reproduce them: latents and likelihoods within 1e-5, the
same estimated bits, the reconstruction within 1e-4.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from official_fixtures import converted_model, load_fixture, official_state

from invlab.codecs.learned import LearnedCodec
from invlab.errors import ModelMismatchError, OutputExistsError, WeightFileError
from invlab.io.container import InvlabFile
from invlab.models import create_model
from invlab.official import CONVERTERS, convert_checkpoint
from invlab.weights import load_model, read_weight_file


def _bits(likelihoods: torch.Tensor) -> float:
    return float(-torch.log2(likelihoods.double()).sum())


@pytest.fixture(scope="module", params=["invcompress-N128.pt", "invcompress-N192.pt"])
def invcompress_case(request):
    return converted_model("invcompress", request.param)


@torch.no_grad()
def test_invcompress_computes_what_the_official_code_computed(invcompress_case):
    """The official forward in eval mode: y = g_a(x); z through the entropy bottleneck; the context and the Gaussian
    parameters from round(y) (its ``dequantize``); x_hat = g_s(round(y))."""
    fixture, model = invcompress_case
    x = fixture["x"].permute(2, 0, 1)[None].float() / 255
    y = model.g_a(x)
    assert (y - fixture["y"]).abs().max() < 1e-5
    y_hat = torch.round(fixture["y"])
    assert torch.equal(torch.round(y), y_hat)

    hyper = model.latent_codec.latent_codec["hyper"](fixture["y"])
    y_codec = model.latent_codec.latent_codec["y"]
    params = torch.cat([hyper["params"], y_codec.context_prediction(y_hat)], dim=1)
    scales, means = y_codec.entropy_parameters(params).chunk(2, 1)
    _, y_likelihoods = y_codec.gaussian_conditional(fixture["y"], scales, means=means)
    ours = {"y": y_likelihoods, "z": hyper["likelihoods"]["z"]}
    for name, official in fixture["likelihoods"].items():
        assert (ours[name] - official).abs().max() < 1e-5
        assert _bits(ours[name]) == pytest.approx(_bits(official), abs=0.01)
    assert (model.g_s(y_hat) - fixture["x_hat"]).abs().max() < 1e-4


def _checkpoint(tmp_path, layout: str):
    """The N=128 fixture's weights saved as the official training script nests them (or bare)."""
    state = official_state(load_fixture("invcompress-N128.pt"))
    if layout == "bare":
        ckpt = state
    elif layout == "training":
        ckpt = {"epoch": 99, "state_dict": {"module." + k: v for k, v in state.items()}, "loss": torch.tensor(0.5),
                "lr_scheduler": {"milestones": __import__("collections").Counter([2000])}}
    else:
        ckpt = {layout: state}
    path = tmp_path / f"{layout}.pth.tar"
    torch.save(ckpt, path)
    return path, state


@pytest.mark.parametrize("layout", ["training", "bare", "network"])
def test_convert_writes_a_weight_file_that_loads_strictly_and_says_where_it_came_from(tmp_path, layout):
    path, _ = _checkpoint(tmp_path, layout)
    out = convert_checkpoint("invcompress", path, tmp_path / "inv.pt", quality=2)
    state, config = read_weight_file(out)
    assert config == {"M": 128, "N": 128, "lambdas": [0.0024], "padding": "official"}
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["trained"] == "official weights, not trained here" and len(meta["official"]["sha256"]) == 64
    assert meta["weights_hash"] == load_model("invcompress", path=out).weights_hash.hex()
    with pytest.raises(OutputExistsError):
        convert_checkpoint("invcompress", path, out)


def test_convert_refuses_a_checkpoint_that_does_not_match(tmp_path):
    _, state = _checkpoint(tmp_path, "bare")
    for name, changed in [("missing", {k: v for k, v in state.items() if not k.startswith("attention.back_att")}),
                          ("extra", {**state, "inv.operations.3.G1.conv4.weight": torch.zeros(1)}),
                          ("resized", {**state, "h_s.0.bias": torch.zeros(7)})]:
        path = tmp_path / f"{name}.pt"
        torch.save({"state_dict": changed}, path)
        with pytest.raises(WeightFileError, match="not found: acs_dec|not used: inv.operations.3|h_s.0.bias has shape"):
            convert_checkpoint("invcompress", path, tmp_path / f"{name}-out.pt")
        assert not (tmp_path / f"{name}-out.pt").exists()
    path = tmp_path / "wrong-quality.pt"
    torch.save(state, path)
    with pytest.raises(WeightFileError, match="quality 6 has latent width 192"):
        convert_checkpoint("invcompress", path, tmp_path / "q6.pt", quality=6)


@pytest.mark.parametrize(("family", "fixture", "rate"), [("invcompress", "invcompress-N128.pt", 0),
                                                         ("msinn", "msinn-8-postnet.pt", 2.5)])
def test_a_converted_model_codes_real_files_that_decode_exactly(tmp_path, small_rgb, family, fixture, rate):
    """Through the codec, with the official padding (the 48x40 crop is padded on all sides)."""
    path = tmp_path / "official.pth"
    torch.save({"model_state_dict": {"module." + k: v for k, v in official_state(load_fixture(fixture)).items()}},
               path)
    out = convert_checkpoint(family, path, tmp_path / "converted.pt")
    codec = LearnedCodec(family, weights=out)
    data, reconstruction = codec.encode_with_reconstruction(small_rgb, rate)
    decoded = codec.decode_image(data)
    assert decoded.matches_encoder and np.array_equal(decoded.rgb, reconstruction)


@pytest.fixture(scope="module", params=["msinn-12.pt", "msinn-8-postnet.pt"])
def msinn_case(request):
    return converted_model("msinn", request.param)


@torch.no_grad()
def test_msinn_computes_what_the_official_code_computed(msinn_case):
    """The official forward in eval mode at a fractional and the top anchor: latents y1 ... y5, the likelihoods
    of each slice (official slice s is invlab's y(5 - s)), the reconstruction (with the official post-net)."""
    fixture, model = msinn_case
    x = fixture["x"].permute(2, 0, 1)[None].float() / 255
    for ours, official in zip(model.flow(x), fixture["y"], strict=True):
        assert (ours - official).abs().max() < 1e-5
    assert model.config["postnet"] == ("unet-official" if fixture["post_process"] else None)
    for rate in fixture["rates"]:
        out, official = model(x, torch.tensor([float(rate)])), fixture["outputs"][rate]
        for s in range(5):
            ours, theirs = out["likelihoods"][f"y{5 - s}"], official["likelihoods"][f"y{s}"]
            assert (ours - theirs).abs().max() < 1e-5
            assert _bits(ours) == pytest.approx(_bits(theirs), abs=0.01)
        assert (out["x_hat"] - official["x_hat"]).abs().max() < 1e-4


def test_official_padding_is_centred_zeros_to_64():
    model = create_model("msinn", padding="official")
    x = torch.rand(1, 3, 100, 70)
    padded = model.pad(x)
    assert padded.shape[-2:] == (128, 128)
    assert torch.equal(padded[..., 14:114, 29:99], x) and padded[..., :14, :].abs().sum() == 0
    assert torch.equal(model.crop(padded, 100, 70), x)
    assert create_model("msinn").pad(x).shape[-2:] == (112, 80)  # invlab's own: replicate to 16


@pytest.fixture(scope="module")
def anfic_case():
    return converted_model("anfic", "anfic.pt")


@torch.no_grad()
def test_anfic_computes_what_the_official_code_computed(anfic_case):
    """The official forward in eval mode: z2 before rounding, the hyper-latent h = h_a(|z2|), the likelihoods of
    round(z2) under the mixture with the 5x5 context ("y") and of round(h) ("z"), the bits its ``estimate_bpp``
    counts (likelihoods bounded at 1e-9, as invlab's), the x2 penalty's MSE and x_hat (with QE)."""
    fixture, model = anfic_case
    assert model.priors[0].entropy_bottleneck.filters == (3, 3, 3)
    x = fixture["x"].permute(2, 0, 1)[None].float() / 255
    _, z2 = model._analyse(x, None)
    assert (z2 - fixture["y"]).abs().max() < 1e-5
    assert torch.equal(torch.round(z2), torch.round(fixture["y"]))
    assert (model.priors[0].hyper_analysis(fixture["y"]) - fixture["h"]).abs().max() < 1e-5
    out = model(x)
    for name, official in fixture["likelihoods"].items():
        assert (out["likelihoods"][name] - official).abs().max() < 1e-5
        assert _bits(out["likelihoods"][name]) == pytest.approx(fixture["bits"][name], abs=0.01)
    assert float(out["x2_mse"]) == pytest.approx(float(fixture["x2_mse"]), rel=1e-5)
    assert (out["x_hat"] - fixture["x_hat"]).abs().max() < 1e-4


def test_anfic_conversion_refuses_other_configurations():
    state = official_state(load_fixture("anfic.pt"))
    context_mask = "conditional_bottleneck.mask._mask"
    for changed, message in [
        ({**state, "analysis0.6.weight": torch.zeros(640, 128, 25)}, "analysis0.6.weight is .640, 128, 25.*-DM"),
        ({k: v for k, v in state.items() if not k.startswith("QE.")}, "QE.conv1.weight is missing"),
        ({**state, "analysis2.0.weight": state["analysis1.0.weight"]}, "more than 2 flow steps"),
        ({**state, context_mask: torch.ones(5, 5)}, "not the 5x5 type-A"),
        ({**state, "QE.conv4.weight": torch.zeros(3, 64, 9)}, "not used: QE.conv4.weight"),
        ({k: v for k, v in state.items() if k != "QE.conv2.bias"}, "not found: qe.mid.bias"),
    ]:
        with pytest.raises(WeightFileError, match=message):
            CONVERTERS["anfic"](changed)


def test_a_converted_anfic_codes_a_real_file_that_decodes_exactly(tmp_path, small_rgb):
    """Through the codec, from a checkpoint nested as the official code saves it (``coder``); the 48x40 crop is
    replicated to 64x64, as the official evaluation pads (4x4 latent positions for the serial context)."""
    path = tmp_path / "ANFIC_R1.ckpt"
    torch.save({"coder": official_state(load_fixture("anfic.pt"))}, path)
    out = convert_checkpoint("anfic", path, tmp_path / "anfic.pt")
    assert read_weight_file(out)[1] == {"hyper_filters": [3, 3, 3]}
    codec = LearnedCodec("anfic", weights=out)
    data, reconstruction = codec.encode_with_reconstruction(small_rgb, 0)
    decoded = codec.decode_image(data)
    assert decoded.matches_encoder and np.array_equal(decoded.rgb, reconstruction)


def test_anfic_pads_as_the_official_evaluation():
    """The official ``Alignment(64)``: the last row and column replicated, right and bottom (invlab's own)."""
    model = create_model("anfic-mini")
    x = torch.rand(1, 3, 100, 70)
    assert torch.equal(model.pad(x), torch.nn.functional.pad(x, (0, 58, 0, 28), mode="replicate"))
    assert torch.equal(model.crop(model.pad(x), 100, 70), x)


def test_a_file_records_the_options_it_was_coded_with(tmp_path, small_rgb):
    """The official padding and anchor colour travel in the file: a decoder built with other options refuses it
    instead of cropping the wrong window; invlab's own models record only their exact entropy parameters."""
    path = tmp_path / "official.pth"
    torch.save(official_state(load_fixture("msinn-8-postnet.pt")), path)
    out = convert_checkpoint("msinn", path, tmp_path / "converted.pt")
    data = LearnedCodec("msinn", weights=out).encode(small_rgb, 2.0)
    meta = InvlabFile.from_bytes(data).meta
    assert meta["options"] == {"pad": ["zeros-centred", 64], "anchor_colour": 1, "entropy": "exact"}
    with pytest.raises(ModelMismatchError, match="options"):
        LearnedCodec("msinn", weights=out, padding="replicate", anchor_colour=0).decode(data)
    assert create_model("msinn-mini").coding_options == {"entropy": "exact"}
    assert create_model("msinn-mini", entropy="float").coding_options == {}
