"""How much of an MSINN model's quality is its post-net's: PSNR of the decoder's picture x̂ and of the INN's own
reconstruction x̃ (the same files decoded without the post-net), per rate, on the first Kodak images.

    python -m benchmarks.postnet_share                                   # msinn-mini-12, 4 images, rates 0 3 6 9
    python -m benchmarks.postnet_share --model msinn-mini-12@/tmp/w/msinn-mini-12.pt --json results/x.json

x̃ is decoded from the very same file (the post-net acts after the symbols, so the file does not change). Also:
x̃'s PSNR with its mean error per colour channel taken out (how much of the gap a colour offset explains) and
that offset's largest channel, in 8-bit levels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from invlab.codecs.learned import LearnedCodec
from invlab.datasets import list_images
from invlab.io.images import load_image
from invlab.metrics import bpp, psnr


def measure(model: str, images: int, rates: list[float]) -> pd.DataFrame:
    with_postnet, without = LearnedCodec(model), LearnedCodec(model, postnet=None)
    rows = []
    for path in list_images("kodak")[:images]:
        rgb = load_image(path).rgb
        for rate in rates:
            data, x_hat = with_postnet.encode_with_reconstruction(rgb, rate)
            # the same streams under the model without its post-net: a file of its own (its options differ)
            x_tilde = without.decode(without.encode(rgb, rate))
            # how much of the gap is a colour offset: x̃ with its mean error per channel taken out
            offset = (rgb.astype(np.float64) - x_tilde).mean(axis=(0, 1))
            shifted = np.clip(np.round(x_tilde + offset), 0, 255).astype(np.uint8)
            rows.append({"image": path.stem, "rate": rate, "bpp": bpp(len(data), *rgb.shape[:2]),
                         "PSNR x̂": psnr(rgb, x_hat), "PSNR x̃": psnr(rgb, x_tilde),
                         "PSNR x̃, offset removed": psnr(rgb, shifted), "offset (levels)": float(np.abs(offset).max())})
    table = pd.DataFrame(rows)
    table["post-net share (dB)"] = table["PSNR x̂"] - table["PSNR x̃"]
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="msinn-mini-12", help="an MSINN model, or MODEL@FILE")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 3.0, 6.0, 9.0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    table = measure(args.model, args.images, args.rates)
    means = table.drop(columns="image").groupby("rate").mean().round(3)
    print(means.to_string())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "means": means.reset_index().to_dict("records"),
                                         "rows": table.to_dict("records")}, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
