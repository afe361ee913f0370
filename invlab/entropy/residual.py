"""Coders for a gained residual under a scale-table Gaussian (MSINN-VRLIC's slices), one per coding mode.

Each maps ``(key, y or None, scale, mean, gain, positions)`` to the rounded residual ``q = round((y - μ)·g)``
(valid at ``positions``, a bool (H, W) mask); the caller reconstructs ``q · g' + μ``. The symbols are coded
with CompressAI's ``GaussianConditional`` tables (one per bin of its scale table).

- :class:`ResidualLikelihoodCoder`: noise (training) or rounding (eval) for the likelihood, straight-through
  rounding for the reconstruction (mixed quantisation); records likelihood maps by key.
- :class:`ResidualRansEncoder`: queues symbols + scale indices; one rANS stream at the end.
- :class:`ResidualRansDecoder`: reads the symbols back from that stream in the same order.
"""

from __future__ import annotations

from typing import Protocol

import torch
from compressai.entropy_models import GaussianConditional
from compressai.ops import quantize_ste

from invlab.entropy.coder import Coder, CodingMode
from invlab.entropy.rans import TableDecoder, TableEncoder


class ResidualCoder(Coder, Protocol):
    """A :class:`~invlab.entropy.coder.Coder` whose walk codes gained residuals, one call per pass."""

    def code(self, key: str, y: torch.Tensor | None, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        """Code ``round((y - mean)·gain)`` at ``positions`` under N(0, scale); returns it (``y`` None: decode)."""
        ...


def scale_indexes(gaussian: GaussianConditional, scales: torch.Tensor) -> torch.Tensor:
    """``gaussian.build_indexes(scales)`` (the scale-table bin of each σ) by binary search, not 63 passes."""
    table = gaussian.scale_table.to(scales.dtype)  # float64 σ (exact entropy parameters) against the same values
    return torch.searchsorted(table[:-1], scales.contiguous(), right=False).int()


class ResidualLikelihoodCoder:
    """Training / evaluation: likelihoods of the (noisy or rounded) residual, STE-rounded reconstruction."""

    mode = CodingMode.LIKELIHOOD

    def __init__(self, gaussian: GaussianConditional):
        self.gaussian = gaussian
        self.likelihoods: dict[str, torch.Tensor] = {}
        self.symbols: dict[str, torch.Tensor] = {}  # eval mode: the rounded residuals, the symbols a file codes

    def code(self, key: str, y: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        r = (y - mean) * gain
        _, lk = self.gaussian(r, scale)
        self.likelihoods[key] = torch.where(positions, lk, self.likelihoods.get(key, lk))
        if self.gaussian.training:
            return quantize_ste(r)
        q = torch.round(r)
        self.symbols[key] = torch.where(positions, q, self.symbols.get(key, q))
        return q

    def finish(self) -> dict[str, torch.Tensor]:
        return self.likelihoods


def _tables(gaussian: GaussianConditional) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return gaussian.quantized_cdf, gaussian.cdf_length.reshape(-1), gaussian.offset.reshape(-1)


class ResidualRansEncoder:
    """Rounds residuals and codes (symbol, scale index) pairs, one coder call per pass; :meth:`finish`
    returns the one stream (the decoder decodes pass by pass, in the same calls)."""

    mode = CodingMode.ENCODE

    def __init__(self, gaussian: GaussianConditional):
        self.gaussian = gaussian
        self.encoder = TableEncoder()
        self.tables = _tables(gaussian)

    def code(self, key: str, y: torch.Tensor, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        q = torch.round((y - mean) * gain)
        self.encoder.encode_with_indexes(q[..., positions].reshape(-1),
                                         scale_indexes(self.gaussian, scale[..., positions]).reshape(-1), *self.tables)
        return q

    def finish(self) -> list[bytes]:
        return [self.encoder.flush()]


class ResidualRansDecoder:
    """Reads the symbols of :class:`ResidualRansEncoder`'s stream back, in the same order; :meth:`finish`
    verifies the stream was consumed exactly and the symbols are the encoder's."""

    mode = CodingMode.DECODE

    def __init__(self, gaussian: GaussianConditional, stream: bytes):
        self.gaussian = gaussian
        self.decoder = TableDecoder()
        self.decoder.set_stream(stream)
        self.tables = _tables(gaussian)

    def code(self, key: str, y: None, scale: torch.Tensor, mean: torch.Tensor, gain: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
        indexes = scale_indexes(self.gaussian, scale[..., positions])
        values = self.decoder.decode_stream(indexes.reshape(-1), *self.tables)
        q = torch.zeros_like(scale)
        q[..., positions] = torch.tensor(values, dtype=q.dtype, device=q.device).reshape(indexes.shape)
        return q

    def finish(self) -> None:
        self.decoder.finish()
