"""What a file records of the encoder's reconstruction, and how a decoder compares its own output with it.

Two checks, both computed on the 8-bit RGB the decoder hands back:

- :func:`output_crc`: a CRC32 (with the mode, bit depth and alpha plane): is the output bit-identical?
- :func:`sketch`: four signed sums ``Σ ±x_i`` of the RGB values, with fixed pseudo-random signs (a hash of the
  value's index), modulo 2^32. Files decode to the encoder's symbols on every CPU, but the float synthesis may move
  a few pixels by one level on another machine's kernels; such a difference moves each sum by at most the number of
  values that differ. A picture that is not the encoder's (another decoder's code or a damaged file whose symbols
  still check) moves them by about the square root of the sum of its squared differences, in four independent
  directions. :func:`within_float_rounding` accepts differences up to :data:`ROUNDING_SHARE` of the values
  (at least :data:`MIN_TOLERANCE`), twice the most float rounding measured (one level in 0.01 % of the pixels).
  A picture 45 dB from the encoder's (1.4 levels RMS) passes all four with a probability of about 2·10^-4 on a Kodak
  image, less on larger ones.

The sketch costs 16 bytes per file; the signs depend on nothing but the index (no random generator whose stream
could change between library versions).
"""

from __future__ import annotations

import zlib

import numpy as np

SKETCHES = 4
ROUNDING_SHARE = 2e-4  # up to 0.02 % of the values may differ by one level (measured: at most 0.01 % of pixels)
MIN_TOLERANCE = 64
_CHUNK = 1 << 20
_MASK = np.uint64(0xFFFFFFFF)


def output_crc(rgb: np.ndarray, mode: str, bitdepth: int, alpha: np.ndarray | None) -> int:
    """CRC32 of what the decoder hands back: the 8-bit RGB, the mode, the bit depth and the alpha plane."""
    crc = zlib.crc32(np.ascontiguousarray(rgb).tobytes())
    crc = zlib.crc32(f"{mode}/{bitdepth}".encode(), crc)
    return zlib.crc32(b"" if alpha is None else np.ascontiguousarray(alpha).tobytes(), crc)


def _signs(start: int, count: int, which: int) -> np.ndarray:
    """±1 (int64) for the values ``start ... start + count - 1`` of sketch ``which``: splitmix64 of the index."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + count, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(which + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(63)).astype(np.int64) * 2 - 1


def sketch(rgb: np.ndarray) -> tuple[int, ...]:
    """The :data:`SKETCHES` signed sums of the RGB values (C order), each modulo 2^32."""
    values = np.ascontiguousarray(rgb).reshape(-1)
    sums = [0] * SKETCHES
    for start in range(0, values.size, _CHUNK):
        part = values[start : start + _CHUNK].astype(np.int64)
        for which in range(SKETCHES):
            sums[which] += int((part * _signs(start, part.size, which)).sum())
    return tuple(s % 2**32 for s in sums)


def tolerance(values: int) -> int:
    """How far a sum may move by float rounding alone, for an image of ``values`` RGB values."""
    return max(MIN_TOLERANCE, int(values * ROUNDING_SHARE))


def within_float_rounding(rgb: np.ndarray, recorded: tuple[int, ...]) -> bool:
    """Whether ``rgb`` differs from the picture whose :func:`sketch` is ``recorded`` by no more than float rounding."""
    bound = tolerance(rgb.size)
    for mine, theirs in zip(sketch(rgb), recorded, strict=True):
        difference = (mine - theirs) % 2**32
        if min(difference, 2**32 - difference) > bound:
            return False
    return True
