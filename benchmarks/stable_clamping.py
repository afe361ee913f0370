"""Why the stable re-encoding mode can still drift: the 8-bit picture clamps the INN's reconstruction x̃ to [0, 1],
and clamping is not inverted by the INN. Per generation of the stable mode on one image: the share of x̃'s values
outside [0, 1] (and its range), the symbols that changed from the previous generation, the pixels that changed,
and how many of those lie within ``--near`` pixels of a clamped one (beside the share of all pixels that do).

    python -m benchmarks.stable_clamping --model msinn-mini-12 --image data/kodak/kodim23.png --rate 4.8984375 \\
        --json results/reencoding/stable-clamping-msinn-mini-12-kodim23.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import STABLE_SUFFIX
from invlab.io.images import load_image, to_tensor, to_uint8
from invlab.models.base import eval_mode


@torch.inference_mode()
def measure(model_name: str, image: Path, rate: float, generations: int, near: int) -> list[dict]:
    model = LearnedCodec(model_name + STABLE_SUFFIX).model(rate)
    rgb = load_image(image).rgb
    h, w = rgb.shape[:2]
    z, previous, rows = to_tensor(rgb), None, []
    with eval_mode(model):
        for generation in range(1, generations + 1):
            padded = model.pad(z)
            x_tilde = model.crop(model(padded, torch.tensor([rate]))["x_tilde"], h, w)
            symbols = model.scale_symbols(padded, rate)
            picture = to_tensor(to_uint8(x_tilde.clamp(0, 1)))
            clamped = ((x_tilde < 0) | (x_tilde > 1)).any(dim=1, keepdim=True).float()
            close = F.max_pool2d(clamped, 2 * near + 1, stride=1, padding=near)[0, 0] > 0
            moved = (picture != z).any(dim=1)[0]
            row = {"generation": generation, "x̃ outside [0, 1] (%)": 100 * float((x_tilde < 0).float().mean()
                                                                                   + (x_tilde > 1).float().mean()),
                   "x̃ min": float(x_tilde.min()), "x̃ max": float(x_tilde.max())}
            if previous is not None:
                row["symbols changed"] = sum(int((symbols[k] != previous[k]).sum()) for k in symbols)
                row["pixels changed"] = int(moved.sum())
                row["of them near a clamped pixel (%)"] = 100 * float((moved & close).sum()) / max(int(moved.sum()), 1)
                row["all pixels near a clamped pixel (%)"] = 100 * float(close.float().mean())
            rows.append(row)
            previous, z = symbols, picture
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="msinn-mini-12", help="an MSINN model (its forward gives x_tilde)")
    parser.add_argument("--image", type=Path, default=Path("data/kodak/kodim23.png"))
    parser.add_argument("--rate", type=float, default=4.8984375)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--near", type=int, default=16, help="pixels: how close to a clamped pixel counts as near")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = measure(args.model, args.image, args.rate, args.generations, args.near)
    for row in rows:
        print("  ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**vars(args), "image": str(args.image), "json": None, "rows": rows},
                                        indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
