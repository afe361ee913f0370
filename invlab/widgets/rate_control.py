"""Notebook 01's app: drag a variable-rate model's continuous rate and watch every number move.

:class:`RateControlApp` is a view: choosers, a rate slider and the pictures and numbers they drive. The coding
is done by a :class:`~invlab.widgets.point_service.PointService` (one worker thread, cached points, futures);
the figure is :mod:`~invlab.widgets.rate_figure`'s, the timing benchmark :mod:`~invlab.widgets.rate_benchmark`'s.
bpp is always from the real file (container included).

Coding a full Kodak image takes about 2 s on 2 CPU cores (msinn-mini), more than a slider step should. So:

- a position the browser sends (dragging, arrow keys) is *requested*: the kernel thread submits it to the service
  and handles the next message. A newer request cancels the queued work of older ones, and the result of one
  already being coded is not drawn, so five arrow-key presses cost at most two encodes, not five;
- every widget write happens on the kernel thread. A future's done-callback (on the worker thread) only posts
  the delivery: to the kernel's event loop (``call_soon_threadsafe`` on the loop captured on the kernel thread),
  or, without a running loop (tests, scripts), to an inbox that :meth:`RateControlApp.wait` empties;
- the picture shown is the decoder's output as the encoder computes it; the worker then decodes the real file
  and the view says whether the two are identical (they must be, bit for bit);
- picture first: a position is coded as two jobs (:meth:`PointService.ask`), the file with its picture, bpp and
  PSNR, then MS-SSIM, the classical file of equal size and the RD inset; the picture is drawn as soon as the
  first is done. The image's analysis transform is kept between positions where the model's does not depend on
  the rate (MSINN), so a new position costs the entropy coding and the synthesis only;
- after each draw the worker codes the ``prefetch`` slider positions on each side of the shown one, nearest first
  (with their equal-bpp classical match), and says so under the slider: moving by a few steps then only draws.

A value set from code (``app.rate.value = 1.5``, :meth:`RateControlApp.update`) is coded and drawn before the
statement returns (the kernel thread waits for the worker), so a notebook cell can read the result next line.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import NamedTuple

import ipywidgets as w
import numpy as np
import pandas as pd
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.eval.anchors import load_anchor
from invlab.models.base import InvlabModel
from invlab.widgets import rate_benchmark, rate_figure, render, sources
from invlab.widgets.point_service import (
    LRU,
    NO_CLASSICAL,
    ClassicalPoint,
    CodedPoint,
    Point,
    PointKey,
    PointRequest,
    PointService,
)
from invlab.widgets.readout import Zoom, error_map, error_scale

UPLOAD_PREFIX = "upload: "
MAX_INTERACTIVE_SIDE = 1024  # larger uploads are centre-cropped: a slider update must stay interactive


class _Image(NamedTuple):
    id: str  # names the pixels for the service's cache
    rgb: np.ndarray


class RateSlider(w.FloatSlider):
    """A FloatSlider that knows whether a value change came from the browser (``set_state``) or from code."""

    from_browser = False

    def set_state(self, sync_data):
        self.from_browser = True
        try:
            super().set_state(sync_data)
        finally:
            self.from_browser = False


def check_text(ok: bool | None) -> str:
    """What the line under the picture says about decoding its file (None: not known yet)."""
    if ok is None:
        return "decoding the file to check it …"
    if ok:
        return "✓ decoding the file gives exactly this picture"
    return '<b style="color:#c00">✗ decoding the file gives a different picture: please report this</b>'


def stats_line(point: Point, classical: ClassicalPoint | None, codec_name: str) -> str:
    """PSNR and MS-SSIM of the learned file, then the classical file's (or why there is none)."""
    if point.ms_ssim is None:
        return f"PSNR {point.psnr:.2f} dB · MS-SSIM and the classical file of equal size: measuring …"
    ms = "n/a (image too small)" if np.isnan(point.ms_ssim) else f"{point.ms_ssim:.4f}"
    line = f"PSNR {point.psnr:.2f} dB · MS-SSIM {ms}"
    if classical is not None:
        reach = "" if classical.reaches else f", the closest its range reaches to {point.bpp:.4f} bpp"
        return (f"{line} · {classical.codec} at {classical.bpp:.4f} bpp (setting {classical.setting:g}{reach}): "
                f"PSNR {classical.psnr:.2f} dB")
    if codec_name == NO_CLASSICAL:
        return f"{line} · classical: none selected"
    return f"{line} · classical: {sources.classical_codec(codec_name)[1] or f'{codec_name} not available'}"


def rate_words(model: InvlabModel, rate: float, bpp: float) -> str:
    """What a slider position means: the trained anchors it lies between, their λ and the λ it codes with."""
    lambdas = model.lambdas
    lam = float(model.lambda_of(torch.tensor([float(rate)]))[0])
    lo = min(int(np.floor(rate)), len(lambdas) - 1)
    hi = min(lo + 1, len(lambdas) - 1)
    where = (f"trained anchor {lo} (λ {lambdas[lo]:.4g})" if lo == hi or rate == lo else
             f"between trained anchors {lo} and {hi} (λ {lambdas[lo]:.4g} and {lambdas[hi]:.4g})")
    return (f"rate {rate:.2f} of 0–{len(lambdas) - 1}: {where}, coding with λ ≈ {lam:.4g} → {bpp:.3f} bpp here. "
            "An anchor is a λ the model was trained for; the rate moves between them continuously.")


def zoom_title(point: Point, classical: ClassicalPoint | None, zoom_size: int) -> str:
    """The zoom's title: what each panel is, and whether the classical codec reached the learned bpp."""
    head = f"zoom on the largest error ({zoom_size} px, ×3): original | learned, {point.bpp:.3f} bpp"
    if classical is None:
        return head
    if classical.reaches:
        return f"{head} | {classical.codec} at equal bpp ({classical.bpp:.3f})"
    return (f'{head} | <b style="color:#b35900">{classical.codec} cannot reach {point.bpp:.3f} bpp: '
            f"its closest, {classical.bpp:.3f} bpp (setting {classical.setting:g})</b>")


class RateControlApp:
    """Image, model and classical-codec choosers, a rate slider, and the live views they drive.

    ``rate``: the first position (None: the middle of the model's range; 0.0 is a position like any other)."""

    def __init__(self, image: str = "kodim23", model: str | None = None, classical: str | None = "jpeg",
                 crop: int | None = None, prefetch: int = 5, rate: float | None = None):
        self.crop = crop
        self.prefetch = prefetch
        self.service = PointService(open_learned=functools.partial(sources.open_learned, interactive=True))
        self._images: dict[str, _Image] = {}  # per chooser entry
        self._notes: dict[str, str] = {}  # per image: what the app did to it (e.g. cropped a large upload)
        self._loop: asyncio.AbstractEventLoop | None = None  # the kernel's event loop, where there is one
        self._inbox: list[Callable[[], None]] = []  # deliveries for the kernel thread, from the worker thread
        self._inbox_lock = threading.Lock()
        self._wanted: Future | None = None  # the latest position asked for: only its result is drawn
        self._pictured: PointRequest | None = None  # the position whose picture is shown
        self._ahead: list[Future] = []  # the prefetch of the shown position's neighbours
        self._insets: LRU[PointKey, bytes] = LRU(64)  # RD insets (PNG) drawn, per position
        self._insets_lock = threading.Lock()
        self._asked_at = time.perf_counter()
        self._quiet = False  # select() is moving the slider itself
        self._error = np.zeros((0, 0), np.float32)  # the shown picture's error map
        self.shown: Point | None = None  # what the views show now
        self.shown_classical: ClassicalPoint | None = None
        self.vtm = load_anchor("vtm")  # CompressAI's VTM on Kodak (mean over the 24 images)
        self.last_seconds = float("nan")  # the last update: from the move to every view drawn
        self.last_picture_seconds = float("nan")  # ... to the picture (and bpp) drawn
        self._capture_loop()

        classical_options = sources.classical_names()
        self.image_box = w.Dropdown(options=sources.kodak_images(), value=image, description="image")
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="your image")
        models = sources.learned_models(variable_rate_only=True)
        model = model or sources.default_model()
        self.model_box = w.Dropdown(options=models if model in models else [model, *models],  # MODEL@FILE: first
                                    value=model, description="model")
        self.codec_box = w.Dropdown(options=[NO_CLASSICAL, *classical_options], description="classical",
                                    value=classical if classical in classical_options else NO_CLASSICAL)
        self.rate = RateSlider(description="rate", step=0.05, continuous_update=False, readout_format=".2f",
                               layout=w.Layout(width="520px"))
        self._initial_rate = rate
        self.banner = w.HTML()
        self.bpp_label = w.HTML()
        self.bpp_label.add_class("invlab-bpp")
        self.stats, self.timing, self.check = w.HTML(), w.HTML(), w.HTML()
        self.rate_note, self.error_bar = w.HTML(), w.HTML()
        self._drawn = False  # the first picture is not a user's update
        self.timing.add_class("invlab-timing")
        self.ahead = w.HTML()
        self.ahead.add_class("invlab-ahead")
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
    def codec(self) -> LearnedCodec:
        return sources.open_learned(self.model_box.value, interactive=True)

    def _image(self) -> _Image:
        name = self.image_box.value
        if name not in self._images:
            self._images[name] = _Image(name if self.crop is None else f"{name}@{self.crop}",
                                        sources.load_rgb(name, self.crop))
        return self._images[name]

    @property
    def rgb(self) -> np.ndarray:
        return self._image().rgb

    def at(self, rate: float) -> PointRequest:
        """The request for position ``rate`` with what the choosers hold now."""
        image = self._image()
        return PointRequest(image.id, image.rgb, self.model_box.value, rate, self.codec_box.value)

    def add_image(self, name: str, rgb: np.ndarray) -> None:
        """Offer a user image (e.g. an upload) in the image chooser and select it."""
        key = UPLOAD_PREFIX + name
        h, w = rgb.shape[:2]
        side = min(self.crop or MAX_INTERACTIVE_SIDE, MAX_INTERACTIVE_SIDE)
        pixels = sources.center_crop(np.ascontiguousarray(rgb[..., :3]), side)
        digest = hashlib.blake2b(pixels.tobytes(), digest_size=8).hexdigest()  # a new file under an old name
        self._images[key] = _Image(f"{key}#{digest}", pixels)
        self._notes.pop(key, None)
        if max(h, w) > side:
            self._notes[key] = (f"{name} is {w}x{h}: the slider works on its central {side}x{side} crop "
                                f"(code the whole image with <code>invlab encode</code>)")
        if key not in self.image_box.options:
            self.image_box.options = [*self.image_box.options, key]
        if self.image_box.value == key:
            self.select()  # the same name again: no change event, but new pixels
        else:
            self.image_box.value = key

    def _on_upload(self, change: dict) -> None:
        for item in change["new"]:
            self.add_image(item["name"], sources.decode_upload(bytes(item["content"])))

    # ------------------------------------------------------------------ kernel thread <- worker thread
    def _capture_loop(self) -> None:
        """Remember the event loop running on this (the kernel's) thread, if any."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def _post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the kernel thread: from the kernel's event loop, or at the next :meth:`_drain`.

        Called from done-callbacks (any thread): touches no widget."""
        with self._inbox_lock:
            self._inbox.append(fn)
        loop = self._loop
        if loop is not None and loop.is_running():
            try:
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop closed meanwhile: the inbox keeps it
                pass

    def _drain(self) -> None:
        """Run what the worker handed back (on the kernel thread only)."""
        while True:
            with self._inbox_lock:
                if not self._inbox:
                    return
                fn = self._inbox.pop(0)
            fn()

    def _on_done(self, job: Future, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the kernel thread once ``job`` is done (at once when it is)."""
        if job.done():
            fn()
        else:
            job.add_done_callback(lambda _: self._post(fn))

    def wait(self) -> None:
        """Block until the worker is idle, then apply its results here (tests, benchmarks, scripts).

        In a notebook cell the results also arrive by themselves once the cell has finished."""
        while True:
            self.service.idle()
            with self._inbox_lock:
                if not self._inbox:
                    return
            self._drain()

    # ------------------------------------------------------------------ computations (the service's, cached)
    def point(self, rate: float) -> Point:
        """The learned file at ``rate``, measured (cached; supersedes queued work)."""
        return self.service.submit(self.at(rate)).result().learned

    def rd_curve(self) -> pd.DataFrame:
        """The model's RD curve on this image at its anchor rates (rate, bpp, psnr, ms_ssim)."""
        return self.service.curve(self.at(self.rate.value)).result()

    def _neighbours(self, request: PointRequest) -> Iterable[PointRequest]:
        """The ``prefetch`` slider positions on each side of ``request``'s, nearest first, inside the range."""
        lo, hi, step = self.rate.min, self.rate.max, self.rate.step
        for k in range(1, self.prefetch + 1):
            for rate in (request.rate + k * step, request.rate - k * step):
                if lo - 1e-9 <= rate <= hi + 1e-9:
                    yield request.at(rate)

    # ------------------------------------------------------------------ callbacks
    def select(self) -> None:
        """A new image or model: fit the slider to the model's rate range (keeping its position) and redraw."""
        space = self.codec.rate_space
        lo, hi = space.low, space.high
        if self._initial_rate is not None or self.shown is None:
            start = space.default if self._initial_rate is None else self._initial_rate
            self._initial_rate = None
        else:
            start = self.rate.value
        self._quiet = True
        try:
            with self.rate.hold_trait_notifications():
                self.rate.min, self.rate.max = lo, hi
                self.rate.value = min(max(start, lo), hi)
        finally:
            self._quiet = False
        colour = "#e8f5e9" if self.codec.trained else "#fff3cd"
        self.banner.value = (f'<div style="background:{colour};padding:4px 8px;border-radius:4px">'
                             f"{sources.model_status(self.model_box.value)}</div>")
        if note := self._notes.get(self.image_box.value):
            self.banner.value += f'<div style="padding:4px 8px">{note}</div>'
        self.update()

    def _on_rate(self, change: dict) -> None:
        if self._quiet:
            return
        if self.rate.from_browser:
            self._request(change["new"])
        else:
            self.update()

    def _request(self, rate: float) -> None:
        """A position from the browser: drawn at once when it is cached, else when the worker has coded it.

        Returns at once, so that the kernel can take the next message; a later request supersedes this one."""
        self._capture_loop()
        self._drain()
        request = self.at(rate)
        picture, job = self.service.ask(request)
        self._wanted, self._asked_at = job, time.perf_counter()
        if not picture.done():
            self.timing.value = f"coding rate {request.rate:.2f} …"
        self._on_done(picture, lambda: self._deliver_picture(picture, job, request))
        self._on_done(job, lambda: self._deliver(job, request))

    def _deliver_picture(self, picture: Future[Point], job: Future[CodedPoint], request: PointRequest) -> None:
        """Kernel thread: draw a requested position's picture while its other numbers are measured."""
        if job is not self._wanted or job.done() or picture.cancelled() or picture.exception() is not None:
            return  # superseded, or everything is ready (drawn by _deliver), or the failure is _deliver's to show
        self._show_picture(request, picture.result())
        self.last_picture_seconds = time.perf_counter() - self._asked_at
        self.timing.value = f"picture after {self.last_picture_seconds:.2f} s, measuring … (rate {request.rate:.2f})"

    def _deliver(self, job: Future[CodedPoint], request: PointRequest) -> None:
        """Kernel thread: draw a requested position, unless a newer one was asked for since."""
        if job is not self._wanted or job.cancelled():
            return
        if (err := job.exception()) is not None:
            self.timing.value = f"coding rate {request.rate:.2f} failed: {err}"
            return
        self._draw(request, job.result(), self._asked_at, "update")

    def update(self, rate: float | None = None) -> Point:
        """Code at the slider's rate (or ``rate``, which moves the slider) and refresh every view, before returning."""
        self._drain()
        if rate is not None and abs(rate - self.rate.value) > 1e-9:
            self.rate.value = rate  # the observer calls update() again
            return self.shown
        t0 = time.perf_counter()
        request = self.at(self.rate.value)
        picture, job = self.service.ask(request)
        self._wanted = job
        self._show_picture(request, picture.result())
        self.last_picture_seconds = time.perf_counter() - t0
        self._draw(request, job.result(), t0, "update" if self._drawn else "first picture")
        return self.shown

    def _draw(self, request: PointRequest, coded: CodedPoint, t0: float, what: str = "update") -> None:
        """Show a coded position, then queue the check of its file and its neighbours. ``what``: "update" (a user's
        move, timed) or "first picture" (loading the model included: not reported as an update)."""
        if self._pictured != request:  # everything was ready at once (cached)
            self._show_picture(request, coded.learned)
            self.last_picture_seconds = time.perf_counter() - t0
        self._show(request, coded)
        self.last_seconds = time.perf_counter() - t0
        self._drawn = True
        if what == "update":
            took = f"update took {self.last_seconds:.2f} s, the picture {self.last_picture_seconds:.2f} s"
        else:
            took = f"first picture (model loading included) took {self.last_seconds:.2f} s"
        self.timing.value = f"{took} (rate {request.rate:.2f})"
        self._refresh_check()
        self._on_done(self.service.check(request), self._refresh_check)
        self._prefetch(request)

    def _prefetch(self, request: PointRequest) -> None:
        """Code the shown position's neighbours in the background; the line under the slider follows it."""
        neighbours = list(self._neighbours(request))
        ahead = self._ahead = self.service.prefetch(neighbours)
        for job in ahead:
            job.add_done_callback(lambda done: self._draw_ahead(request, done))
        rates = [r.rate for r in neighbours] or [request.rate]
        span = f"{min(rates):.2f}–{max(rates):.2f}"

        def report() -> None:
            if ahead is not self._ahead:
                return  # an older position's prefetch
            done = sum(job.done() and not job.cancelled() for job in ahead)
            if any(job.cancelled() for job in ahead):
                self.ahead.value = ""
            elif done < len(ahead):
                self.ahead.value = f"coding the neighbouring positions ahead: {done}/{len(ahead)} …"
            else:
                self.ahead.value = f"positions {span} are ready: moving there only draws"

        report()
        for job in ahead:
            self._on_done(job, report)

    def _refresh_check(self) -> None:
        if self._pictured is not None:
            self.check.value = check_text(self.service.checked(self._pictured))

    def _show_picture(self, request: PointRequest, point: Point) -> None:
        """The views that need the learned file only: its picture, bpp and PSNR, the error map, the rate's words."""
        self._pictured, self.shown = request, point
        self.bpp_label.value = f"<b>{point.bpp:.4f} bpp</b>"
        self.stats.value = stats_line(point, None, request.classical)
        self.recon_view.value = render.png(point.decoded)
        self._error = error_map(request.rgb, point.decoded)
        scale = error_scale(self._error)
        self.error_view.value = render.png(render.heat(self._error, scale))
        self.error_bar.value = render.colour_bar_html(scale, "|x − x̂| in 8-bit levels (mean over RGB)")
        model = self.codec.model(request.rate)
        self.rate_note.value = (f'<span style="font-size:12px">{rate_words(model, request.rate, point.bpp)}</span>'
                                if model.variable_rate else "")
        self.check.value = check_text(self.service.checked(request))

    def _show(self, request: PointRequest, coded: CodedPoint) -> None:
        """The rest, once MS-SSIM and the classical file are measured: numbers, zoom, RD inset."""
        point, classical, rgb = coded.learned, coded.classical, request.rgb
        self.shown, self.shown_classical = point, classical
        self.stats.value = stats_line(point, classical, request.classical)
        error = self._error
        zoom = Zoom.worst(error)
        crops = [zoom.cut(rgb), zoom.cut(point.decoded)] + ([zoom.cut(classical.decoded)] if classical else [])
        gap = np.full((crops[0].shape[0], 6, 3), 255, np.uint8)
        self.zoom_view.value = render.png(np.concatenate(sum(([c, gap] for c in crops), [])[:-1], axis=1))
        self.zoom_caption.value = zoom_title(point, classical, zoom.size)
        self.rd_view.value = self._inset(request, coded)

    def _inset(self, request: PointRequest, coded: CodedPoint) -> bytes:
        """The RD inset of a position (PNG), drawn once: on the worker thread for the positions coded ahead (see
        :meth:`_prefetch`), else here. Any thread; needs the RD curve, which the first picture of an image builds."""
        with self._insets_lock:
            known = self._insets.get(request.key)
        if known is not None:
            return known
        curve = self.service.curve(request).result()  # cached after the first draw of this image and model
        trained = sources.open_learned(request.model, interactive=True).trained
        label = request.model + ("" if trained else " (untrained)")
        same_image = sources.kodak_points("vvc", request.image) if self.crop is None else None
        inset = rate_figure.png(rate_figure.rd_figure(curve, self.vtm, coded.learned, coded.classical, label,
                                                      same_image, model=request.model))
        with self._insets_lock:
            self._insets.put(request.key, inset)
        return inset

    def _draw_ahead(self, shown: PointRequest, job: Future[CodedPoint]) -> None:
        """Worker thread, as a neighbour of ``shown`` coded ahead is done: draw its RD inset too, so that showing it
        only assigns pictures (never waits for a curve still to be coded: that would wait for this very thread)."""
        if job.cancelled() or job.exception() is not None or not self.service.curve(shown).done():
            return
        coded = job.result()
        self._inset(shown.at(coded.learned.rate), coded)

    # ------------------------------------------------------------------ measurement and layout
    def benchmark(self, rates: Iterable[float]) -> pd.DataFrame:
        """Wall time of one slider update per rate (see :func:`invlab.widgets.rate_benchmark.benchmark`)."""
        return rate_benchmark.benchmark(self, rates)

    @property
    def widget(self) -> w.Widget:
        return w.VBox([
            w.HBox([self.image_box, self.upload]), w.HBox([self.model_box, self.codec_box]), self.banner,
            w.HBox([self.rate, self.bpp_label, self.timing]), self.ahead, self.rate_note, self.stats,
            w.HBox([w.VBox([w.Label("reconstruction (the decoder's output)"), self.recon_view, self.check]),
                    w.VBox([w.Label("error |x − x̂|"), self.error_view, self.error_bar])]),
            w.HBox([w.VBox([self.zoom_caption, self.zoom_view]), self.rd_view]),
        ])
