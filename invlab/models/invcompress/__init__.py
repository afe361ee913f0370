"""InvCompress (Xie, Cheng, Chen; ACM MM 2021): an invertible analysis/synthesis with feature enhancement and
attentive channel squeeze, and a CompressAI hyperprior + context entropy model.

The declarations (read by the registry without torch); the network is in :mod:`.model`, its layers in
:mod:`.blocks`. A fixed-rate family: one weight file per λ.
"""

from invlab.models.registry import ModelSpec, lazy_attribute

#: λ of the paper's 8 MSE models (q1..q8); q1-q4 use M = N = 128, q5-q8 use 192
PAPER_LAMBDAS = (0.0016, 0.0024, 0.0032, 0.0075, 0.015, 0.03, 0.045, 0.09)
#: λ of the rate points of invcompress-mini (the last, 0.09, is the paper's top λ: past 1 bpp)
MINI_LAMBDAS = (0.0032, 0.0075, 0.015, 0.03, 0.09)
#: the label of each entropy-context path (``context=`` of the model)
CONTEXTS = {"ar": "5x5 autoregressive, serial (faithful)",
            "checkerboard": "checkerboard 2-pass (fast, non-faithful)"}

MODELS = (
    ModelSpec("invcompress", "invcompress",
              "InvCompress, paper size (M=N=128 for λ<=0.0075, else 192; 5x5 AR context)",
              "invlab.models.invcompress.model:invcompress", False, PAPER_LAMBDAS, 64, "invcompress", CONTEXTS["ar"]),
    ModelSpec("invcompress-mini", "invcompress", "InvCompress-mini (3.8 M params, M=96; 5x5 AR context, serial)",
              "invlab.models.invcompress.model:invcompress_mini", False, MINI_LAMBDAS, 64, "invcompress",
              CONTEXTS["ar"]),
    ModelSpec("invcompress-mini-cb", "invcompress",
              "InvCompress-mini, checkerboard context (fast decode; not the paper's model)",
              "invlab.models.invcompress.model:invcompress_mini_cb", False, MINI_LAMBDAS, 64, "invcompress",
              CONTEXTS["checkerboard"]),
    # the paper's two ablations (its Table 3), in direction: invcompress-mini less one part, same size otherwise
    ModelSpec("invcompress-mini-nofe", "invcompress",
              "InvCompress-mini ablation: no feature enhancement (the INN takes the image itself)",
              "invlab.models.invcompress.model:invcompress_mini_nofe", False, MINI_LAMBDAS, 64, None,
              CONTEXTS["ar"], ablation_of="invcompress-mini"),
    ModelSpec("invcompress-mini-conv1x1", "invcompress",
              "InvCompress-mini ablation: attentive channel squeeze replaced by learned 1x1 convolutions",
              "invlab.models.invcompress.model:invcompress_mini_conv1x1", False, MINI_LAMBDAS, 64, None,
              CONTEXTS["ar"], ablation_of="invcompress-mini"),
)


def __getattr__(name: str):
    return lazy_attribute(__name__, name, ("model", "blocks"))
