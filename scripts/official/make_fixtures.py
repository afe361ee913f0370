"""Make the official-code fixtures in tests/fixtures/official (run once, by hand; never in CI).

    git clone https://github.com/xyq7/InvCompress /tmp/InvCompress
    .venv/bin/python scripts/official/make_fixtures.py invcompress /tmp/InvCompress tests/fixtures/official
    git clone https://github.com/hytu99/MSINN-VRLIC /tmp/MSINN
    .venv/bin/python scripts/official/make_fixtures.py msinn /tmp/MSINN tests/fixtures/official

The official code runs in a process that never imports invlab: InvCompress from a copy of its own CompressAI
fork (its C++ entropy coder replaced by stubs: only the forward pass runs), MSINN-VRLIC with the installed
CompressAI. Large weights are filled by the rule in tests/official_fixtures.py, biases (and MSINN's gains and
ActNorm parameters) with small random values; a fixture stores the names, shapes, small tensors, mask patterns,
a crop of kodim23 and the official outputs (latents, likelihoods, reconstruction).
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
    from official_fixtures import fill, generated, is_mask, small_bias

    img = np.asarray(Image.open(REPO / "data" / "kodak" / "kodim23.png").convert("RGB"))[200:200 + size, 300:300 + size]
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    for width in (128, 192):
        torch.manual_seed(0)
        np.random.seed(0)
        net = InvCompress(N=width).eval()
        state, keys, stored, masks = net.state_dict(), [], {}, {}
        for k, v in state.items():
            keys.append([k, list(v.shape)])
            if generated(k, v.shape):
                state[k] = fill(k, v.shape)
            elif is_mask(k, v.shape):
                masks[k] = v[0, 0].clone()
            else:
                state[k] = stored[k] = small_bias(k, v.shape) if k.endswith("bias") else v.clone()
        net.load_state_dict(state)
        with torch.no_grad():
            y, o = net.g_a_func(x), net(x)
        path = out / f"invcompress-N{width}.pt"
        torch.save({"repository": "xyq7/InvCompress", "commit": commit, "width": width, "keys": keys,
                    "stored": stored, "masks": masks, "x": torch.from_numpy(img.copy()), "y": y,
                    "likelihoods": o["likelihoods"], "x_hat": o["x_hat"]}, path)
        bits = {k: round(float(-torch.log2(v).sum()), 2) for k, v in o["likelihoods"].items()}
        print(f"{path}: N={width}, y {tuple(y.shape)}, estimated bits {bits}, {path.stat().st_size / 1e6:.2f} MB")


def _msinn_state(net, torch, fill, generated, is_mask, small_bias) -> tuple[list, dict, dict]:
    """Fill an official MSINN state dict: large weights by the rule, positive gain tables and initial scale,
    small random ActNorm parameters and biases (the official init leaves them at 0 or 1, which would hide a
    wrong mapping), ActNorm marked initialised."""
    state, keys, stored, masks = net.state_dict(), [], {}, {}
    for k, v in state.items():
        keys.append([k, list(v.shape)])
        if generated(k, v.shape):
            state[k] = fill(k, v.shape)
            continue
        if is_mask(k, v.shape):
            masks[k] = v[0, 0].clone()
            continue
        if k.endswith("inited"):
            value = torch.ones_like(v)
        elif k.endswith(("gain", "initial_scale")):
            value = torch.exp(10 * small_bias(k, v.shape))
        elif k.endswith(("bias", "logs")):
            value = small_bias(k, v.shape)
        elif k.endswith("weight") and v.dim() in (2, 4):
            value = fill(k, v.shape)
        else:
            value = v.clone()
        state[k] = stored[k] = value
    net.load_state_dict(state)
    return keys, stored, masks


def msinn(official: Path, out: Path, commit: str, size: int = 64) -> None:
    import numpy as np
    import torch
    from PIL import Image

    sys.path[:0] = [str(official), str(REPO / "tests")]
    from models.msinn import MSINNCompression  # the official class (the installed compressai serves it)
    from official_fixtures import fill, generated, is_mask, small_bias

    img = np.asarray(Image.open(REPO / "data" / "kodak" / "kodim23.png").convert("RGB"))[232:232 + size, 332:332 + size]
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    for anchors, post in ((12, False), (8, True)):
        torch.manual_seed(0)
        net = MSINNCompression(anchor_num=anchors, post_process=post).eval()
        keys, stored, masks = _msinn_state(net, torch, fill, generated, is_mask, small_bias)
        rates, outputs = [2.5, anchors - 1], {}
        with torch.no_grad():
            y = net.g_a(x)
            for rate in rates:
                o = net(x, rate)
                outputs[rate] = {"likelihoods": o["likelihoods"], "x_hat": o["x_hat"]}
        name = f"msinn-{anchors}" + ("-postnet" if post else "")
        path = out / f"{name}.pt"
        torch.save({"repository": "hytu99/MSINN-VRLIC", "commit": commit, "anchors": anchors, "post_process": post,
                    "keys": keys, "stored": stored, "masks": masks, "x": torch.from_numpy(img.copy()), "y": list(y),
                    "rates": rates, "outputs": outputs}, path)
        bits = {r: round(sum(float(-torch.log2(v).sum()) for v in o["likelihoods"].values()), 1)
                for r, o in outputs.items()}
        print(f"{path}: estimated bits per rate {bits}, {path.stat().st_size / 1e6:.2f} MB")


FAMILIES = {"invcompress": invcompress, "msinn": msinn}


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
