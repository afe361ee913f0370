"""Every coder in :mod:`invlab.entropy` follows the one coder protocol (:mod:`invlab.entropy.coder`): each family
of coders has one coder per mode (likelihood, rANS encode, rANS decode), all with the family's verbs."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import invlab.entropy
from invlab.entropy.coder import Coder, CodingMode
from invlab.entropy.mixture import MixtureLevelCoder, MixtureLikelihoodCoder, MixtureRansDecoder, MixtureRansEncoder
from invlab.entropy.residual import ResidualCoder, ResidualLikelihoodCoder, ResidualRansDecoder, ResidualRansEncoder
from invlab.errors import BitstreamError

FAMILIES = {
    ResidualCoder: (ResidualLikelihoodCoder, ResidualRansEncoder, ResidualRansDecoder),
    MixtureLevelCoder: (MixtureLikelihoodCoder, MixtureRansEncoder, MixtureRansDecoder),
}


def _verbs(protocol: type) -> dict[str, inspect.Signature]:
    """The methods a protocol declares, its base :class:`Coder`'s included."""
    verbs = {}
    for cls in (Coder, protocol):
        verbs |= {n: inspect.signature(f) for n, f in vars(cls).items() if inspect.isfunction(f) and n[0] != "_"}
    return verbs


def _entropy_coders() -> set[type]:
    """Every class in invlab.entropy that declares a coding mode."""
    found = set()
    for info in pkgutil.iter_modules(invlab.entropy.__path__):
        module = importlib.import_module(f"invlab.entropy.{info.name}")
        found |= {c for _, c in inspect.getmembers(module, inspect.isclass)
                  if isinstance(getattr(c, "mode", None), CodingMode) and c.__module__ == module.__name__}
    return found


def test_every_coder_in_entropy_belongs_to_a_family():
    assert _entropy_coders() == {c for coders in FAMILIES.values() for c in coders}


@pytest.mark.parametrize("protocol", list(FAMILIES), ids=lambda p: p.__name__)
def test_a_family_has_one_coder_per_mode_with_its_verbs(protocol):
    coders = FAMILIES[protocol]
    assert sorted(c.mode.value for c in coders) == sorted(m.value for m in CodingMode)
    for coder in coders:
        for verb, signature in _verbs(protocol).items():
            assert verb in vars(coder), f"{coder.__name__} lacks {verb}"
            params = list(inspect.signature(getattr(coder, verb)).parameters)
            assert params == list(signature.parameters), f"{coder.__name__}.{verb}{params}"


def test_coders_are_runtime_coders():
    assert isinstance(MixtureLikelihoodCoder(), Coder) and isinstance(MixtureRansEncoder(), Coder)
    assert not isinstance(object(), Coder)


def test_the_mixture_decoder_finishes_only_on_used_up_strings():
    decoder = MixtureRansDecoder([b"", b""], [0])
    decoder.skip(("v1", "h1"))
    decoder.finish()
    decoder = MixtureRansDecoder([b"", b"", b""], [0])
    decoder.skip(("v1", "h1"))
    with pytest.raises(BitstreamError):
        decoder.finish()
