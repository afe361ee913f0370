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
from matplotlib import rc_context
from matplotlib.figure import Figure  # no pyplot: leaves the notebook's backend alone
from matplotlib.lines import Line2D
from plotly.subplots import make_subplots

from invlab.errors import InvlabError
from invlab.eval.anchors import Curve, load_anchor, load_results
from invlab.eval.names import anchor_label, base_name, display_name
from invlab.widgets import theme

LEGEND_COLUMNS = 2  # legend entries per row under the interactive figure (3 cut the long labels at 1000 px)
LEGEND_ROW_PX = 30  # one line of legend text (a wrapped entry takes a line per part)
LEGEND_LINE_CHARS = 56  # longer legend labels wrap (at 1000 px a column holds about 65 characters of 11 px text)
PANEL_PX = 440  # the interactive figure's height without its legend
# no dates, fixed SVG ids: a figure of the same curves is the same bytes
STABLE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "svg": {"Date": None}}

DEFAULT_ANCHORS = ("vtm", "vvenc", "invcompress", "msinn-12")


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
        curves[anchor_label(name)] = load_anchor(name)
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


def _styles(curves: dict[str, Curve]) -> dict[str, theme.Style]:
    """The theme's style of each curve (keyed like ``curves``): an anchor is styled by its short name."""
    by_name = theme.curve_styles((c.name if _is_anchor(c) else key, _is_anchor(c)) for key, c in curves.items())
    return {key: by_name[c.name if _is_anchor(c) else key] for key, c in curves.items()}


def _ordered(curves: dict[str, Curve]) -> tuple[dict[str, Curve], dict[str, theme.Style]]:
    """``curves`` in legend order (invertible, autoencoder, classical, published) and their styles."""
    styles = _styles(curves)
    return {k: curves[k] for k in theme.by_kind(list(curves), styles)}, styles


def curated(curves: dict[str, Curve], anchor: str = "vtm") -> dict[str, Curve]:
    """The figure a paper would print: each learned family's best curve (lowest BD-rate against ``anchor``; the
    MSINN, InvCompress, ANFIC and M-/MS-ANFIC minis, the autoencoder baselines), JPEG as the classical reference,
    and every published curve given. ``curves`` itself is the full set."""
    from invlab.metrics import bd_rate
    from invlab.models.registry import get_spec, is_model

    reference = load_anchor(anchor)
    best: dict[str, tuple[float, str]] = {}
    keep = []
    for key, c in curves.items():
        base = base_name(key)
        if _is_anchor(c) or base == "jpeg":
            keep.append(key)
        elif is_model(base) and not key.endswith("-untrained") and len(c.bpp) > 1:
            family = get_spec(base).family
            score = bd_rate(reference.bpp, reference.psnr, c.bpp, c.psnr)
            score = score if np.isfinite(score) else np.inf
            if family not in best or score < best[family][0]:
                best[family] = score, key
    keep += [key for _, key in best.values()]
    return {k: c for k, c in curves.items() if k in keep}


def rd_figure(curves: dict[str, Curve], title: str = "Kodak") -> go.Figure:
    """Two panels: PSNR-RGB and MS-SSIM-RGB (in dB, -10 log10(1 - MS-SSIM)) against bpp (a log axis where the rates
    span a decade), in the theme's colours and line styles, the legend ordered by kind of codec; a learned
    model's legend entry states its training budget (wrapped where long)."""
    curves, styles = _ordered(curves)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("PSNR-RGB", "MS-SSIM-RGB"), horizontal_spacing=0.08)
    labels = [wrap_label(legend_label(display_name(name), c)) for name, c in curves.items()]
    for (name, c), label in zip(curves.items(), labels, strict=True):
        style = styles[name]
        trace = {"name": label, "legendgroup": name, "mode": "lines+markers", "line": style.plotly_line(),
                 "marker": style.plotly_marker()}
        fig.add_trace(go.Scatter(x=c.bpp, y=c.psnr, **trace), 1, 1)
        if c.ms_ssim is not None and np.isfinite(c.ms_ssim).any():
            fig.add_trace(go.Scatter(x=c.bpp, y=-10 * np.log10(1 - c.ms_ssim), showlegend=False, **trace), 1, 2)
    bpp = [c.bpp for c in curves.values()]
    if theme.log_bpp(bpp):
        values = np.concatenate(bpp)
        ticks = theme.log_ticks(values[values > 0].min(), values.max())
        fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig.update_xaxes(title_text="bpp")
    fig.update_yaxes(title_text="PSNR (dB)", row=1, col=1)
    fig.update_yaxes(title_text="MS-SSIM (dB)", row=1, col=2)
    fig.update_layout(
        **theme.PLOTLY_LAYOUT, height=PANEL_PX + _legend_px(labels),
        # below the panels, full width, a fixed number of entries per row: the figure is tall enough for all
        legend={"orientation": "h", "xref": "container", "x": 0.02, "xanchor": "left", "yref": "container",
                "y": 0.0, "yanchor": "bottom", "entrywidth": 1 / LEGEND_COLUMNS - 0.01, "entrywidthmode": "fraction",
                "font": {"size": 11}},
        margin={"t": 80, "l": 60, "r": 20},
    )
    fig.update_layout(title={"text": f"{title}<br><sup>{STYLE_KEY}</sup>"})
    return fig


#: what the line styles mean, said once under every RD figure's title
STYLE_KEY = "solid: invertible · dashed: autoencoder · dotted: classical · thin dash-dot: published / anchors"


def export_figures(curves: dict[str, Curve], out_dir: str | Path, stem: str = "rd_kodak",
                   formats: Sequence[str] = ("pdf", "svg", "png"), max_bpp: float | None = 2.5,
                   columns: Sequence[str] = ("double", "single")) -> list[Path]:
    """Paper-ready files with matplotlib, for each of ``columns`` and ``formats``; returns the written paths.

    ``double``: both panels at the IEEE double-column width (7.16 in), ``<stem>.<fmt>``; ``single``: the PSNR panel
    at the single-column width (3.5 in), ``<stem>-single.<fmt>``. Text is 7-8 pt, fonts are embedded (TrueType in
    PDF, text in SVG), the legend lies under the panels grouped by kind of codec, and the files are byte-stable.
    Give :func:`curated` curves for a paper figure, all of them for the full set."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves, styles = _ordered(curves)
    paths = []
    with rc_context(theme.paper_rc()):
        for column in columns:
            fig = _paper_figure(curves, styles, column, max_bpp)
            suffix = "" if column == "double" else f"-{column}"
            for fmt in formats:
                path = out_dir / f"{stem}{suffix}.{fmt}"
                fig.savefig(path, dpi=300, metadata=STABLE_METADATA.get(fmt))
                paths.append(path)
    return paths


def _paper_figure(curves: dict[str, Curve], styles: dict[str, theme.Style], column: str,
                  max_bpp: float | None) -> Figure:
    """One exported figure: ``column`` width, the PSNR panel (and MS-SSIM's at double width), a grouped legend."""
    double = column == "double"
    kinds = [k for k in theme.KINDS if any(s.kind == k for s in styles.values())]
    rows = max((sum(s.kind == k for s in styles.values()) for k in kinds), default=1) + 1
    legend_in = 0.12 * (rows if double else (len(curves) + 1) // 2 + 1)
    fig = Figure(figsize=(theme.COLUMN_INCHES[column], (2.3 if double else 2.2) + legend_in),
                 layout="constrained")
    axes = fig.subplots(1, 2 if double else 1, squeeze=False)[0]
    bpp = []
    for name, c in curves.items():
        keep = c.bpp <= max_bpp if max_bpp else np.ones_like(c.bpp, bool)
        bpp.append(c.bpp[keep])
        kw = {"label": display_name(name), **styles[name].matplotlib()}
        axes[0].plot(c.bpp[keep], c.psnr[keep], **kw)
        if double and c.ms_ssim is not None and np.isfinite(c.ms_ssim).any():
            axes[1].plot(c.bpp[keep], -10 * np.log10(1 - c.ms_ssim[keep]), **kw)
    for ax, ylabel in zip(axes, ("PSNR-RGB (dB)", "MS-SSIM-RGB (dB)"), strict=False):
        ax.set(xlabel="bpp", ylabel=ylabel)
        ax.grid(alpha=0.3)
        if theme.log_bpp(bpp):
            values = np.concatenate(bpp)
            ticks = theme.log_ticks(values[values > 0].min(), values.max())
            ax.set_xscale("log")
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
    handles = dict(zip(*reversed(axes[0].get_legend_handles_labels()), strict=True))
    if double:  # a column per kind of codec, headed by its name
        blank = Line2D([], [], linestyle="none")
        cols = []
        for kind in kinds:
            names = [display_name(n) for n in curves if styles[n].kind == kind]
            cols.append([(blank, theme.KIND_TITLES[kind])] + [(handles[n], n) for n in names])
        entries = [e for col in cols for e in col + [(blank, "")] * (rows - len(col))]
        fig.legend(*zip(*[(h, label) for h, label in entries], strict=True), loc="outside lower center",
                   ncol=len(kinds), frameon=False, handlelength=2.4, columnspacing=1.2)
    else:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=2, frameon=False,
                   handlelength=2.2, columnspacing=0.8)
    return fig
