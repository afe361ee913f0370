"""What the speed benchmarks share: best-of-N timing and the one-image table runner."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from invlab.io.images import load_image, pad_to_multiple, to_tensor
from invlab.models.base import InvlabModel, count_parameters
from invlab.weights import has_weights, load_model

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


@dataclass
class CodingRun:
    """One model coding one (padded) image: what every speed table reports, plus the raw outputs."""

    model: InvlabModel
    trained: bool
    x: torch.Tensor  # padded input
    encode_s: float
    decode_s: float
    enc: dict
    dec: dict

    def row(self, name: str, pixels: int) -> dict:
        """The columns every benchmark shares (bpp over the unpadded ``pixels``)."""
        n_bytes = sum(len(s) for s in self.enc["strings"])
        return {"model": name, "weights": "trained" if self.trained else "untrained",
                "params (M)": round(count_parameters(self.model) / 1e6, 3), "encode (s)": round(self.encode_s, 3),
                "decode (s)": round(self.decode_s, 3), "bpp": round(8 * n_bytes / pixels, 3)}


@torch.no_grad()
def time_coding(name: str, x: torch.Tensor, repeats: int, rate: float | None = None, **overrides: Any) -> CodingRun:
    """Load ``name`` (shipped weights when there are, else untrained), pad ``x``, time compress and decompress."""
    trained = has_weights(name)
    model = load_model(name, pretrained=trained, **overrides)
    x_pad, _ = pad_to_multiple(x, model.pad_multiple)
    t_enc, enc = best_time(lambda: model.compress(x_pad, rate), repeats)
    t_dec, dec = best_time(lambda: model.decompress(enc["strings"], enc["shape"], rate), repeats)
    return CodingRun(model, trained, x_pad, t_enc, t_dec, enc, dec)
