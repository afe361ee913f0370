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
