"""CPU encode/decode time of MSINN-VRLIC per Kodak image (target: msinn-mini decodes in under 1 s).

Usage (1 thread, Kodak images are 768x512)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/msinn_speed.py [--images data/kodak/kodim01.png ...]
        [--models msinn-mini] [--rate 3.0] [--repeats 1] [--without-postnet] [--entropy exact float] [--profile]

Models without shipped weights run untrained (said in the table): the timing is the real work of the
coder (the network cost does not depend on the weights), but bytes/bpp are not meaningful. Each row also
checks that decode == the encoder-side reconstruction (the coded forward). ``--entropy``: the entropy parameters'
arithmetic (exact fixed point, the default, or the float path of the files made before), a row per choice.
``--profile`` prints the operators that dominate one decode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
from _common import REPO, time_coding  # benchmarks/ is on sys.path when run as a script

from invlab.io.images import load_image, pad_to_multiple, to_tensor
from invlab.weights import has_weights, load_model


def bench(name: str, image: Path, rate: float, repeats: int, postnet: bool = True, entropy: str = "exact") -> dict:
    x = to_tensor(load_image(image).rgb)
    run = time_coding(name, x, repeats, rate, entropy=entropy, **({} if postnet else {"postnet": None}))
    recon = run.model.coded_forward(run.x, rate)["x_hat"].clamp(0, 1)
    return {
        **run.row(name, x.shape[-2] * x.shape[-1]),
        "image": image.name,
        "post-net": run.model.config["postnet"],
        "entropy": entropy,
        "rate": rate,
        "decode == encoder recon": bool(torch.equal(run.dec["x_hat"], recon)),
    }


def profile_decode(name: str, image: Path, rate: float) -> None:
    model = load_model(name, pretrained=has_weights(name))
    x, _ = pad_to_multiple(to_tensor(load_image(image).rgb), model.pad_multiple)
    enc = model.compress(x, rate)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        model.decompress(enc["strings"], enc["shape"], rate)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", nargs="+", default=[str(REPO / "data" / "kodak" / "kodim01.png")])
    parser.add_argument("--models", nargs="+", default=["msinn-mini"])
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=1, help="best of N runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--without-postnet", action="store_true", help="add rows with the post-net switched off")
    parser.add_argument("--entropy", nargs="+", choices=["exact", "float"], default=["exact"],
                        help="the entropy parameters' arithmetic (a row per choice)")
    parser.add_argument("--profile", action="store_true", help="operator profile of one decode")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = [Path(p) for p in args.images]
    variants = [True, False] if args.without_postnet else [True]
    rows = [bench(name, image, args.rate, args.repeats, postnet, entropy) for name in args.models
            for postnet in variants for entropy in args.entropy for image in images]
    print(f"CPU, {torch.get_num_threads()} thread(s), best of {args.repeats}, torch {torch.__version__}")
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(pd.DataFrame(rows).to_string(index=False))
    if args.profile:
        profile_decode(args.models[0], images[0], args.rate)


if __name__ == "__main__":
    main()
