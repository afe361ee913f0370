"""Notebooks 00, 01, 02 and 05 run headlessly with their quick parameters (papermill, a fresh kernel each)."""

from __future__ import annotations

from pathlib import Path

import papermill
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("name", ["00_quickstart", "01_rate_control", "02_latents_and_bits", "05_invertibility"])
def test_notebook_runs_quick(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    papermill.execute_notebook(  # raises PapermillExecutionError, with the failing cell, on any error
        str(NOTEBOOKS / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"), parameters={"quick": True},
        cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False, execution_timeout=120,
    )
