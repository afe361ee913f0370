"""Input image policy: every mode is either handled (and comes back in its mode) or refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from invlab.errors import OutputExistsError, UnsupportedImageError
from invlab.io.images import ImageData, crop, load_image, pad_to_multiple, save_image, to_array


def _save(tmp_path, arr, mode=None, name="in.png"):
    path = tmp_path / name
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def test_rgb(tmp_path):
    arr = np.random.randint(0, 256, (7, 5, 3), np.uint8)
    img = load_image(_save(tmp_path, arr))
    assert img.mode == "RGB" and np.array_equal(img.rgb, arr)


def test_grayscale_comes_back_gray(tmp_path):
    arr = np.random.randint(0, 256, (9, 4), np.uint8)
    img = load_image(_save(tmp_path, arr))
    assert img.mode == "L" and img.rgb.shape == (9, 4, 3)
    assert np.array_equal(to_array(img), arr)


def test_rgba_keeps_alpha_and_opaque_alpha_is_dropped(tmp_path):
    arr = np.random.randint(0, 256, (6, 6, 4), np.uint8)
    img = load_image(_save(tmp_path, arr))
    assert img.mode == "RGBA" and np.array_equal(img.alpha, arr[..., 3])
    assert np.array_equal(to_array(img), arr)
    arr[..., 3] = 255
    img = load_image(_save(tmp_path, arr, name="opaque.png"))
    assert img.mode == "RGB" and img.alpha is None


def test_16bit_png_is_reduced_and_restored(tmp_path):
    import imagecodecs

    arr = (np.random.randint(0, 256, (5, 7, 3)) * 257).astype(np.uint16)
    path = tmp_path / "deep.png"
    path.write_bytes(imagecodecs.png_encode(arr))
    img = load_image(path)
    assert img.bitdepth == 16 and img.mode == "RGB"
    assert np.array_equal(to_array(img), arr)
    gray = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    path.write_bytes(imagecodecs.png_encode(gray))
    img = load_image(path)
    assert img.mode == "L" and img.bitdepth == 16
    assert np.abs(to_array(img).astype(int) - gray).max() <= 128


def test_refused_modes_and_sizes(tmp_path):
    bw = Image.fromarray(np.zeros((4, 4), bool))
    path = tmp_path / "bw.png"
    bw.save(path)
    with pytest.raises(UnsupportedImageError, match="1-bit"):
        load_image(path)
    with pytest.raises(UnsupportedImageError, match="MP"):
        load_image(_save(tmp_path, np.zeros((20, 20, 3), np.uint8), name="big.png"), max_pixels=100)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(UnsupportedImageError):
        load_image(tmp_path / "junk.png")


@pytest.mark.parametrize("hw", [(1, 1), (17, 3), (64, 64), (65, 130)])
def test_pad_and_crop(hw):
    x = torch.rand(1, 3, *hw)
    xp, _ = pad_to_multiple(x, 64)
    assert xp.shape[-2] % 64 == 0 and xp.shape[-1] % 64 == 0
    assert torch.equal(crop(xp, *hw), x)


def test_save_never_overwrites(tmp_path):
    path = _save(tmp_path, np.zeros((2, 2, 3), np.uint8), name="keep.png")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError):
        save_image(path, ImageData(np.ones((2, 2, 3), np.uint8)))
    assert path.read_bytes() == before
