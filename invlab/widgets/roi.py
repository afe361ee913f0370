"""Notebook 06's app: paint where the bits go. A rectangle at one rate, the rest at another, and beside it the
one-rate file of the same size, so the trade is visible.

:func:`code_roi` does the work (real files, decoded and checked); :class:`RoiApp` is the view: the rectangle
(position and size sliders; more rectangles typed as ``x,y,w,h:rate``, as the CLI's ``--roi``), the rates inside
and outside, a "code" button and a "match the file size" button
that finds the outside rate keeping the file the size of the one-rate file at a reference rate (the one bpp
search, :func:`invlab.codecs.search.outside_rate_for_bpp`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import torch

from invlab import metrics
from invlab.codecs.learned import LearnedCodec
from invlab.codecs.search import outside_rate_for_bpp, rate_for_bpp
from invlab.io.images import to_tensor
from invlab.rate_map import BLOCK, RateMap, RateMapError, parse_roi
from invlab.widgets import render, sources

Box = tuple[int, int, int, int]  # x, y, w, h in pixels


@dataclass(frozen=True)
class RoiResult:
    """The file with a rectangle at ``inside`` and the rest at ``outside``, and the one-rate file of its size."""

    box: Box
    inside: float
    outside: float
    more: tuple[tuple[int, int, int, int, float], ...]  # other rectangles with their own rates
    data: bytes
    picture: np.ndarray
    uniform_rate: float
    uniform: bytes
    uniform_picture: np.ndarray
    block_bits: np.ndarray  # (rows, cols) estimated bits per 16x16 block of the mapped file
    rate_map: RateMap


def split_psnr(rgb: np.ndarray, decoded: np.ndarray, box: Box) -> tuple[float, float]:
    """PSNR inside ``box`` and outside it (NaN outside when the box covers the image)."""
    x, y, bw, bh = box
    inside = np.zeros(rgb.shape[:2], bool)
    inside[y:y + bh, x:x + bw] = True
    outside = metrics.psnr(rgb[~inside][None], decoded[~inside][None]) if (~inside).any() else float("nan")
    return metrics.psnr(rgb[inside][None], decoded[inside][None]), outside


def block_bits(codec: LearnedCodec, rgb: np.ndarray, rate: float, rate_map: RateMap) -> np.ndarray:
    """Estimated bits per 16x16 block (every latent scale), from the model's likelihoods under ``rate_map``."""
    model = codec.model(rate)
    x = model.pad(to_tensor(rgb))
    mapped = codec.rate_map_tensor(model, rate_map, rgb.shape[:2], tuple(x.shape[-2:]))
    view = model.latent_bits_map(x, rate, rate_map=mapped)
    rows, cols = x.shape[-2] // BLOCK, x.shape[-1] // BLOCK
    total = np.zeros((rows, cols))
    for bits in view.bit_maps:
        f = bits.shape[0] // rows
        total += bits.reshape(rows, f, cols, f).sum(axis=(1, 3))
    return total[: -(-rgb.shape[0] // BLOCK), : -(-rgb.shape[1] // BLOCK)]


def code_roi(codec: LearnedCodec, rgb: np.ndarray, box: Box, inside: float, outside: float,
             more: Sequence[tuple[int, int, int, int, float]] = ()) -> RoiResult:
    """Code ``rgb`` with ``box`` at ``inside`` (and each of ``more`` at its own rate; later ones win) and the rest at
    ``outside``, and the one-rate file nearest its size."""
    h, w = rgb.shape[:2]
    rate_map = RateMap.from_rois(h, w, outside, [(*box, inside), *more])
    data, picture = codec.encode_with_reconstruction(rgb, outside, rate_map)
    match = rate_for_bpp(codec, rgb, metrics.bpp(len(data), h, w))
    return RoiResult(box, inside, outside, tuple(more), data, picture, match.rate, match.data,
                     codec.decode(match.data), block_bits(codec, rgb, outside, rate_map), rate_map)


def outlined(rgb: np.ndarray, box: Box, colour: tuple[int, int, int] = (0, 220, 255)) -> np.ndarray:
    """``rgb`` with a 2-pixel frame around ``box``."""
    out = rgb.copy()
    x, y, bw, bh = box
    x2, y2 = min(x + bw, rgb.shape[1]) - 1, min(y + bh, rgb.shape[0]) - 1
    for a, b in ((y, y + 2), (max(y2 - 1, y), y2 + 1)):
        out[a:b, x:x2 + 1] = colour
    for a, b in ((x, x + 2), (max(x2 - 1, x), x2 + 1)):
        out[y:y2 + 1, a:b] = colour
    return out


def outlined_all(rgb: np.ndarray, result: RoiResult) -> np.ndarray:
    """``rgb`` with a frame around the main rectangle and each of the others."""
    for x, y, bw, bh, _ in result.more:
        rgb = outlined(rgb, (x, y, bw, bh), (255, 200, 0))
    return outlined(rgb, result.box)


def numbers_table(rgb: np.ndarray, result: RoiResult) -> str:
    """HTML: bpp, rates, PSNR inside and outside for the mapped file and the one-rate file of its size."""
    h, w = rgb.shape[:2]
    rows = []
    for name, data, picture, rates in (
            ("rate map", result.data, result.picture, f"{result.inside:g} inside, {result.outside:g} outside"),
            ("one rate, same size", result.uniform, result.uniform_picture, f"{result.uniform_rate:.2f}")):
        inside, outside = split_psnr(rgb, picture, result.box)
        rows.append(f"<tr><td>{name}</td><td>{rates}</td><td>{metrics.bpp(len(data), h, w):.4f}</td>"
                    f"<td>{len(data)}</td><td>{inside:.2f}</td><td>{outside:.2f}</td></tr>")
    head = ("<tr><th>file</th><th>rate</th><th>bpp</th><th>bytes</th><th>PSNR inside (dB)</th>"
            "<th>PSNR outside (dB)</th></tr>")
    map_bytes = len(result.rate_map.to_bytes())
    return (f'<table style="font-size:13px">{head}{"".join(rows)}</table>'
            f'<div style="font-size:12px">the map itself: {map_bytes} bytes of the file</div>')


class RoiApp:
    """Image and model choosers, the rectangle and its rates, and the two files side by side."""

    def __init__(self, image: str = "kodim23", model: str | None = None, crop: int | None = None):
        self.crop = crop
        models = [m for m in sources.learned_models(variable_rate_only=True) if sources.rate_maps(m)]
        model = model or models[0]
        self.image_box = w.Dropdown(options=sources.kodak_images(), value=image, description="image")
        self.model_box = w.Dropdown(options=models if model in models else [model, *models], value=model,
                                    description="model")
        self.x, self.y = w.IntSlider(description="x"), w.IntSlider(description="y")
        self.w, self.h = w.IntSlider(description="width"), w.IntSlider(description="height")
        self.inside = w.FloatSlider(description="rate inside", step=0.05, readout_format=".2f")
        self.outside = w.FloatSlider(description="rate outside", step=0.05, readout_format=".2f")
        self.reference = w.FloatSlider(description="one rate", step=0.05, readout_format=".2f")
        self.more = w.Text(description="more", placeholder="x,y,w,h:rate; x,y,w,h:rate (other rectangles)",
                           layout=w.Layout(width="520px"))
        self.code_button = w.Button(description="code", button_style="primary")
        self.match_button = w.Button(description="match the file size",
                                     tooltip="the outside rate that keeps the file the size of the one-rate file")
        self.status, self.table = w.HTML(), w.HTML()
        self.mapped_view, self.uniform_view = w.Image(format="png"), w.Image(format="png")
        self.bits_view, self.map_view = w.Image(format="png"), w.Image(format="png")
        self.bits_bar, self.map_bar = w.HTML(), w.HTML()
        for view in (self.mapped_view, self.uniform_view, self.bits_view, self.map_view):
            view.layout.width = "384px"
        self.result: RoiResult | None = None
        self.code_button.on_click(lambda _: self.code())
        self.match_button.on_click(lambda _: self.match())
        self.image_box.observe(lambda _: self.reset(), names="value")
        self.model_box.observe(lambda _: self.reset(), names="value")
        self.reset()

    @property
    def codec(self) -> LearnedCodec:
        return sources.open_learned(self.model_box.value)

    @property
    def rgb(self) -> np.ndarray:
        return sources.load_rgb(self.image_box.value, self.crop)

    @property
    def box(self) -> Box:
        return self.x.value, self.y.value, self.w.value, self.h.value

    def reset(self) -> None:
        """A new image or model: the central quarter, the model's range, then code."""
        height, width = self.rgb.shape[:2]
        for slider, top, start in ((self.x, width - 1, width // 4), (self.y, height - 1, height // 4),
                                   (self.w, width, width // 2), (self.h, height, height // 2)):
            slider.min, slider.max, slider.value = (1 if slider in (self.w, self.h) else 0), top, start
        space = self.codec.rate_space
        for slider, value in ((self.inside, space.high * 0.55), (self.outside, space.high * 0.2),
                              (self.reference, space.high * 0.3)):
            slider.min, slider.max = space.low, space.high
            slider.value = round(value / 0.05) * 0.05
        self.code()

    def match(self) -> None:
        """Set the outside rate so that the file is the size of the one-rate file at the reference rate; code."""
        rgb, codec = self.rgb, self.codec
        self.status.value = "searching the outside rate …"
        target = metrics.bpp(len(codec.encode(rgb, self.reference.value)), *rgb.shape[:2])
        found = outside_rate_for_bpp(codec, rgb, [(*self.box, self.inside.value), *self.more_rois], target)
        self.outside.value = round(found.rate / 0.05) * 0.05
        self.code(note=f"outside rate {self.outside.value:.2f}: the file of rate {self.reference.value:.2f} is "
                       f"{target:.4f} bpp, this one {found.bpp:.4f} bpp")

    @property
    def more_rois(self) -> list[tuple[int, int, int, int, float]]:
        """The other rectangles typed in ``more`` (the CLI's ``--roi`` syntax, separated by ``;``)."""
        return [parse_roi(text) for text in self.more.value.split(";") if text.strip()]

    def code(self, note: str = "") -> RoiResult | None:
        rgb = self.rgb
        try:
            more = self.more_rois
        except RateMapError as err:
            self.status.value = f"<b>{err}</b>"
            return None
        self.status.value = "coding …"
        with torch.inference_mode():
            result = self.result = code_roi(self.codec, rgb, self.box, self.inside.value, self.outside.value, more)
        self.mapped_view.value = render.png(outlined_all(result.picture, result))
        self.uniform_view.value = render.png(outlined_all(result.uniform_picture, result))
        top = float(np.ceil(result.block_bits.max())) or 1.0
        self.bits_view.value = render.png(render.overlay(rgb, result.block_bits, BLOCK, vmax=top))
        self.bits_bar.value = render.colour_bar_html(top, "estimated bits per 16x16 block")
        space = self.codec.rate_space
        self.map_view.value = render.png(render.overlay(rgb, result.rate_map.rates, BLOCK, vmax=space.high))
        self.map_bar.value = render.colour_bar_html(space.high, "rate per 16x16 block")
        self.table.value = numbers_table(rgb, result)
        exact = self.codec.decode_image(result.data).matches_encoder
        self.status.value = (note + " · " if note else "") + (
            "✓ decoding the file gives exactly this picture" if exact else "✗ the decoded file differs")
        return result

    @property
    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.image_box, self.model_box]),
            w.HBox([w.VBox([self.x, self.y]), w.VBox([self.w, self.h])]),
            w.HBox([w.VBox([self.inside, self.outside]), w.VBox([self.reference, w.HBox([self.code_button,
                                                                                      self.match_button])])]),
            self.more,
            self.status, self.table,
            w.HBox([w.VBox([w.Label("rate map: the decoder's picture"), self.mapped_view]),
                    w.VBox([w.Label("one rate, the same file size"), self.uniform_view])]),
            w.HBox([w.VBox([w.Label("where the bits go (the rate-map file)"), self.bits_view, self.bits_bar]),
                    w.VBox([w.Label("the rate map"), self.map_view, self.map_bar])]),
        ])

