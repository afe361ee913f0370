"""``invlab evaluate``: output files and fields, real-byte overhead, rates, refusals, no overwrite, resume.

Every model here is untrained (no weights exist): the numbers only exercise the plumbing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import invlab.eval.evaluate as ev
import invlab.eval.sweep as sweep
from invlab.cli import main
from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import get_codec
from invlab.errors import InvlabError, OutputExistsError
from invlab.eval.anchors import load_anchor, load_curve
from invlab.eval.cache import ResultCache
from invlab.eval.measure import estimate
from invlab.io.images import load_image, pad_to_multiple, to_tensor

KODAK = Path(__file__).resolve().parents[1] / "data" / "kodak"


@pytest.fixture(scope="module")
def crops(tmp_path_factory) -> Path:
    """Two 64x64 Kodak crops."""
    folder = tmp_path_factory.mktemp("crops")
    for i, box in ((1, (0, 0, 64, 64)), (23, (300, 200, 364, 264))):
        Image.open(KODAK / f"kodim{i:02d}.png").crop(box).save(folder / f"kodim{i:02d}.png")
    return folder


@pytest.fixture(autouse=True)
def _no_weights(tmp_path, monkeypatch):
    """An empty weights folder: every model is untrained here, whatever the checkout ships."""
    (tmp_path / "weights").mkdir()
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "weights"))


def _run(crops: Path, out: Path | None = None, **kwargs) -> Path:
    kwargs = {"untrained": True, "progress": False, "rates": [0.0, 1.0], **kwargs}
    return ev.evaluate_model("tiny-flow", crops, out=out, **kwargs)


def test_outputs_fields_and_overhead_from_real_bytes(crops, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _run(crops, rates=None, command="invlab evaluate tiny-flow --untrained")
    assert path == Path("results") / crops.name / "tiny-flow-eval-untrained.json"  # the name says untrained
    data = json.loads(path.read_text())
    rates = [0.0, 0.5, 1.0, 1.5, 2.0]  # anchors 0..2 and the midpoints (--fractional 1)
    assert [s["rate"] for s in data["summary"]] == rates and sorted(data["results"]["rate"]) == rates
    assert data["name"] == path.stem and "UNTRAINED" in data["description"]
    meta = data["meta"]
    assert meta["trained"] is False and meta["family"] == "tiny" and meta["parameters"] > 0
    assert len(meta["weights"][0]["weights_hash"]) == 16 and meta["weights"][0]["file"] is None
    assert meta["weights"][0]["training_cpu_hours"] is None  # no weights, no budget (not a made-up zero)
    assert meta["threads"] == 1 and meta["torch"] == torch.__version__ and meta["date"] and meta["command"]
    assert data["bd"] == {} and "not Kodak" in data["bd_note"]  # Kodak anchors only for Kodak
    assert len(load_curve(path).bpp) == 5  # the RD tools read it
    from compressai.utils.plot.__main__ import parse_json_file

    assert len(parse_json_file(path, "psnr")["ys"]) == 5

    df = pd.read_csv(path.with_suffix(".csv"))
    assert len(df) == 2 * 5 and set(df["image"]) == {"kodim01", "kodim23"}
    assert df["decode_matches_forward"].all() and (df["forward_max_abs_diff"] == 0).all()
    assert df["ms-ssim-rgb"].isna().all()  # 64 px is below MS-SSIM's 161 px minimum: NaN, not a number
    est_bits = df["estimated_bits_y1"] + df["estimated_bits_y2"]
    assert np.allclose(df["estimated_bpp"], est_bits / (64 * 64))
    assert np.allclose(df["overhead_pct"], 100 * (8 * df["bytes"] / est_bits - 1))
    assert (df["container_bytes"] > 0).all() and (df["bytes"] == df["stream_bytes"] + df["container_bytes"]).all()
    row = df[(df["image"] == "kodim23") & (df["rate"] == 1.5)].iloc[0]
    data = get_codec("tiny-flow", pretrained=False).encode(load_image(crops / "kodim23.png").rgb, 1.5)
    assert row["bytes"] == len(data) and row["bpp"] == 8 * len(data) / (64 * 64)  # bytes of the whole file


def test_variable_rate_defaults_and_estimate_equals_estimate_bits(crops):
    codec = get_codec("msinn-mini", pretrained=False)
    assert ev.default_rates(codec, 0) == [float(r) for r in range(8)]
    assert ev.default_rates(codec, 1)[:4] == [0.0, 0.5, 1.0, 1.5] and len(ev.default_rates(codec, 1)) == 15
    assert ev.default_rates(codec, 2)[:3] == [0.0, 0.333333, 0.666667]
    rgb = load_image(crops / "kodim23.png").rgb
    bits, _ = estimate(codec, rgb, 2.5)
    x, _ = pad_to_multiple(to_tensor(rgb), 16)
    assert bits == pytest.approx(codec.model(2.5).estimate_bits(x, 2.5), rel=1e-6)


def test_msinn_mini_fractional_rates_options_and_bd(crops, tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "NAMED", {"kodak": crops})  # let the crops stand in for Kodak: BD is computed
    path = ev.evaluate_model("msinn-mini", crops, rates=[0.0, 0.5, 1.0], limit=1, untrained=True,
                             options={"postnet": None}, out=tmp_path / "m-untrained.json", progress=False)
    data = json.loads(path.read_text())
    assert list(data["bd"]) == ["vtm", "msinn-8"] and "on 1 of the 24 images" in data["bd_note"]
    assert "BD vs msinn-8" in ev.format_report(data)
    assert [s["rate"] for s in data["summary"]] == [0.0, 0.5, 1.0] and data["meta"]["images"] == 1
    assert data["meta"]["options"] == {"postnet": None} and data["meta"]["config"]["postnet"] is None
    assert "post-net off" in ev.format_report(data)
    assert all(s["decode_matches_forward"] == 1 for s in data["summary"])
    assert ev.output_name("msinn-mini", False, {"postnet": None}) == "msinn-mini+postnet-none-eval-untrained"


def test_fixed_rate_family_records_its_context_path(crops, tmp_path):
    path = ev.evaluate_model("invcompress-mini-cb", crops, limit=1, untrained=True, out=tmp_path / "ic-untrained.json",
                             progress=False)
    data = json.loads(path.read_text())
    assert data["results"]["rate"] == [0.0]  # untrained fixed-rate: rate index 0 only
    assert data["meta"]["context"].startswith("checkerboard") and not data["meta"]["variable_rate"]
    with pytest.raises(InvlabError, match="weight index, 0 "):
        ev.evaluate_model("invcompress-mini-cb", crops, rates=[1.0], untrained=True, out=tmp_path / "x-untrained.json")


def test_bd_against_anchors():
    vtm = load_anchor("vtm")
    same = ev.bd_against(vtm.bpp, vtm.psnr, "vtm")
    assert same["bd_rate_pct"] == pytest.approx(0, abs=1e-9) and same["psnr_overlap_db"] is not None
    assert ev.bd_against(vtm.bpp * 1.1, vtm.psnr, "vtm")["bd_rate_pct"] == pytest.approx(10, abs=1e-6)
    assert ev.bd_against([0.5], [30.0], "vtm")["bd_rate_pct"] is None  # one point: no curve
    assert ev.published_anchor("msinn-mini", 8) == "msinn-8" and ev.published_anchor("msinn-mini", 12) == "msinn-12"
    assert ev.published_anchor("msinn-mini") == "msinn-8"
    assert ev.published_anchor("invcompress-mini", 1) == "invcompress"
    assert ev.published_anchor("bmshj2018-hyperprior-mini") is None


def test_refuses_untrained_numbers_without_the_flag(crops, tmp_path, capsys):
    out = tmp_path / "res" / "tiny-flow-eval.json"
    assert main(["evaluate", "tiny-flow", "--dataset", str(crops), "--out", str(out)]) == 2
    assert "--untrained" in capsys.readouterr().err and not out.parent.exists()
    with pytest.raises(InvlabError, match="must say so in its name"):
        _run(crops, out)


def test_never_overwrites_without_force(crops, tmp_path):
    out = tmp_path / "t-untrained.json"
    _run(crops, out)
    before = out.read_text()
    with pytest.raises(OutputExistsError, match="--force"):
        _run(crops, out)
    assert out.read_text() == before
    out.unlink()
    with pytest.raises(OutputExistsError):  # the CSV counts too
        _run(crops, out)
    _run(crops, out, force=True)
    assert out.exists()


def test_resume_from_the_cache(crops, tmp_path, monkeypatch):
    out = tmp_path / "t-untrained.json"
    _run(crops, out, limit=1)
    cache = tmp_path / "cache" / "t-untrained.jsonl"
    assert len(cache.read_text().splitlines()) == 2

    calls = []
    real = sweep.measure
    monkeypatch.setattr(sweep, "measure", lambda *a: calls.append(a[2]) or real(*a))
    _run(crops, out, force=True)  # the second image only
    assert len(calls) == 2
    first = json.loads(out.read_text())

    def refuse(*args, **kwargs):
        raise AssertionError("coded although everything was cached")

    monkeypatch.setattr(LearnedCodec, "encode_image", refuse)
    _run(crops, out, force=True)
    assert json.loads(out.read_text())["results"] == first["results"]

    lines = cache.read_text().splitlines()  # lose one record and cut another short (an interrupted write)
    cache.write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:30])
    monkeypatch.undo()
    monkeypatch.setenv("INVLAB_WEIGHTS", str(tmp_path / "weights"))
    calls.clear()
    monkeypatch.setattr(sweep, "measure", lambda *a: calls.append(a[2]) or real(*a))
    _run(crops, out, force=True)
    assert len(calls) == 2
    assert json.loads(out.read_text())["results"]["bpp"] == first["results"]["bpp"]
    _run(crops, out, force=True, threads=2)  # other thread count: timings are re-measured
    assert len(calls) == 6 and json.loads(out.read_text())["meta"]["threads"] == 2
    assert torch.get_num_threads() == 1  # restored after the run


def test_files_coded_another_way_are_measured_again(crops, tmp_path, monkeypatch):
    """A model whose files change with the same weights (e.g. a new default for its entropy parameters): the
    cached records of the old files are not reused."""
    out = tmp_path / "t-untrained.json"
    _run(crops, out, limit=1)
    calls = []
    real = sweep.measure
    monkeypatch.setattr(sweep, "measure", lambda *a: calls.append(a[2]) or real(*a))
    from invlab.models.tiny import TinyFlowCodec

    monkeypatch.setattr(TinyFlowCodec, "coding_options", property(lambda self: {"entropy": "exact"}))
    _run(crops, out, limit=1, force=True)
    assert len(calls) == 2


def test_cli_prints_the_table_and_has_help(crops, tmp_path, capsys):
    out = tmp_path / "cli-untrained.json"
    argv = ["evaluate", "tiny-flow", "--dataset", str(crops), "--untrained", "--rates", "0,2", "--no-progress",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "UNTRAINED" in printed and "overhead %" in printed and str(out) in printed
    assert json.loads(out.read_text())["meta"]["command"].startswith("invlab evaluate tiny-flow")
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    help_text = capsys.readouterr().out
    assert all(flag in help_text for flag in ("--fractional", "--untrained", "--threads", "--force", "--limit"))


def test_dask_sweep_equals_serial_resumes_and_survives_a_failed_job(crops, tmp_path):
    """Two LocalCluster workers: the records of a serial run bit for bit (timings aside), only missing jobs
    resubmitted, and a job that raises (an unreadable image) reported while the others are measured and cached."""
    timing = ["encoding_time", "decoding_time"]

    def records(path: Path) -> pd.DataFrame:
        return pd.read_csv(path.with_suffix(".csv"), float_precision="round_trip").drop(columns=timing)

    serial = _run(crops, tmp_path / "serial" / "t-untrained.json")
    out = _run(crops, tmp_path / "dask" / "t-untrained.json", workers=2)
    pd.testing.assert_frame_equal(records(serial), records(out), check_exact=True)
    untimed = [{k: v for k, v in json.loads(p.read_text())["results"].items() if k not in timing}
               for p in (serial, out)]
    assert untimed[0] == untimed[1]

    cache = out.parent / "cache" / f"{out.stem}.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + "\n")  # lose the last record: only its job is resubmitted
    _run(crops, out, workers=2, force=True)
    assert [(Path(j.image).stem, j.rates) for j in sweep.SUBMITTED] == [(json.loads(lines[-1])["image"], (1.0,))]
    assert records(out).equals(records(serial))
    _run(crops, out, workers=2, force=True)
    assert sweep.SUBMITTED == []  # everything cached: nothing resubmitted

    images = tmp_path / "with-broken"
    images.mkdir()
    for png in crops.iterdir():
        (images / png.name).write_bytes(png.read_bytes())
    (images / "broken.png").write_bytes(b"not a png")
    fresh = tmp_path / "fresh" / "t-untrained.json"
    with pytest.raises(sweep.SweepError, match=r"1 of 3 jobs failed(.|\n)*broken.png at rates \[0.0, 1.0\]"):
        _run(images, fresh, workers=2)
    measured = ResultCache(fresh.parent / "cache" / f"{fresh.stem}.jsonl").read()
    assert sorted((r["image"], r["rate"]) for r in measured) == [(i, r) for i in ("kodim01", "kodim23")
                                                                 for r in (0.0, 1.0)]


def test_a_weight_file_of_ones_own_is_evaluated_and_named_after_it(crops, tmp_path, monkeypatch):
    """``--weights``: the file's model codes (no shipped weights needed), the output says which file, the meta
    carries the provenance the file's metadata gives (here: converted official weights)."""
    monkeypatch.chdir(tmp_path)
    state = {k: v + 0.01 if v.is_floating_point() else v
             for k, v in LearnedCodec("tiny-flow", pretrained=False).model(0).state_dict().items()}
    weights = tmp_path / "my weights.pt"
    torch.save({"state_dict": state, "config": {}}, weights)
    official = {"source": "ckpt.pth.tar", "sha256": "ab" * 32, "family": "tiny-flow"}
    weights.with_suffix(".json").write_text(json.dumps({"official": official}))
    path = ev.evaluate_model("tiny-flow", crops, rates=[0.0], progress=False, weights=weights)
    assert path == Path("results") / crops.name / "tiny-flow@my-weights-eval.json"
    data = json.loads(path.read_text())
    assert data["meta"]["trained"] and data["meta"]["weights"][0]["official"] == official
    assert "official weights from ckpt.pth.tar" in ev.format_report(data)
    with pytest.raises(InvlabError, match="exclude each other"):
        ev.evaluate_model("tiny-flow", crops, untrained=True, weights=weights)
