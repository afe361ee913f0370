"""Autoencoder baselines of the same size as the mini INN models, for the invertible-vs-autoencoder comparisons:
CompressAI's scale hyperprior (Ballé 2018) and mean-scale hyperprior (Minnen 2018) at N=96, M=128.

Sizes: ``bmshj2018-hyperprior-mini`` 2.76 M parameters, ``mbt2018-mean-mini`` 3.55 M (the mini INN models
span 2.75–3.80 M). Both are fixed-rate families: one weight file per λ in :data:`BASELINE_LAMBDAS`
(``NAME-q0.pt`` … ``NAME-q4.pt``); ``rate`` is ignored. Transforms and entropy models are CompressAI's own;
these classes only adapt them to the invlab contract (rate argument, flat ``strings``, JSON-able ``shape``).

Entropy parameters: with ``entropy="exact"`` (the default) the hyper-synthesis that gives σ (and μ) runs in exact
fixed point and the probability tables are computed the same way on every CPU (:mod:`invlab.entropy.exact`), so a
file decodes to the same symbols wherever it is decoded; ``entropy="float"`` is CompressAI's float path, for the
files made before (they carry no ``entropy`` option, and the codec decodes them with it).
"""

from __future__ import annotations

import torch
from compressai.models import MeanScaleHyperprior, ScaleHyperprior

from invlab.entropy.exact import (
    ExactNet,
    exact_gaussian_tables,
    exact_indexes,
    float64_bottleneck_tables,
    from_fixed,
    scale_thresholds,
    to_fixed,
)
from invlab.models.base import InvlabModel
from invlab.models.baselines import BASELINE_LAMBDAS


class _HyperpriorAdapter(InvlabModel):
    """Rate-ignoring ``forward``/``compress``/``decompress`` over a CompressAI two-string hyperprior model."""

    decode_bytes_per_pixel = 750.0  # 1.5x measured by benchmarks/decode_memory.py: 481 / 398

    pad_multiple = 64
    family_lambdas = BASELINE_LAMBDAS

    exact_entropy = True

    def __init__(self, N: int = 96, M: int = 128, lambdas: tuple[float, ...] = (0.0130,), entropy: str = "exact"):
        if entropy not in ("exact", "float"):
            raise ValueError(f"entropy must be 'exact' or 'float', got {entropy!r}")
        super().__init__(lambdas=lambdas, N=N, M=M)
        self.entropy = entropy
        self._exact_h_s: ExactNet | None = None  # derived from h_s by update(), never stored
        self._thresholds = torch.empty(0)

    @property
    def coding_options(self) -> dict:
        return {**super().coding_options, **({"entropy": "exact"} if self.entropy == "exact" else {})}

    def update(self, scale_table=None, force: bool = False, **kwargs) -> bool:
        """The float tables (CompressAI's), or the exact hyper-synthesis and the tables every CPU builds alike."""
        updated = super().update(scale_table=scale_table, force=force, **kwargs)
        if self.entropy == "exact":
            exact_gaussian_tables(self.gaussian_conditional)
            float64_bottleneck_tables(self.entropy_bottleneck)
            self._exact_h_s = ExactNet(self.h_s)
            self._thresholds = scale_thresholds(self.gaussian_conditional.scale_table)
        return updated

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> dict:
        return super().forward(x)

    def _gaussian_parameters(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(table indices, means or None) of y from ẑ, exactly (fixed point)."""
        params = self._exact_h_s(to_fixed(z_hat))
        if isinstance(self, MeanScaleHyperprior):
            scales, means = params.chunk(2, 1)
            return exact_indexes(scales, self._thresholds), from_fixed(means)
        return exact_indexes(params, self._thresholds), None

    def compress(self, x: torch.Tensor, rate: float | None = None) -> dict:
        if self.entropy == "float":
            out = super().compress(x)
            y_strings, z_strings = out["strings"]
            return {"strings": [y_strings[0], z_strings[0]], "shape": {"z": list(out["shape"])}}
        y = self.g_a(x)
        z = self.h_a(y if isinstance(self, MeanScaleHyperprior) else torch.abs(y))
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        indexes, means = self._gaussian_parameters(z_hat)
        y_strings = self.gaussian_conditional.compress(y, indexes, means=means)
        return {"strings": [y_strings[0], z_strings[0]], "shape": {"z": list(z.shape[-2:])}}

    stream_count = 2

    def stream_geometry(self, height: int, width: int) -> dict:
        return {"z": [height // 64, width // 64]}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict:
        y_string, z_string = strings
        if self.entropy == "float":
            return super().decompress([[y_string], [z_string]], tuple(shape["z"]))
        z_hat = self.entropy_bottleneck.decompress([z_string], tuple(shape["z"]))
        indexes, means = self._gaussian_parameters(z_hat)
        y_hat = self.gaussian_conditional.decompress([y_string], indexes, z_hat.dtype, means)
        return {"x_hat": self.g_s(y_hat).clamp_(0, 1)}


class Bmshj2018HyperpriorMini(_HyperpriorAdapter, ScaleHyperprior):
    """Scale hyperprior: y ~ N(0, σ(z)), z factorised."""


class Mbt2018MeanMini(_HyperpriorAdapter, MeanScaleHyperprior):
    """Mean-scale hyperprior: y ~ N(μ(z), σ(z)), z factorised."""


def bmshj2018_hyperprior_mini(**overrides) -> Bmshj2018HyperpriorMini:
    return Bmshj2018HyperpriorMini(**overrides)


def mbt2018_mean_mini(**overrides) -> Mbt2018MeanMini:
    return Mbt2018MeanMini(**overrides)
