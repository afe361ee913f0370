"""The stable re-encoding mode: the decoder reduced to the inverse of the encoder's transform, so re-encoding a
decoded image gives its symbols back (``NAME+stable``, ``invlab reencode --stable``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from invlab.codecs.learned import LearnedCodec, decoder_for
from invlab.codecs.registry import get_codec, with_stable_modes
from invlab.errors import UnknownCodecError
from invlab.io.container import InvlabFile


@pytest.fixture
def crop(kodak_dir):
    from invlab.io.images import load_image

    return np.ascontiguousarray(load_image(kodak_dir / "kodim23.png").rgb[200:264, 300:364])


def test_a_stable_file_says_so_and_decodes_exactly_with_either_codec(crop):
    stable, plain = get_codec("msinn-mini+stable"), get_codec("msinn-mini")
    assert stable.label == "msinn-mini+stable" and stable.rate_space == plain.rate_space
    data, reconstruction = stable.encode_with_reconstruction(crop, 3.0)
    assert InvlabFile.from_bytes(data).meta["options"] == {"stable": True, "entropy": "exact"}
    assert InvlabFile.from_bytes(data).model == "msinn-mini"  # a header names the model, the options its mode
    assert np.array_equal(plain.decode(data), reconstruction)
    assert np.array_equal(decoder_for(data).decode(data), reconstruction)
    plain_file = plain.encode(crop, 3.0)
    assert InvlabFile.from_bytes(plain_file).meta["options"] == {"entropy": "exact"}  # no stable option
    assert np.array_equal(stable.decode(plain_file), plain.decode(plain_file))
    # the stable mode leaves the post-net out: its picture differs from the full decoder's for the same image
    assert not np.array_equal(reconstruction, plain.decode(plain_file))


def test_re_encoding_in_the_stable_mode_reaches_a_fixed_point_and_the_default_mode_does_not(crop):
    def generations(codec: LearnedCodec, count: int) -> list[np.ndarray]:
        pictures = [crop]
        for _ in range(count):
            pictures.append(codec.decode(codec.encode(pictures[-1], 3.0)))
        return pictures

    stable = generations(get_codec("msinn-mini+stable"), 4)
    assert np.array_equal(stable[3], stable[4])  # f(f(x)) = f(x) bit for bit once the 8-bit rounding settled
    plain = generations(get_codec("msinn-mini"), 4)
    assert not all(np.array_equal(a, b) for a, b in zip(plain[1:], plain[2:], strict=False))


def test_the_anfic_family_s_stable_mode_decodes_without_its_post_filter(crop):
    stable, plain = get_codec("anfic-mini-noctx+stable"), get_codec("anfic-mini-noctx")
    data, reconstruction = stable.encode_with_reconstruction(crop, 1)
    assert InvlabFile.from_bytes(data).meta["options"] == {"stable": True, "entropy": "exact"}
    assert np.array_equal(plain.decode(data), reconstruction)
    assert not np.array_equal(reconstruction, plain.decode(plain.encode(crop, 1)))  # the QE filter is left out
    assert plain.model(1).coding_options == {"entropy": "exact"} and stable.model(1).stable


def test_a_model_without_a_stable_mode_is_refused_with_the_models_that_have_one():
    refusal = "no stable re-encoding mode; models with one: .*anfic-mini.*msinn-mini"
    with pytest.raises(UnknownCodecError, match=refusal):
        LearnedCodec("bmshj2018-hyperprior-mini+stable")
    assert with_stable_modes(["msinn-mini", "jpeg", "bmshj2018-hyperprior-mini"]) == [
        "msinn-mini", "msinn-mini+stable", "jpeg", "bmshj2018-hyperprior-mini"]
    assert with_stable_modes(["msinn-mini+stable", "msinn-mini"]) == ["msinn-mini+stable", "msinn-mini"]


def test_reencode_stable_studies_each_model_beside_its_stable_mode(tmp_path, crop, monkeypatch):
    from PIL import Image

    from invlab.cli import main

    Image.fromarray(crop[:32, :32]).save(tmp_path / "crop.png")
    monkeypatch.setattr("sys.argv", ["invlab", "reencode"])
    assert main(["reencode", "--codecs", "msinn-mini,jpeg", "--rate", "msinn-mini=3", "--rate", "msinn-mini+stable=3",
                 "--rate", "jpeg=50", "--images", str(tmp_path / "crop.png"), "--generations", "3", "--stable",
                 "--out", str(tmp_path / "out")]) == 0
    summary = {row["codec"]: row for row in json.loads((tmp_path / "out" / "summary.json").read_text())}
    assert list(summary) == ["msinn-mini", "msinn-mini+stable", "jpeg"]
    assert (tmp_path / "out" / "msinn-mini+stable_crop.csv").is_file()


def test_cli_encode_stable_writes_a_file_whose_decode_encodes_to_the_same_file(tmp_path, crop, capsys):
    from PIL import Image

    from invlab.cli import main

    Image.fromarray(crop).save(tmp_path / "crop.png")
    files = []
    for generation in range(3):
        source = tmp_path / ("crop.png" if generation == 0 else f"g{generation}.png")
        files.append(tmp_path / f"g{generation + 1}.inv")
        assert main(["encode", str(source), str(files[-1]), "--model", "msinn-mini", "--rate", "3", "--stable"]) == 0
        assert main(["decode", str(files[-1]), str(tmp_path / f"g{generation + 1}.png")]) == 0
    assert "in its stable re-encoding mode" in capsys.readouterr().out
    assert files[1].read_bytes() == files[2].read_bytes()
    assert main(["info", str(files[0])]) == 0
    assert "stable True (the stable re-encoding mode)" in capsys.readouterr().out
    assert main(["encode", str(tmp_path / "crop.png"), str(tmp_path / "x.inv"), "--model", "jpeg", "--stable"]) == 2
    assert main(["encode", str(tmp_path / "crop.png"), str(tmp_path / "x.inv"), "--model", "mbt2018-mean-mini",
                 "--stable"]) == 2
    assert not (tmp_path / "x.inv").exists()


def test_the_post_net_benchmark_measures_a_known_lipschitz_constant():
    import torch

    from benchmarks.postnet_inverse import lipschitz

    scale = torch.tensor([3.0, 0.5, 1.0])
    assert lipschitz(lambda v: v * scale[:, None, None], torch.zeros(3, 4, 4)) == pytest.approx(3.0, rel=1e-4)
