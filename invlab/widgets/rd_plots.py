"""RD figures for notebooks: our results in results/<dataset>/ beside the published anchors.

Interactive figures are plotly; paper-ready files (PDF/SVG/PNG) are drawn with matplotlib, since plotly's
static export needs kaleido, which invlab does not install. The interactive figure's legend sits below the
panels and the figure grows with it, so every curve's entry is visible (no legend scrollbar). Exported files are
byte-stable: the same curves give the same bytes (no creation dates, fixed SVG ids), so re-exporting leaves
tracked figures unchanged unless the curves changed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from matplotlib import colormaps, rc_context
from matplotlib.figure import Figure  # no pyplot: leaves the notebook's backend alone
from plotly.subplots import make_subplots

from invlab.errors import InvlabError
from invlab.eval.anchors import Curve, load_anchor, load_results

PALETTE = colormaps["tab20"].colors
LEGEND_COLUMNS = 2  # legend entries per row under the interactive figure (3 cut the long labels at 1000 px)
LEGEND_ROW_PX = 30  # one line of legend text (a wrapped entry takes a line per part)
LEGEND_LINE_CHARS = 56  # longer legend labels wrap (at 1000 px a column holds about 65 characters of 11 px text)
PANEL_PX = 440  # the interactive figure's height without its legend
# no dates, fixed SVG ids: a figure of the same curves is the same bytes
STABLE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}}

DEFAULT_ANCHORS = ("vtm", "vvenc", "invcompress", "msinn-12")
ANCHOR_LABELS = {
    "vtm": "VTM (CompressAI, 4:4:4)", "vvenc": "VVC vvenc slower 4:2:0 (measured)",
    "invcompress": "InvCompress (paper)", "msinn-12": "MSINN-VRLIC 12 anchors (paper)",
    "msinn-8": "MSINN-VRLIC 8 anchors (paper)", "vvenc-medium": "VVC vvenc medium 4:2:0 (measured)",
}


def collect_curves(results_dir: str | Path, anchors: Sequence[str] = DEFAULT_ANCHORS,
                   only: Sequence[str] | None = None) -> dict[str, Curve]:
    """Every result JSON of ``results_dir`` (ours, by file stem; ``only``: just these stems, in this order) plus the
    named Kodak anchors (dashed later). E.g. a converted model beside its paper's curve:
    ``collect_curves(dir, ["msinn-12"], only=["msinn@msinn-official-eval"])``."""
    curves = load_results(results_dir) if Path(results_dir).is_dir() else {}
    if only is not None:
        missing = [name for name in only if name not in curves]
        if missing:
            raise InvlabError(f"no results named {', '.join(missing)} in {results_dir} (there: {', '.join(curves)})")
        curves = {name: curves[name] for name in only}
    for name in anchors:
        curves[ANCHOR_LABELS.get(name, name)] = load_anchor(name)
    return curves


def legend_label(name: str, curve: Curve) -> str:
    """``name``, with a learned model's training budget: "msinn-mini-eval (8.9 CPU-h, 11,646 steps)"."""
    return f"{name} ({curve.training})" if curve.training else name


def wrap_label(label: str, width: int = LEGEND_LINE_CHARS) -> str:
    """``label`` broken with plotly's ``<br>`` at spaces so that no line is longer than ``width`` characters
    (a word longer than ``width`` stays whole), so a long budget cannot run past its legend column."""
    return "<br>".join(textwrap.wrap(label, width, break_long_words=False, break_on_hyphens=False)) or label


def _legend_px(labels: Sequence[str]) -> int:
    """Height of the legend: its rows of ``LEGEND_COLUMNS`` entries, each as tall as its most wrapped label."""
    lines = [label.count("<br>") + 1 for label in labels]
    return LEGEND_ROW_PX * sum(max(lines[i:i + LEGEND_COLUMNS]) for i in range(0, len(lines), LEGEND_COLUMNS))


def _is_anchor(curve: Curve) -> bool:
    return "data/anchors" in curve.source.replace("\\", "/")


def rd_figure(curves: dict[str, Curve], title: str = "Kodak") -> go.Figure:
    """Two panels: PSNR-RGB and MS-SSIM-RGB (in dB, -10 log10(1 - MS-SSIM)) against bpp; anchors dashed; a
    learned model's legend entry states its training budget (wrapped where long)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("PSNR-RGB", "MS-SSIM-RGB"))
    labels = [wrap_label(legend_label(name, c)) for name, c in curves.items()]
    for i, ((name, c), label) in enumerate(zip(curves.items(), labels, strict=True)):
        style = {"dash": "dash" if _is_anchor(c) else "solid", "color": _colour(i)}
        fig.add_trace(go.Scatter(x=c.bpp, y=c.psnr, name=label, legendgroup=name, mode="lines+markers",
                                 line=style), 1, 1)
        if c.ms_ssim is not None and np.isfinite(c.ms_ssim).any():
            fig.add_trace(go.Scatter(x=c.bpp, y=-10 * np.log10(1 - c.ms_ssim), name=label, legendgroup=name,
                                     showlegend=False, mode="lines+markers", line=style), 1, 2)
    fig.update_xaxes(title_text="bpp")
    fig.update_yaxes(title_text="PSNR (dB)", row=1, col=1)
    fig.update_yaxes(title_text="MS-SSIM (dB)", row=1, col=2)
    fig.update_layout(
        title=title, template="plotly_white", height=PANEL_PX + _legend_px(labels),
        # below the panels, full width, a fixed number of entries per row: the figure is tall enough for all
        legend={"orientation": "h", "xref": "container", "x": 0.02, "xanchor": "left", "yref": "container",
                "y": 0.0, "yanchor": "bottom", "entrywidth": 1 / LEGEND_COLUMNS - 0.01, "entrywidthmode": "fraction",
                "font": {"size": 11}},
        margin={"t": 70, "l": 60, "r": 20},
    )
    return fig


def _colour(i: int) -> str:
    r, g, b = PALETTE[i % len(PALETTE)]
    return f"rgb({int(255 * r)},{int(255 * g)},{int(255 * b)})"


def export_figures(curves: dict[str, Curve], out_dir: str | Path, stem: str = "rd_kodak",
                   formats: Sequence[str] = ("pdf", "svg", "png"), max_bpp: float | None = 2.5) -> list[Path]:
    """Write the two-panel RD figure with matplotlib in each format; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(13, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for i, (name, c) in enumerate(curves.items()):
        keep = c.bpp <= max_bpp if max_bpp else np.ones_like(c.bpp, bool)
        kw = {"label": legend_label(name, c), "color": PALETTE[i % len(PALETTE)], "marker": ".",
              "linestyle": "--" if _is_anchor(c) else "-"}
        axes[0].plot(c.bpp[keep], c.psnr[keep], **kw)
        if c.ms_ssim is not None and np.isfinite(c.ms_ssim).any():
            axes[1].plot(c.bpp[keep], -10 * np.log10(1 - c.ms_ssim[keep]), **kw)
    for ax, ylabel in zip(axes, ("PSNR-RGB (dB)", "MS-SSIM-RGB (dB)"), strict=True):
        ax.set(xlabel="bpp", ylabel=ylabel)
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=7)  # off the curves
    paths = [out_dir / f"{stem}.{fmt}" for fmt in formats]
    with rc_context({"svg.hashsalt": "invlab"}):
        for path, fmt in zip(paths, formats, strict=True):
            fig.savefig(path, dpi=200, metadata=STABLE_METADATA.get(fmt))
    return paths
