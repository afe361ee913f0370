"""Invertible 1x1 convolutions (Glow): a learned channel mixing with an exact inverse."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from invlab.flows.base import InvertibleModule


def _random_orthogonal(channels: int, generator: torch.Generator | None = None) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator, dtype=torch.float64))
    return q.float()


class InvConv1x1(InvertibleModule):
    """A full C x C channel-mixing matrix, orthogonal at init; the inverse is a float64 matrix inverse."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(_random_orthogonal(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight[:, :, None, None])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w_inv = torch.linalg.inv(self.weight.double()).to(y.dtype)
        return F.conv2d(y, w_inv[:, :, None, None])


class InvConv1x1LU(InvertibleModule):
    """LU-parametrised 1x1 conv: W = P L (U + diag(sign * exp(log_s))); cheap, always invertible."""

    def __init__(self, channels: int):
        super().__init__()
        w = _random_orthogonal(channels).double()
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(torch.abs(s)).float())

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return lower, upper

    def weight(self) -> torch.Tensor:
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight()[:, :, None, None])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        lower, upper = (m.double() for m in self._factors())
        eye = self.eye.double()
        l_inv = torch.linalg.solve_triangular(lower, eye, upper=False)
        u_inv = torch.linalg.solve_triangular(upper, eye, upper=True)
        w_inv = (u_inv @ l_inv @ self.perm.double().T).to(y.dtype)
        return F.conv2d(y, w_inv[:, :, None, None])
