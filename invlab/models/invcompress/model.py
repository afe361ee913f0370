"""InvCompress: "Enhanced Invertible Encoding for Learned Image Compression" (Xie, Cheng, Chen; ACM MM 2021).

Analysis ``x -> FE_enc -> INN -> ACS -> y`` and synthesis ``y_hat -> ACS^-1 -> INN^-1 -> FE_dec -> x_hat``
as the paper, then CompressAI latent codecs for the entropy model: a hyperprior whose
``y`` branch is either

- ``context="ar"``: the faithful 5x5 masked-conv autoregressive context, coded serially in raster order
  (CompressAI ``RasterScanLatentCodec``, i.e. the ``_compress_ar/_decompress_ar`` loop), or
- ``context="checkerboard"``: a 2-pass checkerboard context (CompressAI ``CheckerboardLatentCodec``), the fast
  path; results from it are *not* the paper's model.

The compressed ``shape`` dict records the path, and decoding with the other path is refused.

Entropy parameters: on the serial path they are exact by default (``entropy="exact"``; :mod:`invlab.entropy.exact`):
the hyper-synthesis, the masked 5x5 context and the 1x1 parameter network run in fixed point, the table index comes
from integer thresholds and the tables are built the same way on every CPU, so a file decodes to the same symbols
wherever it is decoded. ``entropy="float"`` (CompressAI's float networks) decodes the files made before, which carry
no ``entropy`` option; the checkerboard path has float parameters only.

Quantisation: training uses additive noise (as the paper). In eval mode ``forward`` returns what the real
codec reconstructs, ``round(y - mu) + mu`` with ``mu`` from the decoded context (the official code used
``round(y)`` there, so its estimated and real reconstructions differed); for the AR path this is the
encoder's serial walk itself (:class:`SerialConsistentRasterScan`), so it is bit for bit what the decoder rebuilds.

Fixed-rate: one λ per model (``lambdas=(λ,)``), one weight file per rate index, λ from ``family_lambdas``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.latent_codecs import (
    CheckerboardLatentCodec,
    GaussianConditionalLatentCodec,
    HyperLatentCodec,
    HyperpriorLatentCodec,
    RasterScanLatentCodec,
)
from compressai.layers import CheckerboardMaskedConv2d, MaskedConv2d
from torch import nn
from torch.nn import functional as F

from invlab.entropy.exact import (
    ExactConv,
    ExactNet,
    exact_gaussian_tables,
    exact_indexes,
    float64_bottleneck_tables,
    from_fixed,
    scale_thresholds,
    to_fixed,
)
from invlab.entropy.rans import TableDecoder, TableEncoder
from invlab.errors import ModelMismatchError
from invlab.flows import InvertibleSequence
from invlab.models.base import InvlabModel
from invlab.models.invcompress import CONTEXTS, MINI_LAMBDAS, PAPER_LAMBDAS
from invlab.models.invcompress.blocks import (
    FeatureEnhancement,
    channel_squeeze,
    entropy_parameters,
    hyper_networks,
    inn_level,
)

#: (couplings, kernel, hidden width; None = the output width) per INN level
PAPER_LEVELS = ((3, 5, None), (3, 5, None), (3, 3, None), (3, 3, None))
MINI_LEVELS = ((2, 5, 32), (2, 3, 48), (1, 3, 64), (1, 1, 96))


def _keep_symbols(indexes: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """The serial walk's ``code`` step without an entropy coder: the encoder's symbols, unchanged."""
    return symbols


class SerialConsistentRasterScan(RasterScanLatentCodec):
    """CompressAI's raster-scan AR latent codec whose eval-mode ``forward`` is the real codec's reconstruction.

    The decoder's latent satisfies ``y_hat = round(y - mu(y_hat)) + mu(y_hat)`` where ``mu`` at a position
    depends only on earlier positions. In eval mode ``forward`` runs the encoder's own serial walk (without
    the entropy coder), so its ``y_hat`` is bit for bit the one the decoder rebuilds. (A parallel fixed
    point of the full-tensor context convolution reaches the same map only up to float rounding: where
    ``y - mu`` lies near a half, a last-bit difference in ``mu`` flips a symbol, and the decoded image then
    differed from the forward's by up to 17 levels on Kodak.)
    """

    #: the exact fixed-point context and parameter networks (set by the model's ``update`` with exact entropy
    #: parameters; then ``params`` are fixed-point activations from the exact hyper-synthesis), else None
    exact: ExactParameters | None = None

    def forward(self, y: torch.Tensor, params: torch.Tensor) -> dict[str, Any]:
        if self.training:
            return super().forward(y, params)
        gc = self.gaussian_conditional
        with torch.no_grad():
            y_hat = torch.cat([self._walk(params[i : i + 1], y.shape[-2], y.shape[-1], _keep_symbols, y[i : i + 1])
                               for i in range(y.shape[0])])
        float_params = params if self.exact is None else from_fixed(params)  # the estimate: float networks
        scales, means = self.entropy_parameters(self.merge(float_params, self.context_prediction(y_hat))).chunk(2, 1)
        _, likelihoods = gc(y_hat, scales, means=means)  # y_hat - means: the coded integer symbols (up to float)
        return {"likelihoods": {"y": likelihoods}, "y_hat": y_hat}

    def _parameters_at(self, params: torch.Tensor, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(table indices, means) at one position from its hyper parameters (B, 2M, 1, 1) and the k x k patch of
        what is decoded so far around it: float (CompressAI's) or exact fixed point."""
        if self.exact is not None:
            return self.exact(params, patch)
        cp = self.context_prediction
        ctx = F.conv2d(patch, cp.weight * cp.mask, cp.bias)
        scales, means = self.entropy_parameters(self.merge(params, ctx)).squeeze(3).squeeze(2).chunk(2, 1)
        return self.gaussian_conditional.build_indexes(scales).reshape(-1), means

    def _walk(self, params: torch.Tensor, height: int, width: int, code: Callable[..., torch.Tensor],
              y: torch.Tensor | None = None) -> torch.Tensor:
        """The serial raster walk, shared by encoder and decoder (batch 1).

        At each position the masked 5x5 context of what is decoded so far gives (σ, μ);
        ``code(indexes, symbols_or_None)`` codes the C symbols there and returns them.
        """
        gc, k, pad = self.gaussian_conditional, self.kernel_size, self.padding
        y_hat = F.pad(y, (pad, pad, pad, pad)) if y is not None else params.new_zeros(
            1, self.context_prediction.in_channels, height + 2 * pad, width + 2 * pad, dtype=torch.float32)
        for h in range(height):
            for w in range(width):
                indexes, means = self._parameters_at(params[:, :, h : h + 1, w : w + 1],
                                                     y_hat[:, :, h : h + k, w : w + k])
                symbols = None if y is None else gc.quantize(y_hat[:, :, h + pad, w + pad], "symbols", means)
                symbols = code(indexes, symbols).reshape(1, -1).to(means.dtype)
                y_hat[:, :, h + pad, w + pad] = symbols + means
        return y_hat[:, :, pad : pad + height, pad : pad + width]

    def _tables(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        gc = self.gaussian_conditional
        return gc.quantized_cdf, gc.cdf_length.reshape(-1), gc.offset.reshape(-1)

    def compress(self, y: torch.Tensor, ctx_params: torch.Tensor) -> dict[str, Any]:
        """One bounds-checked stream per image, one coder call per position (as the decoder reads it)."""
        strings, y_hats = [], []
        tables = self._tables()
        for i in range(y.shape[0]):
            encoder = TableEncoder()

            def code(indexes: torch.Tensor, symbols: torch.Tensor, encoder: TableEncoder = encoder) -> torch.Tensor:
                encoder.encode_with_indexes(symbols.reshape(-1), indexes, *tables)
                return symbols

            y_hats.append(self._walk(ctx_params[i : i + 1], y.shape[-2], y.shape[-1], code, y[i : i + 1]))
            strings.append(encoder.flush())
        return {"strings": [strings], "shape": y.shape[2:4], "y_hat": torch.cat(y_hats)}

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int], ctx_params: torch.Tensor,
                   **kwargs: Any) -> dict[str, Any]:
        (y_strings,) = strings
        tables = self._tables()
        y_hats = []
        for i, stream in enumerate(y_strings):
            decoder = TableDecoder()
            decoder.set_stream(stream)

            def code(indexes: torch.Tensor, symbols: None, decoder: TableDecoder = decoder) -> torch.Tensor:
                return torch.tensor(decoder.decode_stream(indexes, *tables))

            y_hats.append(self._walk(ctx_params[i : i + 1], *shape, code))
            decoder.finish()
        return {"y_hat": torch.cat(y_hats)}


class ExactParameters:
    """The serial walk's (table indices, means) at one position in exact fixed point: the masked 5x5 context and the
    1x1 parameter network as :class:`~invlab.entropy.exact.ExactNet`, indices from integer thresholds."""

    def __init__(self, codec: SerialConsistentRasterScan):
        self.context = ExactConv(codec.context_prediction, padding=(0, 0))  # one k x k patch, as the float walk's
        self.parameters = ExactNet(codec.entropy_parameters)
        self.thresholds = scale_thresholds(codec.gaussian_conditional.scale_table)
        self.merge = codec.merge

    def __call__(self, params: torch.Tensor, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gaussian = self.parameters(self.merge(params, self.context(to_fixed(patch))))
        scales, means = gaussian.squeeze(3).squeeze(2).chunk(2, 1)
        return exact_indexes(scales, self.thresholds).reshape(-1), from_fixed(means)


class ExactHyperLatentCodec(HyperLatentCodec):
    """CompressAI's hyper-latent codec (same modules, same state dict) whose coding path, once :attr:`exact_h_s` is
    set, gives the hyper parameters as fixed-point activations of the exact hyper-synthesis; training stays float."""

    exact_h_s: ExactNet | None = None

    def forward(self, y: torch.Tensor) -> dict[str, Any]:
        if self.training or self.exact_h_s is None:
            return super().forward(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(self.h_a(y))  # eval: round(z - median) + median, as coded
        return {"likelihoods": {"z": z_likelihoods}, "params": self.exact_h_s(to_fixed(z_hat))}

    def compress(self, y: torch.Tensor) -> dict[str, Any]:
        if self.exact_h_s is None:
            return super().compress(y)
        z = self.h_a(y)
        shape = z.size()[-2:]
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, shape)
        return {"strings": [z_strings], "shape": shape, "params": self.exact_h_s(to_fixed(z_hat))}

    def decompress(self, strings: list[list[bytes]], shape: tuple[int, int], **kwargs: Any) -> dict[str, Any]:
        if self.exact_h_s is None:
            return super().decompress(strings, shape, **kwargs)
        (z_strings,) = strings
        return {"params": self.exact_h_s(to_fixed(self.entropy_bottleneck.decompress(z_strings, shape)))}


def _y_codec(context: str, M: int) -> nn.Module:
    """The context model + Gaussian conditional for y (mean-scale, 5x5 context M -> 2M)."""
    if context == "ar":
        return SerialConsistentRasterScan(GaussianConditional(None), entropy_parameters(M),
                                          MaskedConv2d(M, 2 * M, kernel_size=5, padding=2))
    if context == "checkerboard":
        return CheckerboardLatentCodec(
            latent_codec={"y": GaussianConditionalLatentCodec(quantizer="ste")},
            entropy_parameters=entropy_parameters(M),
            context_prediction=CheckerboardMaskedConv2d(M, 2 * M, kernel_size=5, padding=2),
        )
    raise ValueError(f"context must be one of {sorted(CONTEXTS)}, got {context!r}")


class InvCompress(InvlabModel):
    """InvCompress with configurable size, context path and ablations (defaults: the paper's q1-q4 model)."""

    decode_bytes_per_pixel = 2550.0  # >= 1.5x measured by benchmarks/decode_memory.py: 1682, -cb 1394

    #: exact entropy parameters on the serial context path (the default there; files made before decode on the float
    #: path); an instance with the checkerboard context has float ones only and says False
    exact_entropy = True

    def __init__(
        self,
        M: int = 128,
        N: int = 128,
        levels: Sequence[Sequence[int | None]] = PAPER_LEVELS,
        fe: bool = True,
        fe_width: int = 64,
        fe_growth: int = 32,
        acs: str = "attention",
        hyper: str = "cheng",
        context: str = "ar",
        lambdas: Sequence[float] = PAPER_LAMBDAS[:1],
        family_lambdas: Sequence[float] = PAPER_LAMBDAS,
        padding: str = "replicate",
        entropy: str | None = None,
    ):
        """``padding``: ``"replicate"`` (invlab's) or ``"official"`` (zeros, centred; converted official weights).
        ``entropy``: ``"exact"`` (the default with the serial context: entropy parameters every CPU computes alike)
        or ``"float"`` (CompressAI's float networks; the checkerboard path has only this one)."""
        super().__init__(lambdas=tuple(lambdas))
        entropy = entropy or ("exact" if context == "ar" else "float")
        if entropy not in ("exact", "float") or (entropy == "exact" and context != "ar"):
            raise ValueError(f"entropy must be 'exact' (serial context only) or 'float', got {entropy!r} with the "
                             f"{context!r} context")
        self.entropy = entropy
        self.exact_entropy = context == "ar"  # the checkerboard path has float parameters only
        if len(self.lambdas) != 1:
            raise ValueError(f"InvCompress is fixed-rate: give one λ, got {self.lambdas}")
        self.family_lambdas = tuple(float(v) for v in family_lambdas)
        self.context = context
        self.latent_channels = M
        self.inn_levels = len(levels)
        self.pad_multiple = 4 * 2 ** len(levels)  # the hyperprior adds two stride-2 stages to the INN's
        self.use_padding(padding, official_multiple=self.pad_multiple)
        channels = 3
        inn = []
        for couplings, kernel, hidden in levels:
            hidden = None if hidden is None else int(hidden)
            inn.append(inn_level(channels, int(couplings), int(kernel), hidden))
            channels *= 4
        self.inn = InvertibleSequence(inn)
        self.fe_enc = FeatureEnhancement(fe_width, fe_growth) if fe else nn.Identity()
        self.fe_dec = FeatureEnhancement(fe_width, fe_growth) if fe else nn.Identity()
        self.acs_enc, self.acs_dec = channel_squeeze(acs, channels, M)
        h_a, h_s = hyper_networks(hyper, M, N)
        codecs = {"y": _y_codec(context, M), "hyper": ExactHyperLatentCodec(EntropyBottleneck(N), h_a, h_s)}
        self.latent_codec = HyperpriorLatentCodec(latent_codec=codecs)

    @property
    def coding_options(self) -> dict[str, Any]:
        return {**super().coding_options, **({"entropy": "exact"} if self.entropy == "exact" else {})}

    def update(self, scale_table=None, force: bool = False, **kwargs) -> bool:
        """The float tables (CompressAI's), and with exact entropy parameters the exact networks and the tables every
        CPU builds alike (derived from the weights, never stored)."""
        updated = super().update(scale_table=scale_table, force=force, **kwargs)
        if self.entropy == "exact":
            hyper, y_codec = self.latent_codec.latent_codec["hyper"], self.latent_codec.latent_codec["y"]
            exact_gaussian_tables(y_codec.gaussian_conditional)
            float64_bottleneck_tables(hyper.entropy_bottleneck)
            hyper.exact_h_s = ExactNet(hyper.h_s)
            y_codec.exact = ExactParameters(y_codec)
        return updated

    @property
    def context_label(self) -> str:
        """Which entropy-context path this model codes with (say it next to every number it produces)."""
        return CONTEXTS[self.context]

    def g_a(self, x: torch.Tensor) -> torch.Tensor:
        return self.acs_enc(self.inn(self.fe_enc(x)))

    def g_s(self, y_hat: torch.Tensor) -> torch.Tensor:
        return self.fe_dec(self.inn.inverse(self.acs_dec(y_hat)))

    def forward(self, x: torch.Tensor, rate: torch.Tensor | None = None) -> dict[str, Any]:
        out = self.latent_codec(self.g_a(x))
        return {"x_hat": self.g_s(out["y_hat"]), "likelihoods": out["likelihoods"]}

    def compress(self, x: torch.Tensor, rate: float | None = None) -> dict[str, Any]:
        """Batch 1. Also returns ``y_hat``, the latent the decoder will reconstruct (tests, analysis)."""
        out = self.latent_codec.compress(self.g_a(x))
        shape = {"context": self.context, "y": [int(v) for v in out["shape"]["y"]],
                 "z": [int(v) for v in out["shape"]["hyper"]]}
        return {"strings": [s[0] for s in out["strings"]], "shape": shape, "y_hat": out["y_hat"]}

    @property
    def stream_count(self) -> int:
        return 3 if self.context == "checkerboard" else 2

    def stream_geometry(self, height: int, width: int) -> dict:
        y = [height >> self.inn_levels, width >> self.inn_levels]
        return {"context": self.context, "y": ([self.latent_channels] if self.context == "checkerboard" else []) + y,
                "z": [y[0] // 4, y[1] // 4]}

    def decompress(self, strings: list[bytes], shape: dict, rate: float | None = None) -> dict[str, Any]:
        if shape.get("context") != self.context:
            raise ModelMismatchError(
                f"stream was coded with the {shape.get('context')!r} context path; this model decodes "
                f"{self.context!r} only (load the matching InvCompress variant)"
            )
        shapes = {"y": tuple(shape["y"]), "hyper": tuple(shape["z"])}
        out = self.latent_codec.decompress([[s] for s in strings], shapes)
        return {"x_hat": self.g_s(out["y_hat"]).clamp(0, 1)}


def invcompress(**overrides) -> InvCompress:
    width = 128 if max(overrides.get("lambdas", PAPER_LAMBDAS[:1])) <= 0.0075 else 192
    model = InvCompress(**{"M": width, "N": width, **overrides})
    model.decode_bytes_per_pixel = 4 * InvCompress.decode_bytes_per_pixel  # [not measured] paper width: 4x the mini's
    return model


MINI_CONFIG: dict[str, Any] = {
    "M": 96, "N": 64, "levels": MINI_LEVELS, "fe_width": 32, "fe_growth": 16, "hyper": "minnen",
    "lambdas": MINI_LAMBDAS[:1], "family_lambdas": MINI_LAMBDAS,
}


def invcompress_mini(**overrides) -> InvCompress:
    return InvCompress(**{**MINI_CONFIG, **overrides})


def invcompress_mini_cb(**overrides) -> InvCompress:
    return InvCompress(**{**MINI_CONFIG, "context": "checkerboard", **overrides})


def invcompress_mini_nofe(**overrides) -> InvCompress:
    """Ablation: invcompress-mini without feature enhancement (``fe=False``)."""
    return InvCompress(**{**MINI_CONFIG, "fe": False, **overrides})


def invcompress_mini_conv1x1(**overrides) -> InvCompress:
    """Ablation: invcompress-mini with 1x1 convolutions in place of the attentive channel squeeze."""
    return InvCompress(**{**MINI_CONFIG, "acs": "conv1x1", **overrides})
