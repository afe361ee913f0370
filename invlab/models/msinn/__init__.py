"""MSINN-VRLIC (Tu et al., IEEE TMM 2025): one bijective multi-scale INN whose rate moves continuously.

The declarations (read by the registry without torch); the network is in :mod:`.model`, its post-net in
:mod:`.postnet`, its per-slice context networks in
:mod:`.context`.
"""

from invlab.models.registry import ModelSpec, lazy_attribute

#: λ per anchor; the first 8 are the paper's "Ours*" model, all 12 its wide-range model
LAMBDAS_12 = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800, 0.320, 0.569, 1.012, 1.8)
CONTEXT = "channel context + two-pass checkerboard per slice"

MODELS = (
    ModelSpec("msinn", "msinn", "MSINN-VRLIC, paper size (≈12.3 M), continuous rate",
              "invlab.models.msinn.model:msinn", True, LAMBDAS_12[:8], 16, "msinn-{anchors}", CONTEXT),
    ModelSpec("msinn-mini", "msinn",
              "MSINN-VRLIC mini (≈2.75 M; four depth-2 scales, small post-net), continuous rate",
              "invlab.models.msinn.model:msinn_mini", True, LAMBDAS_12[:8], 16, "msinn-{anchors}", CONTEXT),
    ModelSpec("msinn-mini-12", "msinn",
              "MSINN-VRLIC mini widened to 12 anchors (λ up to 1.8: about 0.1-3 bpp), continuous rate; trained warm "
              "from msinn-mini's weights (the paper's staged widening)",
              "invlab.models.msinn.model:msinn_mini_12", True, LAMBDAS_12, 16, "msinn-{anchors}", CONTEXT),
)


def __getattr__(name: str):
    return lazy_attribute(__name__, name, ("model", "postnet"))
