"""Notebook 03 runs headlessly (quick mode, and its default on the tracked results, which it must leave alone);
the rd_plots functions it calls work on their own."""

from __future__ import annotations

import json
import math
from pathlib import Path

import nbformat
import papermill
import pytest

from invlab.eval.anchors import load_anchor
from invlab.eval.report import BD_DIGITS, render, replace_block, results_table
from invlab.widgets.rd_plots import (
    ANCHOR_LABELS,
    LEGEND_COLUMNS,
    LEGEND_LINE_CHARS,
    LEGEND_ROW_PX,
    collect_curves,
    export_figures,
    rd_figure,
    wrap_label,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "03_rd_curves.ipynb"
FIGURES = REPO / "results" / "figures"


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **parameters) -> str:
    """Run the notebook with ``parameters``; returns its printed text. The tracked figures must not change."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    tracked = {p: p.read_bytes() for p in FIGURES.iterdir()}
    try:
        papermill.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters=parameters, cwd=str(NOTEBOOK.parent),
            kernel_name="python3", progress_bar=False, execution_timeout=120,
        )
        changed = [p.name for p, data in tracked.items() if p.read_bytes() != data]
        assert not changed, f"running notebook 03 rewrote {changed}"
        assert sorted(FIGURES.iterdir()) == sorted(tracked), "running notebook 03 added files to results/figures"
    finally:
        for p, data in tracked.items():  # leave the checkout as it was, whatever happened
            if p.read_bytes() != data:
                p.write_bytes(data)
    nb = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_notebook_03_runs_quick(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    printed = _run(tmp_path, monkeypatch, quick=True, export_figures=True)  # exports into its temporary folder
    assert printed.count("wrote ") == 3 and str(FIGURES) not in printed


def test_notebook_03_default_run_exports_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    printed = _run(tmp_path, monkeypatch)  # the default: plot results/kodak, the tracked results
    assert "not exported (export_figures = False)" in printed and "wrote " not in printed


def test_exported_figures_are_byte_stable(tmp_path: Path):
    curves = collect_curves(tmp_path / "missing", anchors=["vtm", "invcompress"])
    first = export_figures(curves, tmp_path / "a", formats=["pdf", "svg", "png"])
    second = export_figures(curves, tmp_path / "b", formats=["pdf", "svg", "png"])
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.suffix} export differs between two runs"


def test_every_curve_has_room_in_the_legend():
    curves = collect_curves(REPO / "results" / "kodak")
    assert len(curves) >= 12  # the tracked results and the published anchors
    fig = rd_figure(curves)
    legend = fig.layout.legend
    assert legend.orientation == "h" and legend.yref == "container" and legend.yanchor == "bottom"
    assert sum(bool(t.showlegend is not False) for t in fig.data) == len(curves)  # one entry per curve
    few = rd_figure(dict(list(curves.items())[:LEGEND_COLUMNS]))
    assert fig.layout.height > few.layout.height  # the figure grows with the legend rows
    names = [t.name for t in fig.data if t.showlegend is not False]
    assert all(len(line) <= LEGEND_LINE_CHARS for name in names for line in name.split("<br>"))


def test_long_legend_labels_wrap_and_the_legend_grows():
    label = "msinn-mini-12-eval (8.7 GPU-min (NVIDIA H200), 2,965 steps, warm from msinn-mini (+14.1 CPU-h))"
    wrapped = wrap_label(label, width=40)
    assert wrapped.replace("<br>", " ") == label  # nothing lost, only broken at spaces
    assert wrapped.count("<br>") == 2 and all(len(line) <= 40 for line in wrapped.split("<br>"))
    assert wrap_label("short", width=40) == "short" and wrap_label("x" * 50, width=40) == "x" * 50
    vtm = load_anchor("vtm")
    one_line = rd_figure({"a": vtm, "b": vtm})
    two_lines = rd_figure({"a": vtm, "b " + "y" * LEGEND_LINE_CHARS: vtm})
    assert two_lines.layout.height == one_line.layout.height + LEGEND_ROW_PX


def test_bd_table_is_rounded_for_display():
    exact = results_table(REPO / "results" / "kodak")
    shown = results_table(REPO / "results" / "kodak", rounded=True)
    for column, digits in BD_DIGITS.items():
        values = shown[column].dropna()
        assert len(values) and all(math.isclose(v, round(v, digits)) for v in values)
        assert (shown[column] - exact[column]).abs().max() <= 0.5 * 10**-digits + 1e-12


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


def _fake_result(folder: Path, name: str, weights: list[dict] | None, trained: bool = True) -> None:
    meta = {"trained": trained, **({"weights": weights} if weights is not None else {})}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({
        "name": name, "description": "", "meta": meta,
        "results": {"bpp": [0.2, 0.5, 1.0], "psnr-rgb": [29.0, 32.0, 35.0]}}))


def test_a_learned_models_training_budget_is_in_the_table_and_the_legend(tmp_path: Path):
    kodak = tmp_path / "kodak"
    _fake_result(kodak, "family-eval", [{"training_steps": 1000, "training_cpu_hours": 1.25},
                                        {"training_steps": 500, "training_cpu_hours": 0.5}])
    _fake_result(kodak, "flow-eval", [{"training_steps": 200, "training_cpu_hours": None}])
    _fake_result(kodak, "jpeg", None)  # a classical codec: no weights, no budget
    _fake_result(kodak, "gpu-eval", [{"training_steps": 2965, "training_cpu_hours": None,
                                      "training_gpu": "8.7 GPU-min (NVIDIA H200)"}])
    table = results_table(kodak, published=())
    assert table.loc["gpu-eval", "training"] == "8.7 GPU-min (NVIDIA H200), 2,965 steps"
    assert table.loc["family-eval", "training"] == "2 files, 1.8 CPU-h, 1,500 steps"
    assert table.loc["flow-eval", "training"] == "200 steps"  # what is unknown is not made up
    assert table.loc["jpeg", "training"] == "-"
    names = [t.name for t in rd_figure(collect_curves(kodak, anchors=["vtm"])).data if t.showlegend is not False]
    assert "family-eval (2 files, 1.8 CPU-h, 1,500 steps)" in names and "jpeg" in names


def test_only_draws_the_named_results_beside_the_anchors(tmp_path: Path):
    """A converted model's measured curve beside its paper's: ``only`` keeps the named results, anchors stay."""
    from invlab.errors import InvlabError

    for name in ("msinn@msinn-official-eval", "jpeg"):
        payload = {"name": name, "results": {"bpp": [0.2, 0.5], "psnr-rgb": [28.0, 31.0], "ms-ssim-rgb": [0.9, 0.95]}}
        (tmp_path / f"{name}.json").write_text(json.dumps(payload))
    curves = collect_curves(tmp_path, ["msinn-12"], only=["msinn@msinn-official-eval"])
    assert list(curves) == ["msinn@msinn-official-eval", ANCHOR_LABELS["msinn-12"]]
    assert len(collect_curves(tmp_path, ["msinn-12"])) == 3
    with pytest.raises(InvlabError, match="no results named msinn-official"):
        collect_curves(tmp_path, [], only=["msinn-official"])
