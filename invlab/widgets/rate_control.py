"""Notebook 01's app: drag a variable-rate model's continuous rate and watch every number move.

:class:`RateControlApp` holds the widgets and all callback logic; its methods are what the tests call.
Everything slow is cached: decoded points per (image, model, rate), the model's RD curve per (image,
model), classical files per (codec, image, setting). bpp is always from the real file (container included).

Coding a full Kodak image takes about 2 s on 2 CPU cores (encode + decode of msinn-mini), more than a slider
step should. So:

- the picture shown is the decoder's output as the encoder computes it (``encode_with_reconstruction``: MSINN
  reconstructs while encoding, ~0.6 s cheaper than decoding afterwards); a background thread then decodes the
  real file and the view says whether the two are identical (they must be, bit for bit);
- after each update the background thread codes the slider positions next to the current one (``prefetch``
  steps each way); moving the slider by a step or two then only draws.

The model runs in one thread at a time (a lock); a position the user asks for that is not ready yet is coded
at once, and the queued background work is dropped.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from invlab.eval.anchors import load_anchor
from invlab.widgets import render, sources
from invlab.widgets.measure import Zoom, bpp, error_map, match_bpp, quality

ERROR_VMAX = 32.0  # error maps saturate at 32 grey levels
UPLOAD_PREFIX = "upload: "
MAX_INTERACTIVE_SIDE = 1024  # larger uploads are centre-cropped: a slider update must stay interactive


@dataclass(frozen=True)
class Point:
    """One coded image: the real file, its size, and the decoder's picture with its quality."""

    rate: float
    bpp: float
    psnr: float
    ms_ssim: float
    decoded: np.ndarray
    data: bytes = b""


@dataclass(frozen=True)
class ClassicalPoint:
    codec: str
    setting: float
    bpp: float
    psnr: float
    decoded: np.ndarray


class RateControlApp:
    """Image, model and classical-codec choosers, a rate slider, and the live views they drive."""

    def __init__(self, image: str = "kodim23", model: str | None = None, classical: str | None = "jpeg",
                 crop: int | None = None, prefetch: int = 2):
        self.crop = crop
        self.prefetch = prefetch
        self._coding = threading.Lock()  # one model run at a time (main thread or prefetch)
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="invlab-prefetch")
        self._pending: list[Future] = []
        self._images: dict[str, np.ndarray] = {}
        self._points: dict[tuple[str, str, float], Point] = {}
        self._curves: dict[tuple[str, str], pd.DataFrame] = {}
        self._classical_files: dict[tuple[str, str, float], bytes] = {}
        self._notes: dict[str, str] = {}  # per image: what the app did to it (e.g. cropped a large upload)
        self._decoder_check: dict[tuple[str, str, float], bool] = {}  # decoding the file gave the shown picture
        self.vtm = load_anchor("vtm")  # CompressAI's VTM on Kodak (mean over the 24 images)
        self.last_seconds = float("nan")

        classical_options = sources.classical_names()
        self.image_box = w.Dropdown(options=sources.kodak_images(), value=image, description="image")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="your image")
        self.model_box = w.Dropdown(options=sources.learned_models(variable_rate_only=True),
                                    value=model or sources.default_model(), description="model")
        self.codec_box = w.Dropdown(options=["none", *classical_options], description="classical",
                                    value=classical if classical in classical_options else "none")
        self.rate = w.FloatSlider(description="rate", step=0.05, continuous_update=False, readout_format=".2f",
                                  layout=w.Layout(width="520px"))
        self.banner = w.HTML()
        self.bpp_label = w.HTML()
        self.bpp_label.add_class("invlab-bpp")
        self.stats, self.timing, self.check = w.HTML(), w.HTML(), w.HTML()
        self.recon_view, self.error_view = w.Image(format="png"), w.Image(format="png")
        self.zoom_view, self.rd_view = w.Image(format="png"), w.Image(format="png")
        for view in (self.recon_view, self.error_view):
            view.layout.width = "384px"

        self.image_box.observe(lambda _: self.select(), names="value")
        self.model_box.observe(lambda _: self.select(), names="value")
        self.codec_box.observe(lambda _: self.update(), names="value")
        self.upload.observe(self._on_upload, names="value")
        self.rate.observe(lambda _: self.update(), names="value")
        self.select()

    # ------------------------------------------------------------------ state
    @property
    def codec(self):
        return sources.open_learned(self.model_box.value)

    @property
    def rgb(self) -> np.ndarray:
        name = self.image_box.value
        if name not in self._images:
            self._images[name] = sources.load_rgb(name, self.crop)
        return self._images[name]

    def add_image(self, name: str, rgb: np.ndarray) -> None:
        """Offer a user image (e.g. an upload) in the image chooser and select it."""
        key = UPLOAD_PREFIX + name
        h, w = rgb.shape[:2]
        side = min(self.crop or MAX_INTERACTIVE_SIDE, MAX_INTERACTIVE_SIDE)
        self._images[key] = sources.center_crop(np.ascontiguousarray(rgb[..., :3]), side)
        if max(h, w) > side:
            self._notes[key] = (f"{name} is {w}x{h}: the slider works on its central {side}x{side} crop "
                                f"(code the whole image with <code>invlab encode</code>)")
        if key not in self.image_box.options:
            self.image_box.options = [*self.image_box.options, key]
        self.image_box.value = key

    def _on_upload(self, change: dict) -> None:
        for item in change["new"]:
            self.add_image(item["name"], sources.decode_upload(bytes(item["content"])))

    # ------------------------------------------------------------------ computations (cached)
    def _key(self, rate: float) -> tuple[str, str, float]:
        return (self.image_box.value, self.model_box.value, round(float(rate), 4))

    def _code(self, key: tuple[str, str, float], rgb: np.ndarray, codec) -> Point:
        """Encode at ``key``'s rate to a real file (with the decoder's picture) and measure it; cached."""
        with self._coding:
            if key not in self._points:
                data, decoded = codec.encode_with_reconstruction(rgb, key[2])
                self._points[key] = Point(key[2], bpp(data, rgb), **quality(rgb, decoded), decoded=decoded, data=data)
            return self._points[key]

    def _verify(self, key: tuple[str, str, float], codec) -> bool:
        """Decode the real file of ``key`` and record whether it gives the picture shown."""
        with self._coding:
            if key not in self._decoder_check:
                point = self._points[key]
                self._decoder_check[key] = bool(np.array_equal(codec.decode(point.data), point.decoded))
        if key == self._key(self.rate.value):
            self.check.value = self._check_text(key)
        return self._decoder_check[key]

    def _check_text(self, key: tuple[str, str, float]) -> str:
        ok = self._decoder_check.get(key)
        if ok is None:
            return "decoding the file to check it …"
        if ok:
            return "✓ decoding the file gives exactly this picture"
        return '<b style="color:#c00">✗ decoding the file gives a different picture: please report this</b>'

    def point(self, rate: float) -> Point:
        """Encode at ``rate`` to a real file and measure it (cached; queued background work is dropped)."""
        key = self._key(rate)
        if key not in self._points:
            for job in self._pending:
                job.cancel()  # not started yet: the user's position goes first
            self._code(key, self.rgb, self.codec)
        return self._points[key]

    def prefetch_around(self, rate: float) -> None:
        """Queue the check of the shown position's file, then the ``prefetch`` positions on each side."""
        lo, hi, step = self.rate.min, self.rate.max, self.rate.step
        near = [rate + sign * k * step for k in range(1, self.prefetch + 1) for sign in (1, -1)]
        rgb, codec = self.rgb, self.codec
        keys = [self._key(r) for r in near if lo - 1e-9 <= r <= hi + 1e-9]
        jobs = [] if self._key(rate) in self._decoder_check else [self._background.submit(self._verify,
                                                                                          self._key(rate), codec)]
        self._pending = jobs + [self._background.submit(self._code, k, rgb, codec) for k in keys
                                if k not in self._points]

    def wait_for_prefetch(self) -> None:
        """Block until the queued background coding is done (tests, benchmarks)."""
        for job in list(self._pending):
            if not job.cancelled():
                job.result()

    def rd_curve(self) -> pd.DataFrame:
        """The model's RD curve on this image at its anchor rates (bpp, psnr, ms_ssim)."""
        key = (self.image_box.value, self.model_box.value)
        if key not in self._curves:
            pts = [self.point(r) for r in self.codec.rates]
            self._curves[key] = pd.DataFrame([{"rate": p.rate, "bpp": p.bpp, "psnr": p.psnr, "ms_ssim": p.ms_ssim}
                                              for p in pts])
        return self._curves[key]

    def classical_at(self, target_bpp: float) -> ClassicalPoint | None:
        """The selected classical codec at the setting whose real bpp is closest to ``target_bpp``."""
        name = self.codec_box.value
        codec, _ = sources.classical_codec(name) if name != "none" else (None, "")
        if codec is None:
            return None
        rgb, image = self.rgb, self.image_box.value

        def encode(setting: float) -> bytes:
            key = (name, image, setting)
            if key not in self._classical_files:
                self._classical_files[key] = codec.encode(rgb, setting)
            return self._classical_files[key]

        match = match_bpp(codec, rgb, target_bpp, encode)
        decoded = codec.decode(match.data)
        return ClassicalPoint(name, match.rate, match.bpp, quality(rgb, decoded)["psnr"], decoded)

    # ------------------------------------------------------------------ callbacks
    def select(self) -> None:
        """A new image or model: reset the slider to the model's rate range and redraw."""
        lo, hi = self.codec.model(0.0).rate_range
        with self.rate.hold_trait_notifications():
            self.rate.min, self.rate.max = lo, hi
            self.rate.value = min(max(self.rate.value, lo), hi) if self.rate.value else (lo + hi) / 2
        trained = self.codec.trained
        colour = "#e8f5e9" if trained else "#fff3cd"
        self.banner.value = (f'<div style="background:{colour};padding:4px 8px;border-radius:4px">'
                             f"{sources.model_status(self.model_box.value)}</div>")
        if note := self._notes.get(self.image_box.value):
            self.banner.value += f'<div style="padding:4px 8px">{note}</div>'
        self.update()

    def update(self, rate: float | None = None) -> Point:
        """Code at the slider's rate (or ``rate``, which moves the slider) and refresh every view."""
        if rate is not None and abs(rate - self.rate.value) > 1e-9:
            self.rate.value = rate  # the observer calls update() again
            return self.point(self.rate.value)
        t0 = time.perf_counter()
        point = self.point(self.rate.value)
        classical = self.classical_at(point.bpp)
        self._show(point, classical)
        self.last_seconds = time.perf_counter() - t0
        self.timing.value = f"update took {self.last_seconds:.2f} s"
        self.check.value = self._check_text(self._key(point.rate))
        self.prefetch_around(point.rate)  # the check of this file, then the neighbours (``prefetch`` each way)
        return point

    def _show(self, point: Point, classical: ClassicalPoint | None) -> None:
        rgb = self.rgb
        self.bpp_label.value = f"<b>{point.bpp:.4f} bpp</b>"
        ms = "n/a (image too small)" if np.isnan(point.ms_ssim) else f"{point.ms_ssim:.4f}"
        line = f"PSNR {point.psnr:.2f} dB · MS-SSIM {ms}"
        if classical is not None:
            reach = "" if abs(classical.bpp - point.bpp) <= 0.1 * point.bpp else ", the closest its range reaches"
            line += (f" · {classical.codec} at {classical.bpp:.4f} bpp (setting {classical.setting:g}{reach}): "
                     f"PSNR {classical.psnr:.2f} dB")
        else:
            line += f" · classical: {sources.classical_codec('jpeg')[1] or 'none selected'}"
        self.stats.value = line
        self.recon_view.value = render.png(point.decoded)
        self.error_view.value = render.png(render.heat(error_map(rgb, point.decoded), ERROR_VMAX))
        zoom = Zoom.centred(rgb.shape)
        crops = [zoom.cut(rgb), zoom.cut(point.decoded)] + ([zoom.cut(classical.decoded)] if classical else [])
        gap = np.full((crops[0].shape[0], 6, 3), 255, np.uint8)
        self.zoom_view.value = render.png(np.concatenate(sum(([c, gap] for c in crops), [])[:-1], axis=1))
        self.rd_view.value = self.rd_figure(point, classical)

    def rd_figure(self, point: Point, classical: ClassicalPoint | None) -> bytes:
        """PNG of the model's RD curve on this image, the VTM anchor, and the current operating point."""
        fig = Figure(figsize=(5.2, 3.4), dpi=80)
        ax = fig.add_subplot()
        curve = self.rd_curve()
        label = self.model_box.value + ("" if self.codec.trained else " (untrained)")
        ax.plot(curve["bpp"], curve["psnr"], "o-", color="tab:blue", label=f"{label}, this image")
        ax.plot(self.vtm.bpp, self.vtm.psnr, "--", color="grey", label="VTM (Kodak mean)")
        ax.plot([point.bpp], [point.psnr], "o", color="red", markersize=10, label=f"rate {point.rate:.2f}")
        if classical is not None:
            ax.plot([classical.bpp], [classical.psnr], "s", color="tab:orange", label=f"{classical.codec}, equal bpp")
        ax.set(xlabel="bpp (real file)", ylabel="PSNR (dB)", title="operating point")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    # ------------------------------------------------------------------ measurement and layout
    def benchmark(self, rates: list[float]) -> pd.DataFrame:
        """Wall time of one slider update per rate: ``cold`` (a jump to an uncoded position) and ``next step``
        (one slider step further, once the background prefetch has coded it). The RD curve is built first."""
        self.rd_curve()
        rows = []
        for r in rates:
            self.wait_for_prefetch()
            self._points.pop(self._key(r), None)
            self.update(r)
            cold = self.last_seconds
            self.wait_for_prefetch()
            nxt = min(r + self.rate.step, self.rate.max) if r + self.rate.step <= self.rate.max else r - self.rate.step
            self.update(nxt)
            rows.append({"rate": r, "cold (s)": cold, "next step (s)": self.last_seconds})
        self.wait_for_prefetch()
        return pd.DataFrame(rows)

    @property
    def widget(self) -> w.Widget:
        caption = (f"zoom ({Zoom.centred(self.rgb.shape).size} px, ×3): original | learned | classical at equal bpp")
        return w.VBox([
            w.HBox([self.image_box, self.upload]), w.HBox([self.model_box, self.codec_box]), self.banner,
            w.HBox([self.rate, self.bpp_label, self.timing]), self.stats,
            w.HBox([w.VBox([w.Label("reconstruction (the decoder's output)"), self.recon_view, self.check]),
                    w.VBox([w.Label(f"error |x − x̂|, 0 … {ERROR_VMAX:g} levels"), self.error_view])]),
            w.HBox([w.VBox([w.Label(caption), self.zoom_view]), self.rd_view]),
        ])
