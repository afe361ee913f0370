"""Codecs by name: the classical ones, and every registered model as a learned codec.

:data:`CLASSICAL_RATES` holds each classical codec's :class:`~invlab.rates.RateSpace`, without importing the codec
libraries (the CLI's help and checks read it; the codec classes take theirs from it).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING

from invlab.errors import UnknownCodecError
from invlab.rates import RateSpace, weight_index_space

if TYPE_CHECKING:
    from invlab.codecs.base import Codec


def _space(label: str, low: float, high: float, default: float, integer: bool, note: str,
           sweep: tuple[float, ...]) -> RateSpace:
    return RateSpace(label, low, high, default, integer, note, tuple(float(r) for r in sweep))


#: the rate knob of each classical codec; ``sweep``: the settings an RD sweep visits, low to high bitrate
CLASSICAL_RATES: dict[str, RateSpace] = {
    "jpeg": _space("quality", 1, 100, 75, True, "higher = more bits; 4:2:0 chroma",
                  sweep=(5, 10, 20, 30, 50, 70, 85, 90)),
    "jpeg444": _space("quality", 1, 100, 75, True, "higher = more bits; no chroma subsampling",
                  sweep=(5, 10, 20, 30, 50, 70, 85)),
    "jpeg2000": _space("target PSNR (dB)", 0, 100, 34, False, "higher = more bits; 0 = lossless",
                  sweep=(24, 27, 30, 32, 34, 36, 38, 41)),
    "webp": _space("quality", 0, 100, 75, False, "higher = more bits",
                  sweep=(0, 10, 30, 50, 70, 85, 92)),
    "jpegxl": _space("distance", 0, 25, 1.0, False, "Butteraugli distance, lower = more bits; 0 = lossless",
                  sweep=(20.0, 12.0, 7.0, 4.5, 3.0, 2.0, 1.3, 0.8)),
    "avif": _space("quality", 0, 100, 60, True, "higher = more bits; 100 = lossless",
                  sweep=(10, 20, 35, 50, 60, 70, 80, 86)),
    "hevc444": _space("QP", 0, 51, 30, True, "lower = more bits",
                  sweep=(46, 42, 38, 34, 30, 26, 22, 19)),
    "vvc": _space("QP", 0, 63, 32, True, "lower = more bits; vvc-<preset> for other vvenc presets",
                  sweep=(42, 37, 32, 27, 22)),
}

#: vvenc presets besides the default (``medium``, codec ``vvc``): codec names ``vvc-<preset>``
VVC_PRESETS = ("faster", "fast", "medium", "slow", "slower")


def classical_rate_space(name: str) -> RateSpace | None:
    """The rate space of a classical codec name (``vvc-<preset>`` included), None for any other name."""
    if name in CLASSICAL_RATES:
        return CLASSICAL_RATES[name]
    if name.startswith("vvc-") and name.removeprefix("vvc-") in VVC_PRESETS:
        return CLASSICAL_RATES["vvc"]
    return None


#: the prefix of a CompressAI architecture coded with a user's checkpoint: ``compressai:ARCH@PATH``
COMPRESSAI_PREFIX = "compressai:"
#: ``MODEL@FILE``: a registered model coding with a weight file of its own (e.g. converted official weights)
WEIGHTS_SEPARATOR = "@"


def split_weights(name: str) -> tuple[str, Path | None]:
    """``MODEL@FILE`` -> (MODEL, FILE); any other name -> (name, None). CompressAI names keep their own form."""
    if name.startswith(COMPRESSAI_PREFIX) or WEIGHTS_SEPARATOR not in name:
        return name, None
    model, _, file = name.partition(WEIGHTS_SEPARATOR)
    if not file:
        raise UnknownCodecError(f"{name[:64]!r} names no weight file after {WEIGHTS_SEPARATOR!r} (MODEL@FILE)")
    return model, Path(file)


#: ``MODEL+stable`` (or ``MODEL@FILE+stable``): the model coding in its stable re-encoding mode
STABLE_SUFFIX = "+stable"


def split_stable(name: str) -> tuple[str, bool]:
    """``NAME+stable`` -> (NAME, True); any other name -> (name, False)."""
    return (name.removesuffix(STABLE_SUFFIX), True) if name.endswith(STABLE_SUFFIX) else (name, False)


def check_stable_mode(model: str) -> None:
    """Refuse a model without a stable re-encoding mode, naming those that have one."""
    from invlab.models.registry import list_models, model_class

    if not model_class(model).stable_mode:
        having = [m for m in list_models() if model_class(m).stable_mode]
        raise UnknownCodecError(f"{model} has no stable re-encoding mode; models with one: {', '.join(having)}")


def with_stable_modes(names: list[str]) -> list[str]:
    """``names``, each learned model that has a stable re-encoding mode followed by ``NAME+stable``."""
    from invlab.models.registry import model_class

    out = []
    for name in names:
        out.append(name)
        base, stable = split_stable(name)
        if not stable and codec_kind(base) == "learned" and not base.startswith(COMPRESSAI_PREFIX) \
                and model_class(split_weights(base)[0]).stable_mode and base + STABLE_SUFFIX not in names:
            out.append(base + STABLE_SUFFIX)
    return out


def file_safe(text: str) -> str:
    """``text`` as part of a file name: each run of anything but letters, digits, ``.``, ``+``, ``-`` becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text)


def weights_label(model: str, file: str | Path) -> str:
    """``MODEL@STEM``: the name results of ``model`` with a weight file of one's own go under (the file's stem,
    :func:`file_safe`)."""
    return f"{model}{WEIGHTS_SEPARATOR}{file_safe(Path(file).stem)}"


def codec_kind(name: str) -> str:
    """What a codec name names: ``"classical"`` (``jpeg``, ..., ``vvc-<preset>``), ``"compressai"``
    (``compressai:ARCH[@CHECKPOINT]``) or ``"learned"`` (a registered model, or ``MODEL@FILE``: one with a weight
    file of its own); an unknown name raises :class:`~invlab.errors.UnknownCodecError`, naming the closest known one."""
    if classical_rate_space(name) is not None:
        return "classical"
    if name.startswith(COMPRESSAI_PREFIX):
        return "compressai"
    from invlab.models.registry import is_model

    name = split_weights(split_stable(name)[0])[0]

    if is_model(name):
        return "learned"
    known = list_codecs()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    shown = name if len(name) <= 64 else f"{name[:60]}..."
    raise UnknownCodecError(f"unknown model or codec {shown!r}; {hint}classical codecs: {', '.join(CLASSICAL_RATES)}; "
                            f"learned models: {', '.join(known[len(CLASSICAL_RATES):])} (see `invlab models`)")


def rate_space_of(name: str, pretrained: bool = True) -> RateSpace:
    """What ``rate`` means for a codec name, without loading it: a classical knob, a variable-rate model's
    anchor range, or the weight indices a fixed-rate family ships (one set of weights when untrained). A
    ``MODEL@FILE`` name is the exception: the file's own model says its rates, so it is loaded."""
    kind = codec_kind(name)
    name = split_stable(name)[0]  # the stable mode codes the same rates
    if kind == "classical":
        return classical_rate_space(name)
    if kind == "compressai":  # a user's CompressAI checkpoint: one network, one rate
        return weight_index_space([0])
    if split_weights(name)[1] is not None:
        from invlab.codecs.learned import learned_codec

        return learned_codec(name).rate_space
    from invlab.models import get_spec
    from invlab.weights import rate_indices, ships_per_rate

    spec = get_spec(name)
    per_rate = pretrained and ships_per_rate(name)
    return spec.rate_space(rate_indices(name) if per_rate and not spec.variable_rate else None)


def list_codecs() -> list[str]:
    """Names :func:`get_codec` accepts: classical codecs, then registered models."""
    from invlab.models import list_models

    return [*CLASSICAL_RATES, *list_models()]


def get_codec(name: str, pretrained: bool = True) -> Codec:
    """A classical codec (``jpeg``, ..., ``vvc``, ``vvc-slower``) or a :class:`LearnedCodec` for a model name.

    ``pretrained=False`` gives learned codecs their untrained weights (no weight file needed).
    """
    kind = codec_kind(name)
    if kind == "classical":
        from invlab.codecs.classical import CLASSICAL_CODECS, VVC

        if name in CLASSICAL_CODECS:
            return CLASSICAL_CODECS[name]()
        return VVC(preset=name.removeprefix("vvc-"))
    if kind == "compressai":  # a CompressAI architecture with a user's checkpoint: compressai:ARCH@PATH
        from invlab.codecs.compressai_ckpt import compressai_codec

        return compressai_codec(name)
    from invlab.codecs.learned import learned_codec

    return learned_codec(name, pretrained)
