"""Numbers and pictures the workbench shows beside a reconstruction.

PSNR and MS-SSIM are on 8-bit RGB; bpp always comes from real bytes (file size x 8 / pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from invlab import metrics


def bpp(data: bytes, rgb: np.ndarray) -> float:
    """Bits per pixel of a real file for the image it codes."""
    return metrics.bpp(len(data), rgb.shape[0], rgb.shape[1])


def quality(original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
    """PSNR and MS-SSIM (NaN below 161 px) of a decoded uint8 image, as :mod:`invlab.metrics` computes them."""
    return {"psnr": metrics.psnr(original, decoded), "ms_ssim": metrics.ms_ssim(original, decoded)}


def error_map(original: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """Absolute error per pixel, averaged over RGB, in 8-bit levels (H, W) float32."""
    return np.abs(original.astype(np.float32) - decoded.astype(np.float32)).mean(axis=2)


ERROR_SCALES = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def error_scale(error: np.ndarray, percentile: float = 99.5) -> float:
    """The top of an error map's colour scale: the smallest of :data:`ERROR_SCALES` above its ``percentile``, so
    the map is neither black at high rate nor saturated at low rate, and the scale reads in round numbers."""
    top = float(np.percentile(error, percentile)) if error.size else 0.0
    return next((s for s in ERROR_SCALES if s >= top), ERROR_SCALES[-1])


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

    @classmethod
    def worst(cls, error: np.ndarray, size: int = 96) -> Zoom:
        """The window (on a grid of half-window steps) where the mean of ``error`` (H, W) is largest: where the
        codec loses most, not a blurred background."""
        h, w = error.shape
        size = min(size, h, w)
        step = max(1, size // 2)
        sums = np.pad(error.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        tops, lefts = np.arange(0, h - size + 1, step), np.arange(0, w - size + 1, step)
        t, l = tops[:, None], lefts[None, :]
        window = sums[t + size, l + size] - sums[t, l + size] - sums[t + size, l] + sums[t, l]
        i, j = np.unravel_index(int(np.argmax(window)), window.shape)
        return cls(int(tops[i]), int(lefts[j]), size)

    def cut(self, rgb: np.ndarray, scale: int = 3) -> np.ndarray:
        """The window, enlarged ``scale`` times with nearest-neighbour (pixels stay visible)."""
        win = rgb[self.top : self.top + self.size, self.left : self.left + self.size]
        return np.ascontiguousarray(win.repeat(scale, axis=0).repeat(scale, axis=1))
