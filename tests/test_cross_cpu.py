"""Files decode to the same symbols on every CPU: exact entropy parameters, and the committed test vectors decoded
under other CPU kernels (oneDNN's instruction set capped, ATen's portable or AVX2 code, 1 or 2 threads)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from invlab.codecs.learned import LearnedCodec
from invlab.entropy.exact import (
    ACTIVATION_LIMIT,
    FRACTION_BITS,
    ExactNet,
    exact_gaussian_tables,
    exact_indexes,
    exact_scale_table,
    from_fixed,
    scale_thresholds,
    to_fixed,
)
from invlab.io.images import load_image
from scripts import cross_cpu, test_vectors

VECTORS = test_vectors.FOLDER
PIXEL_BOUND = 1  # with the same symbols, the float synthesis may differ by this many 8-bit levels (measured: 1)


def _net() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.ConvTranspose2d(8, 12, 5, 2, 2, 1), nn.LeakyReLU(0.01), nn.Conv2d(12, 8, 3, 1, 1),
                         nn.ReLU())


def test_the_exact_net_follows_its_float_net_within_its_resolution():
    net, x = _net(), torch.randn(1, 8, 5, 7)
    with torch.no_grad():
        expected = net(x)
    got = from_fixed(ExactNet(net)(to_fixed(x)))
    assert got.shape == expected.shape and (got - expected).abs().max() < 2e-3
    assert torch.equal(got * 2**FRACTION_BITS, (got * 2**FRACTION_BITS).round())  # values on the fixed-point grid


def test_the_exact_net_gives_the_same_integers_with_any_thread_count_or_memory_layout():
    net, x = _net(), torch.randn(1, 8, 9, 11) * 50
    exact = ExactNet(net)
    a = exact(to_fixed(x))
    torch.set_num_threads(2)
    try:
        b = exact(to_fixed(x).contiguous(memory_format=torch.channels_last))
    finally:
        torch.set_num_threads(1)
    assert torch.equal(a, b) and a.abs().max() <= ACTIVATION_LIMIT and torch.equal(a, a.round())


def test_a_layer_whose_sums_could_leave_float64s_exact_range_is_refused():
    with pytest.raises(ValueError, match="not exact"):
        ExactNet(nn.Sequential(nn.Conv2d(16384, 1, 3)))  # fan-in 147 456 x 2^14 x 2^23 > 2^53
    with pytest.raises(ValueError, match="no exact form"):
        ExactNet(nn.Sequential(nn.Conv2d(2, 2, 1), nn.Sigmoid()))


def test_table_indices_come_from_integer_thresholds():
    table = exact_scale_table()
    thresholds = scale_thresholds(table)  # σ_int ≤ threshold k ⟺ σ_int · 2^-F ≤ table[k]
    assert torch.equal(thresholds, torch.floor(table[:-1].double() * 2**FRACTION_BITS))
    k = 10
    sigma = torch.tensor([0.0, thresholds[0], thresholds[k], thresholds[k] + 1, to_fixed(torch.tensor(300.0))])
    assert exact_indexes(sigma.double(), thresholds).tolist() == [0, 0, k, k + 1, len(table) - 1]
    assert math.isclose(float(table[-1]), 256.0, rel_tol=1e-6) and math.isclose(float(table[0]), 0.11, rel_tol=1e-6)


def test_the_gaussian_tables_are_computed_alike_each_time():
    from compressai.entropy_models import GaussianConditional

    a, b = GaussianConditional(None), GaussianConditional(None)
    exact_gaussian_tables(a)
    exact_gaussian_tables(b)
    assert torch.equal(a._quantized_cdf, b._quantized_cdf) and torch.equal(a.scale_table, exact_scale_table())
    assert a._quantized_cdf is not b._quantized_cdf  # copies: one model's tables are not another's


@pytest.mark.parametrize("name", ["mbt2018-mean-mini", "msinn-mini-12"])
def test_a_file_made_before_the_exact_entropy_parameters_still_decodes(name: str):
    rgb = np.ascontiguousarray(load_image("data/kodak/kodim23.png").rgb[150:278, 250:378])
    exact, old = LearnedCodec(name), LearnedCodec(name, entropy="float")
    data, picture = old.encode_with_reconstruction(rgb, 2)
    assert exact.decode(data).tolist() == picture.tolist()  # the float path, chosen by the file's options
    new = exact.encode(rgb, 2)
    assert new != data and b"exact" in new
    with pytest.raises(Exception, match="options"):
        old.decode(new)  # an exact file needs the exact path


# ---------------------------------------------------------------------- the committed test vectors
def _manifest() -> dict:
    return json.loads((VECTORS / "manifest.json").read_text())


def test_every_model_with_exact_entropy_has_current_test_vectors():
    manifest = _manifest()
    assert sorted({v["model"] for v in manifest.values()}) == sorted(test_vectors.exact_models())
    for stem, entry in manifest.items():
        data = (VECTORS / f"{stem}.invl").read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["file_sha256"], stem
        hash_now = LearnedCodec(entry["model"]).model(entry["rate"]).weights_hash.hex()
        assert hash_now == entry["weights_hash"], (
            f"{stem}: the shipped weights changed since the vectors were made: python -m scripts.test_vectors")


@pytest.mark.parametrize("setting", list(cross_cpu.SETTINGS))
def test_the_vectors_decode_to_the_same_symbols_under_other_cpu_kernels(setting: str):
    jobs = [(entry["model"], str(VECTORS / f"{stem}.invl"), str(VECTORS / f"{stem}.png"))
            for stem, entry in _manifest().items()]
    results = cross_cpu.decode_all(jobs, cross_cpu.SETTINGS[setting])
    for _, path, _ in jobs:  # the same symbols (the stream's symbol checksum holds), pixels within the bound
        assert results[path]["outcome"] in ("exact", "pixels differ"), f"{path} under {setting}: {results[path]}"
        assert results[path].get("max", 0) <= PIXEL_BOUND, f"{path} under {setting}: {results[path]}"


def test_a_large_convolution_in_bands_gives_the_numbers_of_one_convolution():
    import torch.nn.functional as F

    from invlab.entropy.exact import BAND_PIXELS

    torch.manual_seed(0)
    for kernel, padding in ((3, 1), (1, 0), (5, 2)):
        layer = ExactNet(nn.Conv2d(8, 6, kernel, padding=padding)).layers[0]
        a = to_fixed(torch.randn(1, 8, BAND_PIXELS // 50, 77))  # more pixels than one band
        whole = F.conv2d(a, layer.weight, None, 1, layer.padding)
        expected = torch.floor((whole + layer.bias) * layer.unscale + 0.5).clamp(-ACTIVATION_LIMIT, ACTIVATION_LIMIT)
        assert torch.equal(layer(a), expected)
