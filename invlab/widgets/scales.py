"""Per-scale latents and their bits (notebook 02), for any model through the model contract.

- latents: ``model.scale_latents(x)`` (a flow's y1 fine ... yL coarse; the ANFIC family's decoded levels);
- bits per latent position: ``model.scale_bits(x, rate)`` summed over channels (MSINN and the ANFIC family say
  their own; by default ``-log2`` of the eval-mode forward's likelihoods).

A model without per-scale latents raises :class:`NoLevelsViewError`, whose message a notebook can show as it is.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from invlab.io.images import to_tensor
from invlab.models.base import InvlabModel
from invlab.widgets import render, theme


def model_input(model: InvlabModel, rgb: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W) in [0, 1], padded to the model's multiple."""
    return model.pad(to_tensor(rgb))


def name_of(model: InvlabModel) -> str:
    """The registered name of a model (its class name when it was built by hand)."""
    return model.registry_name or type(model).__name__


@torch.no_grad()
def latents(model: InvlabModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's latents by name, fine to coarse (:meth:`~invlab.models.base.InvlabModel.scale_latents`)."""
    return model.scale_latents(x)


def _as_map(bits: torch.Tensor) -> np.ndarray:
    """Sum every axis but the last two: (…, h, w) -> (h, w) float64."""
    bits = bits.detach().double()
    return bits.reshape(-1, *bits.shape[-2:]).sum(0).numpy()


@torch.no_grad()
def bits_maps(model: InvlabModel, x: torch.Tensor, rate: float) -> dict[str, np.ndarray]:
    """Estimated bits per latent position, one (h, w) map per scale (``-log2 p`` summed over channels)."""
    return {name: _as_map(bits) for name, bits in model.scale_bits(x, model.check_rate(rate)).items()}


def bits_table(model: InvlabModel, x: torch.Tensor, rates: list[float], pixels: int | None = None) -> pd.DataFrame:
    """One row per (rate, scale): ``bits``, ``bpp`` and ``share`` of that rate's bits.

    ``pixels``: the image's pixel count for bpp (default: the padded input's).
    """
    pixels = pixels or x.shape[-2] * x.shape[-1]
    rows = []
    for rate in rates:
        maps = bits_maps(model, x, rate)
        total = sum(float(m.sum()) for m in maps.values())
        rows += [{"rate": float(rate), "scale": name, "bits": float(m.sum()), "bpp": float(m.sum()) / pixels,
                  "share": float(m.sum()) / total if total > 0 else math.nan} for name, m in maps.items()]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- figures
def share_figure(table: pd.DataFrame) -> go.Figure:
    """Share of the bits per scale as the rate changes (stacked areas)."""
    fig = px.area(table, x="rate", y="share", color="scale", title="share of bits per scale vs rate",
                  labels={"share": "share of the estimated bits"})
    return fig.update_layout(**theme.PLOTLY_LAYOUT).update_layout(yaxis_tickformat=".0%", height=360)


def bpp_figure(table: pd.DataFrame) -> go.Figure:
    """Estimated bpp per scale vs rate."""
    fig = px.line(table, x="rate", y="bpp", color="scale", markers=True, title="estimated bits per scale vs rate",
                  labels={"bpp": "bits per image pixel"})
    return fig.update_layout(**theme.PLOTLY_LAYOUT).update_layout(height=360)


def scale_titles(named: dict[str, torch.Tensor]) -> list[str]:
    """A title per latent: its channels and size; latents of one size that follow each other are said to come
    from the same level (the last level is not squeezed again: one part is split off, the rest kept)."""
    sizes = [tuple(y.shape[2:]) for y in named.values()]
    titles = []
    for i, (name, y) in enumerate(named.items()):
        same = [n for j, n in enumerate(named) if j != i and sizes[j] == sizes[i]]
        note = f" (same level as {', '.join(same)})" if same else ""
        titles.append(f"{name}: {y.shape[1]} ch @ {y.shape[2]}×{y.shape[3]}{note}")
    return titles


def channel_mosaic(y: torch.Tensor, max_channels: int = 16) -> np.ndarray:
    """Up to ``max_channels`` channels of a (1, C, h, w) latent tiled in a near-square grid, each scaled to [0, 1]."""
    chans = y[0, :max_channels].double().numpy()
    lo, hi = chans.min(axis=(1, 2), keepdims=True), chans.max(axis=(1, 2), keepdims=True)
    chans = (chans - lo) / np.where(hi > lo, hi - lo, 1.0)
    cols = math.ceil(math.sqrt(len(chans)))
    rows = math.ceil(len(chans) / cols)
    h, w = chans.shape[1:]
    grid = np.ones((rows * (h + 1) - 1, cols * (w + 1) - 1))
    for k, c in enumerate(chans):
        r, q = divmod(k, cols)
        grid[r * (h + 1) : r * (h + 1) + h, q * (w + 1) : q * (w + 1) + w] = c
    return grid


def channels_figure(named: dict[str, torch.Tensor], max_channels: int = 16) -> go.Figure:
    """One panel per scale: its channels as grey images (each channel min-max normalised)."""
    fig = make_subplots(rows=1, cols=len(named), subplot_titles=scale_titles(named), horizontal_spacing=0.03)
    bar = {"title": {"text": "channel min → max", "side": "right"}, "tickvals": [0, 1], "ticktext": ["min", "max"],
           "thickness": 12}
    for i, y in enumerate(named.values(), start=1):
        fig.add_trace(go.Heatmap(z=channel_mosaic(y, max_channels), colorscale="gray", zmin=0, zmax=1,
                                 showscale=i == 1, colorbar=bar), 1, i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{i}", row=1, col=i)
    theme.image_axes(fig, 1, len(named))
    fig.update_annotations(font_size=12)
    return fig.update_layout(**theme.PLOTLY_LAYOUT).update_layout(
        height=340, title=f"latent channels (first {max_channels} per scale, each scaled to its own min … max)")


def overlay_panels(rgb: np.ndarray, maps: dict[str, np.ndarray],
                   padded_height: int) -> tuple[dict[str, np.ndarray], float]:
    """Each scale's bits as bits per image pixel (a latent position of scale k covers 4^k pixels), laid over the
    image on one colour scale; returns the pictures by scale and the scale's top (the 99.5th percentile of all)."""
    factors = {name: padded_height // m.shape[0] for name, m in maps.items()}
    density = {name: m / factors[name] ** 2 for name, m in maps.items()}
    top = max(float(np.percentile(d, 99.5)) for d in density.values()) or 1.0
    return {n: render.overlay(rgb, density[n], factors[n], vmax=top) for n in maps}, top


def overlay_figure(rgb: np.ndarray, maps: dict[str, np.ndarray], padded_height: int) -> go.Figure:
    """Bits per position of each scale, enlarged onto the image and laid over it (bright = many bits).

    ``padded_height`` is the height of the model input the maps were computed on (the image, padded).
    """
    overlays, top = overlay_panels(rgb, maps, padded_height)
    panels = np.stack(list(overlays.values()))
    fig = px.imshow(panels, facet_col=0, facet_col_wrap=min(len(maps), 3), binary_string=True,
                    facet_col_spacing=0.02, facet_row_spacing=0.08)
    # With facet_col_wrap, plotly lists the facet titles bottom row first, so they cannot be zipped with the
    # maps in order; each title names its facet ("facet_col=k", k = index into the stack): go by that.
    named = list(maps.items())
    for ann in fig.layout.annotations:
        name, m = named[int(ann.text.rpartition("=")[2])]
        ann.text = f"{name}: {m.sum():.0f} bits"
        ann.font.size = 12
    rows = math.ceil(len(maps) / 3)
    theme.image_axes(fig, rows, min(len(maps), 3))
    fig.add_trace(theme.colour_bar_trace(top, "bits per pixel"))
    return fig.update_layout(**theme.PLOTLY_LAYOUT).update_layout(
        title="where the bits go: each scale's bits per image pixel, over the image (one colour scale)",
        height=300 * rows + 60)

