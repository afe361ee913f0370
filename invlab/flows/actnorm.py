"""ActNorm (Glow): per-channel affine with data-dependent initialisation."""

from __future__ import annotations

import torch
from torch import nn

from invlab.flows.base import InvertibleModule


class ActNorm(InvertibleModule):
    """``y = (x + bias) * exp(log_scale)`` per channel.

    The first forward pass in training mode sets bias and scale so that that batch comes out with
    zero mean and unit variance per channel; a buffer records it, so checkpoints carry the state.
    Running an uninitialised ActNorm in eval mode raises, since its output would be meaningless.
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))
        self.eps = eps

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        self.bias.data.copy_(-mean)
        self.log_scale.data.copy_(-torch.log(std + self.eps))
        self.initialized.fill_(True)

    def mark_initialized(self) -> None:
        """Keep the identity init (for tests and for untrained demo models)."""
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not bool(self.initialized):
            if not self.training:
                raise RuntimeError("ActNorm used in eval mode before data-dependent init; train a step first")
            self.initialize(x)
        return (x + self.bias) * torch.exp(self.log_scale)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias
