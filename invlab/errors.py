"""Exception types raised by invlab. Every user-facing failure is one of these, with a plain message."""

from __future__ import annotations


class InvlabError(Exception):
    """Base class of every error invlab raises on purpose."""


class BitstreamError(InvlabError):
    """An invlab file cannot be decoded: not an invlab file, truncated, corrupt or of another version."""


class CorruptBitstreamError(BitstreamError):
    """The file's checksum does not match: a byte was changed after encoding."""


class TruncatedBitstreamError(BitstreamError):
    """The file ends before the lengths in its header say it should."""


class ModelMismatchError(InvlabError):
    """The file was made by another model, or by other weights of the same model."""


class InputNotFoundError(InvlabError, FileNotFoundError):
    """An input file does not exist, or is a directory."""


class UnsupportedImageError(InvlabError):
    """The input image has a mode, size or bit depth invlab does not code."""


class UnknownModelError(InvlabError):
    """No model is registered under the requested name."""


class UnknownCodecError(UnknownModelError):
    """No classical codec, registered model or ``compressai:`` architecture goes by the requested name."""


class MissingWeightsError(InvlabError):
    """A model was asked for with trained weights, but none are shipped in ``weights/``."""


class WeightFileError(InvlabError):
    """A weight file or training checkpoint cannot be used: unreadable, truncated, holding more than tensors and
    settings (its pickle would run code), or not fitting the model (a missing, unexpected or resized tensor)."""


class OutputExistsError(InvlabError):
    """Refusing to overwrite an existing file (pass ``overwrite=True`` / ``--force``)."""


class NoLevelsViewError(InvlabError):
    """The model exposes no per-level view (latents or masks) that the workbench can show."""


class SymbolMismatchError(CorruptBitstreamError):
    """The decoded symbols differ from the encoder's (their checksum in the stream does not match).

    Either the file was damaged in a way the container checksum cannot see (e.g. streams swapped between
    files and the checksum recomputed), or this machine computes the entropy parameters differently from
    the encoder's machine. Decoding stops instead of writing a wrong image.
    """


class ReconstructionMismatchError(CorruptBitstreamError):
    """The decoded symbols are the encoder's but the picture is not, by more than float rounding (the file's
    reconstruction sketch): a decoder computing another synthesis (another invlab version, weights that differ beyond
    their hash) or a damaged file. Decoding stops unless the caller asks to keep the picture (``keep_mismatch``).
    """


class InvalidHeaderError(CorruptBitstreamError):
    """A header or metadata field is out of range or inconsistent with the model (checked before decoding)."""
