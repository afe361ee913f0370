"""Arrays to pictures: PNG bytes for ``ipywidgets.Image``, heat maps, and heat maps laid over a photo."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image


def png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) or (H, W) uint8 array (fast setting: previews, not archives)."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def heat(values: np.ndarray, vmax: float | None = None, cmap: str = "inferno") -> np.ndarray:
    """(H, W) values -> (H, W, 3) uint8 colours, 0 -> dark, ``vmax`` (default: the maximum) -> bright."""
    vmax = float(values.max()) if vmax is None else vmax
    unit = np.clip(values / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(values, dtype=np.float64)
    return (colormaps[cmap](unit)[..., :3] * 255.0).round().astype(np.uint8)


def colour_bar_html(vmax: float, label: str, cmap: str = "inferno", width_px: int = 384) -> str:
    """A horizontal colour bar for a :func:`heat` map with scale ``vmax`` (HTML: a CSS gradient and its ticks)."""
    stops = ", ".join(
        "rgb({},{},{}) {:.0f}%".format(*(round(255 * c) for c in colormaps[cmap](t)[:3]), 100 * t)
        for t in np.linspace(0, 1, 9))
    ticks = "".join(f'<span>{v:g}</span>' for v in (0, vmax / 2, vmax))
    return (f'<div style="width:{width_px}px;font-size:12px">'
            f'<div style="height:10px;background:linear-gradient(to right, {stops})"></div>'
            f'<div style="display:flex;justify-content:space-between">{ticks}</div>'
            f'<div style="text-align:center">{label}</div></div>')


def upsample(values: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour enlarge a coarse map ``factor`` times and crop it to (height, width)."""
    return values.repeat(factor, axis=0).repeat(factor, axis=1)[:height, :width]


def overlay(rgb: np.ndarray, values: np.ndarray, factor: int, alpha: float = 0.6,
            vmax: float | None = None) -> np.ndarray:
    """A heat map of ``values`` (a grid ``factor`` times coarser, maybe padded) blended over a greyed ``rgb``."""
    h, w = rgb.shape[:2]
    colours = heat(upsample(values, factor, h, w), vmax).astype(np.float32)
    grey = rgb.astype(np.float32).mean(axis=2, keepdims=True)
    return ((1 - alpha) * grey + alpha * colours).round().clip(0, 255).astype(np.uint8)
