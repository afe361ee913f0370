"""Autoencoder baselines of the same size as the mini INN models, for the invertible-vs-autoencoder comparisons:
CompressAI's scale hyperprior (Ballé 2018) and mean-scale hyperprior (Minnen 2018) at N=96, M=128.

Sizes: ``bmshj2018-hyperprior-mini`` 2.76 M parameters, ``mbt2018-mean-mini`` 3.55 M (the mini INN models
span 2.75–3.80 M). Both are fixed-rate families: one weight file per λ in :data:`BASELINE_LAMBDAS`
(``NAME-q0.pt`` … ``NAME-q4.pt``); ``rate`` is ignored. Transforms and entropy models are CompressAI's own;
these classes only adapt them to the invlab contract (rate argument, flat ``strings``, JSON-able ``shape``).
"""

from __future__ import annotations

import torch
from compressai.models import MeanScaleHyperprior, ScaleHyperprior

from invlab.models.base import InvlabModel
from invlab.models.baselines import BASELINE_LAMBDAS


class _HyperpriorAdapter(InvlabModel):
    """Rate-ignoring ``forward``/``compress``/``decompress`` over a CompressAI two-string hyperprior model."""

    decode_bytes_per_pixel = 750.0  # 1.5x measured by benchmarks/decode_memory.py: 481 / 398

    pad_multiple = 64
    family_lambdas = BASELINE_LAMBDAS

    def __init__(self, N: int = 96, M: int = 128, lambdas: tuple[float, ...] = (0.0130,)):
        super().__init__(lambdas=lambdas, N=N, M=M)

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> dict:
        return super().forward(x)

    def compress(self, x: torch.Tensor, rate: float | None = None) -> dict:
        out = super().compress(x)
        y_strings, z_strings = out["strings"]
        return {"strings": [y_strings[0], z_strings[0]], "shape": {"z": list(out["shape"])}}

    stream_count = 2

    def stream_geometry(self, height: int, width: int) -> dict:
        return {"z": [height // 64, width // 64]}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict:
        y_string, z_string = strings
        return super().decompress([[y_string], [z_string]], tuple(shape["z"]))


class Bmshj2018HyperpriorMini(_HyperpriorAdapter, ScaleHyperprior):
    """Scale hyperprior: y ~ N(0, σ(z)), z factorised."""


class Mbt2018MeanMini(_HyperpriorAdapter, MeanScaleHyperprior):
    """Mean-scale hyperprior: y ~ N(μ(z), σ(z)), z factorised."""


def bmshj2018_hyperprior_mini(**overrides) -> Bmshj2018HyperpriorMini:
    return Bmshj2018HyperpriorMini(**overrides)


def mbt2018_mean_mini(**overrides) -> Mbt2018MeanMini:
    return Mbt2018MeanMini(**overrides)
