"""Training throughput on this machine: samples/s per mini model x precision x crop (one Adam step with backward).

    OMP_NUM_THREADS=2 python benchmarks/train_speed.py [--models ...] [--precisions fp32 bf16] [--crops 128]
                                                        [--batch-size 8] [--steps 6] [--threads 2]
                                                        [--memory-formats contiguous channels_last]

Each configuration runs the real :class:`invlab.train.trainer.Trainer` step (forward, rate-distortion loss,
backward, clipping, Adam, aux step) on random crops of the folder given by ``--data`` (default: random
noise images made here, since the network's cost does not depend on the pixels), after ``--warmup`` steps.
``--memory-formats contiguous channels_last`` also times each configuration with the model and its batches
in channels-last layout (the trainer's default is contiguous NCHW). Prints a markdown table (docs/training.md's)
and, with ``--csv``, writes it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from invlab.train.trainer import TrainConfig, Trainer

MINI_MODELS = ["msinn-mini", "bmshj2018-hyperprior-mini", "mbt2018-mean-mini", "anfic-mini-noctx", "anfic-mini",
               "manfic-mini", "msanfic-mini", "invcompress-mini", "invcompress-mini-cb"]


def _noise_folder(folder: Path, size: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"n{i}.png")
    return folder


def samples_per_second(model: str, precision: str, crop: int, batch: int, data: Path, steps: int, warmup: int,
                       run_dir: Path, memory_format: str = "contiguous") -> float:
    cfg = TrainConfig(model=model, data=str(data), run_dir=str(run_dir), batch_size=batch, crop=crop,
                      max_steps=10**6, precision=precision, progress=False, lr=5e-4,
                      **({} if model.startswith("msinn") or model == "tiny-flow" else {"rate_index": 2}))
    trainer = Trainer(cfg)
    if memory_format == "channels_last":
        trainer.model.to(memory_format=torch.channels_last)
        batches = trainer.train_data.train_batch
        trainer.train_data.train_batch = lambda *a: batches(*a).contiguous(memory_format=torch.channels_last)
    for _ in range(warmup):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MINI_MODELS)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--crops", type=int, nargs="+", default=[128])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-formats", nargs="+", choices=["contiguous", "channels_last"],
                        default=["contiguous"])
    parser.add_argument("--data", help="training images (default: noise images made here)")
    parser.add_argument("--csv", help="also write the table as CSV")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else _noise_folder(Path(tmp), max(args.crops))
        for model in args.models:
            row = {"model": model}
            for crop in args.crops:
                for precision in args.precisions:
                    for layout in args.memory_formats:
                        run_dir = Path(tmp) / f"run-{model}-{crop}-{precision}-{layout}"
                        sps = samples_per_second(model, precision, crop, args.batch_size, data, args.steps,
                                                 args.warmup, run_dir, layout)
                        suffix = "" if layout == "contiguous" else f" {layout}"
                        row[f"{precision} {crop}²{suffix} samples/s"] = round(sps, 1)
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows)
    print(f"\n{args.threads} threads, batch {args.batch_size}, {args.steps} timed steps after {args.warmup}:\n")
    print("| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns))
    for _, row in table.iterrows():
        print("| " + " | ".join(str(v) for v in row) + " |")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
