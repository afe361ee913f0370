"""Coders for a factorised hyper-latent and a Gaussian-mixture latent level, one per coding mode (the ANF family).

A level is coded hyper-latent first (CompressAI's ``EntropyBottleneck``), then its latent under a K-Gaussian
mixture per element whose parameters come from a :class:`MixturePrior`, at the positions of an optional mask,
optionally with a raster-causal context (then coded serially, position by position).

- :class:`MixtureLikelihoodCoder`: training (additive uniform noise) or estimation (rounding); likelihoods.
- :class:`MixtureRansEncoder`: rANS, one string per hyper-latent and per latent level (bit-exact; mixture
  CDFs built per element by CompressAI's ``GaussianMixtureConditional``).
- :class:`MixtureRansDecoder`: reads those strings back in the same order.

The rANS coders compute the tables with an arithmetic: :data:`FLOAT` (the float networks and CompressAI's CDFs, as
trained; files made before exact entropy parameters) or :class:`~invlab.entropy.exact_mixture.FixedMixtureArithmetic`
(the same networks in exact fixed point and tables every CPU builds alike).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck, GaussianMixtureConditional
from torch import nn

from invlab.entropy.coder import Coder, CodingMode
from invlab.entropy.rans import TableDecoder, TableEncoder
from invlab.errors import BitstreamError
from invlab.layers import CausalContextConv2d

#: largest |symbol| the mixture coder takes (its CDFs span [-A, A] with at least 1/2^16 per value)
MAX_ABS_SYMBOL = 4096
#: CDF entries built per chunk when a whole latent level is coded in parallel (bounds memory)
CDF_CHUNK_ENTRIES = 1 << 21


class MixturePrior(Protocol):
    """What the coders need from a level's entropy model (the ANF family's ``LevelPrior``)."""

    channels: int  # C, channels of the latent level
    mixtures: int  # K, Gaussians per element
    gaussian_mixture: GaussianMixtureConditional  # likelihoods, quantisation and CDFs
    context: CausalContextConv2d | None  # the raster-causal context on v̂ (None: no spatial context)

    def mixture(
        self, params: torch.Tensor, context: torch.Tensor | None, arith: MixtureArithmetic
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(scales, means, weights), each (B, K·C, H, W), from the hyper parameters (and the context features), in
        ``arith``'s representation (float by default; fixed point gives the weights' logits)."""
        ...


class MixtureArithmetic(Protocol):
    """How a walk computes the entropy parameters and tables: float (:class:`FloatMixtureArithmetic`) or exact."""

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """A float tensor the same on every machine (symbols, ĥ) in this arithmetic's representation."""
        ...

    def apply(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``module`` (convolutions and activations) on ``x``, in this arithmetic."""
        ...

    def mixture(self, head: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A mixture head's (scales, means, weights or their logits) from its input features."""
        ...

    def context(self, context: CausalContextConv2d, window: torch.Tensor) -> torch.Tensor:
        """The causal context's features at one position from the decoded window around it (float symbols)."""
        ...

    def tables(
        self, gmm: GaussianMixtureConditional, scales: torch.Tensor, means: torch.Tensor, weights: torch.Tensor,
        abs_max: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """rANS tables for N elements over [-A, A] from (K, N) parameters."""
        ...


class FloatMixtureArithmetic:
    """The float networks as trained and CompressAI's per-element mixture CDFs (training; the files made before
    exact entropy parameters, which decode only where their tables come out the same)."""

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def apply(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return module(x)

    def mixture(self, head: nn.Module, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return head(features)

    def context(self, context: CausalContextConv2d, window: torch.Tensor) -> torch.Tensor:
        return F.conv2d(window, context.masked_weight(), context.bias)

    def tables(
        self, gmm: GaussianMixtureConditional, scales: torch.Tensor, means: torch.Tensor, weights: torch.Tensor,
        abs_max: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return mixture_cdfs(gmm, scales, means, weights, abs_max)


#: the float arithmetic (stateless)
FLOAT = FloatMixtureArithmetic()


class MixtureLevelCoder(Coder, Protocol):
    """A :class:`~invlab.entropy.coder.Coder` for hyperprior + mixture levels (``h``/``v`` None when decoding)."""

    def hyper(self, name: str, eb: EntropyBottleneck, h: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        """Code a hyper-latent; returns ĥ."""
        ...

    def latent(
        self, name: str, prior: MixturePrior, v: torch.Tensor | None, params: torch.Tensor, mask: torch.Tensor | None,
        arith: MixtureArithmetic,
    ) -> torch.Tensor:
        """Code a latent level at the positions of ``mask`` (all when None); returns v̂ (zero elsewhere). ``params``
        come from ``arith``, which also builds the tables."""
        ...

    def skip(self, names: tuple[str, str]) -> None:
        """A level with no positions: nothing is coded (the stream keeps its place, empty)."""
        ...


class MixtureLikelihoodCoder:
    """Training (additive uniform noise) or estimation (rounding): records likelihoods by name, returns v̂."""

    mode = CodingMode.LIKELIHOOD

    def __init__(self):
        self.likelihoods: dict[str, torch.Tensor] = {}

    def finish(self) -> dict[str, torch.Tensor]:
        return self.likelihoods

    def skip(self, names: tuple[str, str]) -> None:
        pass  # no bits: no likelihoods

    def hyper(self, name: str, eb: EntropyBottleneck, h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h_hat, likelihoods = eb(h)
        self.likelihoods[name] = likelihoods
        return h_hat

    def latent(
        self, name: str, prior: MixturePrior, v: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None,
        arith: MixtureArithmetic = FLOAT,
    ) -> torch.Tensor:
        """Likelihoods are float (``arith`` must be :data:`FLOAT`: training and estimation run the float networks)."""
        gmm = prior.gaussian_mixture
        v_hat = gmm.quantize(v, "noise" if gmm.training else "dequantize")  # round(v), no mean subtracted [inferred]
        if mask is not None:
            v_hat = torch.where(mask, v_hat, torch.zeros_like(v_hat))
        context = None if prior.context is None else prior.context(v_hat)
        likelihoods = gmm._likelihood(v_hat, *prior.mixture(params, context))
        if gmm.use_likelihood_bound:
            likelihoods = gmm.likelihood_lower_bound(likelihoods)
        if mask is not None:
            likelihoods = torch.where(mask, likelihoods, torch.ones_like(likelihoods))  # unused: 0 bits
        self.likelihoods[name] = likelihoods
        return v_hat


def mixture_cdfs(
    gmm: GaussianMixtureConditional, scales: torch.Tensor, means: torch.Tensor, weights: torch.Tensor, abs_max: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """rANS tables for N elements over the values [-A, A]: (cdfs, lengths, offsets); inputs are (K, N).

    The CDFs come from CompressAI's ``GaussianMixtureConditional._build_cdf`` (which edits its inputs in place,
    hence the copies); encoder and decoder call this with identical tensors, so the tables agree bit for bit.
    """
    cdf = gmm._build_cdf(scales.clone(), means.clone(), weights.clone(), abs_max)
    n = cdf.shape[0]
    return cdf, torch.full((n,), cdf.shape[1], dtype=torch.int32), torch.full((n,), -abs_max, dtype=torch.int32)


def _mixture_chunks(
    prior: MixturePrior, params: torch.Tensor, positions: torch.Tensor, abs_max: int, arith: MixtureArithmetic
) -> Iterator[tuple[int, int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """(start, end, tables) over the coded elements (channel-major, then the selected positions in raster order)."""
    k, c = prior.mixtures, prior.channels
    flat = [t.reshape(k, c, *t.shape[-2:])[:, :, positions].reshape(k, -1)
            for t in prior.mixture(params, None, arith)]
    total = flat[0].shape[1]
    step = max(1, CDF_CHUNK_ENTRIES // (2 * abs_max + 3))
    for start in range(0, total, step):
        end = min(total, start + step)
        yield start, end, arith.tables(prior.gaussian_mixture, *(t[:, start:end] for t in flat), abs_max)


def raster_scan(
    prior: MixturePrior, params: torch.Tensor, abs_max: int, code_position: Callable[[int, int, tuple], torch.Tensor],
    arith: MixtureArithmetic,
) -> torch.Tensor:
    """The serial 5x5-context walk (raster order), shared by encoder and decoder; returns v̂ (1, C, H, W).

    At each position the causal context is computed on the decoded 5x5 window (the same window and arithmetic on
    both sides), the mixture's CDFs are built and ``code_position(i, j, tables)`` codes the C values there.
    """
    ctx = prior.context
    kernel = ctx.kernel_size[0]
    pad = kernel // 2
    k, c = prior.mixtures, prior.channels
    _, _, height, width = params.shape
    v_hat = torch.zeros(1, c, height + 2 * pad, width + 2 * pad, device=params.device)
    for i in range(height):
        for j in range(width):
            features = arith.context(ctx, v_hat[:, :, i : i + kernel, j : j + kernel])
            scales, means, weights = prior.mixture(params[:, :, i : i + 1, j : j + 1], features, arith)
            tables = arith.tables(
                prior.gaussian_mixture, scales.reshape(k, c), means.reshape(k, c), weights.reshape(k, c), abs_max
            )
            v_hat[0, :, i + pad, j + pad] = code_position(i, j, tables)
    return v_hat[:, :, pad : pad + height, pad : pad + width]


def _positions(mask: torch.Tensor | None, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Bool (H, W): where the level is coded (batch 1)."""
    if mask is None:
        return torch.ones(height, width, dtype=torch.bool, device=device)
    return mask[0, 0]


class MixtureRansEncoder:
    """rANS encoding: one string per hyper-latent (EntropyBottleneck) and per latent level (mixture CDFs).

    A level's values are ``round(v)`` at its used positions; ``abs_max`` (max |value|, the CDFs' range) is
    recorded per level for the stream header.
    """

    mode = CodingMode.ENCODE

    def __init__(self):
        self.strings: list[bytes] = []
        self.abs_max: list[int] = []

    def finish(self) -> list[bytes]:
        return self.strings

    def skip(self, names: tuple[str, str]) -> None:
        self.strings += [b"", b""]
        self.abs_max.append(0)

    def hyper(self, name: str, eb: EntropyBottleneck, h: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        strings = eb.compress(h)
        self.strings.append(strings[0])
        return eb.decompress(strings, size)

    def latent(
        self, name: str, prior: MixturePrior, v: torch.Tensor, params: torch.Tensor, mask: torch.Tensor | None,
        arith: MixtureArithmetic,
    ) -> torch.Tensor:
        v_hat = torch.round(v)
        if mask is not None:
            v_hat = torch.where(mask, v_hat, torch.zeros_like(v_hat))
        abs_max = int(v_hat.abs().max().item()) if v_hat.numel() else 0
        if abs_max > MAX_ABS_SYMBOL:
            raise ValueError(f"latent {name} reaches |{abs_max}|, above the mixture coder's range {MAX_ABS_SYMBOL}")
        self.abs_max.append(abs_max)
        positions = _positions(mask, *v.shape[-2:], v.device)
        if not positions.any():  # nothing to code (CompressAI's flush crashes on an empty buffer)
            self.strings.append(b"")
            return v_hat
        encoder = TableEncoder()
        if prior.context is None:
            symbols = v_hat[0][:, positions].reshape(-1).int()
            for start, end, tables in _mixture_chunks(prior, params, positions, abs_max, arith):
                encoder.encode_with_indexes(symbols[start:end].tolist(), list(range(end - start)), *tables)
        else:
            if mask is not None:
                raise ValueError("the autoregressive context codes whole levels only (no masks)")

            def code_position(i: int, j: int, tables: tuple) -> torch.Tensor:
                values = v_hat[0, :, i, j]
                encoder.encode_with_indexes(values.int().tolist(), list(range(prior.channels)), *tables)
                return values

            raster_scan(prior, params, abs_max, code_position, arith)
        self.strings.append(encoder.flush())
        return v_hat


class MixtureRansDecoder:
    """Reads :class:`MixtureRansEncoder`'s strings back in the same order (``abs_max`` from the stream header)."""

    mode = CodingMode.DECODE

    def __init__(self, strings: Sequence[bytes], abs_max: Sequence[int]):
        self.strings = iter(strings)
        self.abs_max = iter(abs_max)

    def finish(self) -> None:
        if next(self.strings, None) is not None or next(self.abs_max, None) is not None:
            raise BitstreamError("the stream has more entropy-coded strings than the model's levels")

    def skip(self, names: tuple[str, str]) -> None:
        if next(self.strings) or next(self.strings) or next(self.abs_max):
            raise BitstreamError(f"level {names[0]} has no blocks in the mask but its streams are not empty")

    def hyper(self, name: str, eb: EntropyBottleneck, h: None, size: tuple[int, int]) -> torch.Tensor:
        return eb.decompress([next(self.strings)], size)

    def latent(
        self, name: str, prior: MixturePrior, v: None, params: torch.Tensor, mask: torch.Tensor | None,
        arith: MixtureArithmetic,
    ) -> torch.Tensor:
        abs_max, stream = next(self.abs_max), next(self.strings)
        c, (height, width) = prior.channels, params.shape[-2:]
        positions = _positions(mask, height, width, params.device)
        if not positions.any():
            return torch.zeros(1, c, height, width, device=params.device)
        decoder = TableDecoder()
        decoder.set_stream(stream)
        if prior.context is not None:
            if mask is not None:
                raise ValueError("the autoregressive context codes whole levels only (no masks)")
            indexes = list(range(c))

            def code_position(i: int, j: int, tables: tuple) -> torch.Tensor:
                return torch.tensor(decoder.decode_stream(indexes, *tables), dtype=torch.float32, device=params.device)

            v_hat = raster_scan(prior, params, abs_max, code_position, arith)
            decoder.finish()
            return v_hat
        values: list[int] = []
        for start, end, tables in _mixture_chunks(prior, params, positions, abs_max, arith):
            values += decoder.decode_stream(list(range(end - start)), *tables)
        decoder.finish()
        v_hat = torch.zeros(1, c, height, width, device=params.device)  # symbols (float32 whatever the arithmetic)
        v_hat[0][:, positions] = torch.tensor(values, dtype=torch.float32, device=params.device).reshape(c, -1)
        return v_hat
