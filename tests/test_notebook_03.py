"""Notebook 03 runs headlessly in quick mode; the rd_plots functions it calls work on their own."""

from __future__ import annotations

import json
from pathlib import Path

import papermill
import pytest

from invlab.eval.anchors import load_anchor
from invlab.eval.report import render, replace_block
from invlab.widgets.rd_plots import collect_curves, export_figures, rd_figure

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_rd_curves.ipynb"


def test_notebook_03_runs_quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters={"quick": True}, cwd=str(NOTEBOOK.parent),
        kernel_name="python3", progress_bar=False, execution_timeout=120,
    )


def test_collect_and_figures_with_anchors_only(tmp_path: Path):
    curves = collect_curves(tmp_path / "missing", anchors=["vtm", "invcompress"])
    assert len(curves) == 2
    fig = rd_figure(curves)
    assert len(fig.data) == 4  # PSNR + MS-SSIM for each (both files have MS-SSIM)
    paths = export_figures(curves, tmp_path / "figs", formats=["svg", "png"])
    assert [p.suffix for p in paths] == [".svg", ".png"] and all(p.stat().st_size > 1000 for p in paths)


def test_report_block_replacement(tmp_path: Path):
    (tmp_path / "kodak").mkdir()
    src = load_anchor("jpeg").source
    (tmp_path / "kodak" / "jpeg.json").write_text(Path(src).read_text())
    block = render(tmp_path)
    assert "| jpeg |" in block and "invcompress (anchor)" in block
    readme = "intro\n<!-- results:start -->\nold\n<!-- results:end -->\nrest\n"
    new = replace_block(readme, block)
    assert new.startswith("intro\n<!-- results:start -->\n") and new.endswith("<!-- results:end -->\nrest\n")
    assert "old" not in new and replace_block(new, block) == new
    with pytest.raises(ValueError):
        replace_block("no markers", block)


def test_report_passes_over_other_json_and_takes_a_result_file_as_anchor(tmp_path):
    kodak, study = tmp_path / "kodak", tmp_path / "reencoding"
    kodak.mkdir()
    study.mkdir()
    vtm = load_anchor("vtm")
    curve = {"name": "ours", "results": {"bpp": list(vtm.bpp * 0.9), "psnr-rgb": list(vtm.psnr)}}
    (kodak / "ours.json").write_text(json.dumps(curve))
    (study / "summary.json").write_text('[{"codec": "jpeg"}]')  # not an RD curve: no block, no crash
    text = render(tmp_path, anchor=str(kodak / "ours.json"))
    assert "**kodak**" in text and "reencoding" not in text
    assert "| ours | 8 |" in text and "| 0.00 |" in text  # BD of a curve against itself
