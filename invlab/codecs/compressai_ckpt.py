"""CompressAI architectures with a user's checkpoint as invlab codecs: ``compressai:ARCH@PATH``.

    get_codec("compressai:mbt2018-mean@runs/my-model.pth.tar")        # rd, evaluate, reencode, the workbench
    invlab encode img.png out.invl --model compressai:mbt2018-mean@ckpt.pth.tar --rate 0
    invlab decode out.invl out.png --weights ckpt.pth.tar

The checkpoint is read with ``torch.load(weights_only=True)`` (a plain state dict, or CompressAI's training
checkpoint with a ``"state_dict"`` entry; DataParallel ``module.`` prefixes and old key names are renamed by
CompressAI's own ``load_pretrained``), the architecture is built from it (``from_state_dict``: N and M from the
weights), and the files are real invlab files: the same container, header checks, weights hash, checksums and
device policy as invlab's own models, with every entropy model coding through invlab's bounds-checked coder.

Supported: the architectures whose coding goes only through CompressAI's entropy models
(:data:`ARCHITECTURES`). The autoregressive ones (``mbt2018``, ``cheng2020-*``) decode with CompressAI's C++ rANS
decoder directly, which is not safe on received files; they are refused with a message saying so.

Zoo weights: on a machine that can download them, ``compressai.zoo.mbt2018_mean(quality=3, pretrained=True)``
fetches CompressAI's checkpoint into torch's hub cache; ``torch.save(net.state_dict(), "mbt-q3.pth")`` then
gives a file this codec opens offline (invlab itself never downloads anything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from invlab.codecs.learned import LearnedCodec
from invlab.errors import InvlabError
from invlab.models.base import InvlabModel

#: architecture name -> (CompressAI class name, stream count, latent stride of ``shape``)
ARCHITECTURES = {
    "bmshj2018-factorized": ("FactorizedPrior", 1, 16),
    "bmshj2018-hyperprior": ("ScaleHyperprior", 2, 64),
    "mbt2018-mean": ("MeanScaleHyperprior", 2, 64),
}
UNSAFE = ("mbt2018", "cheng2020-anchor", "cheng2020-attn")
PREFIX = "compressai:"


class CompressAINet(InvlabModel):
    """A CompressAI network as a fixed-rate invlab model (``rate`` is ignored; one weight file)."""

    pad_multiple = 64
    decode_bytes_per_pixel = 2000.0  # [not measured for user sizes] about 2.5x the N=96/M=128 baselines'

    def __init__(self, arch: str, net: torch.nn.Module):
        super().__init__(lambdas=(0.0,))
        self.arch = arch
        self.net = net
        _, self.stream_count, self._stride = ARCHITECTURES[arch]

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> dict[str, Any]:
        return self.net(x)

    def stream_geometry(self, height: int, width: int) -> dict[str, Any]:
        return {"latent": [height // self._stride, width // self._stride]}

    def compress(self, x: torch.Tensor, rate: float | None = None) -> dict[str, Any]:
        out = self.net.compress(x)
        return {"strings": [s[0] for s in out["strings"]], "shape": {"latent": [int(v) for v in out["shape"]]}}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict[str, torch.Tensor]:
        return {"x_hat": self.net.decompress([[s] for s in strings], tuple(shape["latent"]))["x_hat"].clamp(0, 1)}


def parse_name(name: str) -> tuple[str, Path | None]:
    """``compressai:ARCH@PATH`` -> (ARCH, PATH); ``compressai:ARCH`` -> (ARCH, None)."""
    arch, _, path = name.removeprefix(PREFIX).partition("@")
    if arch in UNSAFE:
        raise InvlabError(f"CompressAI's {arch} decodes with CompressAI's unchecked C++ rANS decoder, which invlab "
                          f"does not run on received files; supported: {', '.join(ARCHITECTURES)}")
    if arch not in ARCHITECTURES:
        raise InvlabError(f"unknown CompressAI architecture {arch!r}; supported: {', '.join(ARCHITECTURES)}")
    return arch, Path(path) if path else None


def load_checkpoint_net(arch: str, path: str | Path) -> CompressAINet:
    """Build ``arch`` from the weights in ``path`` (eval mode, CDF tables updated, invlab's coder installed)."""
    import compressai.models
    from compressai.zoo.pretrained import load_pretrained

    from invlab.weights import state_dict_hash

    path = Path(path)
    if not path.is_file():
        raise InvlabError(f"no such checkpoint: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, or one holding more than tensors (refused: untrusted pickle)
        raise InvlabError(f"cannot read {path} as a state dict: {err}") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise InvlabError(f"{path} holds no state dict of tensors")
    cls = getattr(compressai.models, ARCHITECTURES[arch][0])
    try:
        net = cls.from_state_dict(load_pretrained(state))
    except (KeyError, RuntimeError) as err:
        raise InvlabError(f"{path} is not a {arch} checkpoint: {str(err)[:300]}") from None
    model = CompressAINet(arch, net).eval()
    model.trained = True
    model.weights_file = str(path)
    model.weights_hash = state_dict_hash(model.state_dict())
    model.update(force=True)
    return model


class CompressAICheckpointCodec(LearnedCodec):
    """A :class:`LearnedCodec` over a CompressAI network loaded from a user's checkpoint."""

    def __init__(self, arch: str, path: str | Path, device: str = "cpu", memory_budget_mb: float | None = None):
        self.arch, self.path = arch, Path(path)
        self._net = load_checkpoint_net(arch, self.path)
        super().__init__(f"{PREFIX}{arch}", pretrained=True, device=device, memory_budget_mb=memory_budget_mb)

    @property
    def trained(self) -> bool:
        return True

    def _weights_per_rate(self) -> bool:
        return False  # one network, the user's checkpoint

    def _model_at(self, rate: float) -> InvlabModel:
        return self._net.to(self.device)


def compressai_codec(name: str, weights: str | Path | None = None) -> CompressAICheckpointCodec:
    """The codec for ``compressai:ARCH@PATH`` (or ``compressai:ARCH`` with ``weights``)."""
    arch, path = parse_name(name)
    path = path or (Path(weights) if weights else None)
    if path is None:
        raise InvlabError(f"{name} needs its checkpoint: write compressai:{arch}@PATH (decode: --weights PATH)")
    return CompressAICheckpointCodec(arch, path)
