"""Notebook 01's app: drag a variable-rate model's continuous rate and watch every number move.

:class:`RateControlApp` holds the widgets and all callback logic; its methods are what the tests call.
Everything slow is cached: decoded points per (image, model, rate), the model's RD curve per (image,
model), classical files per (codec, image, setting) and equal-bpp matches. bpp is always from the real file
(container included).

Coding a full Kodak image takes about 2 s on 2 CPU cores (encode + decode of msinn-mini), more than a slider
step should. So:

- a position the browser sends (dragging, arrow keys) is *requested*, not coded on the spot: the kernel thread
  only records it and queues the coding on a background thread, then handles the next message. Only the latest
  position counts: a newer request cancels the queued jobs of older ones (and a job that finds itself
  superseded when it starts does nothing), so five arrow-key presses cost at most two encodes, not five;
- every widget write happens on the kernel thread: the background thread hands its results back through the
  kernel's event loop (``call_soon_threadsafe``), or, without one (tests, scripts), through an inbox that
  :meth:`RateControlApp.wait` empties;
- the picture shown is the decoder's output as the encoder computes it (``encode_with_reconstruction``: MSINN
  reconstructs while encoding, ~0.6 s cheaper than decoding afterwards); the background thread then decodes the
  real file and the view says whether the two are identical (they must be, bit for bit);
- after each update the background thread codes the slider positions next to the current one (``prefetch``
  steps each way, with their equal-bpp classical match); moving the slider by a step or two then only draws.

A value set from code (``app.rate.value = 1.5``, :meth:`RateControlApp.update`) is coded and drawn before the
statement returns, so a notebook cell can read the result on the next line.
The model runs in one thread at a time (a lock).
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from invlab.eval.anchors import load_anchor
from invlab.widgets import render, sources
from invlab.widgets.measure import Zoom, bpp, error_map, match_bpp, quality

ERROR_VMAX = 32.0  # error maps saturate at 32 grey levels
UPLOAD_PREFIX = "upload: "
MAX_INTERACTIVE_SIDE = 1024  # larger uploads are centre-cropped: a slider update must stay interactive
REACH_TOLERANCE = 0.1  # a classical file within 10 % of the learned bpp counts as "equal bpp"

Key = tuple[str, str, float]  # (image, model, rate)


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
    """The classical codec's file closest in size to ``target_bpp`` (the learned file's bpp)."""

    codec: str
    setting: float
    bpp: float
    psnr: float
    decoded: np.ndarray
    target_bpp: float = float("nan")

    @property
    def reaches(self) -> bool:
        """Whether the codec's range reaches the target bpp (within :data:`REACH_TOLERANCE`)."""
        return abs(self.bpp - self.target_bpp) <= REACH_TOLERANCE * self.target_bpp


class RateSlider(w.FloatSlider):
    """A FloatSlider that knows whether a value change came from the browser (``set_state``) or from code."""

    from_browser = False

    def set_state(self, sync_data):
        self.from_browser = True
        try:
            super().set_state(sync_data)
        finally:
            self.from_browser = False


class RateControlApp:
    """Image, model and classical-codec choosers, a rate slider, and the live views they drive."""

    def __init__(self, image: str = "kodim23", model: str | None = None, classical: str | None = "jpeg",
                 crop: int | None = None, prefetch: int = 2, rate: float | None = None):
        self.crop = crop
        self.prefetch = prefetch
        self._coding = threading.Lock()  # one model run at a time (kernel thread or background)
        self._classical_lock = threading.Lock()  # one classical encode at a time
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="invlab-prefetch")
        self._pending: list[Future] = []
        self._images: dict[str, np.ndarray] = {}
        self._points: dict[Key, Point] = {}
        self._curves: dict[tuple[str, str], pd.DataFrame] = {}
        self._classical_files: dict[tuple[str, str, float], bytes] = {}
        self._matches: dict[tuple[str, str, float], ClassicalPoint] = {}  # (codec, image, target bpp)
        self._notes: dict[str, str] = {}  # per image: what the app did to it (e.g. cropped a large upload)
        self._decoder_check: dict[Key, bool] = {}  # decoding the file gave the shown picture
        self._loop: asyncio.AbstractEventLoop | None = None  # the kernel's event loop, where there is one
        self._inbox: list[Callable[[], None]] = []  # results for the kernel thread, from the background thread
        self._inbox_lock = threading.Lock()
        self._wanted: Key | None = None  # the latest position asked for: only its results are drawn
        self._asked_at = time.perf_counter()
        self._quiet = False  # select() is moving the slider itself
        self.coded: list[Key] = []  # every position actually encoded, in order (tests, curiosity)
        self.shown: Point | None = None  # what the views show now
        self.shown_classical: ClassicalPoint | None = None
        self.vtm = load_anchor("vtm")  # CompressAI's VTM on Kodak (mean over the 24 images)
        self.last_seconds = float("nan")
        self._capture_loop()

        classical_options = sources.classical_names()
        self.image_box = w.Dropdown(options=sources.kodak_images(), value=image, description="image")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="your image")
        self.model_box = w.Dropdown(options=sources.learned_models(variable_rate_only=True),
                                    value=model or sources.default_model(), description="model")
        self.codec_box = w.Dropdown(options=["none", *classical_options], description="classical",
                                    value=classical if classical in classical_options else "none")
        self.rate = RateSlider(description="rate", step=0.05, continuous_update=False, readout_format=".2f",
                               layout=w.Layout(width="520px"))
        self._initial_rate = rate  # None: the middle of the first model's range
        self.banner = w.HTML()
        self.bpp_label = w.HTML()
        self.bpp_label.add_class("invlab-bpp")
        self.stats, self.timing, self.check = w.HTML(), w.HTML(), w.HTML()
        self.timing.add_class("invlab-timing")
        self.zoom_caption = w.HTML()
        self.recon_view, self.error_view = w.Image(format="png"), w.Image(format="png")
        self.zoom_view, self.rd_view = w.Image(format="png"), w.Image(format="png")
        for view in (self.recon_view, self.error_view):
            view.layout.width = "384px"

        self.image_box.observe(lambda _: self.select(), names="value")
        self.model_box.observe(lambda _: self.select(), names="value")
        self.codec_box.observe(lambda _: self.update(), names="value")
        self.upload.observe(self._on_upload, names="value")
        self.rate.observe(self._on_rate, names="value")
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

    # ------------------------------------------------------------------ kernel thread <- background thread
    def _capture_loop(self) -> None:
        """Remember the event loop running on this (the kernel's) thread, if any."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def _post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the kernel thread: from the kernel's event loop, or at the next :meth:`_drain`."""
        with self._inbox_lock:
            self._inbox.append(fn)
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop closed meanwhile: the inbox keeps it
                pass

    def _drain(self) -> None:
        """Run what the background thread handed back (called on the kernel thread only)."""
        while True:
            with self._inbox_lock:
                if not self._inbox:
                    return
                fn = self._inbox.pop(0)
            fn()

    def _cancel_pending(self) -> None:
        for job in self._pending:
            job.cancel()  # only jobs not started yet; a running one finishes (and is then not drawn)
        self._pending = []

    def wait(self) -> None:
        """Block until the background thread is idle, then apply its results here (tests, benchmarks, scripts).

        In a notebook cell the results also arrive by themselves once the cell has finished."""
        while True:
            for job in list(self._pending):
                if not job.cancelled():
                    job.result()
            with self._inbox_lock:
                idle = not self._inbox
            if idle and all(job.done() for job in self._pending):
                return
            self._drain()

    wait_for_prefetch = wait

    # ------------------------------------------------------------------ computations (cached)
    def _key(self, rate: float) -> Key:
        return (self.image_box.value, self.model_box.value, round(float(rate), 4))

    def _code(self, key: Key, rgb: np.ndarray, codec) -> Point:
        """Encode at ``key``'s rate to a real file (with the decoder's picture) and measure it; cached."""
        with self._coding:
            if key not in self._points:
                data, decoded = codec.encode_with_reconstruction(rgb, key[2])
                self.coded.append(key)
                self._points[key] = Point(key[2], bpp(data, rgb), **quality(rgb, decoded), decoded=decoded, data=data)
            return self._points[key]

    def _verify(self, key: Key, codec) -> bool:
        """Decode the real file of ``key`` and record whether it gives the picture shown (background thread)."""
        with self._coding:
            if key not in self._decoder_check:
                point = self._points[key]
                self._decoder_check[key] = bool(np.array_equal(codec.decode(point.data), point.decoded))
        self._post(self._refresh_check)
        return self._decoder_check[key]

    def _refresh_check(self) -> None:
        if self.shown is not None:
            self.check.value = self._check_text(self._key(self.shown.rate))

    def _check_text(self, key: Key) -> str:
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
            self._cancel_pending()  # the user's position goes first
            self._code(key, self.rgb, self.codec)
        return self._points[key]

    def _prepare(self, key: Key, rgb: np.ndarray, codec, classical: str) -> None:
        """Code ``key`` and its equal-bpp classical match (background thread)."""
        point = self._code(key, rgb, codec)
        self._match(classical, key[0], rgb, point.bpp)

    def prefetch_around(self, rate: float) -> None:
        """Queue the check of the shown position's file, then the ``prefetch`` positions on each side."""
        lo, hi, step = self.rate.min, self.rate.max, self.rate.step
        near = [rate + sign * k * step for k in range(1, self.prefetch + 1) for sign in (1, -1)]
        rgb, codec, classical = self.rgb, self.codec, self.codec_box.value
        keys = [self._key(r) for r in near if lo - 1e-9 <= r <= hi + 1e-9]
        key = self._key(rate)
        jobs = [] if key in self._decoder_check else [self._background.submit(self._verify, key, codec)]
        self._pending = jobs + [self._background.submit(self._prepare, k, rgb, codec, classical) for k in keys
                                if k not in self._points]

    def rd_curve(self) -> pd.DataFrame:
        """The model's RD curve on this image at its anchor rates (bpp, psnr, ms_ssim)."""
        key = (self.image_box.value, self.model_box.value)
        if key not in self._curves:
            pts = [self.point(r) for r in self.codec.rates]
            self._curves[key] = pd.DataFrame([{"rate": p.rate, "bpp": p.bpp, "psnr": p.psnr, "ms_ssim": p.ms_ssim}
                                              for p in pts])
        return self._curves[key]

    def _match(self, name: str, image: str, rgb: np.ndarray, target_bpp: float) -> ClassicalPoint | None:
        """Codec ``name`` at the setting whose real bpp is closest to ``target_bpp`` (cached; any thread)."""
        codec = sources.classical_codec(name)[0] if name != "none" else None
        if codec is None:
            return None
        mkey = (name, image, round(target_bpp, 6))
        if mkey in self._matches:
            return self._matches[mkey]

        def encode(setting: float) -> bytes:
            key = (name, image, setting)
            if key not in self._classical_files:
                with self._classical_lock:
                    self._classical_files[key] = codec.encode(rgb, setting)
            return self._classical_files[key]

        match = match_bpp(codec, rgb, target_bpp, encode)
        with self._classical_lock:
            decoded = codec.decode(match.data)
        self._matches[mkey] = ClassicalPoint(name, match.rate, match.bpp, quality(rgb, decoded)["psnr"], decoded,
                                             target_bpp)
        return self._matches[mkey]

    def classical_at(self, target_bpp: float) -> ClassicalPoint | None:
        """The selected classical codec at the setting whose real bpp is closest to ``target_bpp``."""
        return self._match(self.codec_box.value, self.image_box.value, self.rgb, target_bpp)

    # ------------------------------------------------------------------ callbacks
    def select(self) -> None:
        """A new image or model: fit the slider to the model's rate range (keeping its position) and redraw."""
        lo, hi = self.codec.model(0.0).rate_range
        if self._initial_rate is not None or self.shown is None:
            start = (lo + hi) / 2 if self._initial_rate is None else self._initial_rate
            self._initial_rate = None
        else:
            start = self.rate.value  # 0.0 is a position like any other
        self._quiet = True
        try:
            with self.rate.hold_trait_notifications():
                self.rate.min, self.rate.max = lo, hi
                self.rate.value = min(max(start, lo), hi)
        finally:
            self._quiet = False
        trained = self.codec.trained
        colour = "#e8f5e9" if trained else "#fff3cd"
        self.banner.value = (f'<div style="background:{colour};padding:4px 8px;border-radius:4px">'
                             f"{sources.model_status(self.model_box.value)}</div>")
        if note := self._notes.get(self.image_box.value):
            self.banner.value += f'<div style="padding:4px 8px">{note}</div>'
        self.update()

    def _on_rate(self, change: dict) -> None:
        if self._quiet:
            return
        if self.rate.from_browser:
            self.request(change["new"])
        else:
            self.update()

    def request(self, rate: float) -> None:
        """A position from the browser: drawn at once when it is ready, else coded in the background.

        Returns at once, so that the kernel can take the next message; a later request supersedes this one
        (its queued jobs are cancelled, and its result, if it was already being coded, is not drawn)."""
        self._capture_loop()
        self._drain()
        key = self._key(rate)
        self._wanted, self._asked_at = key, time.perf_counter()
        self._cancel_pending()
        name = self.codec_box.value
        if key in self._points and (name == "none" or (name, key[0], round(self._points[key].bpp, 6)) in self._matches):
            self._draw(key)
            return
        self.timing.value = f"coding rate {key[2]:.2f} …"
        self._pending = [self._background.submit(self._prepare_wanted, key, self.rgb, self.codec, name)]

    def _prepare_wanted(self, key: Key, rgb: np.ndarray, codec, classical: str) -> None:
        """Background thread: code a requested position unless a newer request came meanwhile, then hand over."""
        if key != self._wanted:
            return
        self._prepare(key, rgb, codec, classical)
        self._post(lambda: self._draw(key))

    def _draw(self, key: Key) -> None:
        """Kernel thread: show a requested position, unless a newer one is on its way."""
        if key != self._wanted or key != self._key(key[2]):
            return
        point = self._points[key]
        self._show(point, self.classical_at(point.bpp))
        self._finish(point, self._asked_at)

    def update(self, rate: float | None = None) -> Point:
        """Code at the slider's rate (or ``rate``, which moves the slider) and refresh every view, before returning."""
        self._drain()
        if rate is not None and abs(rate - self.rate.value) > 1e-9:
            self.rate.value = rate  # the observer calls update() again
            return self.point(self.rate.value)
        t0 = time.perf_counter()
        self._wanted = self._key(self.rate.value)
        point = self.point(self.rate.value)
        self._show(point, self.classical_at(point.bpp))
        self._finish(point, t0)
        return point

    def _finish(self, point: Point, t0: float) -> None:
        self.last_seconds = time.perf_counter() - t0
        self.timing.value = f"update took {self.last_seconds:.2f} s (rate {point.rate:.2f})"
        self.check.value = self._check_text(self._key(point.rate))
        self.prefetch_around(point.rate)  # the check of this file, then the neighbours (``prefetch`` each way)

    def _show(self, point: Point, classical: ClassicalPoint | None) -> None:
        rgb = self.rgb
        self.shown, self.shown_classical = point, classical
        self.bpp_label.value = f"<b>{point.bpp:.4f} bpp</b>"
        ms = "n/a (image too small)" if np.isnan(point.ms_ssim) else f"{point.ms_ssim:.4f}"
        line = f"PSNR {point.psnr:.2f} dB · MS-SSIM {ms}"
        name = self.codec_box.value
        if classical is not None:
            reach = "" if classical.reaches else f", the closest its range reaches to {point.bpp:.4f} bpp"
            line += (f" · {classical.codec} at {classical.bpp:.4f} bpp (setting {classical.setting:g}{reach}): "
                     f"PSNR {classical.psnr:.2f} dB")
        elif name == "none":
            line += " · classical: none selected"
        else:
            line += f" · classical: {sources.classical_codec(name)[1] or f'{name} not available'}"
        self.stats.value = line
        self.recon_view.value = render.png(point.decoded)
        self.error_view.value = render.png(render.heat(error_map(rgb, point.decoded), ERROR_VMAX))
        zoom = Zoom.centred(rgb.shape)
        crops = [zoom.cut(rgb), zoom.cut(point.decoded)] + ([zoom.cut(classical.decoded)] if classical else [])
        gap = np.full((crops[0].shape[0], 6, 3), 255, np.uint8)
        self.zoom_view.value = render.png(np.concatenate(sum(([c, gap] for c in crops), [])[:-1], axis=1))
        self.zoom_caption.value = self.zoom_title(point, classical)
        self.rd_view.value = self.rd_figure(point, classical)

    def zoom_title(self, point: Point, classical: ClassicalPoint | None) -> str:
        """The zoom's title: what each panel is, and whether the classical codec reached the learned bpp."""
        head = f"zoom ({Zoom.centred(self.rgb.shape).size} px, ×3): original | learned, {point.bpp:.3f} bpp"
        if classical is None:
            return head
        if classical.reaches:
            return f"{head} | {classical.codec} at equal bpp ({classical.bpp:.3f})"
        return (f'{head} | <b style="color:#b35900">{classical.codec} cannot reach {point.bpp:.3f} bpp: '
                f"its closest, {classical.bpp:.3f} bpp (setting {classical.setting:g})</b>")

    def rd_figure(self, point: Point, classical: ClassicalPoint | None) -> bytes:
        """PNG of the model's RD curve on this image, the VTM anchor, and the current operating point.

        The bpp axis is logarithmic and always spans the VTM anchor, so the reference stays readable whatever
        the model (an untrained one codes at tens of bpp)."""
        fig = Figure(figsize=(5.2, 4.0), dpi=80, layout="constrained")
        ax = fig.add_subplot()
        curve = self.rd_curve()
        label = self.model_box.value + ("" if self.codec.trained else " (untrained)")
        ax.plot(curve["bpp"], curve["psnr"], "o-", color="tab:blue", label=f"{label}, this image")
        ax.plot(self.vtm.bpp, self.vtm.psnr, "--", color="grey", label="VTM (Kodak mean)")
        ax.plot([point.bpp], [point.psnr], "o", color="red", markersize=10, label=f"rate {point.rate:.2f}")
        if classical is not None:
            what = "equal bpp" if classical.reaches else "closest bpp it reaches"
            ax.plot([classical.bpp], [classical.psnr], "s", color="tab:orange", label=f"{classical.codec}, {what}")
        xs = np.concatenate([curve["bpp"], self.vtm.bpp, [point.bpp], [classical.bpp] if classical else []])
        xs = xs[np.isfinite(xs) & (xs > 0)]
        ax.set_xscale("log")
        ax.set_xlim(min(xs.min(), 0.05) / 1.3, max(xs.max(), 2.0) * 1.3)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel="bpp (real file, log scale)", ylabel="PSNR (dB)", title="operating point")
        ax.grid(alpha=0.3, which="both")
        fig.legend(fontsize=8, loc="outside lower center", ncols=2, frameon=False)  # below: no curve hidden
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
            self.wait()
            self._points.pop(self._key(r), None)
            self.update(r)
            cold = self.last_seconds
            self.wait()
            nxt = min(r + self.rate.step, self.rate.max) if r + self.rate.step <= self.rate.max else r - self.rate.step
            self.update(nxt)
            rows.append({"rate": r, "cold (s)": cold, "next step (s)": self.last_seconds})
        self.wait()
        return pd.DataFrame(rows)

    @property
    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.image_box, self.upload]), w.HBox([self.model_box, self.codec_box]), self.banner,
            w.HBox([self.rate, self.bpp_label, self.timing]), self.stats,
            w.HBox([w.VBox([w.Label("reconstruction (the decoder's output)"), self.recon_view, self.check]),
                    w.VBox([w.Label(f"error |x − x̂|, 0 … {ERROR_VMAX:g} levels"), self.error_view])]),
            w.HBox([w.VBox([self.zoom_caption, self.zoom_view]), self.rd_view]),
        ])
