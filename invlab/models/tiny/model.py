"""``tiny-flow``: the smallest complete invertible codec, to prove the plumbing end to end.

Two flow levels (squeeze + one InvUnit each) give y1 (6 @ H/2) and y2 (24 @ H/4); each latent is
scaled by a per-channel gain (interpolated between 3 anchors, so ``rate`` is continuous in [0, 2]),
rounded and coded with a factorised ``EntropyBottleneck``. Not a serious model: it exists so that
encode -> file -> decode can be tested on any machine in a second.
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from torch import nn

from invlab.entropy.gain import GainTable
from invlab.flows import InvertibleSequence, InvUnit, MultiScaleFlow, Squeeze
from invlab.flows.units import conv_conditioner
from invlab.models.base import InvlabModel
from invlab.models.tiny import LAMBDAS


class TinyFlowCodec(InvlabModel):
    decode_bytes_per_pixel = 1000.0  # 1.5x measured by benchmarks/decode_memory.py: 641
    pad_multiple = 4
    variable_rate = True

    def __init__(self, hidden: int = 16, lambdas: tuple[float, ...] = LAMBDAS):
        super().__init__(lambdas=lambdas)
        cond = conv_conditioner(hidden)
        self.flow = MultiScaleFlow(
            [InvertibleSequence([Squeeze(2), InvUnit(12, cond)]), InvertibleSequence([Squeeze(2), InvUnit(24, cond)])],
            factor_out=[6],
        )
        self.channels = (6, 24)
        self.gains = GainTable(len(lambdas), sum(self.channels), init=[8.0 * 2**i for i in range(len(lambdas))])
        self.bottlenecks = nn.ModuleList(EntropyBottleneck(c) for c in self.channels)

    def scale_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """y1 (fine) and y2 (coarse), the flow's output before quantisation."""
        return {f"y{i + 1}": y for i, y in enumerate(self.flow(x))}

    def _gain_chunks(self, rate: torch.Tensor) -> list[torch.Tensor]:
        g = self.gains(rate)  # (B, C_total)
        return list(torch.split(g[:, :, None, None], list(self.channels), dim=1))

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> dict:
        if rate is None:
            rate = torch.zeros(x.shape[0], device=x.device)
        latents = self.flow(x)
        hats, likelihoods = [], {}
        for i, (y, g, eb) in enumerate(zip(latents, self._gain_chunks(rate), self.bottlenecks, strict=True)):
            y_q, lk = eb(y * g)  # training: noise proxy for the rate; eval: exactly the decoder's values
            if self.training:  # straight-through rounding for the reconstruction (mixed quantisation)
                y_q = (torch.round(y * g) - y * g).detach() + y * g
            hats.append(y_q / g)
            likelihoods[f"y{i + 1}"] = lk
        return {"x_hat": self.flow.inverse(hats), "likelihoods": likelihoods}

    def compress(self, x: torch.Tensor, rate: float | None = None) -> dict:
        r = torch.tensor([self.check_rate(rate)])
        latents = self.flow(x)
        strings = [eb.compress(y * g)[0] for y, g, eb in
                   zip(latents, self._gain_chunks(r), self.bottlenecks, strict=True)]
        return {"strings": strings, "shape": {"latents": [list(y.shape[-2:]) for y in latents]}}

    def stream_geometry(self, height: int, width: int) -> dict:
        return {"latents": [[height >> (i + 1), width >> (i + 1)] for i in range(len(self.bottlenecks))]}

    @property
    def stream_count(self) -> int:
        return len(self.bottlenecks)

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict:
        r = torch.tensor([self.check_rate(rate)])
        hats = [eb.decompress([s], tuple(hw)) / g for s, hw, g, eb in
                zip(strings, shape["latents"], self._gain_chunks(r), self.bottlenecks, strict=True)]
        return {"x_hat": self.flow.inverse(hats).clamp(0, 1)}


def tiny_flow(**overrides) -> TinyFlowCodec:
    return TinyFlowCodec(**overrides)
