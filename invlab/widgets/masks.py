"""The chosen quadtree masks of M-ANFIC / MS-ANFIC: where the bits were spent, at which scale.

``model.mask_view(x)`` (:class:`~invlab.models.anf.manfic.MaskView`) gives the RD-searched depth map (one latent
level per block), each level's mask and its estimated bits per position. Here they become an interactive plotly
figure (notebook 02), a table, and files for the report drawn with matplotlib (plotly's static export needs
kaleido, which invlab does not install; :mod:`invlab.widgets.rd_plots` does the same).

Colours of the bits panels: estimated bits per *pixel* of each level's positions (a v2 position covers 4x the
pixels of a v1 position), on one scale for all levels, so brightness compares across levels.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure  # no pyplot: leaves the notebook's backend alone
from matplotlib.patches import Patch
from plotly.subplots import make_subplots

from invlab.errors import OutputExistsError
from invlab.models.anf.manfic import MaskView
from invlab.models.base import InvlabModel
from invlab.rate_map import forced_levels, parse_roi
from invlab.weights import load_model
from invlab.widgets import render
from invlab.widgets.scales import model_input, name_of
from invlab.widgets.sources import UNTRAINED_BANNER, load_rgb

#: one colour per latent level, fine (v1) to coarse
LEVEL_COLOURS = [tuple(int(round(255 * c)) for c in rgb) for rgb in colormaps["tab10"].colors]
GRID_COLOUR = (255, 255, 255)
FORCED_COLOUR = (0, 0, 0)  # the frame of a block whose level the user forced


@dataclass
class MaskPanels:
    """One image's mask view and the pictures drawn from it (shared by the plotly and matplotlib figures)."""

    view: MaskView
    depth: np.ndarray  # (H, W, 3) uint8: the image with the depth map's colours and the block grid
    levels: list[np.ndarray]  # per level (H, W, 3) uint8: its bits per pixel over the image, block grid
    strides: list[int]  # pixels per position of each level
    vmax_bpp: float  # the top of the shared colour scale

    def level_label(self, n: int) -> str:
        return f"{self.view.names[n]} (H/{self.strides[n]})"

    def depth_title(self) -> str:
        return f"chosen depth map ({self.view.granularity} px blocks)\n{self.view.bpp:.3f} bpp estimated"

    def level_title(self, n: int) -> str:
        """Two lines: the level's bits and share of the image's bits, then how many of them its hyper-latent costs
        (the panel's map shows the latent's bits only)."""
        bits = self.view.bits[self.view.names[n]]
        total = sum(self.view.bits.values())
        share = bits / total if total > 0 else float("nan")
        hyper = self.view.hyper_bits[n]
        return f"{self.level_label(n)}: {bits:.0f} bits ({share:.0%})\nof which hyper-latent {hyper:.0f}"

    def legend_label(self, n: int) -> str:
        blocks = int((self.view.depth_map == n).sum())
        return f"{self.level_label(n)}: {blocks} blocks ({blocks / self.view.depth_map.size:.0%})"


def is_trained(model: InvlabModel) -> bool:
    """True only for a model loaded with trained weights (:func:`invlab.weights.load_model` sets ``trained``)."""
    return model.trained


def mask_view(model: InvlabModel, rgb: np.ndarray, rate: float | None = None,
              rois: Sequence[tuple[int, int, int, int, float]] = ()) -> MaskView:
    """The RD-searched masks and estimated bits of ``rgb`` (padded to the model's multiple); ``rois`` force the
    level of the blocks they touch (``x, y, w, h, level``, as ``invlab encode --roi``). A model without quadtree
    masks raises :class:`~invlab.errors.NoLevelsViewError`."""
    x = model_input(model, rgb)
    if not rois:
        return model.mask_view(x, rate)
    levels = forced_levels(list(rois), *rgb.shape[:2], model.granularity, tuple(x.shape[-2:]), model.num_levels)
    return model.mask_view(x, rate, forced=torch.as_tensor(levels)[None])


def _grid(picture: np.ndarray, granularity: int) -> np.ndarray:
    """The block grid drawn as 1-pixel lines (in place); returns ``picture``."""
    picture[granularity::granularity] = GRID_COLOUR
    picture[:, granularity::granularity] = GRID_COLOUR
    return picture


def depth_picture(rgb: np.ndarray, view: MaskView, alpha: float = 0.45) -> np.ndarray:
    """The image with each block tinted by its level's colour and the block grid."""
    h, w = rgb.shape[:2]
    levels = render.upsample(view.depth_map, view.granularity, h, w)
    colours = np.asarray(LEVEL_COLOURS, np.float32)[levels % len(LEVEL_COLOURS)]
    picture = ((1 - alpha) * rgb.astype(np.float32) + alpha * colours).round().clip(0, 255).astype(np.uint8)
    picture = _grid(picture, view.granularity)
    if view.forced is not None:  # the blocks the user chose: a frame inside each
        g = view.granularity
        for row, col in zip(*np.nonzero(view.forced >= 0), strict=True):
            top, left = row * g, col * g
            for a, b in ((top + 1, top + 3), (top + g - 3, top + g - 1)):
                picture[a:b, left + 1:left + g - 1] = FORCED_COLOUR
            for a, b in ((left + 1, left + 3), (left + g - 3, left + g - 1)):
                picture[top + 1:top + g - 1, a:b] = FORCED_COLOUR
    return picture


def mask_panels(rgb: np.ndarray, view: MaskView) -> MaskPanels:
    """The depth-map picture and each level's bits per pixel over the image (one colour scale)."""
    padded_height = view.depth_map.shape[0] * view.granularity
    strides = [padded_height // m.shape[0] for m in view.bit_maps]
    bpp_maps = [m / s**2 for m, s in zip(view.bit_maps, strides, strict=True)]
    vmax = max(float(m.max()) for m in bpp_maps)
    levels = [render.overlay(rgb, m, s, vmax=vmax) for m, s in zip(bpp_maps, strides, strict=True)]
    levels = [_grid(picture, view.granularity) for picture in levels]
    return MaskPanels(view, depth_picture(rgb, view), levels, strides, vmax)


def figure_title(model: InvlabModel, image_name: str | None = None, sep: str = " — ") -> str:
    """Model and image; says "untrained" plainly (after ``sep``) unless the weights are trained ones."""
    where = f" on {image_name}" if image_name else ""
    title = f"{name_of(model)}: chosen quadtree masks and estimated bits per level{where}"
    return title if is_trained(model) else f"{title}{sep}{UNTRAINED_BANNER}"


def mask_figure(model: InvlabModel, rgb: np.ndarray, rate: float | None = None,
                image_name: str | None = None) -> go.Figure:
    """The chosen depth map over the image (one colour per level, block grid), then one panel per level with its
    estimated bits over the image; the panel titles give each level's bits and share (latent + hyper-latent)."""
    panels = mask_panels(rgb, mask_view(model, rgb, rate))
    names = panels.view.names
    titles = [panels.depth_title(), *(panels.level_title(n) for n in range(len(names)))]
    fig = make_subplots(rows=1, cols=1 + len(names), horizontal_spacing=0.02,
                        subplot_titles=[t.replace("\n", "<br>") for t in titles])
    fig.add_trace(go.Image(z=panels.depth, name="depth map", hoverinfo="skip"), 1, 1)
    for n, picture in enumerate(panels.levels):
        fig.add_trace(go.Image(z=picture, name=names[n], hoverinfo="skip"), 1, n + 2)
    for n in range(len(names)):  # legend entries: the level colours of the depth map
        r, g, b = LEVEL_COLOURS[n % len(LEVEL_COLOURS)]
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=panels.legend_label(n),
                                 marker={"symbol": "square", "size": 12, "color": f"rgb({r},{g},{b})"}), 1, 1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False)
    title = figure_title(model, image_name)
    scale = f"bits panels: estimated bits per pixel, 0 (dark) … {panels.vmax_bpp:.3g} (bright), one scale for all"
    fig.update_annotations(font_size=12)
    return fig.update_layout(title={"text": f"{title}<br><sup>{scale}</sup>", "font_size": 14}, height=420,
                             legend={"orientation": "h", "y": -0.05}, margin={"t": 130})


def level_table(view: MaskView) -> pd.DataFrame:
    """One row per level: blocks on it, estimated bits (latent + hyper-latent) and share of the image's bits."""
    total = sum(view.bits.values())
    return pd.DataFrame([{"level": name, "blocks": int((view.depth_map == n).sum()), "bits": bits,
                          "share": bits / total if total > 0 else float("nan")}
                         for n, (name, bits) in enumerate(view.bits.items())])


def masks_summary(model: InvlabModel, rgbs: dict[str, np.ndarray], rate: float | None = None) -> pd.DataFrame:
    """Per image and level: ``blocks``, estimated ``bits`` and ``share`` (shares sum to 1 per image)."""
    tables = [level_table(mask_view(model, rgb, rate)).assign(image=name) for name, rgb in rgbs.items()]
    return pd.concat(tables, ignore_index=True)[["image", "level", "blocks", "bits", "share"]]


def draw_mask_rows(model: InvlabModel, rows: dict[str, tuple[np.ndarray, MaskView]]) -> Figure:
    """The static figure (matplotlib): one row per image, the depth map then each level's bits."""
    named = {name: mask_panels(rgb, view) for name, (rgb, view) in rows.items()}
    cols = 1 + max(len(p.view.names) for p in named.values())
    fig = Figure(figsize=(3.2 * cols, 3.0 * len(named) + 0.6), layout="constrained")
    axes = fig.subplots(len(named), cols, squeeze=False)
    for row, (name, panels) in zip(axes, named.items(), strict=True):
        row[0].imshow(panels.depth)
        row[0].set_title(f"{name}: {panels.depth_title()}", fontsize=8)
        row[0].legend(handles=[Patch(color=np.asarray(LEVEL_COLOURS[n % len(LEVEL_COLOURS)]) / 255,
                                     label=panels.legend_label(n)) for n in range(len(panels.view.names))],
                      fontsize=6, loc="lower left", framealpha=0.8)
        for n, picture in enumerate(panels.levels):
            row[n + 1].imshow(picture)
            row[n + 1].set_title(f"{panels.level_title(n)}\ncolour: 0 … {panels.vmax_bpp:.3g} bits/pixel", fontsize=8)
        for ax in row:
            ax.set_axis_off()
    fig.suptitle(figure_title(model, sep="\n"), fontsize=10)
    return fig


def save_mask_figures(model_name: str, images: Sequence[str] = ("kodim04", "kodim23"),
                      out: str | Path = "results/figures", pretrained: bool = True,
                      crop: int | None = None, formats: Sequence[str] = ("png", "svg"),
                      rois: Sequence[tuple[int, int, int, int, float]] = ()) -> list[Path]:
    """Write ``masks_<model>.{png,svg}`` into ``out``: the chosen masks of ``images`` (Kodak names or paths).

    ``pretrained=True`` needs shipped weights (:class:`~invlab.errors.MissingWeightsError` otherwise); the
    untrained figure says so in its title. ``crop``: a centred square, for quick runs. ``rois``: blocks whose level
    the user forces (framed in the figure), as ``invlab encode --roi``.
    """
    model = load_model(model_name, pretrained=pretrained)
    rows = {}
    for image in images:
        rgb = load_rgb(image, crop)
        rows[Path(image).stem] = (rgb, mask_view(model, rgb, rois=rois))
    fig = draw_mask_rows(model, rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"masks_{model_name}.{fmt}" for fmt in formats]
    for path in paths:
        fig.savefig(path, dpi=200)
    return paths


# ---------------------------------------------------------------------- CLI (`invlab masks`)
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("models", nargs="+", help="models with masks (manfic-mini, msanfic-mini)")
    parser.add_argument("--images", nargs="+", default=["kodim04", "kodim23"], help="Kodak names or image paths")
    parser.add_argument("--out", default="results/figures", help="folder for masks_<model>.png/.svg")
    parser.add_argument("--untrained", action="store_true",
                        help="draw the untrained model (the figure says so) instead of refusing without weights")
    parser.add_argument("--roi", action="append", metavar="X,Y,W,H:LEVEL", default=[],
                        help="force the quadtree level of the blocks the rectangle touches (0 = finest), as "
                             "`invlab encode --roi`; framed in the figure")
    parser.add_argument("--force", action="store_true", help="replace existing figures")


def run(args: argparse.Namespace) -> int:
    for name in args.models:
        existing = [p for p in (Path(args.out) / f"masks_{name}.{fmt}" for fmt in ("png", "svg")) if p.exists()]
        if existing and not args.force:
            raise OutputExistsError(f"{existing[0]} exists; pass --force to replace it")
        rois = [parse_roi(text) for text in args.roi]
        for path in save_mask_figures(name, args.images, args.out, pretrained=not args.untrained, rois=rois):
            print(f"wrote {path}")
    return 0
