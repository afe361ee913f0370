"""Notebook 01's operating-point figure: the model's RD curve on this image, the VTM anchor and the current point."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from invlab.eval.anchors import Curve
from invlab.widgets.point_service import ClassicalPoint, Point


def rd_figure(curve: pd.DataFrame, anchor: Curve, point: Point, classical: ClassicalPoint | None,
              model_label: str) -> Figure:
    """The curve (``bpp``, ``psnr`` columns), ``anchor`` dashed, ``point`` in red and ``classical`` (when a codec is
    selected) as an orange square.

    The bpp axis is logarithmic and always spans the anchor, so the reference stays readable whatever the model
    (an untrained one codes at tens of bpp); the legend sits below the axes, hiding no curve."""
    fig = Figure(figsize=(5.2, 4.0), dpi=80, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(curve["bpp"], curve["psnr"], "o-", color="tab:blue", label=f"{model_label}, this image")
    ax.plot(anchor.bpp, anchor.psnr, "--", color="grey", label=f"{anchor.name.upper()} (Kodak mean)")
    ax.plot([point.bpp], [point.psnr], "o", color="red", markersize=10, label=f"rate {point.rate:.2f}")
    if classical is not None:
        what = "equal bpp" if classical.reaches else "closest bpp it reaches"
        ax.plot([classical.bpp], [classical.psnr], "s", color="tab:orange", label=f"{classical.codec}, {what}")
    xs = np.concatenate([curve["bpp"], anchor.bpp, [point.bpp], [classical.bpp] if classical else []])
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
