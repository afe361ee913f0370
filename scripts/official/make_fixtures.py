"""Make the official-code fixtures in tests/fixtures/official (run once, by hand; never in CI).

    git clone https://github.com/xyq7/InvCompress /tmp/InvCompress
    .venv/bin/python scripts/official/make_fixtures.py invcompress /tmp/InvCompress tests/fixtures/official
    git clone https://github.com/hytu99/MSINN-VRLIC /tmp/MSINN
    .venv/bin/python scripts/official/make_fixtures.py msinn /tmp/MSINN tests/fixtures/official
    git clone https://github.com/dororojames/ANFIC /tmp/ANFIC
    .venv/bin/python scripts/official/make_fixtures.py anfic /tmp/ANFIC tests/fixtures/official

The official code runs in a process that never imports invlab: InvCompress from a copy of its own CompressAI
fork (its C++ entropy coder replaced by stubs: only the forward pass runs), MSINN-VRLIC with the installed
CompressAI, ANFIC from a copy of its repository (torchac's C++ backend replaced by a stub; two torch 1.4 calls of
its convolutions shimmed for the installed torch). Large weights are filled by the rule in
tests/official_fixtures.py, biases (and MSINN's gains and ActNorm parameters) with small random values; a fixture
stores the names, shapes, small tensors, mask patterns, a crop of kodim23 and the official outputs (latents,
likelihoods, reconstruction).
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


#: the README's configuration ``-UC -C GaussianMixtureModel -NF 320 -VNFL 128 -QE -DM``, as ANFIC_codec.py's
#: ``get_coder_from_args`` builds it (``load_coder``), the other options at their defaults
ANFIC_FLAGS = "-UC -C GaussianMixtureModel -NF 320 -VNFL 128 -QE -DM"
ANFIC_OPTIONS = {"num_layers": 2, "use_QE": True, "init_code": "gaussian", "use_affine": False, "use_mean": False,
                 "use_context": True, "condition": "GaussianMixtureModel", "quant_mode": "noise"}
#: factor on ``fill()`` for the Fourier-domain kernels, per official module: the rule's 0.3/sqrt(fan-in) alone
#: leaves round(z2) all zero, and the synthesis's IGDN (x·sqrt(β + γx²)) explodes above about 2
ANFIC_KERNEL_GAINS = {"analysis": 4.0, "synthesis": 1.5, "hyper_analysis": 10.0, "hyper_synthesis": 20.0, "QE": 2.0}
ANFIC_HEAD_BIAS = "conditional_bottleneck.reparam.4.bias"


def _anfic_shims(nn) -> None:
    """The torch 1.4 calls of the official convolutions, on the installed torch: ``conv2d_forward(input, weight)``
    and ``_output_padding`` without ``num_spatial_dims``."""
    nn.Conv2d.conv2d_forward = lambda self, input, weight: self._conv_forward(input, weight, self.bias)
    output_padding = nn.modules.conv._ConvTransposeNd._output_padding

    def torch14_output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims=2,
                               dilation=None):
        return output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims, dilation)

    nn.modules.conv._ConvTransposeNd._output_padding = torch14_output_padding


def _anfic_head_bias(torch, shape) -> object:
    """The mixture head's last bias (means, scales, logits; 3·K·C each): the rule's head weights leave its output
    close to this bias, so give it means N(0, 0.5²), scales exp(N(0, 0.5²)), logits N(0, 1)."""
    g = torch.Generator().manual_seed(1)
    n = shape[0] // 3
    return torch.cat([0.5 * torch.randn(n, generator=g), (0.5 * torch.randn(n, generator=g)).exp(),
                      torch.randn(n, generator=g)])


def _anfic_state(net, torch, fill, generated, small_bias, kernels, gdns) -> tuple[list, dict, dict]:
    """Fill an official ANFIC state dict: the Fourier-domain kernels (``kernels``, 3-D) ``gain * fill()`` (their
    gains returned for those too large to store), other large weights by the rule, GDN biases 0.25 + small (β about
    1/16, so that the official eps 1e-5 shows; near 0, IGDN would explode), the entropy bottleneck's parameters
    and quantiles off their constant init, the mixture head's last bias spread (:func:`_anfic_head_bias`), other
    biases small."""
    state, keys, stored, gains = net.state_dict(), [], {}, {}
    for k, v in state.items():
        keys.append([k, list(v.shape)])
        module = k.rpartition(".")[0]
        if module in kernels and k.endswith(".weight"):
            gain = ANFIC_KERNEL_GAINS[module.split(".")[0].rstrip("0123456789")]
            state[k] = gain * fill(k, v.shape)
            if v.numel() > 4096:
                gains[k] = gain
                continue
        elif generated(k, v.shape):
            state[k] = fill(k, v.shape)
            continue
        elif module in gdns and k.endswith(".bias"):
            state[k] = 0.25 + small_bias(k, v.shape)
        elif k.startswith("entropy_bottleneck."):
            state[k] = v + 10 * small_bias(k, v.shape)
        elif k == ANFIC_HEAD_BIAS:
            state[k] = _anfic_head_bias(torch, v.shape)
        elif k.endswith("bias"):
            state[k] = small_bias(k, v.shape)
        stored[k] = state[k].clone()
    net.load_state_dict(state)
    return keys, stored, gains


def anfic(official: Path, out: Path, commit: str, size: int = 64) -> None:
    import numpy as np
    import torch
    from PIL import Image
    from torch import nn

    work = Path(tempfile.mkdtemp())
    shutil.copytree(official, work / "ANFIC", ignore=shutil.ignore_patterns(".git", "example_image"))
    (work / "ANFIC" / "torchac_backend_cpu.py").write_text("class TorchEncoder: ...\nclass TorchDecoder: ...\n")
    sys.path[:0] = [str(work / "ANFIC"), str(REPO / "tests")]
    _anfic_shims(nn)
    from entropy_models import estimate_bpp  # the official modules (top-level names: entropy_models, networks, ...)
    from generalizedivisivenorm import GeneralizedDivisiveNorm
    from networks import AugmentedNormalizedFlowHyperPriorCoder
    from official_fixtures import fill, generated, small_bias
    from signalconv import SignalConv2d, SignalConvTranspose2d

    img = np.asarray(Image.open(REPO / "data" / "kodak" / "kodim23.png").convert("RGB"))[232:232 + size, 332:332 + size]
    x = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    torch.manual_seed(0)
    net = AugmentedNormalizedFlowHyperPriorCoder([128], 320, 192, **ANFIC_OPTIONS).eval()
    kernels = {n for n, m in net.named_modules() if isinstance(m, SignalConv2d | SignalConvTranspose2d)}
    gdns = {n for n, m in net.named_modules() if isinstance(m, GeneralizedDivisiveNorm)}
    keys, stored, gains = _anfic_state(net, torch, fill, generated, small_bias, kernels, gdns)
    with torch.no_grad():
        _, z2, _ = net.encode(x)
        h = net.hyper_analysis(z2.abs())
        x_hat, (y_likelihoods, z_likelihoods), x2 = net(x)
    likelihoods = {"y": y_likelihoods, "z": z_likelihoods}
    bits = {k: float(estimate_bpp(v, input=x)) * size * size for k, v in likelihoods.items()}
    path = out / "anfic.pt"
    torch.save({"repository": "dororojames/ANFIC", "commit": commit, "configuration": ANFIC_FLAGS, "keys": keys,
                "stored": stored, "masks": {}, "kernel_gains": gains, "x": torch.from_numpy(img.copy()), "y": z2,
                "h": h, "likelihoods": likelihoods, "bits": bits, "x_hat": x_hat, "x2_mse": x2.pow(2).mean()}, path)
    print(f"{path}: z2 {tuple(z2.shape)} (|round(z2)| <= {int(z2.round().abs().max())}), estimated bits "
          f"{ {k: round(v, 2) for k, v in bits.items()} }, x_hat in [{float(x_hat.min()):.2f}, "
          f"{float(x_hat.max()):.2f}], {path.stat().st_size / 1e6:.2f} MB")


FAMILIES = {"anfic": anfic, "invcompress": invcompress, "msinn": msinn}


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
