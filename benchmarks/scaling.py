"""Beyond one process, measured on this machine: an RD sweep serial vs on Dask workers, and DDP training.

    python benchmarks/scaling.py [--codecs jpeg webp] [--images 24] [--train-steps 120] [--json PATH]

1. ``invlab rd`` of ``--codecs`` over the first ``--images`` Kodak images, fresh each time (a temporary output
   folder): once serial (``workers=1``, in this process), once on a local Dask cluster of 2 workers x 1 thread;
   the wall times and their ratio.
2. msinn-mini training throughput (batch 8, crop 128, bf16; random crops of ``--data``): 1 process x 2 torch
   threads (``invlab train``) vs 2 processes x 1 thread (``torchrun --nproc-per-node 2``, DDP over gloo), in
   samples/s over the last ``--train-steps`` - 20 steps (the first 20 warm up).

Run it on an otherwise idle machine: the numbers are what docs/training.md reports under its scaling measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def rd_wall_seconds(codecs: list[str], images: int, workers: int) -> float:
    from invlab.eval.rd import run_rd

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "kodak"
        data.mkdir()
        for path in sorted((REPO / "data" / "kodak").glob("kodim*.png"))[:images]:
            (data / path.name).symlink_to(path)
        start = time.perf_counter()
        run_rd(codecs, dataset=data, out_dir=Path(tmp) / "out", workers=workers, progress=False)
        return time.perf_counter() - start


def train_samples_per_second(data: str, steps: int, processes: int) -> float:
    """Samples/s of msinn-mini over steps 21..``steps`` (the log's step timestamps)."""
    with tempfile.TemporaryDirectory() as run:
        threads = 2 // processes
        common = ["msinn-mini", "--data", data, "--run-dir", run, "--batch-size", "8", "--crop", "128",
                  "--precision", "bf16", "--lr", "5e-4", "--max-steps", str(steps), "--log-every", "1",
                  "--val-every", "1000000", "--ckpt-every", "1000000", "--no-progress", "--device", "cpu"]
        bin_dir = Path(sys.executable).parent
        cmd = ([str(bin_dir / "invlab"), "train", *common] if processes == 1 else
               [str(bin_dir / "torchrun"), "--standalone", "--nproc-per-node", str(processes), "-m", "invlab.train",
                *common])
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        records = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
        train = {r["step"]: r["seconds"] for r in records if r["split"] == "train"}
        return 8 * (steps - 20) / (train[steps] - train[20])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codecs", nargs="+", default=["jpeg", "webp"])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "train"))
    parser.add_argument("--train-steps", type=int, default=120)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args()
    serial = rd_wall_seconds(args.codecs, args.images, workers=1)
    dask = rd_wall_seconds(args.codecs, args.images, workers=2)
    one = train_samples_per_second(args.data, args.train_steps, processes=1)
    two = train_samples_per_second(args.data, args.train_steps, processes=2)
    result = {
        "rd": {"codecs": args.codecs, "images": args.images, "serial_s": round(serial, 1),
               "dask_2x1_s": round(dask, 1), "speed_up": round(serial / dask, 2)},
        "train_msinn_mini": {"samples_per_s_1proc_2threads": round(one, 2),
                             "samples_per_s_2proc_1thread": round(two, 2), "ratio": round(two / one, 2)},
        "command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
