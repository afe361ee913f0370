"""Import-order helper: make ``import compressai`` work whatever torchvision build is present.

CompressAI 1.2.8 imports torchvision at import time. With the pinned torch/torchvision pair of
``requirements.txt`` that just works and this helper does nothing. With a CPU-only torch beside a
CUDA-built torchvision wheel, torchvision's operator registrations fail; we then define the two
missing operator schemas so that the pure-Python ``torchvision.transforms`` that CompressAI needs
import cleanly. Only torchvision's C++ ops stay unusable, and invlab never calls them.
"""

from __future__ import annotations

import sys
import warnings

_TV_LIB = None


def import_torchvision():
    """Import torchvision, defining missing operator schemas if the build mismatches torch."""
    import torch

    try:
        import torchvision

        return torchvision
    except RuntimeError as err:  # CPU torch + CUDA-built torchvision wheel
        if "torchvision::" not in str(err):
            raise
    for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[name]
    global _TV_LIB
    _TV_LIB = torch.library.Library("torchvision", "FRAGMENT")
    _TV_LIB.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TV_LIB.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import torchvision
    return torchvision
