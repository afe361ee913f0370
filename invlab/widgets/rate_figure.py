"""Notebook 01's operating-point figure: the model's RD curve on this image, VVC on the same image (a Kodak image:
the measured sweep) or the VTM anchor's Kodak mean (said so), and the current point."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from invlab.eval.anchors import Curve
from invlab.widgets import theme
from invlab.widgets.point_service import ClassicalPoint, Point


def rd_figure(curve: pd.DataFrame, anchor: Curve, point: Point, classical: ClassicalPoint | None,
              model_label: str, same_image: pd.DataFrame | None = None, model: str = "") -> Figure:
    """The curve (``bpp``, ``psnr`` columns) in the model's colour, ``point`` in red and ``classical`` (when a codec
    is selected) as a square in its colour. The reference is honest about what it is: ``same_image`` (VVC's measured
    points on this very image) where there are such, else ``anchor`` labelled as the Kodak mean it is.

    The bpp axis is logarithmic and always spans the reference, so it stays readable whatever the model (an
    untrained one codes at tens of bpp); the legend sits below the axes, hiding no curve."""
    fig = Figure(figsize=(5.2, 4.0), dpi=80, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(curve["bpp"], curve["psnr"], "o-", color=theme.colour_of(model or model_label),
            label=f"{model_label}, this image")
    if same_image is not None:
        reference = same_image["bpp"].to_numpy()
        ax.plot(same_image["bpp"], same_image["psnr"], "s:", color=theme.colour_of("vvc"),
                label="VVC (vvenc), this image")
    else:
        reference = anchor.bpp
        ax.plot(anchor.bpp, anchor.psnr, "-.", color=theme.colour_of("vtm"),
                label=f"{anchor.name.upper()}, Kodak mean (not this image)")
    ax.plot([point.bpp], [point.psnr], "o", color="red", markersize=10, label=f"rate {point.rate:.2f}")
    if classical is not None:
        what = "equal bpp" if classical.reaches else "closest bpp it reaches"
        ax.plot([classical.bpp], [classical.psnr], "s", color=theme.colour_of(classical.codec),
                label=f"{classical.codec}, {what}")
    xs = np.concatenate([curve["bpp"], reference, [point.bpp], [classical.bpp] if classical else []])
    xs = xs[np.isfinite(xs) & (xs > 0)]
    ax.set_xscale("log")
    ax.set_xlim(min(xs.min(), 0.05) / 1.3, max(xs.max(), 2.0) * 1.3)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel="bpp (real file, log scale)", ylabel="PSNR (dB)", title="operating point")
    ax.grid(alpha=0.3, which="both")
    fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    return fig


def png(fig: Figure) -> bytes:
    """PNG bytes of a figure (for ``ipywidgets.Image``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
