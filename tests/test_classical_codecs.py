"""Classical codecs: round trip on odd sizes, deterministic bytes, bit-exact decoding, sane RD behaviour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from invlab.codecs.classical import CLASSICAL_CODECS, VVC
from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import get_codec, list_codecs
from invlab.errors import InvlabError
from invlab.io.images import load_image
from invlab.metrics import bpp, psnr

KODIM23 = Path(__file__).resolve().parents[1] / "data" / "kodak" / "kodim23.png"


@pytest.fixture(scope="module")
def odd_rgb() -> np.ndarray:
    return load_image(KODIM23).rgb[200:237, 300:345].copy()  # 37 x 45


@pytest.fixture(scope="module")
def rgb64() -> np.ndarray:
    return load_image(KODIM23).rgb[180:244, 300:364].copy()


@pytest.mark.parametrize("name", list(CLASSICAL_CODECS))
def test_odd_size_roundtrip_is_deterministic_and_bit_exact(name, odd_rgb):
    codec = get_codec(name)
    rate = codec.rates[len(codec.rates) // 2]
    data = codec.encode(odd_rgb, rate)
    rec = codec.decode(data)
    assert rec.shape == odd_rgb.shape and rec.dtype == np.uint8
    assert codec.encode(odd_rgb, rate) == data  # same bytes every time
    assert np.array_equal(codec.decode(data), rec)  # the decoder output is the reconstruction, exactly
    assert 28 < psnr(odd_rgb, rec) < 60


@pytest.mark.parametrize("name", list(CLASSICAL_CODECS))
def test_bpp_increases_along_the_rate_list(name, rgb64):
    codec = get_codec(name)
    rates = (codec.rates[0], codec.rates[len(codec.rates) // 2], codec.rates[-1])
    sizes = [bpp(len(codec.encode(rgb64, r)), 64, 64) for r in rates]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1], sizes
    assert 0.02 < sizes[0] < 3.0


def test_registry_names_and_errors():
    assert set(CLASSICAL_CODECS) <= set(list_codecs())
    assert isinstance(get_codec("vvc-slower"), VVC) and get_codec("vvc-slower").name == "vvc-slower"
    assert isinstance(get_codec("tiny-flow", pretrained=False), LearnedCodec)
    with pytest.raises(InvlabError):
        get_codec("no-such-codec")
    with pytest.raises(ValueError):
        VVC(preset="ultrafast")


def test_webp_is_lossy(rgb64):
    codec = get_codec("webp")
    assert psnr(rgb64, codec.decode(codec.encode(rgb64, 50))) < 50  # imagecodecs defaults to lossless
