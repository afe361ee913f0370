"""The ANF family: ANFIC, M-ANFIC and MS-ANFIC (augmented normalizing flows).

- :mod:`~invlab.models.anf.skeleton`: :class:`AugmentedFlowCodec`, what the family shares (ANF steps, one
  entropy model per latent level, QE, the one coding walk, the x2 penalty, the stream header);
- :mod:`~invlab.models.anf.anfic`: ANFIC and its factories (``anfic``, ``anfic-mini``, ``anfic-mini-noctx``);
- :mod:`~invlab.models.anf.manfic`: M-ANFIC and MS-ANFIC on quadtree-masked multi-scale latents
  (``manfic-mini``, ``msanfic-mini``);
- :mod:`~invlab.models.anf.blocks`: conv stacks, the augmented flow step, QE, the latent split network;
- :mod:`~invlab.models.anf.priors`: the entropy model of one latent level (hyperprior + Gaussian mixture);
- :mod:`~invlab.models.anf.quadtree`: depth maps, level masks and the mask stream format.

The coders the walk plugs in are :mod:`invlab.entropy.mixture`'s. Importing this package is cheap (no torch);
the names below load their module on first access.
"""

import importlib as _importlib

from invlab.models.registry import FIXED_RATE_LAMBDAS, ModelSpec

#: λ per rate index, paper size [inferred: CompressAI's set; the paper's list is not retrievable]
PAPER_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)
#: λ per rate index of the minis (the common fixed-rate recipe)
MINI_LAMBDAS = FIXED_RATE_LAMBDAS
#: the label of each ANFIC entropy-context path (``context=`` of the model)
CONTEXTS = {"ar": "5x5 autoregressive, serial (faithful)", "none": "hyperprior only (no spatial context)"}
MASKED_CONTEXT = "hyperprior only, on quadtree-masked latent levels"

_ANFIC, _MANFIC = "invlab.models.anf.anfic:", "invlab.models.anf.manfic:"
MODELS = (
    ModelSpec("anfic", "anfic", "ANFIC, paper size (22.7 M; F=128, M=320; GMM + 5x5 AR context, serial)",
              _ANFIC + "anfic", False, PAPER_LAMBDAS, 64, None, CONTEXTS["ar"]),
    ModelSpec("anfic-mini", "anfic", "ANFIC-mini (3.0 M; F=64, M=96; GMM + 5x5 AR context, serial)",
              _ANFIC + "anfic_mini", False, MINI_LAMBDAS, 64, None, CONTEXTS["ar"]),
    ModelSpec("anfic-mini-noctx", "anfic",
              "ANFIC-mini without context (≈2.5 M; hyperprior + GMM): the single-scale baseline",
              _ANFIC + "anfic_mini_noctx", False, MINI_LAMBDAS, 64, None, CONTEXTS["none"]),
    ModelSpec("manfic-mini", "manfic", "M-ANFIC-mini (≈4.1 M; LSUnits in both steps, 2 levels, 32 px quadtree, RDO)",
              _MANFIC + "manfic_mini", False, MINI_LAMBDAS, 64, None, MASKED_CONTEXT),
    ModelSpec("msanfic-mini", "manfic",
              "MS-ANFIC-mini (≈3.7 M; latent split network, 3 levels, 64 px quadtree, RDO)",
              _MANFIC + "msanfic_mini", False, MINI_LAMBDAS, 128, None, MASKED_CONTEXT),
)

_LAZY = {
    "AugmentedFlowCodec": "skeleton",
    "ANFIC": "anfic",
    "MANFIC": "manfic",
    "MSANFIC": "manfic",
    "MaskedMultiScaleCodec": "manfic",
    "MaskView": "manfic",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(_importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
