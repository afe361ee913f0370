"""Re-encoding study: real bitstreams for a few generations, labels, CLI outputs, the notebook in quick mode."""

from __future__ import annotations

import json
import re
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest

from invlab.codecs.learned import LearnedCodec
from invlab.codecs.search import rate_for_bpp
from invlab.eval.reencode import (
    UNTRAINED,
    describe_estimate,
    duration,
    estimate_study,
    first_bpp,
    open_codec,
    reencode_study,
    run_study,
    summarise,
)

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_reencoding.ipynb"


def test_reencode_study_three_generations(small_rgb):
    codec = LearnedCodec("tiny-flow", pretrained=False)
    df = reencode_study(codec, small_rgb, 1.0, generations=3)
    assert list(df.columns) == ["generation", "bpp", "psnr", "psnr_prev"] and list(df["generation"]) == [1, 2, 3]
    decoded = codec.decode(codec.encode(small_rgb, 1.0))
    first = 10 * np.log10(255**2 / np.mean((small_rgb.astype(float) - decoded) ** 2))
    assert df["psnr"][0] == pytest.approx(first) and df["psnr"][0] == df["psnr_prev"][0]
    assert (df["bpp"] > 0).all()
    summary = summarise(df)
    assert summary["generations"] == 3 and summary["delta_psnr"] == pytest.approx(df["psnr"][2] - df["psnr"][0])
    assert set(summary) >= {"psnr@1", "psnr@2", "bpp@1", "bpp@2"}


def test_untrained_models_are_labelled_and_unknown_ones_skipped(small_rgb):
    assert open_codec("tiny-flow")[1] == UNTRAINED
    assert open_codec("no-such-codec")[0] is None
    rows, summary = run_study(["tiny-flow", "no-such-codec"], {"crop": small_rgb}, generations=2)
    assert set(rows["label"]) == {UNTRAINED} and len(rows) == 2
    assert summary["label"].iloc[1].startswith("not available")


def test_worker_processes_give_the_serial_results_in_the_serial_order(small_rgb):
    """--workers: each (codec, image) study on a Dask worker process; the same rows and summaries, same order."""
    images = {"a": small_rgb, "b": np.ascontiguousarray(small_rgb[::-1])}
    names = ["jpeg", "no-such-codec", "tiny-flow"]
    serial = run_study(names, images, generations=2, rates={"jpeg": 50}, progress=False)
    parallel = run_study(names, images, generations=2, rates={"jpeg": 50}, progress=False, workers=2)
    for one, other in zip(serial, parallel, strict=True):
        assert one.equals(other)
    assert list(parallel[1]["codec"]) == ["jpeg", "jpeg", "no-such-codec", "tiny-flow", "tiny-flow"]


def test_the_estimate_times_one_generation_per_codec_and_multiplies(small_rgb):
    images = {"a": small_rgb, "b": small_rgb[:24]}  # b has half a's pixels
    est = estimate_study(["tiny-flow", "jpeg", "no-such-codec"], images, generations=4)
    assert list(est["codec"]) == ["tiny-flow", "jpeg", "no-such-codec"]
    ran = est.set_index("codec")
    for name in ("tiny-flow", "jpeg"):
        assert ran.at[name, "s per generation"] > 0
        assert ran.at[name, "estimated s"] == pytest.approx(ran.at[name, "s per generation"] * 1.5 * 4)
    assert ran.at["no-such-codec", "estimated s"] == 0 and ran.at["no-such-codec", "label"].startswith("not available")
    text = describe_estimate(est, images, 4)
    assert text.startswith("estimated time: ") and "2 codecs x 2 images (40x24, 40x48) x 4 generations" in text
    assert [duration(s) for s in (12.3, 200, 9000)] == ["12 s", "3.3 min", "2.5 h"]


def _notebook_setup(**parameters) -> dict:
    """Run notebook 04's parameter cell, ``parameters`` and its picture-choosing cell here; returns the namespace."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace: dict = {}
    exec(nb.cells[0].source, namespace)  # noqa: S102 (the repository's own notebook)
    namespace.update(parameters)
    exec(nb.cells[2].source, namespace)  # noqa: S102
    assert "estimate_study(" in nb.cells[3].source and "run_study(" in nb.cells[4].source  # estimate, then study
    return namespace


def test_notebook_defaults_are_short_and_the_full_study_one_switch_away():
    short = _notebook_setup()
    assert not short["quick"] and not short["full_study"]
    pixels = sum(a.shape[0] * a.shape[1] for a in short["pictures"].values())
    # a few minutes on 2 cores: at most about 2 megapixel-generations per codec (the full study is 59)
    assert short["generations"] * pixels <= 10 * 3 * 256 * 256
    assert all(a.shape == (256, 256, 3) for a in short["pictures"].values())
    full = _notebook_setup(full_study=True)
    assert full["generations"] == 50 and len(full["pictures"]) == 3
    assert all(a.shape[0] * a.shape[1] == 768 * 512 for a in full["pictures"].values())


def test_cli_writes_csv_and_summary(tmp_path, kodak_dir, monkeypatch):
    from PIL import Image

    from invlab.cli import main

    with Image.open(kodak_dir / "kodim23.png") as img:
        img.crop((300, 200, 340, 232)).save(tmp_path / "crop.png")
    monkeypatch.setattr("sys.argv", ["invlab", "reencode"])  # cli.build_parser picks lazy subcommands from sys.argv
    assert main(["reencode", "--codecs", "tiny-flow", "--images", str(tmp_path / "crop.png"), "--generations", "2",
                 "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "tiny-flow_crop.csv").is_file()
    assert json.loads((tmp_path / "out" / "summary.json").read_text())[0]["label"] == UNTRAINED
    argv = ["reencode", "--codecs", "tiny-flow", "--images", str(tmp_path / "crop.png"), "--generations", "1",
            "--out", str(tmp_path / "out")]
    before = (tmp_path / "out" / "summary.json").read_bytes()
    assert main(argv) == 2  # an earlier study is never replaced unless asked
    assert (tmp_path / "out" / "summary.json").read_bytes() == before
    assert main([*argv, "--force"]) == 0


def test_update_adds_codecs_and_replaces_only_their_rows(tmp_path, kodak_dir, monkeypatch):
    from PIL import Image

    from invlab.cli import main

    with Image.open(kodak_dir / "kodim23.png") as img:
        img.crop((300, 200, 340, 232)).save(tmp_path / "crop.png")
    monkeypatch.setattr("sys.argv", ["invlab", "reencode"])
    out = tmp_path / "out"
    common = ["--images", str(tmp_path / "crop.png"), "--generations", "2", "--out", str(out)]
    assert main(["reencode", "--codecs", "jpeg", "--rate", "jpeg=50", *common]) == 0
    assert main(["reencode", "--codecs", "tiny-flow", *common, "--update"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [row["codec"] for row in summary] == ["jpeg", "tiny-flow"]
    assert summary[0]["rate"] == 50 and summary[0]["training"] == ""  # classical: no training budget
    assert main(["reencode", "--codecs", "jpeg", "--rate", "jpeg=20", *common, "--update"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(row["codec"] for row in summary) == ["jpeg", "tiny-flow"]  # jpeg's row replaced, not added
    assert [row["rate"] for row in summary if row["codec"] == "jpeg"] == [20]
    Image.open(tmp_path / "crop.png").save(tmp_path / "other.png")
    assert main(["reencode", "--codecs", "jpeg", "--rate", "jpeg=30", "--images", str(tmp_path / "other.png"),
                 "--generations", "1", "--out", str(out), "--update"]) == 0
    summary = json.loads((out / "summary.json").read_text())  # another image: added beside the earlier rows
    assert sorted((row["codec"], row["image"]) for row in summary) == [
        ("jpeg", "crop"), ("jpeg", "other"), ("tiny-flow", "crop")]
    assert main(["reencode", "--codecs", "jpeg", *common, "--update", "--force"]) == 2  # one or the other
    (out / "summary.json").write_text("not json")
    before = (out / "summary.json").read_bytes()
    assert main(["reencode", "--codecs", "jpeg", "--rate", "jpeg=20", *common, "--update"]) == 2
    assert (out / "summary.json").read_bytes() == before  # a file it cannot read is left as it was


def test_a_trained_models_rows_name_the_budget_of_the_weights_that_coded_them(small_rgb, tmp_path, monkeypatch):
    from invlab.eval import reencode

    codec = LearnedCodec("tiny-flow", pretrained=False)
    assert reencode.training_of(codec, 1.0) == ""  # untrained: the label says so, no budget
    weights = tmp_path / "tiny.pt"
    weights.write_bytes(b"")
    weights.with_suffix(".json").write_text(json.dumps({"training": {"steps": 1234, "cpu_hours_total": 2.5}}))
    monkeypatch.setattr(LearnedCodec, "trained", property(lambda self: True))
    monkeypatch.setattr(LearnedCodec, "model", lambda self, rate: type("M", (), {"weights_file": str(weights)})())
    assert reencode.training_of(codec, 1.0) == "1,234 steps, 2.5 CPU-h"
    start = {"model": "tiny-flow", "rate_index": 2, "steps": 9908}
    weights.with_suffix(".json").write_text(json.dumps({"training": {"steps": 10, "fine_tuned_from": start}}))
    assert reencode.training_of(codec, 1.0) == "10 steps, fine-tuned from tiny-flow q2 (9,908 steps)"
    start = {"model": "anfic-mini-noctx", "rate_index": 2, "steps": 3777, "cpu_hours_total": 1.6}
    weights.with_suffix(".json").write_text(json.dumps({"training": {"steps": 10, "fine_tuned_from": start,
                                                                     "init_partial": True}}))
    assert reencode.training_of(codec, 1.0) == (
        "10 steps, warm from (the parts that fit) anfic-mini-noctx q2 (3,777 steps, 1.6 CPU-hours)")


def test_notebook_runs_in_quick_mode():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "parameters" in nb.cells[0].metadata.get("tags", [])
    nb.cells.insert(1, nbformat.v4.new_code_cell("quick = True"))
    resources = {"metadata": {"path": str(NOTEBOOK.parent)}}
    NotebookClient(nb, timeout=120, kernel_name="python3", resources=resources).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    # every learned model of the notebook's list is labelled by what it ships: trained weights, or untrained
    from invlab.weights import has_weights

    learned = ["msinn-mini", "invcompress-mini", "anfic-mini", "bmshj2018-hyperprior-mini", "mbt2018-mean-mini"]
    assert all(name in nb.cells[0].source for name in learned)
    for name in learned:
        label = "trained" if has_weights(name) else UNTRAINED
        assert re.search(rf"^\s*{re.escape(name)}\s+{re.escape(label)}\s*$", outputs, re.MULTILINE), (name, outputs)


class _BytesCodec:
    """A stand-in codec whose file has ``size(rate)`` bytes: the search is checked against a known answer."""

    higher_is_fewer_bits = False

    def __init__(self, space, size):
        self.rate_space, self.size, self.encodes = space, size, 0

    def encode(self, rgb, rate):
        self.encodes += 1
        return b"x" * int(self.size(rate))


def test_rate_for_bpp_finds_the_nearest_setting_in_every_kind_of_rate_space(small_rgb):
    from invlab.codecs.registry import get_codec
    from invlab.rates import RateSpace, anchor_space, weight_index_space

    jpeg = get_codec("jpeg")
    every = {q: first_bpp(jpeg, small_rgb, q) for q in range(1, 101)}
    target = float(np.median(list(every.values())))
    rate, value, _ = astuple(rate_for_bpp(jpeg, small_rgb, target))
    assert abs(value - target) == pytest.approx(min(abs(v - target) for v in every.values()))  # a whole quality
    pixels = small_rgb.shape[0] * small_rgb.shape[1]
    qp = RateSpace("QP", 0, 51, 30, integer=True, sweep=(40.0, 30.0, 20.0))  # higher QP = fewer bits
    codec = _BytesCodec(qp, lambda r: pixels * 4 / (r + 1))
    codec.higher_is_fewer_bits = True
    rate, value, _ = astuple(rate_for_bpp(codec, small_rgb, 1.0))
    assert rate == 31 and codec.encodes <= 10  # 8*4/(r+1) = 1 at r = 31
    assert rate_for_bpp(codec, small_rgb, 1000.0).rate == 0  # beyond the range: the nearer end, exactly
    with pytest.raises(ValueError, match="positive"):
        rate_for_bpp(codec, small_rgb, 0.0)
    flow = _BytesCodec(anchor_space(8), lambda r: pixels * (0.1 + 0.2 * r) / 8)
    rate, value, _ = astuple(rate_for_bpp(flow, small_rgb, 0.8))
    assert abs(value / 0.8 - 1) <= 0.02 and rate == pytest.approx(3.5, abs=0.05)
    files = _BytesCodec(weight_index_space([0, 1, 2, 3]), lambda r: pixels * (r + 1) / 8)
    match = rate_for_bpp(files, small_rgb, 2.2)
    assert (match.rate, match.bpp) == (1.0, 2.0) and files.encodes == 4


def test_study_at_matched_bpp_records_the_target(small_rgb):
    _, summary = run_study(["jpeg", "webp"], {"crop": small_rgb}, generations=1, match_bpp=1.0, progress=False)
    assert list(summary["target_bpp"]) == [1.0, 1.0]
    assert (abs(summary["bpp@1"] - 1.0) < 0.5).all()  # both started near 1 bpp, whatever their own scales


def test_the_study_is_cached_by_the_harness_and_resumes(small_rgb, tmp_path):
    """A repeated study reads its points back; other generations or other pixels are measured; redo re-measures."""
    from invlab.eval import sweep

    images = {"a": small_rgb}
    first = run_study(["jpeg"], images, generations=2, rates={"jpeg": 50}, progress=False, cache_dir=tmp_path)
    assert len(sweep.SUBMITTED) == 1
    again = run_study(["jpeg"], images, generations=2, rates={"jpeg": 50}, progress=False, cache_dir=tmp_path)
    assert sweep.SUBMITTED == [] and all(x.equals(y) for x, y in zip(first, again, strict=True))
    run_study(["jpeg"], images, generations=3, rates={"jpeg": 50}, progress=False, cache_dir=tmp_path)
    assert len(sweep.SUBMITTED) == 1  # another number of generations: a new point
    run_study(["jpeg"], {"a": small_rgb[::-1]}, generations=2, rates={"jpeg": 50}, progress=False,
              cache_dir=tmp_path)
    assert len(sweep.SUBMITTED) == 1  # the same name, other pixels: a new point
    run_study(["jpeg"], images, generations=2, rates={"jpeg": 50}, progress=False, cache_dir=tmp_path, redo=True)
    assert len(sweep.SUBMITTED) == 1
    _, matched = run_study(["jpeg"], images, generations=1, match_bpp=1.0, progress=False, cache_dir=tmp_path)
    assert (tmp_path / "jpeg-match.jsonl").is_file()
    run_study(["jpeg"], images, generations=1, match_bpp=1.0, progress=False, cache_dir=tmp_path)
    assert sweep.SUBMITTED == []  # the bpp search and the study both read back
    assert list(matched["target_bpp"]) == [1.0]


def test_small_multiples_give_each_codec_one_colour_and_one_legend_entry(small_rgb):
    """Notebook 04's figure: a panel per image, a codec per colour (the same in every panel), one legend entry each."""
    from invlab.eval.reencode import summary_reading, summary_table
    from invlab.widgets.reencode_plots import bpp_panels, psnr_panels

    images = {"a": small_rgb, "b": np.ascontiguousarray(small_rgb[::-1])}
    rows, summary = run_study(["jpeg", "webp", "tiny-flow"], images, generations=2, rates={"jpeg": 50, "webp": 50},
                              progress=False)
    for fig in (psnr_panels(rows), bpp_panels(rows)):
        assert len(fig.layout.annotations) >= 2  # the panel titles: one per image
        legend = [t for t in fig.data if t.showlegend]
        assert [t.name for t in legend] == ["tiny-flow (untrained)", "jpeg", "webp"]  # invertible first
        looks = {t.legendgroup: (t.line.color, t.line.dash) for t in fig.data}
        assert len(set(looks.values())) == 3
        assert all((t.line.color, t.line.dash) == looks[t.legendgroup] for t in fig.data)
    table = summary_table(summary)
    assert list(table.columns[:4]) == ["codec", "image", "label", "bpp@1"]
    assert (table["ΔPSNR (dB)"] == table["ΔPSNR (dB)"].round(2)).all()
    assert summary_reading(summary).startswith("After 2 generations (mean over 2 images): ")


def test_strong_idempotence_alternates_the_two_settings(small_rgb, tmp_path):
    """--strong-bpp: even generations at the setting nearest the second bpp, odd ones at the starting rate."""
    rows, summary = run_study(["jpeg"], {"a": small_rgb}, generations=5, rates={"jpeg": 30}, strong_bpp=4.0,
                              progress=False, cache_dir=tmp_path)
    bpps = rows["bpp"].tolist()
    assert all(bpps[k] > bpps[k - 1] for k in (1, 3)) and all(bpps[k] < bpps[k - 1] for k in (2, 4))
    row = summary.iloc[0]
    assert row["rate"] == 30 and row["second_rate"] > 30 and row["second_bpp"] == 4.0
    assert row["delta_psnr_odd"] == pytest.approx(rows["psnr"].iloc[4] - rows["psnr"].iloc[0])
    plain, _ = run_study(["jpeg"], {"a": small_rgb}, generations=5, rates={"jpeg": 30}, progress=False,
                         cache_dir=tmp_path)
    assert plain["bpp"].iloc[1] < bpps[1]  # the plain study is not read back from the strong one's records
