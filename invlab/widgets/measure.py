"""Numbers and pictures the workbench shows beside a reconstruction.

PSNR and MS-SSIM are on 8-bit RGB; bpp always comes from real bytes (file size x 8 / pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from invlab import metrics
from invlab.codecs.base import Codec


def bpp(data: bytes, rgb: np.ndarray) -> float:
    """Bits per pixel of a real file for the image it codes."""
    return metrics.bpp(len(data), rgb.shape[0], rgb.shape[1])


def quality(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """PSNR and MS-SSIM (NaN below 161 px) of a decoded uint8 image, as :mod:`invlab.metrics` computes them."""
    return {"psnr": metrics.psnr(original, decoded), "ms_ssim": metrics.ms_ssim(original, decoded)}


def error_map(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """Absolute error per pixel, averaged over RGB, in 8-bit levels (H, W) float32."""
    return np.abs(original.astype(np.float32) - decoded.astype(np.float32)).mean(axis=2)


@dataclass(frozen=True)
class Zoom:
    """A square window (top, left, size) to magnify."""

    top: int
    left: int
    size: int = 96

    @classmethod
    def centred(cls, shape: tuple[int, ...], size: int = 96) -> Zoom:
        size = min(size, shape[0], shape[1])
        return cls((shape[0] - size) // 2, (shape[1] - size) // 2, size)

    def cut(self, rgb: np.ndarray, scale: int = 3) -> np.ndarray:
        """The window, enlarged ``scale`` times with nearest-neighbour (pixels stay visible)."""
        win = rgb[self.top : self.top + self.size, self.left : self.left + self.size]
        return np.ascontiguousarray(win.repeat(scale, axis=0).repeat(scale, axis=1))


@dataclass(frozen=True)
class Match:
    """A classical codec's setting whose real file size comes closest to a target bpp."""

    rate: float
    bpp: float
    data: bytes


def match_bpp(codec: Codec, rgb: np.ndarray, target_bpp: float,
              encode: Callable[[float], bytes] | None = None) -> Match:
    """Binary-search ``codec``'s integer knob (quality or QP) for the real bpp closest to ``target_bpp``.

    Assumes bpp is monotone in the knob. ``encode`` (default ``codec.encode(rgb, q)``) lets the caller
    memoise encodes across searches.
    """
    encode = encode or (lambda q: codec.encode(rgb, q))
    settings = list(range(int(min(codec.rates)), int(max(codec.rates)) + 1))
    if codec.higher_is_fewer_bits:
        settings.reverse()  # now ordered from fewest to most bits
    files: dict[int, bytes] = {}

    def size(i: int) -> float:
        if i not in files:
            files[i] = encode(float(settings[i]))
        return bpp(files[i], rgb)

    lo, hi = 0, len(settings) - 1
    while lo < hi:  # first setting whose bpp reaches the target
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if size(mid) >= target_bpp else (mid + 1, hi)
    best = min({lo, max(lo - 1, 0)}, key=lambda i: abs(size(i) - target_bpp))
    return Match(float(settings[best]), size(best), files[best])
