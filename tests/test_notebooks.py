"""Notebooks 00, 01, 02 and 05 run headlessly with their quick parameters (papermill, a fresh kernel each).

Their printed text is plain text: an HTML tag in a stream output means a cell printed markup meant for a widget.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
HTML_TAG = re.compile(r"</?(b|i|div|span|code|p|br|style|table)\b[^>]*>", re.IGNORECASE)


def printed_text(nb: nbformat.NotebookNode) -> str:
    """Everything the cells printed, and results shown as plain text only (a widget's repr is not shown), joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if out.output_type == "stream":
                parts.append(out.text)
            elif set(data) == {"text/plain"}:
                parts.append(data["text/plain"])
    return "\n".join(parts)


def test_printed_text_check_sees_raw_html():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="<b>37.0422 bpp</b> -> <b>1.2 bpp</b>\n")])])
    assert HTML_TAG.search(printed_text(nb))
    assert not HTML_TAG.search("rate 1.00: 0.4 bpp -> rate 2.00: 0.9 bpp; x < y > z")


@pytest.mark.parametrize(("name", "model"), [
    ("00_quickstart", None), ("01_rate_control", None), ("02_latents_and_bits", None), ("05_invertibility", None),
    ("06_rate_maps", None),
    # a fixed-rate family whose weight files start at q1: the default rate is its first shipped index
    ("00_quickstart", "anfic-mini-noctx"), ("02_latents_and_bits", "anfic-mini-noctx"),
])
def test_notebook_runs_quick(name: str, model: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    parameters = {"quick": True} | ({"model": model} if model else {})
    papermill.execute_notebook(  # raises PapermillExecutionError, with the failing cell, on any error
        str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"), parameters=parameters,
        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False, execution_timeout=120,
    )
    text = printed_text(nbformat.read(tmp_path / f"{name}.ipynb", as_version=4))
    assert not HTML_TAG.search(text), f"{name} printed raw HTML: {HTML_TAG.search(text).group(0)!r}"


@pytest.mark.parametrize("name", ["00_quickstart", "05_invertibility"])
def test_a_notebook_runs_with_a_converted_official_weight_file(name: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch):
    """``model = "MODEL@FILE"``: the notebook codes with the user's file and its banner says where it came from."""
    import torch
    from official_fixtures import load_fixture, official_state

    from invlab.official import convert_checkpoint

    checkpoint = tmp_path / "official.pth"
    torch.save({"state_dict": official_state(load_fixture("msinn-8-postnet.pt"))}, checkpoint)
    weights = convert_checkpoint("msinn", checkpoint, tmp_path / "msinn-official.pt")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
        parameters={"quick": True, "model": f"msinn@{weights}"},
        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False, execution_timeout=120,
    )
    text = printed_text(nbformat.read(tmp_path / f"{name}.ipynb", as_version=4))
    assert "msinn: official weights from official.pth (sha256 " in text and "not trained here" in text
