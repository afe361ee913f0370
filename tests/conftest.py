"""Shared test setup: one torch thread (2-core machines), deterministic seeds, paths."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import invlab  # noqa: E402,F401  (its filter for torch.jit.script warnings)

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
KODAK = REPO / "data" / "kodak"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def kodak_dir() -> Path:
    return KODAK


@pytest.fixture
def small_rgb() -> np.ndarray:
    """A 48x40 crop of kodim23 (non-square, not a multiple of 16)."""
    from PIL import Image

    with Image.open(KODAK / "kodim23.png") as img:
        return np.asarray(img.convert("RGB"))[200:248, 300:340].copy()
