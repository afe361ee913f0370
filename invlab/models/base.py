"""The model contract shared by every invlab compression model.

Every model is a CompressAI ``CompressionModel`` with one more argument, ``rate``:

- ``forward(x, rate=None)`` (training): returns ``{"x_hat", "likelihoods", ...}``; for a variable-rate
  model ``rate`` is a float tensor of shape (B,) (one anchor index per sample, may be fractional).
- ``compress(x, rate=None)`` (batch 1, CPU by default): returns ``{"strings": list[bytes], "shape": dict}``,
  ``shape`` being JSON-serialisable (it goes into the file header).
- ``decompress(strings, shape, rate=None)``: returns ``{"x_hat"}``, exactly what the encoder's
  reconstruction would be (the encode->decode test checks this bit for bit).
- ``update(force=True)``: builds the CDF tables (CompressAI).

Fixed-rate models ignore ``rate``; a fixed-rate *family* ships one set of weights per rate index. A user's rate
is parsed and checked once, at the edge (:class:`invlab.rates.RateSpace`: the CLI, the learned codec, evaluate);
models trust the value they get (:meth:`InvlabModel.check_rate` serves a variable-rate model's ``None`` default
and direct library callers).
The training loss is computed by :meth:`InvlabModel.rd_loss`, so the trainer never asks which model it has.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from compressai.models import CompressionModel
from torch import nn

from invlab.entropy.rans import use_invlab_coder
from invlab.errors import NoLevelsViewError
from invlab.models.registry import FIXED_RATE_LAMBDAS  # noqa: F401  (re-exported: the families' default λs)
from invlab.rates import RateSpace, anchor_space, weight_index_space


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for the block, then back in the mode it was in (also when the block raises)."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


class InvlabModel(CompressionModel):
    """Base class: a CompressAI model plus rate handling, padding and the RD loss."""

    #: what :func:`invlab.models.create_model` and :func:`invlab.weights.load_model` record on an instance: its
    #: registered name, whether trained weights are loaded, their file and the hash its files carry
    registry_name: str = ""
    trained: bool = False
    weights_file: str | None = None
    weights_hash: bytes = bytes(8)
    #: the full architecture config where a model records one (saved with its weights' metadata)
    config: dict[str, Any] | None = None
    #: the entropy-context path in words where a model offers several (said next to its numbers), else None
    context_label: str | None = None
    #: the search that chooses a multi-scale model's quadtree masks, where it has one
    rdo: str | None = None
    #: ``compress(x, rate, reconstruct=True)`` also returns ``"x_hat"``, the decoder's output for its streams
    reconstructs_at_encoder: bool = False
    #: the model offers ``entropy="exact"``: entropy parameters every CPU computes alike (its default where
    #: offered; ``entropy="float"`` decodes the files made before, which carry no ``entropy`` option)
    exact_entropy: bool = False
    #: ``compress(..., rate_map=M)`` / ``decompress(..., rate_map=M)`` code with one rate per 16x16 block of the
    #: padded image (M: (1, H/16, W/16) rates; :mod:`invlab.rate_map`)
    rate_maps: bool = False
    #: ``compress(..., forced=F)`` takes a user's quadtree level for chosen blocks (the multi-scale ANF models)
    forced_levels: bool = False
    #: the analysis transform does not depend on the rate: :meth:`analyse` once per image, then
    #: ``compress(x, rate, analysis=...)`` at any rate writes the same streams as ``compress(x, rate)``
    rate_free_analysis: bool = False
    #: ``stable=True`` builds the model's stable re-encoding mode: the same weights, with the decoder reduced to the
    #: exact inverse of the encoder's transform (what it adds after the symbols left out), so that re-encoding a
    #: decoded image gives its symbols back; its files record ``{"stable": true}``
    stable_mode: bool = False
    #: this instance codes in its stable re-encoding mode (built with ``stable=True``)
    stable: bool = False
    #: the re-encoding study's ablations (``invlab drift``): a variant's name -> the parts :meth:`ablate` switches off
    #: for it, each a part between the symbols and the pixels that may break the inverse
    reencoding_ablations: ClassVar[dict[str, tuple[str, ...]]] = {}

    #: input H and W are padded to a multiple of this
    pad_multiple: int = 64
    #: how: one of :data:`invlab.io.images.PAD_MODES` (the encoder pads, the decoder crops, both with :meth:`pad`
    #: and :meth:`crop`)
    pad_mode: str = "replicate"
    #: True when one set of weights covers a continuous rate range
    variable_rate: bool = False

    def __init__(self, lambdas: tuple[float, ...] = (0.0130,), **kwargs: Any):
        super().__init__(**kwargs)
        self.lambdas = tuple(float(v) for v in lambdas)

    #: peak decoding memory per image pixel, measured by ``benchmarks/decode_memory.py`` (the decoder's pixel
    #: limit is the memory budget divided by this; see :class:`invlab.codecs.learned.LearnedCodec`)
    decode_bytes_per_pixel: float = 4000.0
    #: entropy-coded streams in a file of this model (None: its ``decompress`` checks the count itself)
    stream_count: int | None = None

    def stream_geometry(self, height: int, width: int) -> dict[str, Any]:
        """The ``shape`` fields a file of a (padded) ``height`` x ``width`` image must carry, exactly.

        The decoder compares them with the file's before it allocates anything, so a file cannot make it
        build tensors of another size than its header's (checked) image size.
        """
        raise NotImplementedError(f"{type(self).__name__} does not declare its stream geometry")

    def use_padding(self, padding: str, official_multiple: int = 64) -> None:
        """``"replicate"`` (invlab's, this class's ``pad_multiple``) or ``"official"``: zeros around the image,
        centred, to a multiple of ``official_multiple`` (the official evaluation code's; converted weights)."""
        if padding == "official":
            self.pad_multiple, self.pad_mode = official_multiple, "zeros-centred"
        elif padding != "replicate":
            raise ValueError(f"padding must be 'replicate' or 'official', got {padding!r}")

    @property
    def coding_options(self) -> dict[str, Any]:
        """The options of this instance that change how its files code, beyond its weights (which the file's weights
        hash names): empty for invlab's own settings, so files keep their bytes; e.g. the official padding. Encoder
        and decoder must agree on them: the file records them and the decoder checks."""
        options: dict[str, Any] = {} if self.pad_mode == "replicate" else {"pad": [self.pad_mode, self.pad_multiple]}
        return {**options, **({"stable": True} if self.stable else {})}

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, H, W) padded to this model's multiple, its way."""
        from invlab.io.images import pad_to_multiple

        return pad_to_multiple(x, self.pad_multiple, self.pad_mode)[0]

    def crop(self, x_hat: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The ``height`` x ``width`` image inside a reconstruction of a :meth:`pad`-ded input."""
        from invlab.io.images import crop

        return crop(x_hat, height, width, self.pad_multiple, self.pad_mode)

    def coded_forward(self, x: torch.Tensor, rate: torch.Tensor | float | None = None) -> dict[str, Any]:
        """The eval-mode forward as the files code it: ``"x_hat"`` is what :meth:`decompress` returns for this
        image (before clamping), ``"likelihoods"`` the coded symbols'. The plain forward by default (it rounds
        like the coder); a model whose files code with other arithmetic than its training forward overrides it."""
        return self(x, rate)

    def analyse(self, x: torch.Tensor) -> Any:
        """The rate-independent part of :meth:`compress` for a padded batch ``x`` (``rate_free_analysis`` models)."""
        raise NotImplementedError(f"{type(self).__name__} has no rate-free analysis")

    def update(self, scale_table: Any = None, force: bool = False, **kwargs: Any) -> bool:
        """Build the CDF tables; every entropy model then codes with invlab's bounds-checked coder."""
        use_invlab_coder(self)
        return super().update(scale_table=scale_table, force=force, **kwargs)

    @property
    def coding_switches(self) -> list[str]:
        """Switches of this instance that change its numbers, in words (e.g. ``["post-net off"]``); said next to
        every result with the context path. Override where a model has such switches."""
        return []

    # ------------------------------------------------------------------ rates
    @property
    def rate_space(self) -> RateSpace:
        """What ``rate`` means for this model: any real in [0, A-1] (variable rate) or just 0 (fixed rate; a
        fixed-rate family's weight files are indexed by the codec, not by the model)."""
        return anchor_space(len(self.lambdas)) if self.variable_rate else weight_index_space([0])

    @property
    def rate_range(self) -> tuple[float, float]:
        """Valid ``rate`` values: [0, A-1] for a variable-rate model, (0, 0) otherwise."""
        return self.rate_space.low, self.rate_space.high

    def check_rate(self, rate: float | None) -> float:
        """A user rate checked by :attr:`rate_space` (None -> the middle of a variable-rate model's range)."""
        return self.rate_space.check(rate, type(self).__name__)

    def lambda_of(self, rate: torch.Tensor) -> torch.Tensor:
        """λ per sample for rates (B,): geometric interpolation between anchors (variable-rate models)."""
        lam = torch.tensor(self.lambdas, device=rate.device, dtype=torch.float32)
        if not self.variable_rate:
            return lam[0].expand_as(rate)
        lo = rate.floor().long().clamp(0, len(self.lambdas) - 1)
        hi = (lo + 1).clamp(max=len(self.lambdas) - 1)
        t = rate - lo.float()
        return torch.exp((1 - t) * lam[lo].log() + t * lam[hi].log())

    # ------------------------------------------------------------------ loss
    def rd_loss(self, x: torch.Tensor, out: dict[str, Any], rate: torch.Tensor) -> dict[str, torch.Tensor]:
        """``bpp + 255² · mean_b(λ_b · MSE_b)`` plus any ``out["extra_loss"]`` the model adds."""
        n, _, h, w = x.shape
        num_pixels = n * h * w
        bpp = sum(torch.log(lk).sum() for lk in out["likelihoods"].values()) / (-math.log(2) * num_pixels)
        mse_b = (out["x_hat"] - x).pow(2).mean(dim=(1, 2, 3))
        lam = self.lambda_of(rate)
        loss = bpp + (255.0**2) * (lam * mse_b).mean()
        if "extra_loss" in out:
            loss = loss + out["extra_loss"]
        mse = mse_b.mean()
        return {"loss": loss, "bpp": bpp, "mse": mse, "psnr": -10 * torch.log10(mse.clamp_min(1e-10))}

    # ------------------------------------------------------------------ per-scale views (the workbench)
    def scale_latents(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The latents by name, fine to coarse (batch 1). A model with per-scale latents overrides this."""
        raise NoLevelsViewError(
            f"{self.registry_name or type(self).__name__} exposes no per-scale latents; notebook 02 shows them for "
            "msinn, tiny-flow and the ANFIC family")

    def ablate(self, parts: tuple[str, ...]) -> None:
        """Switch ``parts`` (named in :attr:`reencoding_ablations`) off in this instance, for the re-encoding study."""
        if parts:
            raise ValueError(f"{type(self).__name__} has no parts to switch off; got {parts}")

    def scale_symbols(self, x: torch.Tensor, rate: float) -> dict[str, torch.Tensor]:
        """The integer symbols each latent scale codes for ``x`` (eval mode, batch 1), fine to coarse: what a
        re-encoding study compares from one generation to the next. A model that can say overrides this."""
        raise NoLevelsViewError(f"{self.registry_name or type(self).__name__} does not expose its symbols per scale; "
                                "the MSINN models do")

    def mask_view(self, x: torch.Tensor, rate: float | None = None) -> Any:
        """The quadtree masks a multi-scale model chose for ``x`` and their estimated bits (M-ANFIC / MS-ANFIC)."""
        raise NoLevelsViewError(f"{self.registry_name or type(self).__name__} has no quadtree masks: only M-ANFIC / "
                                "MS-ANFIC (manfic-mini, msanfic-mini) do")

    @torch.no_grad()
    def scale_bits(self, x: torch.Tensor, rate: float) -> dict[str, torch.Tensor]:
        """Estimated bits per latent position by name, ``-log2 p`` of shape (..., h, w), fine to coarse (eval mode,
        batch 1). By default the likelihoods of the eval-mode forward; a model may say more (hyper-latents)."""
        with eval_mode(self):
            out = self(x, rate=torch.tensor([float(rate)], device=x.device))
        return {name: -torch.log2(lk) for name, lk in out["likelihoods"].items()}

    def init_for_inference(self) -> None:
        """Make an untrained model usable for coding (e.g. mark ActNorm initialised). Override if needed."""
        from invlab.flows.actnorm import ActNorm

        for m in self.modules():
            if isinstance(m, ActNorm) and not bool(m.initialized):
                m.mark_initialized()


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
