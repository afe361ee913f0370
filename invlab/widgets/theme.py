"""One visual language for every figure: a fixed colour per codec, a line style per kind of codec, readable text.

- **Colour** belongs to the codec (:data:`COLOURS`), so msinn-mini-12 is the same red in every figure; variants of
  a family share its hue. A published curve takes the colour of what it publishes (the MSINN-VRLIC paper's curve is
  MSINN's red), VTM is black.
- **Line style** says the kind (:data:`KINDS`): invertible solid, autoencoder dashed, classical dotted, published
  and anchor curves thin dash-dot. Within one panel no two curves share colour and style (:func:`curve_styles`
  varies the marker where they would).
- **Axes**: bpp on a log axis where the rates span a decade or more (:func:`log_bpp`).
- **Text**: :data:`PAPER_FONT_PT` in exported files at IEEE column widths (:data:`COLUMN_INCHES`); plotly figures
  use :data:`PLOTLY_LAYOUT` (white, 13 px titles) and image panels :func:`image_axes` (no grid over pictures).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from invlab.eval.names import base_name, kind_of

#: the kinds of codec, in legend order, and how each is named in a legend heading
KINDS = ("invertible", "autoencoder", "classical", "published")
KIND_TITLES = {"invertible": "Invertible", "autoencoder": "Autoencoder", "classical": "Classical",
               "published": "Published / anchors"}
DASH = {"invertible": "solid", "autoencoder": "dash", "classical": "dot", "published": "dashdot"}
MPL_DASH = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}
WIDTH = {"invertible": 2.2, "autoencoder": 2.0, "classical": 1.8, "published": 1.3}
MARKERS = ("circle", "square", "diamond", "triangle-up", "x", "star")  # plotly names, in the order tried
MPL_MARKERS = {"circle": "o", "square": "s", "diamond": "D", "triangle-up": "^", "x": "x", "star": "*"}

#: a fixed colour per codec (registered models, classical codecs, published anchors)
COLOURS = {
    # invertible: MSINN reds, InvCompress blues, ANFIC greens, M-/MS-ANFIC brown and teal
    "msinn-mini-12": "#b2182b", "msinn-mini": "#f4a582", "msinn": "#67001f",
    "invcompress-mini": "#2166ac", "invcompress-mini-nofe": "#92c5de", "invcompress-mini-conv1x1": "#4393c3",
    "invcompress-mini-cb": "#053061", "invcompress": "#08519c",
    "anfic-mini": "#1b7837", "anfic-mini-noctx": "#7fbf7b", "anfic": "#00441b",
    "manfic-mini": "#8c510a", "msanfic-mini": "#35978f", "tiny-flow": "#878787",
    # autoencoders: purple and magenta
    "bmshj2018-hyperprior-mini": "#762a83", "mbt2018-mean-mini": "#c51b7d", "compressai": "#9970ab",
    # classical
    "jpeg": "#e08214", "jpeg444": "#fdb863", "jpeg2000": "#7f3b08", "webp": "#de77ae", "jpegxl": "#01665e",
    "avif": "#bf812d", "hevc444": "#4d4d4d", "vvc": "#1a1a1a", "vvc-slower": "#5e5e5e",
    # published anchors (a paper's curve takes its family's colour)
    "vtm": "#000000", "vvenc": "#6e6e6e", "vvenc-medium": "#9e9e9e", "hm": "#bababa", "bpg444": "#8073ac",
    "av1": "#d6604d", "msinn-8": "#d6604d", "msinn-12": "#b2182b", "bmshj2018-hyperprior": "#762a83",
    "mbt2018": "#c51b7d", "cheng2020-anchor": "#542788", "elic2022": "#2d004b",
}
FALLBACK = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf")

#: IEEE column widths in inches, and the text size of exported figures in points (7-9 pt is asked for)
COLUMN_INCHES = {"single": 3.5, "double": 7.16}
PAPER_FONT_PT = 8.0
PAPER_SMALL_PT = 7.0  # legends and tick labels

#: the layout every plotly figure of the workbench starts from
PLOTLY_LAYOUT = {"template": "plotly_white", "font": {"size": 12}, "title": {"font": {"size": 15}}}


@dataclass(frozen=True)
class Style:
    """How one curve is drawn."""

    colour: str
    dash: str  # plotly's name: solid, dash, dot, dashdot
    width: float
    marker: str  # plotly's name
    kind: str

    def plotly_line(self) -> dict:
        return {"color": self.colour, "dash": self.dash, "width": self.width}

    def plotly_marker(self) -> dict:
        return {"symbol": self.marker, "size": 6 if self.kind != "published" else 5}

    def matplotlib(self) -> dict:
        return {"color": self.colour, "linestyle": MPL_DASH[self.dash], "linewidth": self.width * 0.55,
                "marker": MPL_MARKERS[self.marker], "markersize": 2.5}


def colour_of(name: str) -> str:
    """The codec's fixed colour (an unknown codec: a palette colour chosen by its name, the same every time)."""
    base = base_name(name)
    return COLOURS.get(base) or FALLBACK[zlib.crc32(base.encode()) % len(FALLBACK)]


def curve_styles(curves: Iterable[tuple[str, bool]]) -> dict[str, Style]:
    """A style per ``(name, published)``, keyed by name: the codec's colour, its kind's line, and a marker that
    keeps (colour, dash, marker) unique within the set (variants of one codec otherwise look alike)."""
    styles: dict[str, Style] = {}
    taken: set[tuple[str, str, str]] = set()
    for name, published in curves:
        kind = kind_of(name, published)
        style = Style(colour_of(name), DASH[kind], WIDTH[kind], MARKERS[0], kind)
        for marker in MARKERS:
            style = replace(style, marker=marker)
            if (style.colour, style.dash, marker) not in taken:
                break
        taken.add((style.colour, style.dash, style.marker))
        styles[name] = style
    return styles


def by_kind(names: Sequence[str], styles: dict[str, Style]) -> list[str]:
    """``names`` in legend order: invertible, autoencoder, classical, published; the given order within a kind."""
    return sorted(names, key=lambda n: KINDS.index(styles[n].kind))


def log_bpp(bpp_values: Iterable[np.ndarray]) -> bool:
    """Whether a bpp axis should be logarithmic: the positive rates span a decade or more."""
    values = np.concatenate([np.asarray(v, float).ravel() for v in bpp_values] or [np.zeros(0)])
    values = values[np.isfinite(values) & (values > 0)]
    return values.size > 1 and values.max() / values.min() >= 10


def log_ticks(lo: float, hi: float) -> list[float]:
    """Readable tick values for a log-bpp axis between ``lo`` and ``hi`` (1-2-5 steps)."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        ticks += [m * 10.0**exponent for m in (1, 2, 5) if lo <= m * 10.0**exponent <= hi]
    return ticks


def image_axes(fig, rows: int = 1, cols: int = 1) -> None:
    """Picture panels of a plotly figure: no grid, no zero lines, no tick labels, square pixels."""
    for r in range(1, rows + 1):
        for c in range(1, cols + 1):
            fig.update_xaxes(showgrid=False, zeroline=False, showticklabels=False, row=r, col=c)
            fig.update_yaxes(showgrid=False, zeroline=False, showticklabels=False, row=r, col=c)


def paper_rc() -> dict:
    """matplotlib settings of exported figures: :data:`PAPER_FONT_PT` text, fonts embedded (TrueType in PDF)."""
    return {"font.size": PAPER_FONT_PT, "axes.titlesize": PAPER_FONT_PT, "axes.labelsize": PAPER_FONT_PT,
            "xtick.labelsize": PAPER_SMALL_PT, "ytick.labelsize": PAPER_SMALL_PT, "legend.fontsize": PAPER_SMALL_PT,
            "legend.title_fontsize": PAPER_SMALL_PT, "pdf.fonttype": 42, "svg.fonttype": "none",
            "font.family": "DejaVu Sans", "axes.linewidth": 0.6, "grid.linewidth": 0.4,
            "xtick.major.width": 0.6, "ytick.major.width": 0.6, "svg.hashsalt": "invlab"}


def colour_bar_trace(top: float, title: str, colorscale: str = "Inferno") -> Any:
    """An invisible trace whose only job is a colour bar from 0 to ``top`` beside picture panels (heat maps drawn
    as RGB pictures carry no scale of their own)."""
    import plotly.graph_objects as go

    return go.Scatter(x=[None], y=[None], mode="markers", showlegend=False, hoverinfo="skip",
                      marker={"colorscale": colorscale, "cmin": 0, "cmax": top, "color": [0], "showscale": True,
                              "colorbar": {"title": {"text": title, "side": "right"}, "thickness": 12}})
