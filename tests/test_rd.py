"""RD harness: outputs in CompressAI's format, resume from the per-image cache, BD table."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import invlab.eval.rd as rd
import invlab.eval.sweep as sweep
from invlab.cli import main
from invlab.eval.cache import ResultCache

RATES = {"jpeg": [20, 50, 80], "webp": [10, 50, 90]}


@pytest.fixture
def two_images(tmp_path, kodak_dir) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, box in ((1, (0, 0, 192, 176)), (23, (300, 200, 492, 376))):
        Image.open(kodak_dir / f"kodim{i:02d}.png").crop(box).save(folder / f"kodim{i:02d}.png")
    return folder


def test_sweep_writes_compressai_json_csv_and_bd_table(two_images, tmp_path):
    out = tmp_path / "res"
    df = rd.run_rd(["jpeg", "webp"], two_images, out, rates=RATES, workers=1, progress=False)
    assert len(df) == 2 * 2 * 3
    for name in ("jpeg", "webp"):
        data = json.loads((out / f"{name}.json").read_text())
        res = data["results"]
        assert data["name"] == name and len(res["bpp"]) == 3 and res["bpp"] == sorted(res["bpp"])
        assert all(0.9 < v <= 1 for v in res["ms-ssim-rgb"])
        assert pd.read_csv(out / f"{name}.csv").shape[0] == 6
    from compressai.utils.plot.__main__ import parse_json_file

    assert len(parse_json_file(out / "jpeg.json", "psnr")["ys"]) == 3  # CompressAI's plot tool reads it
    table = pd.read_csv(out / "bd_table.csv", index_col=0)
    assert list(table.index) == ["jpeg", "webp"] and table.loc["jpeg", "BD-rate (%)"] > 0
    assert "BD-rate" in (out / "bd_table.md").read_text()


def test_resume_measures_only_what_the_cache_lacks(two_images, tmp_path, monkeypatch):
    out = tmp_path / "res"
    rd.run_rd(["jpeg"], two_images, out, rates=RATES, workers=1, progress=False)
    first = (out / "jpeg.json").read_text()
    cache = out / "cache" / "jpeg.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])  # lose one record, cut one short
    calls = []
    real = sweep.measure
    monkeypatch.setattr(sweep, "measure", lambda *a: calls.append(a[2]) or real(*a))
    rd.run_rd(["jpeg"], two_images, out, rates=RATES, workers=1, progress=False)
    assert len(calls) == 1
    assert json.loads((out / "jpeg.json").read_text())["results"]["bpp"] == json.loads(first)["results"]["bpp"]
    calls.clear()
    rd.run_rd(["jpeg"], two_images, out, rates=RATES, workers=1, progress=False)
    assert calls == []


def test_cli_with_process_pool_matches_in_process(two_images, tmp_path, capsys):
    assert main(["rd", "--dataset", str(two_images), "--codecs", "webp", "--rates", "webp=10,50,90",
                 "--out", str(tmp_path / "pool"), "--workers", "2"]) == 0
    assert "webp" in capsys.readouterr().out
    serial = rd.run_rd(["webp"], two_images, tmp_path / "serial", rates=RATES, workers=1, progress=False)
    pooled = pd.read_csv(tmp_path / "pool" / "webp.csv")
    assert list(pooled["bytes"]) == list(serial["bytes"])


def test_untrained_learned_codec_is_labelled(two_images, tmp_path):
    df = rd.run_rd(["tiny-flow"], two_images, tmp_path / "res", workers=1, pretrained=False, progress=False)
    assert set(df["codec"]) == {"tiny-flow-untrained"}
    assert (tmp_path / "res" / "tiny-flow-untrained.json").exists()


def test_datasets_by_name_and_folder(two_images):
    from invlab.datasets import list_images, load_dataset

    kodak = list_images("kodak")
    assert len(kodak) == 24 and kodak == sorted(kodak) and kodak[0].name == "kodim01.png"
    names = [(name, img.rgb.shape) for name, img in load_dataset(two_images)]
    assert names == [("kodim01", (176, 192, 3)), ("kodim23", (176, 192, 3))]
    with pytest.raises(FileNotFoundError):
        list_images(two_images / "nowhere")


def test_dask_sweep_equals_serial_resumes_and_survives_a_failed_job(two_images, tmp_path):
    """A 2-worker LocalCluster: the same records as in process (timings aside), only missing jobs resubmitted,
    and a job that raises (an unreadable image) reported while the other jobs are measured and cached."""
    serial = rd.run_rd(["jpeg"], two_images, tmp_path / "serial", rates=RATES, workers=1, progress=False)
    out = tmp_path / "dask"
    dask = rd.run_rd(["jpeg"], two_images, out, rates=RATES, workers=2, progress=False)
    timing = ["encoding_time", "decoding_time"]
    pd.testing.assert_frame_equal(serial.drop(columns=timing).reset_index(drop=True),
                                  dask.drop(columns=timing).reset_index(drop=True))
    assert (out / "jpeg.json").read_text().count('"bpp"') == (tmp_path / "serial" / "jpeg.json").read_text().count(
        '"bpp"')
    rd.run_rd(["jpeg"], two_images, out, rates=RATES, workers=2, progress=False)
    assert sweep.SUBMITTED == []  # everything cached: nothing resubmitted
    (two_images / "broken.png").write_bytes(b"not a png")
    with pytest.raises(sweep.SweepError, match="broken.png"):
        rd.run_rd(["jpeg"], two_images, out, rates=RATES, workers=2, progress=False)
    assert [j.image.endswith("broken.png") for j in sweep.SUBMITTED] == [True]  # only the new image was submitted
    fresh = tmp_path / "fresh"
    with pytest.raises(sweep.SweepError, match="1 of 3 jobs failed"):
        rd.run_rd(["jpeg"], two_images, fresh, rates=RATES, workers=2, progress=False)
    assert len(ResultCache(fresh / "cache" / "jpeg.jsonl").read()) == 2 * 3  # the other images were measured


def _worker_environment() -> dict[str, str | None]:
    import os

    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}


def test_local_cluster_workers_keep_glibc_malloc_defaults_and_our_environment_is_restored():
    """Dask's default MALLOC_TRIM_THRESHOLD_ made every measurement ~5x slower on a worker (every tensor a fresh
    mmap); the workers must not get it, and the nanny's variables must not stay in this process's environment."""
    import os

    before = dict(os.environ)
    with sweep.dask_client(workers=2, threads_per_worker=1) as client:
        seen = list(client.run(_worker_environment).values())
    assert seen == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}] * 2
    assert dict(os.environ) == before
