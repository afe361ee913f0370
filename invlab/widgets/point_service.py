"""Coded slider positions for the rate-control app: one worker thread, an LRU cache, futures, cancellation.

A *point* is one slider position on one image: the learned codec's real file at that rate (its size, the
decoder's picture, its quality) and the classical codec's file closest to it in size. :class:`PointService` codes
points on ONE worker thread (so the model runs in one thread at a time) and keeps the most recently used ones.

Picture first: :meth:`PointService.ask` queues a position as two jobs, the learned file with its picture, bpp and
PSNR (what the eye waits for), then the rest (MS-SSIM and the classical file of equal size), so a view can show
the picture while the numbers beside it are measured.

Superseding: :meth:`PointService.submit` (the user's newest position) cancels every future the service handed out
earlier that has not started yet (older positions, prefetches, file checks); one already running finishes and is
cached, and the caller, who knows which future it asked for last, does not show it.

No widgets here: the view (:mod:`invlab.widgets.rate_control`) decides which thread draws what.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from invlab import metrics
from invlab.codecs.base import Codec
from invlab.codecs.search import rate_for_bpp
from invlab.widgets import sources
from invlab.widgets.readout import bpp

NO_CLASSICAL = "none"
REACH_TOLERANCE = 0.1  # a classical file within 10 % of the learned bpp counts as "equal bpp"
WORKER_NAME = "invlab-points"
RATE_DIGITS = 4  # slider positions closer than 1e-4 are the same position

LearnedKey = tuple[str, str, float]  # (image, model, rate)
PointKey = tuple[str, str, float, str]  # (image, model, rate, classical codec)


@dataclass(frozen=True)
class Point:
    """One coded image: the real file, its size, and the decoder's picture with its quality."""

    rate: float
    bpp: float
    psnr: float
    ms_ssim: float | None  # None: not measured yet (the picture comes first); NaN: the image is too small for it
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


@dataclass(frozen=True)
class CodedPoint:
    """A slider position: the learned file and the classical file closest to it in size (None: no codec)."""

    learned: Point
    classical: ClassicalPoint | None


@dataclass(frozen=True)
class PointRequest:
    """What to code: an image (``image`` names its pixels: equal names must mean equal pixels), a model, a rate
    (any float, 0.0 included; rounded to :data:`RATE_DIGITS`) and a classical codec (:data:`NO_CLASSICAL`: none)."""

    image: str
    rgb: np.ndarray = field(compare=False, repr=False)
    model: str
    rate: float
    classical: str = NO_CLASSICAL

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", round(float(self.rate), RATE_DIGITS))

    @property
    def learned_key(self) -> LearnedKey:
        return (self.image, self.model, self.rate)

    @property
    def key(self) -> PointKey:
        return (self.image, self.model, self.rate, self.classical)

    def at(self, rate: float) -> PointRequest:
        """The same request at another rate."""
        return PointRequest(self.image, self.rgb, self.model, rate, self.classical)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A dict that keeps its ``size`` most recently used entries (not thread-safe: the service locks it)."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items


def open_classical(name: str) -> Codec | None:
    """The classical codec ``name``, or None for :data:`NO_CLASSICAL` or one not available here."""
    return None if name == NO_CLASSICAL else sources.classical_codec(name)[0]


def _done(value: Any) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


class PointService:
    """Codes :class:`PointRequest` s on one worker thread; every method may be called from any thread.

    ``open_learned(model)`` gives a codec with ``rates``, ``encode_with_reconstruction(rgb, rate)`` and
    ``decode(data)``; ``open_classical(name)`` a :class:`~invlab.codecs.base.Codec` or None (both injectable for
    tests). ``cache_size`` bounds each cache (learned points, coded points, checks) in entries.
    """

    def __init__(self, open_learned: Callable[[str], Any] = sources.open_learned,
                 open_classical: Callable[[str], Codec | None] = open_classical, cache_size: int = 64):
        self._open_learned, self._open_classical = open_learned, open_classical
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WORKER_NAME)
        self._lock = threading.Lock()  # guards the caches, the pending list and ``encoded``
        self._learned: LRU[LearnedKey, Point] = LRU(cache_size)
        self._coded: LRU[PointKey, CodedPoint] = LRU(cache_size)
        self._checks: LRU[LearnedKey, bool] = LRU(cache_size)
        self._curves: LRU[tuple[str, str], pd.DataFrame] = LRU(cache_size)
        self._classical_files: LRU[tuple[str, str, float], bytes] = LRU(16 * cache_size)  # (codec, image, setting)
        self._pending: list[Future] = []
        self.encoded: list[LearnedKey] = []  # every learned encode run, in order (tests, curiosity)

    # ------------------------------------------------------------------ asking
    def submit(self, request: PointRequest) -> Future[CodedPoint]:
        """The coded point of ``request``: a done future when cached. Cancels all earlier work not started yet."""
        return self.ask(request)[1]

    def ask(self, request: PointRequest) -> tuple[Future[Point], Future[CodedPoint]]:
        """(the learned point, the coded point) of ``request``, each a done future where cached; the first is
        queued before the second, so its picture can be shown before the numbers beside it are measured.
        Cancels all earlier work not started yet."""
        with self._lock:
            superseded, self._pending = self._pending, []
            coded = self._coded.get(request.key)
            learned = self._learned.get(request.learned_key)
        for job in superseded:
            job.cancel()  # outside the lock: a cancelled future runs its done-callbacks here
        if coded is not None:
            return _done(coded.learned), _done(coded)
        picture = _done(learned) if learned is not None else self._queue(self._point, request)
        return picture, self._queue(self._code, request)

    def prefetch(self, requests: Iterable[PointRequest]) -> list[Future[CodedPoint]]:
        """Queue the requests not cached yet, behind what is queued (the next :meth:`submit` cancels them)."""
        with self._lock:
            todo = [r for r in requests if r.key not in self._coded]
        return [self._queue(self._code, r) for r in todo]

    def check(self, request: PointRequest) -> Future[bool]:
        """Whether decoding the learned file gives exactly the picture shown (the encoder's reconstruction)."""
        with self._lock:
            known = self._checks.get(request.learned_key)
        return _done(known) if known is not None else self._queue(self._check, request)

    def checked(self, request: PointRequest) -> bool | None:
        """The result of :meth:`check` when it is known, else None."""
        with self._lock:
            return self._checks.get(request.learned_key)

    def curve(self, request: PointRequest) -> Future[pd.DataFrame]:
        """The model's RD curve (rate, bpp, psnr, ms_ssim) on the request's image at its anchor rates.

        Not cancelled by :meth:`submit`: drawing any position needs it."""
        with self._lock:
            known = self._curves.get((request.image, request.model))
        return _done(known) if known is not None else self._worker.submit(self._curve, request)

    def cached(self, request: PointRequest) -> bool:
        with self._lock:
            return request.key in self._coded

    def forget(self, request: PointRequest) -> None:
        """Drop the request's cached points and check: the next :meth:`submit` codes it again (benchmarks)."""
        with self._lock:
            self._learned.pop(request.learned_key)
            self._coded.pop(request.key)
            self._checks.pop(request.learned_key)

    @property
    def pending(self) -> tuple[Future, ...]:
        """Work handed out and not finished, which the next :meth:`submit` cancels (where not started)."""
        with self._lock:
            return tuple(job for job in self._pending if not job.done())

    def idle(self) -> None:
        """Block until the worker has finished (or skipped, when cancelled) everything queued before this call."""
        self._worker.submit(lambda: None).result()

    def close(self) -> None:
        """Cancel the queued work and stop the worker once the running job ends."""
        self._worker.shutdown(wait=False, cancel_futures=True)

    def _queue(self, fn: Callable[[PointRequest], Any], request: PointRequest) -> Future:
        with self._lock:
            job = self._worker.submit(fn, request)
            self._pending = [j for j in self._pending if not j.done()] + [job]
        return job

    # ------------------------------------------------------------------ computing (worker thread)
    def _point(self, request: PointRequest) -> Point:
        """The learned file at the request's rate and the decoder's picture (computed while encoding)."""
        with self._lock:
            known = self._learned.get(request.learned_key)
        if known is not None:
            return known
        data, decoded = self._open_learned(request.model).encode_with_reconstruction(request.rgb, request.rate)
        point = Point(request.rate, bpp(data, request.rgb), metrics.psnr(request.rgb, decoded), None, decoded, data)
        with self._lock:
            self.encoded.append(request.learned_key)
            self._learned.put(request.learned_key, point)
        return point

    def _code(self, request: PointRequest) -> CodedPoint:
        with self._lock:
            known = self._coded.get(request.key)  # a prefetch may have coded it since it was asked for
        if known is not None:
            return known
        point = self._measured(request)
        coded = CodedPoint(point, self._match(request, point.bpp))
        with self._lock:
            self._coded.put(request.key, coded)
        return coded

    def _measured(self, request: PointRequest) -> Point:
        """:meth:`_point` with its MS-SSIM."""
        point = self._point(request)
        if point.ms_ssim is None:
            point = replace(point, ms_ssim=metrics.ms_ssim(request.rgb, point.decoded))
            with self._lock:
                self._learned.put(request.learned_key, point)
        return point

    def _match(self, request: PointRequest, target_bpp: float) -> ClassicalPoint | None:
        """The classical codec at the setting whose real bpp is closest to ``target_bpp`` (binary search)."""
        codec = self._open_classical(request.classical)
        if codec is None:
            return None
        rgb = request.rgb

        def encode(setting: float) -> bytes:
            key = (request.classical, request.image, setting)
            with self._lock:
                data = self._classical_files.get(key)
            if data is None:
                data = codec.encode(rgb, setting)
                with self._lock:
                    self._classical_files.put(key, data)
            return data

        match = rate_for_bpp(codec, rgb, target_bpp, encode=encode)
        decoded = codec.decode(match.data)
        return ClassicalPoint(request.classical, match.rate, match.bpp, metrics.psnr(rgb, decoded), decoded,
                              target_bpp)

    def _check(self, request: PointRequest) -> bool:
        point = self._point(request)
        ok = bool(np.array_equal(self._open_learned(request.model).decode(point.data), point.decoded))
        with self._lock:
            self._checks.put(request.learned_key, ok)
        return ok

    def _curve(self, request: PointRequest) -> pd.DataFrame:
        rates = self._open_learned(request.model).rates
        points = [self._measured(request.at(r)) for r in rates]
        curve = pd.DataFrame([{"rate": p.rate, "bpp": p.bpp, "psnr": p.psnr, "ms_ssim": p.ms_ssim} for p in points])
        with self._lock:
            self._curves.put((request.image, request.model), curve)
        return curve
