"""The ANF family: ANFIC, M-ANFIC and MS-ANFIC (augmented normalizing flows; architectures.md §4-§6).

- :mod:`~invlab.models.anf.skeleton`: :class:`AugmentedFlowCodec`, what the family shares (ANF steps, one
  entropy model per latent level, QE, the one coding walk, the x2 penalty, the stream header);
- :mod:`~invlab.models.anf.anfic`: ANFIC and its factories (``anfic``, ``anfic-mini``, ``anfic-mini-noctx``);
- :mod:`~invlab.models.anf.manfic`: M-ANFIC and MS-ANFIC on quadtree-masked multi-scale latents
  (``manfic-mini``, ``msanfic-mini``);
- :mod:`~invlab.models.anf.layers`: conv stacks, the augmented flow step, QE, the latent split network;
- :mod:`~invlab.models.anf.priors`: the entropy model of one latent level (hyperprior + Gaussian mixture);
- :mod:`~invlab.models.anf.quadtree`: depth maps, level masks and the mask stream format.

The coders the walk plugs in are :mod:`invlab.entropy.mixture`'s. Importing this package is cheap (no torch);
the names below load their module on first access.
"""

import importlib as _importlib

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
