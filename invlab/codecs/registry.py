"""Codecs by name: the classical ones, and every registered model as a learned codec.

:data:`CLASSICAL_RATES` describes each classical codec's rate knob without importing the codec libraries
(the CLI's help and checks use it); ``tests/test_cli.py`` checks it against the codec classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from invlab.errors import InvlabError

if TYPE_CHECKING:
    from invlab.codecs.base import Codec


class RateKnob(NamedTuple):
    """The rate setting of a classical codec: its meaning, valid range, default and whether it is a whole number."""

    label: str  # the codec's ``rate_label``
    low: float
    high: float
    default: float
    integer: bool
    note: str = ""


CLASSICAL_RATES: dict[str, RateKnob] = {
    "jpeg": RateKnob("quality", 1, 100, 75, True, "higher = more bits; 4:2:0 chroma"),
    "jpeg444": RateKnob("quality", 1, 100, 75, True, "higher = more bits; no chroma subsampling"),
    "jpeg2000": RateKnob("target PSNR (dB)", 0, 100, 34, False, "higher = more bits; 0 = lossless"),
    "webp": RateKnob("quality", 0, 100, 75, False, "higher = more bits"),
    "jpegxl": RateKnob("distance", 0, 25, 1.0, False, "Butteraugli distance, lower = more bits; 0 = lossless"),
    "avif": RateKnob("quality", 0, 100, 60, True, "higher = more bits; 100 = lossless"),
    "hevc444": RateKnob("QP", 0, 51, 30, True, "lower = more bits"),
    "vvc": RateKnob("QP", 0, 63, 32, True, "lower = more bits; vvc-<preset> for other vvenc presets"),
}

#: vvenc presets besides the default (``medium``, codec ``vvc``): codec names ``vvc-<preset>``
VVC_PRESETS = ("faster", "fast", "medium", "slow", "slower")


def classical_knob(name: str) -> RateKnob | None:
    """The rate knob of a classical codec name (``vvc-<preset>`` included), None for any other name."""
    if name in CLASSICAL_RATES:
        return CLASSICAL_RATES[name]
    if name.startswith("vvc-") and name.removeprefix("vvc-") in VVC_PRESETS:
        return CLASSICAL_RATES["vvc"]
    return None


def list_codecs() -> list[str]:
    """Names :func:`get_codec` accepts: classical codecs, then registered models."""
    from invlab.models import list_models

    return [*CLASSICAL_RATES, *list_models()]


def get_codec(name: str, pretrained: bool = True) -> Codec:
    """A classical codec (``jpeg``, ..., ``vvc``, ``vvc-slower``) or a :class:`LearnedCodec` for a model name.

    ``pretrained=False`` gives learned codecs their untrained weights (no weight file needed).
    """
    if name in CLASSICAL_RATES or name.startswith("vvc-"):
        from invlab.codecs.classical import CLASSICAL_CODECS, VVC

        if name in CLASSICAL_CODECS:
            return CLASSICAL_CODECS[name]()
        return VVC(preset=name.removeprefix("vvc-"))
    from invlab.codecs.learned import learned_codec
    from invlab.models import list_models

    if name.startswith("compressai:"):  # a CompressAI architecture with a user's checkpoint: compressai:ARCH@PATH
        from invlab.codecs.compressai_ckpt import compressai_codec

        return compressai_codec(name)

    if name not in list_models():
        raise InvlabError(f"unknown codec {name!r}; known: {', '.join(list_codecs())}")
    return learned_codec(name, pretrained)
