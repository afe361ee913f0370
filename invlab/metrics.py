"""Image-quality and rate-distortion metrics, computed the way CompressAI and the papers compute them.

- :func:`psnr`, :func:`ms_ssim`: per image, on RGB scaled to [0, 1] (CompressAI's ``psnr-rgb`` / ``ms-ssim-rgb``).
- :func:`bpp`: bits per pixel of a whole file or bitstream.
- :func:`bd_rate`, :func:`bd_psnr`: Bjontegaard deltas, PCHIP on log10-rate over the overlapping range.
- :func:`rd_auc`: the area-under-the-RD-curve of InvCompress (Xie et al. 2021), Table 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from scipy.interpolate import CubicSpline, PchipInterpolator

ImageLike = np.ndarray | torch.Tensor

# pytorch_msssim needs the smaller side > (win_size - 1) * 2**4 for its 5 scales (win_size 11)
MS_SSIM_MIN_SIDE = 161


def _as_unit_tensor(img: ImageLike) -> torch.Tensor:
    """uint8 (H,W,3) array -> (1,3,H,W) float64 in [0,1]; float tensors (1,3,H,W) or (3,H,W) pass through."""
    if isinstance(img, np.ndarray):
        if img.dtype != np.uint8:
            raise TypeError(f"numpy images must be uint8 (H, W, 3), got {img.dtype}")
        return torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).unsqueeze(0).double() / 255.0
    x = img.detach().double().cpu()
    return x.unsqueeze(0) if x.dim() == 3 else x


def psnr(a: ImageLike, b: ImageLike) -> float:
    """PSNR in dB: ``-10 log10(MSE)`` over all RGB values of the two images in [0, 1] (inf if identical).

    Accepts uint8 (H, W, 3) arrays or float tensors in [0, 1]; this is CompressAI's per-image ``psnr-rgb``.
    """
    mse = torch.mean((_as_unit_tensor(a) - _as_unit_tensor(b)) ** 2).item()
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def ms_ssim(a: ImageLike, b: ImageLike) -> float:
    """MS-SSIM (pytorch_msssim, data_range 1, 5 scales) of two RGB images.

    Returns ``float('nan')`` when the smaller side is under ``MS_SSIM_MIN_SIDE`` (161) pixels: the five
    scales of an 11-tap window do not fit, and a number computed on fewer scales would not be comparable.
    """
    x, y = _as_unit_tensor(a).float(), _as_unit_tensor(b).float()
    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return float("nan")
    return float(_ms_ssim(x, y, data_range=1.0))


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of ``num_bytes`` for an image of ``height`` x ``width``."""
    return 8.0 * num_bytes / (height * width)


def _bd(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> float:
    """Mean of (curve 2 - curve 1) over the overlap of the x ranges, each curve a PCHIP of y(x)."""
    lo, hi = max(x1.min(), x2.min()), min(x1.max(), x2.max())
    if not hi > lo:
        return float("nan")
    areas = []
    for x, y in ((x1, y1), (x2, y2)):
        order = np.argsort(x)
        areas.append(PchipInterpolator(x[order], y[order]).integrate(lo, hi))
    return float((areas[1] - areas[0]) / (hi - lo))


def bd_rate(r1: Sequence[float], p1: Sequence[float], r2: Sequence[float], p2: Sequence[float]) -> float:
    """Bjontegaard delta rate (%) of curve 2 against curve 1 (negative = curve 2 needs fewer bits).

    log10(rate) is interpolated as a function of PSNR with PCHIP (monotone piecewise cubic) for each
    curve, integrated exactly over the overlapping PSNR range, and the mean difference d is reported as
    ``(10**d - 1) * 100``. Same result as ``bjontegaard.bd_rate(..., method="pchip")``; NaN if no overlap.
    """
    return (10 ** _bd(np.asarray(p1, float), np.log10(r1), np.asarray(p2, float), np.log10(r2)) - 1) * 100


def bd_psnr(r1: Sequence[float], p1: Sequence[float], r2: Sequence[float], p2: Sequence[float]) -> float:
    """Bjontegaard delta PSNR (dB) of curve 2 against curve 1: PCHIP of PSNR over log10-rate, mean over the overlap."""
    return _bd(np.log10(r1), np.asarray(p1, float), np.log10(r2), np.asarray(p2, float))


def rd_auc(bpp_values: Sequence[float], psnr_values: Sequence[float], lo: float, hi: float) -> float:
    """Area under the PSNR-vs-bpp curve between ``lo`` and ``hi`` bpp (InvCompress, Table 1).

    The curve is a cubic spline (not-a-knot, i.e. ``scipy.interpolate.interp1d(kind="cubic")``) through
    the RD points on a *linear* bpp axis; the area is not normalised by ``hi - lo``. With InvCompress's
    released Kodak points over its own q1..q8 range (0.0984-1.0611 bpp) this gives 33.3729, the paper's
    33.373 to the last digit; CompressAI's Kodak VTM over the same range gives 33.333 (paper, VTM 12.1: 33.309).
    """
    x, y = np.asarray(bpp_values, float), np.asarray(psnr_values, float)
    order = np.argsort(x)
    return float(CubicSpline(x[order], y[order]).integrate(lo, hi))
