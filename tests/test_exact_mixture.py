"""Gaussian-mixture tables every CPU builds alike (the ANF family's exact entropy parameters)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from compressai.entropy_models import GaussianMixtureConditional

from invlab.codecs.learned import LearnedCodec
from invlab.entropy.exact import to_fixed
from invlab.entropy.exact_mixture import exact_mixture_cdfs, mixture_weights, standard_normal_cdf
from invlab.entropy.mixture import mixture_cdfs
from invlab.io.images import load_image


def _parameters(n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)  # numpy: the same numbers under every CPU kernel
    scales = torch.from_numpy(rng.random((3, n)) * 6 + 0.02)
    means = torch.from_numpy(rng.standard_normal((3, n)) * 4)
    logits = torch.from_numpy(rng.standard_normal((3, n)) * 3)
    return to_fixed(scales), to_fixed(means), to_fixed(logits)


def test_phi_follows_the_normal_cdf_within_its_interpolation_error():
    z = torch.linspace(-14, 14, 20001, dtype=torch.float64)
    expected = torch.tensor([0.5 * math.erfc(-v / math.sqrt(2)) for v in z.tolist()], dtype=torch.float64)
    assert (standard_normal_cdf(z) - expected).abs().max() < 5e-7


def test_the_mixture_weights_are_a_softmax_of_the_logits():
    _, _, logits = _parameters()
    weights = mixture_weights(logits)
    assert torch.allclose(weights, (logits / 4096).softmax(dim=0), atol=1e-9)
    assert torch.allclose(weights.sum(dim=0), torch.ones(weights.shape[1], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("abs_max", [0, 1, 7, 60])
def test_the_tables_are_valid_rans_tables_in_compressais_layout(abs_max: int):
    cdfs, lengths, offsets = exact_mixture_cdfs(*_parameters(500), abs_max)
    symbols = 2 * abs_max + 1
    assert cdfs.dtype == torch.int32 and cdfs.shape == (500, symbols + 2)
    assert set(lengths.tolist()) == {symbols + 2} and set(offsets.tolist()) == {-abs_max}
    frequencies = torch.diff(cdfs.long(), dim=1)
    assert (cdfs[:, 0] == 0).all() and (frequencies >= 1).all()  # every symbol codable
    assert (cdfs[:, -2] == 2**16 - 1).all() and (cdfs[:, -1] == 2**16).all()  # the overflow symbol's slot: 1


def test_the_tables_cost_what_compressais_float_tables_cost():
    scales, means, logits = _parameters(20000)
    abs_max = 40
    exact, _, _ = exact_mixture_cdfs(scales, means, logits, abs_max)
    weights = (logits / 4096).float().softmax(dim=0)
    float_tables, _, _ = mixture_cdfs(GaussianMixtureConditional(K=3), (scales / 4096).float(), (means / 4096).float(),
                                      weights, abs_max)
    rng = np.random.default_rng(1)  # symbols drawn from the mixtures themselves
    n = scales.shape[1]
    component = (torch.from_numpy(rng.random(n)) > weights.double().cumsum(dim=0)).sum(dim=0).clamp(max=2)
    index = torch.arange(n)
    sigma, mu = (scales / 4096)[component, index], (means / 4096)[component, index]
    s = torch.round(torch.from_numpy(rng.standard_normal(n)) * sigma + mu).clamp(-abs_max, abs_max).long()

    def bits(cdfs: torch.Tensor) -> float:
        f = cdfs.long()[index, s + abs_max + 1] - cdfs.long()[index, s + abs_max]
        return float(-torch.log2(f.double() / 2**16).sum())

    assert abs(bits(exact) / bits(float_tables) - 1) < 2e-3


def test_the_tables_depend_on_the_parameters_only():
    a = exact_mixture_cdfs(*_parameters(300), 20)[0]
    torch.set_num_threads(2)
    try:
        b = exact_mixture_cdfs(*(t.clone() for t in _parameters(300)), 20)[0]
    finally:
        torch.set_num_threads(1)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["anfic-mini", "msanfic-mini"])
def test_an_anf_file_codes_the_same_symbols_and_picture_on_either_arithmetic(name: str):
    """The symbols are round(v) either way: only the tables (the rate) differ; an older float file still decodes."""
    rgb = np.ascontiguousarray(load_image("data/kodak/kodim23.png").rgb[150:278, 250:378])
    exact, old = LearnedCodec(name), LearnedCodec(name, entropy="float")
    rate = exact.rates[-1]
    data, picture = exact.encode_with_reconstruction(rgb, rate)
    old_data, old_picture = old.encode_with_reconstruction(rgb, rate)
    assert picture.tolist() == old_picture.tolist() and b"exact" in data and b"exact" not in old_data
    assert abs(len(data) - len(old_data)) < 0.05 * len(old_data)
    assert exact.decode(data).tolist() == picture.tolist()
    assert exact.decode(old_data).tolist() == picture.tolist()  # the float path, chosen by the file's options
