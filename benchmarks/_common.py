"""What the speed benchmarks share: best-of-N timing and the one-image table runner."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from invlab.io.images import load_image, to_tensor

REPO = Path(__file__).resolve().parents[1]
KODIM01 = REPO / "data" / "kodak" / "kodim01.png"


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Fastest wall time of ``repeats`` calls of ``fn``, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run_one_image(description: str, default_models: list[str], bench: Callable[[str, torch.Tensor, int], dict]) -> None:
    """CLI (``--image --models --repeats --threads``): one table row per model from ``bench(name, x, repeats)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--image", default=str(KODIM01))
    parser.add_argument("--models", nargs="+", default=default_models)
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = to_tensor(load_image(args.image).rgb)
    rows = [bench(name, x, args.repeats) for name in args.models]
    size = f"{x.shape[-1]}x{x.shape[-2]}"
    print(f"{Path(args.image).name} {size}, CPU, {args.threads} thread(s), best of {args.repeats}")
    with pd.option_context("display.width", 250, "display.max_columns", None):
        print(pd.DataFrame(rows).to_string(index=False))
