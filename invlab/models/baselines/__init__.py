"""Autoencoder baselines the size of the mini INN models: CompressAI's scale hyperprior (Ballé 2018) and
mean-scale hyperprior (Minnen 2018) at N=96, M=128, trained on the same data and budget.

The declarations (read by the registry without torch); the adapters are in :mod:`.model`.
"""

from invlab.models.registry import FIXED_RATE_LAMBDAS, ModelSpec, lazy_attribute

#: the common five, and CompressAI's next λ (0.0932): the minis' λ 0.0483 ends near 1 bpp, and the invertible-vs-
#: autoencoder comparison is made at ≥ 1 bpp
BASELINE_LAMBDAS = (*FIXED_RATE_LAMBDAS, 0.0932)

MODELS = (
    ModelSpec("bmshj2018-hyperprior-mini", "baseline",
              "CompressAI scale hyperprior, N=96 M=128 (2.76 M), fixed-rate autoencoder baseline",
              "invlab.models.baselines.model:bmshj2018_hyperprior_mini", False, BASELINE_LAMBDAS, 64, None,
              "hyperprior only (no spatial context)"),
    ModelSpec("mbt2018-mean-mini", "baseline",
              "CompressAI mean-scale hyperprior, N=96 M=128 (3.55 M), fixed-rate autoencoder baseline",
              "invlab.models.baselines.model:mbt2018_mean_mini", False, BASELINE_LAMBDAS, 64, None,
              "mean-scale hyperprior (no spatial context)"),
)


def __getattr__(name: str):
    return lazy_attribute(__name__, name, ("model",))
