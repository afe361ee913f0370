"""Demonstrations for notebook 05: what invertibility buys, and where information is lost instead.

- a coupling layer run forward and backward (exact up to float rounding);
- a whole multi-scale flow: latents -> image is exact without quantisation;
- quantising one scale at a time: which scale carries which detail, shown as error maps (what rounding that
  scale destroys; the decoded pictures themselves look alike at thumbnail size);
- an autoencoder with a bottleneck loses information before any quantisation. The autoencoder here is
  PCA on 2x2 pixel blocks, the optimal *linear* autoencoder for MSE, keeping k of 12 dimensions;
  with k = 12 it is invertible again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from torch import nn

from invlab import metrics
from invlab.flows import AffineCoupling
from invlab.flows.units import conv_conditioner
from invlab.io.images import to_tensor, to_uint8
from invlab.models.base import InvlabModel
from invlab.widgets import render, theme
from invlab.widgets.readout import error_map, error_scale


def random_coupling(channels: int = 12, hidden: int = 32, seed: int = 0) -> AffineCoupling:
    """An affine coupling whose conditioner is random (not the identity start a trained one begins from)."""
    torch.manual_seed(seed)
    coupling = AffineCoupling(channels, conv_conditioner(hidden))
    last = [m for m in coupling.net.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.normal_(last.weight, std=0.2)
    return coupling.eval()


@torch.no_grad()
def coupling_demo(rgb: np.ndarray) -> dict[str, float]:
    """Squeeze the image to 12 channels, run a random coupling forward, then inverse.

    Returns how much the forward changed the tensor and how far the inverse is from the input.
    """
    x = F.pixel_unshuffle(to_tensor(rgb), 2)
    coupling = random_coupling(x.shape[1])
    y = coupling(x)
    x_back = coupling.inverse(y)
    return {"mean |y - x|": float((y - x).abs().mean()), "max |x_back - x|": float((x_back - x).abs().max()),
            "PSNR of x_back (8-bit)": metrics.psnr(rgb, to_uint8(F.pixel_shuffle(x_back, 2)))}


@torch.no_grad()
def flow_roundtrip(model: InvlabModel, x: torch.Tensor) -> float:
    """max |flow⁻¹(flow(x)) - x| for the model's analysis flow, without any quantisation."""
    return float((model.flow.inverse(model.flow(x)) - x).abs().max())


@torch.no_grad()
def quantise_scales(model: InvlabModel, x: torch.Tensor, step: float) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Round one scale's latent to multiples of ``step`` (the others exact), decode, measure; then all scales.

    Returns a table (scale, PSNR, max error) and the decoded images by scale name (``"all"`` last).
    """
    ys = model.flow(x)
    rgb = to_uint8(x)
    names = [f"y{i + 1}" for i in range(len(ys))]
    images, rows = {}, []
    for k, name in enumerate([*names, "all"]):
        quantised = [torch.round(y / step) * step if name in ("all", names[i]) else y for i, y in enumerate(ys)]
        x_hat = model.flow.inverse(quantised).clamp(0, 1)
        images[name] = to_uint8(x_hat)
        rows.append({"quantised": name, "channels": sum(y.shape[1] for y in ys) if name == "all" else ys[k].shape[1],
                     "PSNR (dB)": metrics.psnr(rgb, images[name]),
                     "max error (levels)": int(np.abs(rgb.astype(int) - images[name].astype(int)).max())})
    return pd.DataFrame(rows), images


def error_panels(rgb: np.ndarray, decoded: dict[str, np.ndarray],
                 percentile: float = 99.5) -> tuple[np.ndarray, list[str], float]:
    """The original, then |x − x̂| (mean over RGB, 8-bit levels) of each decoded image as a heat map.

    Every map shares one colour scale, black = exact to bright = the largest ``percentile`` error of the maps (a
    round number, :func:`~invlab.widgets.readout.error_scale`), so the maps compare; each title gives the scale's
    mean and maximum. Returns the panels (N, H, W, 3) uint8, their titles and the scale's top."""
    h, w = rgb.shape[:2]
    errors = {name: error_map(rgb, img[:h, :w]) for name, img in decoded.items()}
    top = max((error_scale(e, percentile) for e in errors.values()), default=2.0)
    panels, titles = [rgb], ["original"]
    for name, err in errors.items():
        panels.append(render.heat(err, top))
        what = "all scales" if name == "all" else name
        titles.append(f"{what} rounded: mean {err.mean():.2f}, max {err.max():.0f}")
    return np.stack(panels), titles, top


def error_figure(rgb: np.ndarray, decoded: dict[str, np.ndarray], columns: int = 3, width: int = 940) -> go.Figure:
    """:func:`error_panels` as a plotly grid, ``columns`` panels a row, at most ``width`` px wide (a notebook's
    output area), with one colour bar for every map."""
    panels, titles, top = error_panels(rgb, decoded)
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    fig = px.imshow(panels, facet_col=0, facet_col_wrap=columns, binary_string=True, facet_row_spacing=0.08,
                    facet_col_spacing=0.02)
    names = {f"facet_col={i}": t for i, t in enumerate(titles)}
    fig.for_each_annotation(lambda a: a.update(text=names.get(a.text, a.text), font={"size": 12}))
    theme.image_axes(fig, rows, columns)
    fig.add_trace(theme.colour_bar_trace(top, "|x − x̂| (levels)"))
    panel = (width - 120) // columns
    return fig.update_layout(**theme.PLOTLY_LAYOUT).update_layout(
        height=panel * rows + 80, width=width, margin={"t": 60, "l": 10, "r": 10, "b": 10},
        title="what rounding each scale destroys (one colour scale)")


def pca_autoencoder(rgb: np.ndarray, keep: int) -> np.ndarray:
    """Encode 2x2x3 pixel blocks (12 values) to their top ``keep`` principal components and back, unquantised."""
    x = F.pixel_unshuffle(to_tensor(rgb).double(), 2)[0]  # (12, H/2, W/2)
    c = x.shape[0]
    v = x.reshape(c, -1)
    mean = v.mean(dim=1, keepdim=True)
    basis = torch.linalg.svd(v - mean, full_matrices=False).U[:, :keep]  # (12, keep): the encoder's weights
    code = basis.T @ (v - mean)  # the bottleneck: keep numbers per block instead of 12
    x_hat = (basis @ code + mean).reshape(x.shape)
    return to_uint8(F.pixel_shuffle(x_hat[None], 2).float())


def autoencoder_table(rgb: np.ndarray, keeps: tuple[int, ...] = (1, 2, 3, 6, 9, 12)) -> pd.DataFrame:
    """PSNR of the PCA autoencoder without quantisation, by bottleneck size (12 = no bottleneck)."""
    rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]
    return pd.DataFrame([{"kept dims per 2x2 block": k, "of": 12,
                          "PSNR without quantisation (dB)": metrics.psnr(rgb, pca_autoencoder(rgb, k))}
                         for k in keeps])
