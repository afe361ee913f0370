"""The rate-control app's point service, without widgets: cache, one worker thread, futures, cancellation."""

from __future__ import annotations

import random
import struct
import threading
import time
from concurrent.futures import CancelledError

import numpy as np
import pytest

from invlab.codecs.base import Codec
from invlab.rates import RateSpace
from invlab.widgets.point_service import LRU, WORKER_NAME, PointRequest, PointService

RGB = np.full((16, 16, 3), 128, np.uint8)


class SlowCodec:
    """A fake learned codec: the file grows with the rate; ``gate`` holds encodes; it records who ran it."""

    rates = (0.0, 1.0, 2.0)

    def __init__(self, delay: float = 0.0, exact: bool = True):
        self.delay, self.exact = delay, exact
        self.gate, self.started = threading.Event(), threading.Event()
        self.gate.set()
        self.calls: list[float] = []
        self.threads: set[str] = set()
        self.active = self.most_active = 0
        self._lock = threading.Lock()
        self._files: dict[bytes, np.ndarray] = {}

    def encode_with_reconstruction(self, rgb: np.ndarray, rate: float) -> tuple[bytes, np.ndarray]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            self.threads.add(threading.current_thread().name)
            self.calls.append(rate)
        self.started.set()
        try:
            self.gate.wait()
            time.sleep(self.delay)
            data = struct.pack("<d", rate) * (1 + int(10 * rate))
            decoded = np.clip(rgb.astype(int) + int(10 * rate), 0, 255).astype(np.uint8)
            self._files[data] = decoded
            return data, decoded
        finally:
            with self._lock:
                self.active -= 1

    def decode(self, data: bytes) -> np.ndarray:
        decoded = self._files[data]
        return decoded if self.exact else decoded ^ 1


class FakeClassical(Codec):
    """0.1 bpp per quality step; decodes to the image itself."""

    name = "fake"
    rate_space = RateSpace("quality", 1, 50, 25, integer=True, sweep=(1.0, 25.0, 50.0))

    def __init__(self):
        self.calls = 0

    def encode(self, rgb, rate):
        self.calls += 1
        return bytes(int(rate * rgb.shape[0] * rgb.shape[1] * 0.1 / 8))

    def decode(self, data):
        return RGB.copy()


def request(rate: float, classical: str = "none", image: str = "img") -> PointRequest:
    return PointRequest(image, RGB, "fake-model", rate, classical)


@pytest.fixture
def codec() -> SlowCodec:
    return SlowCodec()


@pytest.fixture
def service(codec: SlowCodec):
    service = PointService(open_learned=lambda _: codec)
    yield service
    codec.gate.set()
    service.close()


def test_a_cache_hit_returns_the_same_result_without_recomputing(service, codec):
    first = service.submit(request(1.3)).result()
    again = service.submit(request(1.30001))  # the same position: rates are rounded to 4 digits
    assert again.done() and again.result() is first
    assert codec.calls == [1.3] and first.learned.rate == 1.3 and first.classical is None
    assert first.learned.bpp == 8 * len(first.learned.data) / RGB[..., 0].size
    assert service.submit(request(1.3, image="other")).result() is not first  # another image: coded anew
    assert codec.calls == [1.3, 1.3]


def test_rate_zero_is_a_rate(service, codec):
    point = service.submit(request(0.0)).result().learned
    assert point.rate == 0.0 and codec.calls == [0.0]


def test_superseded_requests_are_cancelled_and_a_running_one_is_cached(service, codec):
    codec.gate.clear()
    running, rest = service.ask(request(0.5))
    assert codec.started.wait(10)  # the worker is coding 0.5's file
    queued = service.submit(request(1.0))
    prefetched = service.prefetch([request(1.1), request(1.2)])
    latest = service.submit(request(1.5))
    assert queued.cancelled() and rest.cancelled() and all(job.cancelled() for job in prefetched)
    assert not running.cancelled()  # started: it finishes
    codec.gate.set()
    assert latest.result().learned.rate == 1.5 and running.result().rate == 0.5
    assert codec.calls == [0.5, 1.5] and service.ask(request(0.5))[0].done()  # its file is kept
    service.submit(request(0.5)).result()
    assert codec.calls == [0.5, 1.5] and service.pending == ()


def test_the_picture_comes_before_the_numbers_beside_it(codec):
    fake = FakeClassical()
    service = PointService(open_learned=lambda _: codec, open_classical=lambda n: fake if n == "fake" else None)
    picture, coded = service.ask(request(0.7, classical="fake"))
    point = picture.result()
    assert point.ms_ssim is None and point.psnr > 0  # the picture and its PSNR first ...
    full = coded.result()
    assert full.learned.ms_ssim is not None and full.learned.decoded is point.decoded  # ... then the rest
    assert full.classical is not None and codec.calls == [0.7]
    again = service.ask(request(0.7, classical="fake"))
    assert all(job.done() for job in again) and again[1].result() is full


def test_prefetch_skips_what_is_cached_and_does_not_cancel(service, codec):
    service.submit(request(1.0)).result()
    jobs = service.prefetch([request(1.0), request(1.1), request(0.9)])
    assert len(jobs) == 2 and [job.result().learned.rate for job in jobs] == [1.1, 0.9]


def test_the_rd_curve_is_not_cancelled_by_a_new_position(service, codec):
    codec.gate.clear()
    service.submit(request(0.5))
    assert codec.started.wait(10)
    curve = service.curve(request(0.5))
    service.submit(request(1.5))
    codec.gate.set()
    table = curve.result()
    assert list(table["rate"]) == list(codec.rates) and table["bpp"].is_monotonic_increasing
    assert service.curve(request(1.7)).done()  # per image and model, whatever the rate


def test_the_check_decodes_the_file(codec):
    service = PointService(open_learned=lambda _: codec)
    assert service.checked(request(1.0)) is None
    assert service.check(request(1.0)).result() is True and service.checked(request(1.0)) is True
    codec.exact = False
    assert service.check(request(1.0)).result() is True  # known: not decoded again
    assert service.check(request(2.0)).result() is False


def test_the_classical_match_is_the_closest_file_in_size(codec):
    fake = FakeClassical()
    service = PointService(open_learned=lambda _: codec, open_classical=lambda n: fake if n == "fake" else None)
    coded = service.submit(request(0.5, "fake")).result()
    target = coded.learned.bpp
    assert coded.classical.codec == "fake" and coded.classical.target_bpp == target
    assert coded.classical.bpp == pytest.approx(target, abs=0.1)
    assert service.submit(request(0.5, "none")).result().classical is None
    assert codec.calls == [0.5]  # the learned file is shared by every classical choice


def test_forget_and_lru_eviction_code_again(codec):
    service = PointService(open_learned=lambda _: codec, cache_size=2)
    for rate in (0.1, 0.2, 0.3):
        service.submit(request(rate)).result()
    service.submit(request(0.3)).result()
    assert codec.calls == [0.1, 0.2, 0.3]
    service.submit(request(0.1)).result()  # evicted: the two most recent were kept
    service.forget(request(0.1))
    service.submit(request(0.1)).result()
    assert codec.calls == [0.1, 0.2, 0.3, 0.1, 0.1]


def test_lru_keeps_the_most_recently_used():
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3


def test_many_threads_one_worker():
    """Submissions from several threads at once: one encode at a time, all on the worker, each position once."""
    codec = SlowCodec(delay=0.002)
    service = PointService(open_learned=lambda _: codec, cache_size=1000)
    rates = [round(0.1 * i, 1) for i in range(12)]
    errors: list[BaseException] = []

    def user(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(25):
                rate = rng.choice(rates)
                job = service.submit(request(rate))
                service.prefetch([request(rng.choice(rates))])
                try:
                    assert job.result(timeout=30).learned.rate == rate
                except CancelledError:
                    pass  # superseded by another thread's submission
        except BaseException as err:  # noqa: BLE001 - reported by the main thread
            errors.append(err)

    users = [threading.Thread(target=user, args=(seed,)) for seed in range(4)]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(60)
    service.idle()
    assert not errors
    assert codec.most_active == 1 and codec.threads == {f"{WORKER_NAME}_0"}
    assert len(codec.calls) == len(set(codec.calls)) == len(service.encoded)  # no position coded twice
    for rate in set(codec.calls):
        assert service.ask(request(rate))[0].done()  # every file coded is kept
