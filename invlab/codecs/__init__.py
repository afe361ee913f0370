"""Codecs behind one interface: learned models and classical codecs alike (image + rate -> bytes)."""

from invlab.codecs.base import Codec, EncodeResult

__all__ = ["Codec", "EncodeResult"]
