"""Figures and tables of the re-encoding study (notebook 04): small multiples, a panel per image.

Every codec keeps its colour and its kind's line style (:mod:`invlab.widgets.theme`) in every panel, with one
shared legend entry, so twenty-odd series read as a handful of codecs across a few pictures.
"""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from invlab.eval.reencode import UNTRAINED
from invlab.widgets import theme

PANEL_COLUMNS = 3  # panels per row
ROW_PX = 300  # one row of panels
LEGEND_PX = 26  # one row of legend entries (four to a row)


def _series_label(codec: str, label: str) -> str:
    return codec + (" (untrained)" if label == UNTRAINED else "")


def _panels(rows: pd.DataFrame, y: pd.Series, y_title: str, title: str, series: str = "codec",
            styles: dict[str, theme.Style] | None = None, key: str = "") -> go.Figure:
    """A panel per image, a line per ``series`` value (styled by ``styles``, else as codecs by the theme)."""
    images = list(dict.fromkeys(rows["image"]))
    codecs = list(dict.fromkeys(rows[series]))
    if styles is None:
        styles = theme.curve_styles((c, False) for c in codecs)
        codecs = theme.by_kind(codecs, styles)
    n_rows = math.ceil(len(images) / PANEL_COLUMNS)
    fig = make_subplots(rows=n_rows, cols=min(PANEL_COLUMNS, len(images)), subplot_titles=images,
                        shared_yaxes=True, horizontal_spacing=0.04, vertical_spacing=0.12)
    for codec in codecs:
        for i, image in enumerate(images):
            part = rows[(rows[series] == codec) & (rows["image"] == image)]
            if part.empty:
                continue
            style = styles[codec]
            fig.add_trace(go.Scatter(
                x=part["generation"], y=y[part.index], mode="lines+markers", legendgroup=codec,
                name=_series_label(codec, part["label"].iloc[0] if "label" in part else ""), showlegend=i == 0,
                line=style.plotly_line(), marker={**style.plotly_marker(), "size": 4}),
                i // PANEL_COLUMNS + 1, i % PANEL_COLUMNS + 1)
    legend_rows = math.ceil(len(codecs) / 4)
    fig.update_xaxes(title_text="generation")
    fig.update_yaxes(title_text=y_title, col=1)
    fig.update_layout(
        **theme.PLOTLY_LAYOUT, height=ROW_PX * n_rows + 90 + LEGEND_PX * legend_rows,
        legend={"orientation": "h", "xref": "container", "x": 0.02, "yref": "container", "y": 0.0,
                "yanchor": "bottom", "entrywidth": 0.24, "entrywidthmode": "fraction", "font": {"size": 11}},
        margin={"t": 90, "l": 60, "r": 20, "b": 40 + LEGEND_PX * legend_rows},
    )
    fig.update_layout(title={"text": f"{title}<br><sup>{key or STYLE_KEY}</sup>"})
    return fig


STYLE_KEY = "a panel per image, a colour per codec; solid: invertible · dashed: autoencoder · dotted: classical"


def psnr_panels(rows: pd.DataFrame) -> go.Figure:
    """PSNR against the original, per generation: a panel per image, a codec per colour, one shared legend."""
    return _panels(rows, rows["psnr"], "PSNR vs original (dB)", "Re-encoding: quality per generation")


def bpp_panels(rows: pd.DataFrame) -> go.Figure:
    """Each generation's file size against generation 1's, in percent: a panel per image."""
    first = rows.groupby(["codec", "image"])["bpp"].transform("first")
    return _panels(rows, 100 * (rows["bpp"] / first - 1), "bpp change since generation 1 (%)",
                   "Re-encoding: file size per generation")


#: the drift study's variants: the shipped model black, each cause switched off in its own colour
VARIANT_COLOURS = {"as shipped": "#000000", "post-net off": "#d6604d", "LRP off": "#4393c3",
                   "post-net and LRP off": "#1b7837", "g·g' = 1": "#8073ac", "float pixels": "#bf812d",
                   "QE off": "#1b7837"}


def drift_panels(rows: pd.DataFrame, model: str = "") -> go.Figure:
    """The drift study (:mod:`invlab.eval.drift`) of ``model``: PSNR per generation, a panel per image, a line per
    variant."""
    variants = list(dict.fromkeys(rows["variant"]))
    styles = {v: theme.Style(VARIANT_COLOURS.get(v, theme.colour_of(v)), "solid" if v == "as shipped" else "dash",
                             2.2, "circle", "invertible") for v in variants}
    title = f"Why {model or 'it'} drifts: each cause switched off"
    return _panels(rows, rows["psnr"], "PSNR vs original (dB)", title,
                   series="variant", styles=styles, key="a panel per image; black: as shipped, dashed: one cause off")
