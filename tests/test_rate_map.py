"""Rate maps: a rate per 16x16 block for MSINN, in the file as a stream of its own, decoded exactly; hostile maps
refused like every other field."""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from invlab.cli import main as cli_main
from invlab.codecs.learned import LearnedCodec
from invlab.errors import InvalidHeaderError
from invlab.io.container import InvlabFile
from invlab.io.images import ImageData, load_image
from invlab.rate_map import BLOCK, RateMap, RateMapError, parse_roi


@pytest.fixture(scope="module")
def codec() -> LearnedCodec:
    return LearnedCodec("msinn-mini", pretrained=False)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.ascontiguousarray(load_image("data/kodak/kodim23.png").rgb[120:200, 200:296])  # 80 x 96: 5 x 6 blocks


def _craft(data: bytes, **changes) -> bytes:
    f = InvlabFile.from_bytes(data)
    return dataclasses.replace(f, **changes).to_bytes()


def test_blocks_from_rois_and_from_a_picture():
    m = RateMap.from_rois(80, 100, 2.0, [(20, 0, 10, 10, 6.0), (90, 70, 50, 50, 5.0)])
    assert m.rates.shape == (5, 7)  # 100 px: 7 blocks (the last one partial)
    assert (m.rates[0, 1] == 6.0) and m.rates[4, 5:].tolist() == [5.0, 5.0] and (m.rates == 2.0).sum() == 32
    grey = np.zeros((80, 100), np.uint8)
    grey[:16, :16] = 255
    picture = RateMap.from_picture(grey, 80, 100, 1.0, 7.0)
    assert picture.rates[0, 0] == 7.0 and picture.rates[1, 1] == 1.0
    assert RateMap.uniform(80, 100, 3.33).rates[0, 0] == pytest.approx(3.35)  # steps of 0.05
    assert parse_roi("1,2,3,4:5.5") == (1, 2, 3, 4, 5.5)
    for bad in ("1,2,3:4", "1,2,0,4:5", "a,b,c,d:1"):
        with pytest.raises(RateMapError):
            parse_roi(bad)
    with pytest.raises(RateMapError, match="outside"):
        RateMap.from_rois(80, 100, 2.0, [(120, 0, 5, 5, 3.0)])


def test_the_map_stream_round_trips_and_is_small():
    m = RateMap.from_rois(512, 768, 2.0, [(192, 128, 384, 256, 6.0)])
    data = m.to_bytes()
    assert np.array_equal(RateMap.from_bytes(data, 32, 48).rates, m.rates)
    assert len(data) < 40  # a two-level map of a Kodak image: far below 1 % of a 0.5 bpp file (24.6 kB)
    summary = m.summary()
    assert summary["blocks"] == [48, 32] and summary["shares"] == {"2": 0.75, "6": 0.25}


def test_a_uniform_map_gives_the_one_rate_file_byte_for_byte(codec, rgb):
    h, w = rgb.shape[:2]
    assert codec.encode_image(ImageData(rgb), 1.0, RateMap.uniform(h, w, 3.5)) == codec.encode(rgb, 3.5)


def test_a_mapped_file_decodes_exactly_and_spends_its_bits_where_the_map_says(codec, rgb):
    h, w = rgb.shape[:2]
    roi = (32, 16, 48, 48)
    mapped = RateMap.from_rois(h, w, 1.0, [(*roi, 6.0)])
    data, picture = codec.encode_with_reconstruction(rgb, 1.0, mapped)
    image = codec.decode_image(data)
    assert np.array_equal(image.rgb, picture) and image.matches_encoder
    f = InvlabFile.from_bytes(data)
    assert f.meta["rate_map"] is True and f.streams[-1] == mapped.to_bytes()
    low, high = codec.encode_with_reconstruction(rgb, 1.0), codec.encode_with_reconstruction(rgb, 6.0)
    assert len(low[0]) < len(data) < len(high[0])
    inside = (slice(roi[1], roi[1] + roi[3]), slice(roi[0], roi[0] + roi[2]))
    err = [np.abs(p[inside].astype(int) - rgb[inside]).mean() for p in (low[1], picture, high[1])]
    assert err[1] < err[0]  # inside the ROI: closer to the high-rate picture than the low-rate one is


def test_hostile_rate_maps_are_refused_with_a_clear_error(codec, rgb):
    h, w = rgb.shape[:2]
    data = codec.encode_image(ImageData(rgb), 1.0, RateMap.from_rois(h, w, 1.0, [(0, 0, 16, 16, 5.0)]))
    f = InvlabFile.from_bytes(data)
    main, map_stream = f.streams
    rows, cols = RateMap.grid(h, w)
    wrong_size = RateMap(np.full((4, 6), 2.0)).to_bytes()
    out_of_range = struct.pack("<HH", rows, cols) + zlib.compress(bytes([255]) * (rows * cols))  # rate 12.75
    cases = {
        "wrong size": [main, wrong_size],
        "out of range": [main, out_of_range],
        "truncated": [main, map_stream[:-3]],
        "no map stream": [main],
        "extra bytes": [main, map_stream + b"\0"],
    }
    for name, streams in cases.items():
        with pytest.raises(InvalidHeaderError):
            print(name)
            codec.decode_image(_craft(data, streams=streams))
    with pytest.raises(InvalidHeaderError, match="metadata"):
        codec.decode_image(_craft(data, meta={**f.meta, "rate_map": "yes"}))
    baseline = LearnedCodec("bmshj2018-hyperprior-mini")
    with pytest.raises(RateMapError, match="one rate per image"):
        baseline.encode_image(ImageData(rgb), 2, RateMap.uniform(h, w, 2.0).with_rois([(0, 0, 8, 8, 3.0)], h, w))
    with pytest.raises(RateMapError, match="needs a"):
        codec.encode_image(ImageData(rgb), 1.0, RateMap(np.array([[1.0, 2.0]])))


def test_the_cli_codes_rois_and_shows_the_map(tmp_path, capsys):
    source = tmp_path / "in.png"
    Image.fromarray(np.ascontiguousarray(load_image("data/kodak/kodim23.png").rgb[:64, :96])).save(source)
    out = tmp_path / "out.invl"
    assert cli_main(["encode", str(source), str(out), "--model", "msinn-mini", "--untrained", "--rate", "1",
                     "--roi", f"0,0,{BLOCK},{BLOCK}:5", "--roi", "40,20,30,30:6"]) == 0
    assert "rate map 1–6" in capsys.readouterr().out
    assert cli_main(["info", str(out)]) == 0
    assert "rate map    6x4 blocks of 16 px, rates 1–6" in capsys.readouterr().out
    assert cli_main(["decode", str(out), str(tmp_path / "out.png"), "--untrained"]) == 0
    assert "bit-identical" in capsys.readouterr().out


def test_match_the_file_size_finds_the_outside_rate(codec, rgb):
    from invlab.codecs.search import outside_rate_for_bpp
    from invlab.metrics import bpp

    h, w = rgb.shape[:2]
    target = bpp(len(codec.encode(rgb, 3.0)), h, w)
    match = outside_rate_for_bpp(codec, rgb, [(32, 16, 48, 48, 6.0)], target, tolerance=0.02)
    assert abs(match.bpp / target - 1) <= 0.05 and match.rate < 3.0  # the ROI's bits come from outside
    f = InvlabFile.from_bytes(match.data)
    assert RateMap.from_bytes(f.streams[-1], *RateMap.grid(h, w)).rates.max() == 6.0
    assert codec.decode_image(match.data).matches_encoder


def test_forced_quadtree_levels_for_the_multi_scale_anf_models():
    from invlab.rate_map import forced_levels
    from invlab.widgets.masks import depth_picture, mask_view

    codec = LearnedCodec("manfic-mini", pretrained=False)
    model = codec.model(codec.rate_space.default)
    assert model.forced_levels and not model.rate_maps
    rgb = np.ascontiguousarray(load_image("data/kodak/kodim23.png").rgb[100:164, 200:296])  # 64 x 96: 2 x 3 blocks
    g = model.granularity
    levels = forced_levels([(0, 0, 1, 1, 1), (g, g, 1, 1, 0)], 64, 96, g, (64, 128), model.num_levels)
    assert levels.tolist() == [[1, -1, -1, -1], [-1, 0, -1, -1]]
    rate = codec.rate_space.default
    data = codec.encode_image(ImageData(rgb), rate, levels=levels)
    f = InvlabFile.from_bytes(data)
    depth = model.stream_depth_map(f.streams, f.meta["shape"])
    assert depth[0, 0, 0] == 1 and depth[0, 1, 1] == 0  # the forced blocks; the search chose the others
    assert codec.decode_image(data).matches_encoder
    view = mask_view(model, rgb, rois=[(0, 0, 1, 1, 1)])
    assert view.forced[0, 0] == 1 and view.depth_map[0, 0] == 1 and (depth_picture(rgb, view)[2, 2:g - 2] == 0).all()
    with pytest.raises(RateMapError, match="quadtree level"):
        forced_levels([(0, 0, 5, 5, 2)], 64, 96, g, (64, 128), model.num_levels)
