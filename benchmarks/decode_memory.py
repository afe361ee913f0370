"""Peak memory of decoding, as a function of the image size, for every registered learned model.

    python benchmarks/decode_memory.py [--sizes 128 256 512] [--models msinn-mini ...]

Each (model, size): encode a noise image of size x size here (untrained weights; the network's memory does
not depend on the weights), decode it in a fresh subprocess after a warm-up decode; the peak resident
memory above the level before the decode (sampled every 2 ms) is the figure. The largest figure per pixel
over the sizes is what ``InvlabModel.decode_bytes_per_pixel`` declares (the decoder's pixel limit follows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

CHILD = r"""
import json, sys, threading, time
import numpy as np, torch
torch.set_num_threads(1)
from invlab.codecs.learned import LearnedCodec
name, path = sys.argv[1], sys.argv[2]
codec = LearnedCodec(name, pretrained=False)
codec.decode(codec.encode(np.zeros((16, 16, 3), np.uint8), codec.rates[0]))  # warm-up: tables, allocator
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
peak, done = [rss()], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)
data = open(path, "rb").read()
base = rss()
thread = threading.Thread(target=sample)
thread.start()
codec.decode(data)
done.set()
thread.join()
print(json.dumps({"growth": max(peak[0], rss()) - base}))
"""


def measure(name: str, size: int, folder: Path) -> int:
    """Bytes the decode of a size x size file adds to the process's peak (encoded here, decoded in a child)."""
    from invlab.codecs.learned import LearnedCodec

    codec = LearnedCodec(name, pretrained=False)
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    path = folder / f"{name}-{size}.invl"
    path.write_bytes(codec.encode(rgb, codec.rates[len(codec.rates) // 2]))
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(path)], capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=1800)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["growth"]


def main() -> None:
    from invlab.models import list_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--models", nargs="+", default=[m for m in list_models() if m not in ("invcompress", "anfic",
                                                                                             "msinn")])
    args = parser.parse_args()
    print(f"{'model':28s} " + " ".join(f"{s:>7d}²" for s in args.sizes) + "   bytes/pixel (max)")
    torch.set_num_threads(1)
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            peaks = [measure(name, s, Path(tmp)) for s in args.sizes]
        px = [s * s for s in args.sizes]
        per_pixel = max(p / n for p, n in zip(peaks, px, strict=True))
        print(f"{name:28s} " + " ".join(f"{p / 2**20:7.0f}M" for p in peaks) + f"   {per_pixel:8.0f}", flush=True)


if __name__ == "__main__":
    main()
