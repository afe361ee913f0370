"""Notebook 03 runs headlessly (quick mode, and its default on the tracked results, which it must leave alone);
the rd_plots functions it calls work on their own."""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path

import nbformat
import papermill
import pytest

from invlab.eval.anchors import load_anchor
from invlab.eval.names import ANCHOR_LABELS
from invlab.eval.report import BD_DIGITS, display_table, reading, render, replace_block, results_table
from invlab.widgets.rd_plots import (
    LEGEND_COLUMNS,
    LEGEND_LINE_CHARS,
    LEGEND_ROW_PX,
    collect_curves,
    curated,
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
    assert printed.count("wrote ") == 6 and str(FIGURES) not in printed  # 3 formats x 2 column widths


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
    assert [p.name for p in paths] == ["rd_kodak.svg", "rd_kodak.png", "rd_kodak-single.svg", "rd_kodak-single.png"]
    assert all(p.stat().st_size > 1000 for p in paths)


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
    assert "family (2 files, 1.8 CPU-h, 1,500 steps)" in names and "jpeg" in names  # "-eval" is not shown


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


def _pdf_facts(path: Path) -> tuple[float, set[float], int]:
    """(page width in inches, the font sizes its text is set in, embedded TrueType font files) of a PDF."""
    data = path.read_bytes()
    width = float(re.search(rb"/MediaBox \[ *0 0 ([\d.]+) ", data).group(1)) / 72
    sizes = set()
    for stream in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            sizes |= {float(v) for v in re.findall(rb"/F\d+ ([\d.]+) Tf", zlib.decompress(stream.group(1)))}
        except zlib.error:
            continue
    return width, sizes, data.count(b"/FontFile2")


def test_paper_exports_have_ieee_widths_small_text_and_embedded_fonts(tmp_path: Path):
    curves = curated(collect_curves(REPO / "results" / "kodak"))
    paths = export_figures(curves, tmp_path, formats=["pdf"])
    assert [p.name for p in paths] == ["rd_kodak.pdf", "rd_kodak-single.pdf"]
    for path, inches in zip(paths, (7.16, 3.5), strict=True):
        width, sizes, fonts = _pdf_facts(path)
        assert width == pytest.approx(inches, abs=0.01), path.name
        assert sizes and all(7 <= s <= 9 for s in sizes), (path.name, sizes)
        assert fonts >= 1, f"{path.name}: fonts not embedded"


def test_every_curve_has_its_own_colour_and_style_and_the_codec_keeps_its_colour():
    curves = collect_curves(REPO / "results" / "kodak")
    fig = rd_figure(curves)
    psnr = [t for t in fig.data if t.xaxis == "x"]
    looks = [(t.line.color, t.line.dash, t.marker.symbol) for t in psnr]
    assert len(psnr) == len(curves) and len(set(looks)) == len(looks)
    alone = rd_figure({"msinn-mini-12-eval": curves["msinn-mini-12-eval"]}).data[0]
    assert alone.line.color == next(t for t in psnr if t.name.startswith("msinn-mini-12 ")).line.color
    kinds = {t.name.split(" ")[0]: t.line.dash for t in psnr}
    assert kinds["msinn-mini-12"] == "solid" and kinds["mbt2018-mean-mini"] == "dash" and kinds["jpeg"] == "dot"
    assert fig.layout.xaxis.type == "log"  # 0.05-4 bpp: more than a decade


def test_the_curated_selection_keeps_each_familys_best_and_the_published_curves():
    curves = collect_curves(REPO / "results" / "kodak")
    shown = curated(curves)
    assert "msinn-mini-12-eval" in shown and "msinn-mini-eval" not in shown  # the better MSINN mini only
    assert "jpeg" in shown and "webp" not in shown
    assert all(label in shown for label in (ANCHOR_LABELS["vtm"], ANCHOR_LABELS["msinn-12"]))
    assert 6 <= len(shown) < len(curves)


def test_the_display_table_names_the_anchor_and_leaves_out_what_has_no_bd_value():
    table = display_table(REPO / "results" / "kodak")
    assert "BD-rate vs VTM (%)" in table and "BD-PSNR vs VTM (dB)" in table
    assert table["BD-rate vs VTM (%)"].notna().all() and table["BD-rate vs VTM (%)"].is_monotonic_increasing
    assert not any(name.endswith("-eval") for name in table.index)
    assert sum("vvenc" in name.lower() or "vvc" in name.lower() for name in table.index) == 1
    assert reading(table).startswith("BD-rate vs VTM: ") and "msinn-mini" in reading(table)
