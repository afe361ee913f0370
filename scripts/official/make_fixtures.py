"""Make the official-code fixtures in tests/fixtures/official (run once, by hand; never in CI).

    git clone https://github.com/xyq7/InvCompress /tmp/InvCompress
    .venv/bin/python scripts/official/make_fixtures.py invcompress /tmp/InvCompress tests/fixtures/official

The official code runs from a copy of its own package (its C++ entropy coder replaced by stubs: only the forward
pass runs), in a process that never imports invlab. Its large weights are filled by the rule in
tests/official_fixtures.py, its biases with small random values; the fixture stores the names, shapes, small
tensors, a 128x128 crop of kodim23 and the official outputs (latent, likelihoods, reconstruction).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STUBS = {
    "_CXX.py": "def pmf_to_quantized_cdf(*args, **kwargs):\n    raise NotImplementedError('not needed for forward')\n",
    "ans.py": "class BufferedRansEncoder: ...\nclass RansEncoder: ...\nclass RansDecoder: ...\n",
}


def invcompress(official: Path, out: Path, commit: str, size: int = 128) -> None:
    import numpy as np
    import torch
    from PIL import Image

    work = Path(tempfile.mkdtemp())
    shutil.copytree(official / "codes" / "compressai", work / "compressai")
    for name, text in STUBS.items():
        (work / "compressai" / name).write_text(text)
    sys.path[:0] = [str(work), str(REPO / "tests")]
    from compressai.models.ours import InvCompress  # the official class (its package shadows any other compressai)
    from official_fixtures import fill, generated, small_bias

    img = np.asarray(Image.open(REPO / "data" / "kodak" / "kodim23.png").convert("RGB"))[200:200 + size, 300:300 + size]
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    for width in (128, 192):
        torch.manual_seed(0)
        np.random.seed(0)
        net = InvCompress(N=width).eval()
        state, keys, stored = net.state_dict(), [], {}
        for k, v in state.items():
            keys.append([k, list(v.shape)])
            if generated(k, v.shape):
                state[k] = fill(k, v.shape)
            else:
                state[k] = stored[k] = small_bias(k, v.shape) if k.endswith("bias") else v.clone()
        net.load_state_dict(state)
        with torch.no_grad():
            y, o = net.g_a_func(x), net(x)
        path = out / f"invcompress-N{width}.pt"
        torch.save({"repository": "xyq7/InvCompress", "commit": commit, "width": width, "keys": keys,
                    "stored": stored, "x": torch.from_numpy(img.copy()), "y": y, "likelihoods": o["likelihoods"],
                    "x_hat": o["x_hat"]}, path)
        bits = {k: round(float(-torch.log2(v).sum()), 2) for k, v in o["likelihoods"].items()}
        print(f"{path}: N={width}, y {tuple(y.shape)}, estimated bits {bits}, {path.stat().st_size / 1e6:.2f} MB")


FAMILIES = {"invcompress": invcompress}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family", choices=sorted(FAMILIES))
    parser.add_argument("official", type=Path, help="a checkout of the official repository")
    parser.add_argument("out", type=Path, help="folder for the fixtures")
    parser.add_argument("--commit", help="the official commit (default: the checkout's HEAD)")
    args = parser.parse_args()
    commit = args.commit or subprocess.run(["git", "-C", str(args.official), "rev-parse", "HEAD"], check=True,
                                           capture_output=True, text=True).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    FAMILIES[args.family](args.official, args.out, commit)


if __name__ == "__main__":
    main()
