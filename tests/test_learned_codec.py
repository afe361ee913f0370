"""End-to-end plumbing with the tiny model: image -> invlab file -> image, through the library and the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from invlab.cli import main as cli_main
from invlab.codecs.learned import LearnedCodec
from invlab.errors import BitstreamError, MissingWeightsError, ModelMismatchError
from invlab.io.container import InvlabFile
from invlab.io.images import ImageData, crop, pad_to_multiple, to_tensor, to_uint8
from invlab.weights import load_model


@pytest.fixture(scope="module")
def codec() -> LearnedCodec:
    return LearnedCodec("tiny-flow", pretrained=False)


def test_decode_reproduces_the_encoder_reconstruction_exactly(codec, small_rgb):
    data = codec.encode_image(ImageData(small_rgb), 1.5)
    decoded = codec.decode_image(data).rgb
    # the encoder-side reconstruction: eval-mode forward (quantised latents through the inverse flow)
    model = codec.model(1.5)
    x, _ = pad_to_multiple(to_tensor(small_rgb), model.pad_multiple)
    with torch.no_grad():
        x_hat = model(x, torch.tensor([1.5]))["x_hat"]
    expected = to_uint8(crop(x_hat, *small_rgb.shape[:2]))
    assert np.array_equal(decoded, expected)
    assert decoded.shape == small_rgb.shape


def test_bpp_is_measured_from_file_bytes_and_grows_with_rate(codec, small_rgb):
    h, w = small_rgb.shape[:2]
    sizes = [len(codec.encode(small_rgb, r)) for r in (0.0, 1.0, 2.0)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    data = codec.encode(small_rgb, 1.0)
    f = InvlabFile.from_bytes(data)
    assert len(data) == len(f.to_bytes()) and 8 * len(data) / (h * w) > 0


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 3, 3), (33, 17, 3)])
def test_odd_sizes(codec, shape):
    rgb = np.random.randint(0, 256, shape, np.uint8)
    assert codec.decode(codec.encode(rgb, 0.0)).shape == shape


def test_modes_come_back(codec):
    gray = ImageData(np.repeat(np.random.randint(0, 256, (8, 8, 1), np.uint8), 3, axis=2), "L", 16)
    out = codec.decode_image(codec.encode_image(gray, 1.0))
    assert out.mode == "L" and out.bitdepth == 16
    alpha = np.random.randint(0, 256, (8, 8), np.uint8)
    rgba = ImageData(np.random.randint(0, 256, (8, 8, 3), np.uint8), "RGBA", 8, alpha)
    out = codec.decode_image(codec.encode_image(rgba, 1.0))
    assert out.mode == "RGBA" and np.array_equal(out.alpha, alpha)  # alpha is lossless


def test_damaged_files_raise_clear_errors(codec, small_rgb):
    data = codec.encode(small_rgb, 1.0)
    for damaged in (data[: len(data) // 2], data[:-1], data[:10], bytes([data[0] ^ 1]) + data[1:]):
        with pytest.raises(BitstreamError):
            codec.decode(damaged)
    mid = bytearray(data)
    mid[len(mid) // 2] ^= 0xFF
    with pytest.raises(BitstreamError):
        codec.decode(bytes(mid))


def test_wrong_model_or_weights_is_refused(codec, small_rgb):
    data = codec.encode(small_rgb, 1.0)
    f = InvlabFile.from_bytes(data)
    f.model = "other-model"
    with pytest.raises(ModelMismatchError, match="other-model"):
        codec.decode(f.to_bytes())
    f = InvlabFile.from_bytes(data)
    f.weights_hash = b"\xff" * 8
    with pytest.raises(ModelMismatchError, match="other weights"):
        codec.decode(f.to_bytes())


def test_untrained_init_is_deterministic_and_missing_weights_are_explained():
    a, b = load_model("tiny-flow", pretrained=False), load_model("tiny-flow", pretrained=False)
    assert a.weights_hash == b.weights_hash
    with pytest.raises(MissingWeightsError, match="invlab train"):
        load_model("tiny-flow", pretrained=True)


def test_cli_encode_info_decode(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(np.random.randint(0, 256, (20, 30, 3), np.uint8)).save(src)
    enc, dec = tmp_path / "x.invl", tmp_path / "out.png"
    assert cli_main(["encode", str(src), str(enc), "--model", "tiny-flow", "--untrained", "--rate", "1"]) == 0
    assert "bpp" in capsys.readouterr().out
    assert cli_main(["info", str(enc)]) == 0
    assert "tiny-flow" in capsys.readouterr().out
    assert cli_main(["decode", str(enc), str(dec), "--untrained"]) == 0
    assert Image.open(dec).size == (30, 20)
    # never overwrite without --force, and say why
    assert cli_main(["encode", str(src), str(enc), "--model", "tiny-flow", "--untrained"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    enc.write_bytes(enc.read_bytes()[:-7])
    assert cli_main(["decode", str(enc), str(tmp_path / "o2.png"), "--untrained"]) == 2
    assert "truncated" in capsys.readouterr().err
    assert not (tmp_path / "o2.png").exists()


@pytest.mark.parametrize("kind", ["gray", "rgba", "deep-rgb", "deep-gray", "1x1"])
def test_cli_round_trips_every_supported_mode_to_a_file(tmp_path, kind):
    import imagecodecs

    rng = np.random.default_rng(0)
    src = tmp_path / "in.png"
    if kind.startswith("deep"):  # 16-bit PNG in, 16-bit PNG out
        arr = rng.integers(0, 65536, (9, 13, 3) if kind == "deep-rgb" else (9, 13), dtype=np.uint16)
        src.write_bytes(imagecodecs.png_encode(arr))
    else:
        shape = {"gray": (9, 13), "rgba": (9, 13, 4), "1x1": (1, 1, 3)}[kind]
        arr = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(arr).save(src)
    enc, dec = tmp_path / "x.invl", tmp_path / "out.png"
    assert cli_main(["encode", str(src), str(enc), "--model", "tiny-flow", "--untrained"]) == 0
    assert cli_main(["decode", str(enc), str(dec), "--untrained"]) == 0
    out = imagecodecs.png_decode(dec.read_bytes())
    assert out.shape == arr.shape and out.dtype == arr.dtype
    if kind == "rgba":
        assert np.array_equal(out[..., 3], arr[..., 3])  # alpha is lossless


def test_cli_help_runs():
    out = subprocess.run([sys.executable, "-m", "invlab.cli", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "encode" in out.stdout


def test_a_family_without_index_0_gives_its_first_shipped_model_by_default(tmp_path, monkeypatch):
    """Only NAME-q1.pt and NAME-q3.pt shipped: ``model()`` is index 1's (notebooks ask for "a model" this way)."""
    name = "bmshj2018-hyperprior-mini"
    state = load_model(name, pretrained=False).state_dict()
    for index in (1, 3):
        torch.save({"state_dict": state, "config": {}}, tmp_path / f"{name}-q{index}.pt")
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path))
    codec = LearnedCodec(name)
    assert codec.rates == (1.0, 3.0) and codec.model() is codec.model(1.0)
    assert load_model(name).weights_file.endswith(f"{name}-q1.pt")  # e.g. `invlab masks`: the first shipped file
    with pytest.raises(ValueError, match="weight index, one of 1, 3"):
        codec.model(0.0)


def test_fixed_rate_family_with_several_weight_files(tmp_path, monkeypatch, small_rgb):
    """NAME-q0.pt and NAME-q2.pt shipped: rate picks the file, other indexes are refused, files record theirs."""
    from invlab.errors import InvalidHeaderError
    from scripts.fuzz import Parsed

    name = "bmshj2018-hyperprior-mini"
    for index, scale in ((0, 1.0), (2, 1.1)):
        state = load_model(name, pretrained=False).state_dict()
        state = {k: v * scale if v.is_floating_point() and not k.endswith(("_cdf", "_offset", "_cdf_length")) else v
                 for k, v in state.items()}
        torch.save({"state_dict": state, "config": {}}, tmp_path / f"{name}-q{index}.pt")
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path))
    codec = LearnedCodec(name)
    assert codec.rates == (0.0, 2.0) and codec.trained
    files = {r: codec.encode(small_rgb, r) for r in codec.rates}
    assert codec.model(0.0).weights_hash != codec.model(2.0).weights_hash
    assert all(codec.decode_image(data).matches_encoder is True for data in files.values())
    with pytest.raises(ValueError, match="weight index, one of 0, 2"):
        codec.encode(small_rgb, 1.0)
    crafted = Parsed.parse(files[2.0])
    crafted.rate = 1.0
    with pytest.raises(InvalidHeaderError, match="rate"):
        codec.decode_image(crafted.build())


def test_fixed_rate_family_with_one_indexed_weight_file(tmp_path, monkeypatch, small_rgb):
    """Only NAME-q2.pt shipped (a family's first trained rate): the codec codes at rate 2 with that file, not at
    "rate 0", and refuses the indices it lacks."""
    name = "mbt2018-mean-mini"
    state = load_model(name, pretrained=False).state_dict()
    torch.save({"state_dict": state, "config": {}}, tmp_path / f"{name}-q2.pt")
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path))
    codec = LearnedCodec(name)
    assert codec.rates == (2.0,) and codec.trained
    assert codec.model(2.0).weights_file == str(tmp_path / f"{name}-q2.pt")
    assert codec.decode_image(codec.encode(small_rgb, 2.0)).matches_encoder is True
    with pytest.raises(ValueError, match="weight index"):
        codec.encode(small_rgb, 0.0)


@pytest.mark.parametrize("name", ["tiny-flow", "msinn-mini", "mbt2018-mean-mini"])
def test_a_file_decodes_exactly_with_another_thread_count_than_the_encoders(name):
    """Encoded with 1 torch thread, decoded with 2 (and back): the decoder must not depend on the thread count."""
    codec = LearnedCodec(name, pretrained=False)
    rgb = np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    rate = codec.rates[-1]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        data, recon = codec.encode_with_reconstruction(rgb, rate)
        torch.set_num_threads(2)
        image = codec.decode_image(data)
    finally:
        torch.set_num_threads(threads)
    assert image.matches_encoder is True and np.array_equal(image.rgb, recon)
