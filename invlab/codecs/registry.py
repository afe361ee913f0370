"""Codecs by name: the classical ones, and every registered model as a learned codec."""

from __future__ import annotations

from invlab.codecs.base import Codec
from invlab.codecs.classical import CLASSICAL_CODECS, VVC
from invlab.errors import InvlabError


def list_codecs() -> list[str]:
    """Names :func:`get_codec` accepts: classical codecs, then registered models."""
    from invlab.models import list_models

    return [*CLASSICAL_CODECS, *list_models()]


def get_codec(name: str, pretrained: bool = True) -> Codec:
    """A classical codec (``jpeg``, ..., ``vvc``, ``vvc-slower``) or a :class:`LearnedCodec` for a model name.

    ``pretrained=False`` gives learned codecs their untrained weights (no weight file needed).
    """
    if name in CLASSICAL_CODECS:
        return CLASSICAL_CODECS[name]()
    if name.startswith("vvc-"):
        return VVC(preset=name.removeprefix("vvc-"))
    from invlab.codecs.learned import learned_codec
    from invlab.models import list_models

    if name not in list_models():
        raise InvlabError(f"unknown codec {name!r}; known: {', '.join(list_codecs())}")
    return learned_codec(name, pretrained)
