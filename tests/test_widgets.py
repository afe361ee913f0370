"""The workbench logic behind notebooks 00/01/02/05, tested without a browser (untrained models)."""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from invlab.codecs.base import Codec
from invlab.codecs.search import rate_for_bpp
from invlab.io.images import ImageData
from invlab.rates import RateSpace
from invlab.widgets import rate_figure, render, scales, sources, teaching
from invlab.widgets.point_service import ClassicalPoint
from invlab.widgets.rate_control import RateControlApp, zoom_title
from invlab.widgets.readout import Zoom, error_map, quality


# ---------------------------------------------------------------------- sources
def test_default_model_is_the_flagship():
    assert sources.default_model() == "msinn-mini-12"
    assert "tiny-flow" in sources.learned_models(variable_rate_only=True)


def test_the_error_scale_follows_the_error_and_the_zoom_finds_it():
    from invlab.widgets.readout import error_scale

    error = np.zeros((200, 300), np.float32)
    assert error_scale(error) == 2.0 and error_scale(error + 3) == 4.0 and error_scale(error + 500) == 128.0
    error[150:190, 20:60] = 40.0  # the one place where the codec loses
    zoom = Zoom.worst(error, 64)
    assert zoom.size == 64 and zoom.top <= 150 and zoom.top + 64 >= 190 and zoom.left <= 20 and zoom.left + 64 >= 60
    bar = render.colour_bar_html(8.0, "levels")
    assert "linear-gradient" in bar and ">8<" in bar and ">4<" in bar


def test_the_operating_point_compares_with_vvc_on_the_same_kodak_image():
    points = sources.kodak_points("vvc", "kodim23")
    assert points is not None and len(points) >= 3 and points["bpp"].is_monotonic_increasing
    assert sources.kodak_points("vvc", "my-own-image") is None


def test_images_and_uploads(small_rgb):
    assert len(sources.kodak_images()) == 24
    assert sources.load_rgb("kodim23", 64).shape == (64, 64, 3)
    buf = io.BytesIO()
    Image.fromarray(small_rgb).save(buf, format="PNG")
    assert np.array_equal(sources.decode_upload(buf.getvalue()), small_rgb)


def test_missing_things_are_said_plainly():
    assert sources.UNTRAINED_BANNER in sources.model_status("tiny-flow")
    codec, why = sources.classical_codec("no-such-codec")
    assert codec is None and why


# ---------------------------------------------------------------------- measure and render
class FakeCodec(Codec):
    """bpp grows by 0.1 per quality step (or shrinks, QP-like); the payload is just bytes."""

    name = "fake"
    rate_space = RateSpace("quality", 1, 50, 25, integer=True, sweep=(1.0, 25.0, 50.0))

    def __init__(self, qp_like: bool = False):
        self.higher_is_fewer_bits = qp_like
        self.calls = 0

    def encode(self, rgb, rate):
        self.calls += 1
        step = 51 - rate if self.higher_is_fewer_bits else rate
        return bytes(int(step * rgb.shape[0] * rgb.shape[1] * 0.1 / 8))

    def decode(self, data):
        raise NotImplementedError


@pytest.mark.parametrize("qp_like", [False, True])
def test_the_bpp_search_finds_the_closest_setting(qp_like):
    rgb = np.zeros((80, 80, 3), np.uint8)
    codec = FakeCodec(qp_like)
    match = rate_for_bpp(codec, rgb, 2.04)
    assert match.bpp == pytest.approx(2.0, abs=0.01)
    assert match.rate == (31 if qp_like else 20)
    assert codec.calls <= 9  # a binary search, not a sweep
    assert rate_for_bpp(FakeCodec(qp_like), rgb, 99.0).bpp == pytest.approx(5.0, abs=0.01)  # end of the range


def test_the_slider_reaches_every_classical_setting(small_rgb):
    """One search over the whole rate space: JPEG's top qualities are reachable (the slider's old search
    stopped at the default sweep's ends)."""
    from invlab.codecs.registry import get_codec

    jpeg = get_codec("jpeg")
    bpp95 = 8 * len(jpeg.encode(small_rgb, 95)) / (small_rgb.shape[0] * small_rgb.shape[1])
    assert rate_for_bpp(jpeg, small_rgb, bpp95).rate == 95


def test_quality_error_map_zoom_render(small_rgb):
    noisy = np.clip(small_rgb.astype(int) + 3, 0, 255).astype(np.uint8)
    q = quality(small_rgb, noisy)
    assert 35 < q["psnr"] < 40 and math.isnan(q["ms_ssim"])  # 48x40 is too small for MS-SSIM
    assert error_map(small_rgb, small_rgb).max() == 0
    assert Zoom.centred(small_rgb.shape, 32).cut(small_rgb, 3).shape == (96, 96, 3)
    assert render.png(render.heat(error_map(small_rgb, noisy), 32)).startswith(b"\x89PNG")
    assert render.overlay(small_rgb, np.ones((7, 5)), factor=8).shape == small_rgb.shape


# ---------------------------------------------------------------------- notebook 01
@pytest.fixture(scope="module")
def app():
    return RateControlApp("kodim23", "tiny-flow", "jpeg", crop=64)


def test_slider_callback_updates_every_view(app):
    app.rate.value = app.rate.min
    before = (app.bpp_label.value, app.recon_view.value, app.rd_view.value)
    app.rate.value = app.rate.max  # the observer runs update(), as dragging does
    after = (app.bpp_label.value, app.recon_view.value, app.rd_view.value)
    assert all(a != b for a, b in zip(before, after, strict=True))
    assert "bpp" in app.bpp_label.value and "PSNR" in app.stats.value
    assert sources.UNTRAINED_BANNER in app.banner.value
    assert app.timing.value.startswith("update took")


def test_point_is_the_real_decoded_file_and_cached(app):
    rate = 1.3
    point = app.point(rate)
    codec = app.codec
    data = codec.encode_image(ImageData(app.rgb), rate)
    assert point.bpp == 8 * len(data) / (64 * 64)
    assert np.array_equal(point.decoded, codec.decode(data))
    assert app.point(rate) is point


def test_the_shown_picture_is_checked_against_decoding_the_file(app):
    point = app.update(0.7)
    app.wait()
    assert app.service.checked(app.at(0.7)) is True and "exactly this picture" in app.check.value
    assert np.array_equal(app.codec.decode(point.data), point.decoded)


def test_neighbouring_positions_are_prefetched(app):
    app.update(1.0)
    app.wait()
    step = app.rate.step
    encodes = len(app.service.encoded)
    for rate in (1.0 - 2 * step, 1.0 - step, 1.0 + step, 1.0 + 2 * step):
        assert app.service.cached(app.at(rate))
    coded = app.point(1.0 + step)
    assert len(app.service.encoded) == encodes  # cached: nothing coded again
    app.rate.value = 1.0 + step  # a cache hit: the prefetched point is what is shown
    assert app.point(app.rate.value) is coded and app.bpp_label.value == f"<b>{coded.bpp:.4f} bpp</b>"


def test_positions_coded_ahead_come_with_their_rd_inset_and_the_line_says_so(app, monkeypatch):
    mid = round((app.rate.min + app.rate.max) / 2, 1)
    app.update(mid)
    app.wait()
    step, drawn = app.rate.step, []
    assert app.ahead.value.startswith(f"positions {mid - 5 * step:.2f}–{mid + 5 * step:.2f} are ready")
    rd_figure, here = rate_figure.rd_figure, threading.current_thread()
    monkeypatch.setattr(rate_figure, "rd_figure",
                        lambda *a, **k: drawn.append(threading.current_thread() is here) or rd_figure(*a, **k))
    for k in (1, 2, 5):  # steps to positions coded ahead: their insets were drawn ahead, on the worker
        app.rate.value = mid - k * step
        assert app.shown.rate == round(mid - k * step, 4) and app.stats.value.startswith("PSNR")
    assert True not in drawn
    app.update(mid + 6 * step)  # beyond them: coded and drawn now, here
    assert drawn.count(True) == 1 and "measuring" not in app.stats.value


def test_bpp_grows_with_rate_and_classical_matches(app):
    curve = app.rd_curve()
    assert list(curve["rate"]) == list(app.codec.rates)
    assert curve["bpp"].is_monotonic_increasing
    app.update(1.0)
    classical = app.shown_classical
    if classical is None:
        pytest.skip(sources.classical_codec("jpeg")[1])
    assert classical.codec == "jpeg" and classical.decoded.shape == app.rgb.shape


def _writes_by_thread(app) -> list[str]:
    """Record the thread of every widget write the views get from now on."""
    import traitlets

    threads: list[str] = []
    views = (app.bpp_label, app.stats, app.timing, app.check, app.zoom_caption, app.recon_view, app.error_view,
             app.zoom_view, app.rd_view)
    for view in views:
        view.observe(lambda _: threads.append(threading.current_thread().name), names=traitlets.All)
    return threads


def _hold_worker(app) -> threading.Event:
    """Keep the app's worker busy until the returned event is set: positions asked for meanwhile queue up."""
    gate = threading.Event()
    app.service._worker.submit(gate.wait)
    return gate


@pytest.fixture
def quiet_app():
    """A fresh app without prefetch: every encode it runs is one a test asked for."""
    return RateControlApp("kodim23", "tiny-flow", "none", crop=64, prefetch=0)


def test_browser_positions_are_coalesced(quiet_app):
    app = quiet_app
    threads = _writes_by_thread(app)
    before = len(app.service.encoded)
    gate = _hold_worker(app)  # the worker is busy: the positions arrive while nothing can be coded
    for rate in (0.2, 0.6, 1.1, 1.4):  # none coded yet (the app showed 1.0)
        app.rate.set_state({"value": rate})  # what the browser sends for each arrow-key press
        assert app.shown.rate == 1.0  # returned at once: not coded on the kernel thread
    assert app.timing.value == "coding rate 1.40 …"
    gate.set()
    app.wait()
    coded = [key[2] for key in app.service.encoded[before:]]
    assert coded == [1.4]  # the older positions were cancelled before they started
    assert app.shown.rate == 1.4 and app.rate.value == 1.4 and app.timing.value.startswith("update took")
    assert set(threads) == {threading.current_thread().name}  # the background thread wrote no widget


def test_browser_results_are_drawn_by_the_event_loop(quiet_app):
    app = quiet_app
    threads = _writes_by_thread(app)

    async def drag():
        for rate in (0.5, 0.55, 0.6):
            app.rate.set_state({"value": rate})
        for _ in range(600):  # the loop runs the hand-over callbacks; nobody calls wait()
            if app.shown.rate == 0.6:
                return
            await asyncio.sleep(0.05)

    asyncio.run(drag())
    assert app.shown.rate == 0.6 and 0.55 not in [key[2] for key in app.service.encoded]
    assert set(threads) == {threading.current_thread().name}


def test_arrow_keys_in_a_live_kernel_are_coalesced():
    """The real path: widget messages to an ipykernel (as JupyterLab sends them), results drawn on its thread."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", env={**os.environ, "OMP_NUM_THREADS": "1"})

    def run(code: str) -> str:
        msg_id, out = kc.execute(code), []
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)

    try:
        slider = run(
            "import threading, traitlets, invlab\n"
            "from invlab.widgets.rate_control import RateControlApp\n"
            "app = RateControlApp('kodim23', 'tiny-flow', 'none', crop=64, prefetch=0)\n"
            "writers = set()\n"
            "for v in (app.bpp_label, app.stats, app.timing, app.recon_view, app.rd_view, app.check):\n"
            "    v.observe(lambda _: writers.add(threading.current_thread().name), names=traitlets.All)\n"
            "gate = threading.Event()\n"
            "app.service._worker.submit(gate.wait)  # busy: the messages below arrive faster than they are coded\n"
            "print(app.rate.model_id)").strip()
        for rate in (0.2, 0.6, 1.1, 1.4):
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": slider, "data": {
                "method": "update", "state": {"value": rate}, "buffer_paths": []}}))
        run("gate.set()")
        for _ in range(240):
            state = json.loads(run("import json; print(json.dumps({'shown': app.shown.rate, "
                                   "'coded': [k[2] for k in app.service.encoded[3:]], 'writers': sorted(writers)}))"))
            if state["shown"] == 1.4:
                break
            time.sleep(0.5)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert state["shown"] == 1.4  # 1.0 and the RD curve's 2 other rates came first: encoded[3:] is the messages'
    assert state["coded"][-1] == 1.4 and 0.6 not in state["coded"] and 1.1 not in state["coded"]
    assert state["writers"] == ["MainThread"]  # every widget write on the kernel thread


def test_rate_zero_is_a_position(quiet_app):
    app = quiet_app
    assert app.rate.value == 1.0  # a new app starts in the middle of the range
    app.update(0.0)
    assert app.rate.value == 0.0 and app.shown.rate == 0.0
    app.image_box.value = "kodim01"  # a new image keeps the position, 0.0 included
    assert app.rate.value == 0.0 and app.shown.rate == 0.0
    app.rate.set_state({"value": 0.05})
    app.rate.set_state({"value": 0.0})
    app.wait()
    assert app.shown.rate == 0.0
    start = RateControlApp("kodim23", "tiny-flow", "none", crop=64, prefetch=0, rate=0.0)
    assert start.rate.value == 0.0 and start.shown.rate == 0.0


def test_no_classical_says_none_and_the_title_says_what_is_unreachable(quiet_app, app):
    assert "classical: none selected" in quiet_app.stats.value
    assert "jpeg" not in quiet_app.stats.value.lower() and "jpeg" not in quiet_app.zoom_caption.value
    point = app.update(1.0)
    classical = app.shown_classical
    if classical is None:
        pytest.skip(sources.classical_codec("jpeg")[1])
    assert classical.target_bpp == point.bpp
    # an untrained model codes at tens of bpp: more than JPEG's range reaches
    assert not classical.reaches and "jpeg cannot reach" in app.zoom_caption.value
    assert "closest bpp it reaches" not in app.stats.value and "closest its range reaches" in app.stats.value
    near = ClassicalPoint("jpeg", 50, point.bpp * 1.05, 30.0, classical.decoded, point.bpp)
    assert near.reaches and "jpeg at equal bpp" in zoom_title(point, near, 96)


def test_pending_work_is_cancelled_not_overwritten():
    """A new position cancels the check and the prefetch queued for the shown one: they never run."""
    app = RateControlApp("kodim23", "tiny-flow", "none", crop=64, prefetch=2)
    app.wait()
    gate = _hold_worker(app)
    app.rate.set_state({"value": 1.05})  # prefetched: drawn at once; queues its file's check and 1.15
    queued = app.service.pending
    assert app.shown.rate == 1.05 and len(queued) == 2
    app.rate.set_state({"value": 0.3})
    assert all(job.cancelled() for job in queued)
    gate.set()
    app.wait()
    assert app.shown.rate == 0.3 and app.at(1.15).learned_key not in app.service.encoded


def test_no_classical_codec_is_named_anywhere(app):
    app.codec_box.value = "none"
    try:
        assert app.shown_classical is None and "classical: none selected" in app.stats.value
        fig = rate_figure.rd_figure(app.rd_curve(), app.vtm, app.shown, app.shown_classical, "tiny-flow")
        texts = [app.stats.value, app.zoom_caption.value, app.timing.value, app.check.value, app.banner.value]
        texts += [t.get_text() for t in fig.legends[0].get_texts()]
        assert not [t for t in texts for name in sources.CLASSICAL_CODECS if name in t.lower()]
    finally:
        app.codec_box.value = "jpeg" if "jpeg" in app.codec_box.options else "none"


def test_a_new_upload_under_an_old_name_is_coded_anew(small_rgb):
    app = RateControlApp("kodim23", "tiny-flow", "none", crop=64, prefetch=0)
    app.add_image("mine.png", small_rgb)
    first = app.shown
    darker = small_rgb // 2
    app.add_image("mine.png", darker)
    assert np.array_equal(app.rgb, darker) and not np.array_equal(app.shown.decoded, first.decoded)


def test_large_upload_is_cropped_and_says_so(small_rgb):
    from invlab.widgets.rate_control import MAX_INTERACTIVE_SIDE

    app = RateControlApp("kodim23", "tiny-flow", "none", prefetch=0)
    big = np.tile(small_rgb, (30, 30, 1))[: MAX_INTERACTIVE_SIDE + 100, : MAX_INTERACTIVE_SIDE + 300]
    app.add_image("big.png", big)
    assert app.rgb.shape == (MAX_INTERACTIVE_SIDE, MAX_INTERACTIVE_SIDE, 3)
    assert "central 1024x1024 crop" in app.banner.value
    app.add_image("small.png", small_rgb)
    assert app.rgb.shape == small_rgb.shape and "crop" not in app.banner.value


def test_upload_and_benchmark(app, small_rgb):
    app.add_image("mine.png", small_rgb)  # 48x40: smaller than the 64 crop, kept whole
    assert app.image_box.value == "upload: mine.png" and app.rgb.shape == (48, 40, 3)
    bench = app.benchmark([0.5, 1.5])
    assert len(bench) == 2 and (bench["cold (s)"] > 0).all() and (bench["next step (s)"] > 0).all()
    app.image_box.value = "kodim23"
    assert app.rgb.shape == (64, 64, 3)
    assert app.widget.children


# ---------------------------------------------------------------------- notebook 02
@pytest.fixture(scope="module")
def tiny():
    return sources.open_learned("tiny-flow").model(0.0)


def test_bits_maps_match_the_likelihoods(tiny, small_rgb):
    x = scales.model_input(tiny, small_rgb)
    lat = scales.latents(tiny, x)
    assert list(lat) == ["y1", "y2"] and lat["y1"].shape[-2:] == (24, 20)
    maps = scales.bits_maps(tiny, x, 1.0)
    with torch.no_grad():
        lk = tiny(x, rate=torch.tensor([1.0]))["likelihoods"]
    for name, m in maps.items():
        assert m.shape == lat[name].shape[-2:]
        assert m.sum() == pytest.approx(float(-torch.log2(lk[name].double()).sum()), rel=1e-6)


def test_the_widget_sums_what_the_model_contract_gives(tiny, small_rgb):
    from invlab.models.base import InvlabModel

    class WithMaps(InvlabModel):
        pad_multiple, variable_rate = 4, True

        def scale_bits(self, x, rate):
            return {"y1": torch.ones(1, 3, 4, 4), "y2": torch.full((2, 2), rate)}

    maps = scales.bits_maps(WithMaps(lambdas=(0.001, 0.002, 0.003)), torch.zeros(1, 3, 8, 8), 2.0)
    assert {k: float(v.sum()) for k, v in maps.items()} == {"y1": 48.0, "y2": 8.0}


def test_bits_table_and_figures(tiny, small_rgb):
    x = scales.model_input(tiny, small_rgb)
    table = scales.bits_table(tiny, x, [0.0, 2.0], pixels=48 * 40)
    assert table.groupby("rate")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    assert (table[table.rate == 2.0].bits.values > table[table.rate == 0.0].bits.values).all()
    for fig in (scales.share_figure(table), scales.bpp_figure(table), scales.channels_figure(scales.latents(tiny, x)),
                scales.overlay_figure(small_rgb, scales.bits_maps(tiny, x, 1.0), x.shape[-2])):
        assert fig.data


# ---------------------------------------------------------------------- notebook 05
def test_teaching_demonstrations(tiny, small_rgb):
    demo = teaching.coupling_demo(small_rgb)
    assert demo["mean |y - x|"] > 1e-3 and demo["max |x_back - x|"] < 1e-5
    x = scales.model_input(tiny, small_rgb)
    assert teaching.flow_roundtrip(tiny, x) < 1e-5
    table, images = teaching.quantise_scales(tiny, x, 0.5)
    assert list(table.quantised) == ["y1", "y2", "all"] and set(images) == {"y1", "y2", "all"}
    assert table["PSNR (dB)"].iloc[-1] <= table["PSNR (dB)"].iloc[:2].min() + 1e-9
    panels, titles, top = teaching.error_panels(small_rgb, images)  # what quantising each scale destroys
    assert panels.shape == (4, 48, 40, 3) and panels.dtype == np.uint8 and np.array_equal(panels[0], small_rgb)
    assert titles[0] == "original" and titles[1].startswith("y1 rounded: mean ") and "all scales" in titles[3]
    assert all(p.max() > 0 for p in panels[1:])  # rounding at step 0.5 changes pixels: the maps are not black
    fig = teaching.error_figure(small_rgb, images)
    assert sorted(a.text for a in fig.layout.annotations) == sorted(titles) and len(fig.data) == 5
    assert fig.data[-1].marker.showscale and fig.data[-1].marker.cmax == top  # one colour bar for every map
    assert fig.layout.width <= 960 and not fig.layout.xaxis.showgrid  # fits the notebook; no grid over pictures
    ae = teaching.autoencoder_table(small_rgb, keeps=(1, 6, 12))
    psnrs = ae["PSNR without quantisation (dB)"].tolist()
    assert psnrs[0] < psnrs[1] and math.isinf(psnrs[2])


def test_msinn_bit_maps_are_per_scale(small_rgb):
    from invlab.models import create_model

    model = create_model("msinn-mini")
    model.init_for_inference()
    model.eval()
    x = scales.model_input(model, small_rgb)
    maps = scales.bits_maps(model, x, 3.0)
    assert list(maps) == ["y1", "y2", "y3", "y4", "y5"]
    assert [m.shape for m in maps.values()][:3] == [(x.shape[2] // s, x.shape[3] // s) for s in (2, 4, 8)]
    assert sum(float(m.sum()) for m in maps.values()) > 0


# ---------------------------------------------------------------------- notebook 06
def test_the_rate_map_app_codes_a_rectangle_beside_the_one_rate_file_of_its_size():
    from invlab.rate_map import RateMap
    from invlab.widgets.roi import RoiApp, block_bits, split_psnr

    app = RoiApp("kodim23", "msinn-mini", crop=64)
    result = app.result
    assert app.box == (16, 16, 32, 32) and result.inside > result.outside
    assert "exactly this picture" in app.status.value and "PSNR inside" in app.table.value
    size = len(result.data)
    assert abs(len(result.uniform) / size - 1) < 0.2  # the one-rate file nearest the mapped file's size
    mapped, uniform = split_psnr(app.rgb, result.picture, app.box), split_psnr(app.rgb, result.uniform_picture,
                                                                               app.box)
    assert mapped[0] > uniform[0]  # inside the rectangle: better than the one-rate file of the same size
    h, w = app.rgb.shape[:2]
    one_rate = block_bits(app.codec, app.rgb, result.outside, RateMap.uniform(h, w, result.outside))
    assert result.block_bits.shape == (4, 4)  # the rectangle's blocks get more bits than at the outside rate
    assert result.block_bits[1:3, 1:3].sum() > 1.2 * one_rate[1:3, 1:3].sum()
    app.match()
    assert "outside rate" in app.status.value and app.result.outside == app.outside.value
    app.more.value = "0,0,16,16:7; 48,48,16,16:0"  # more rectangles, the CLI's syntax
    assert app.code().rate_map.rates[0, 0] == 7 and app.result.rate_map.rates[3, 3] == 0
    app.more.value = "0,0,16"
    assert app.code() is None and "x,y,w,h:rate" in app.status.value
