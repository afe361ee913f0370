"""Notebook 02's spatial bit maps: every panel's title names the scale whose bits the panel shows.

Plotly lists the titles of a wrapped facet grid bottom row first; zipping them with the maps in order put
``y1`` over the coarsest map. Each panel's picture is decoded here and matched against the overlay of every
map, and the title over that panel must name the map it matched.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from invlab.widgets import scales


def _picture(trace) -> np.ndarray:
    """The RGB pixels of a facet (an Image trace with a PNG data URI, or raw z)."""
    if trace.source:
        png = base64.b64decode(trace.source.split(",", 1)[1])
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return np.asarray(trace.z, dtype=np.uint8)


def _title_over(fig, trace) -> str:
    """The subplot title above a trace's axes (plotly puts it at the top of the y domain, x centred)."""
    xaxis = fig.layout["xaxis" + trace.xaxis.removeprefix("x")]
    yaxis = fig.layout["yaxis" + trace.yaxis.removeprefix("y")]
    xc = sum(xaxis.domain) / 2
    hits = [a for a in fig.layout.annotations
            if abs(a.x - xc) < 1e-6 and abs(a.y - yaxis.domain[1]) < 1e-6]
    assert len(hits) == 1, f"no single title above {trace.xaxis}/{trace.yaxis}"
    return hits[0].text


@pytest.mark.parametrize("levels", [2, 3, 4, 5, 6])
def test_each_bit_map_panel_is_titled_with_its_own_scale(levels):
    rng = np.random.default_rng(levels)
    size = 64
    rgb = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    # y1 is the finest map (H/2), each next one half as fine; distinct values so every overlay differs
    maps = {f"y{i + 1}": rng.random((size >> (i + 1), size >> (i + 1))) * (i + 1) for i in range(levels)}
    fig = scales.overlay_figure(rgb, maps, size)
    pictures = [t for t in fig.data if t.type == "image"]
    assert len(pictures) == levels and len(fig.data) == levels + 1  # and the colour bar's trace
    expected, top = scales.overlay_panels(rgb, maps, size)
    assert fig.data[-1].marker.showscale and fig.data[-1].marker.cmax == top  # one colour scale, with its bar
    seen = set()
    for trace in pictures:
        picture = _picture(trace)
        shown = [name for name, img in expected.items() if picture.shape == img.shape and np.array_equal(picture, img)]
        assert len(shown) == 1, "a panel that is none of the maps' overlays"
        title = _title_over(fig, trace)
        assert title.split(":")[0] == shown[0], f"panel showing {shown[0]} is titled {title!r}"
        assert title == f"{shown[0]}: {maps[shown[0]].sum():.0f} bits"
        seen.add(shown[0])
    assert seen == set(maps)


def _grid(picture: np.ndarray) -> int:
    """The largest block size b (a power of two) on whose b x b blocks the picture is constant."""
    b = 1
    while picture.shape[0] % (2 * b) == 0:
        coarse = picture[:: 2 * b, :: 2 * b]
        if not np.array_equal(np.repeat(np.repeat(coarse, 2 * b, 0), 2 * b, 1), picture):
            break
        b *= 2
    return b


def test_panel_titled_y1_shows_the_finest_grid():
    """The same property from the data alone: a panel titled yk changes value on yk's grid (2^k px), no finer."""
    size = 64
    rgb = np.full((size, size, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    maps = {f"y{i + 1}": rng.random((size >> (i + 1), size >> (i + 1))) for i in range(4)}
    fig = scales.overlay_figure(rgb, maps, size)
    grids = {_title_over(fig, trace).split(":")[0]: _grid(_picture(trace)) for trace in fig.data
             if trace.type == "image"}
    assert grids == {"y1": 2, "y2": 4, "y3": 8, "y4": 16}
