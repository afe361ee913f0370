"""Import-order helper: make ``import compressai`` work whatever torchvision build is present.

CompressAI 1.2.8 imports torchvision at import time. With the pinned torch/torchvision pair of
``requirements.txt`` that just works and this helper does nothing. With a CPU-only torch beside a
CUDA-built torchvision wheel, torchvision's operator registrations fail; we then define the two
missing operator schemas so that the pure-Python ``torchvision.transforms`` that CompressAI needs
import cleanly. Only torchvision's C++ ops stay unusable, and invlab never calls them.

``import invlab`` only installs :func:`install_import_hook`; the helper then runs at the first import of
compressai or torchvision, so that importing invlab (``invlab --help``, ``models``, ``info``) does not import torch.
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


class _ImportTorchvisionFirst:
    """A ``sys.meta_path`` entry: the first ``import compressai`` (or ``torchvision``) runs
    :func:`import_torchvision` before it, so that ``import invlab`` itself need not import torch."""

    _NAMES = ("compressai", "torchvision")
    done = False  # set before the work, so that import_torchvision's own import passes through

    def find_spec(self, fullname, path=None, target=None):
        # (it stays in sys.meta_path once done: removing it while the import system iterates over
        # sys.meta_path would make that loop skip the next finder)
        if self.done or fullname not in self._NAMES:
            return None
        self.done = True
        import_torchvision()
        if fullname == "torchvision":  # imported just now: hand the finished module to the pending import
            # (taken out of sys.modules for a moment, else the import system would run torchvision again)
            import importlib.util

            module = sys.modules.pop("torchvision")
            return importlib.util.spec_from_loader("torchvision", _Imported(module))
        return None  # compressai: imported by the regular finders, torchvision being ready


class _Imported:
    """Loader of a module imported already: the import system gets it as it is, nothing runs twice."""

    def __init__(self, module):
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the real one, not the stand-in spec the import system just set


_HOOK = _ImportTorchvisionFirst()


def install_import_hook() -> None:
    """Defer :func:`import_torchvision` to the first import of compressai or torchvision (idempotent).

    If either is imported already, run it now instead (it is then cheap or moot)."""
    if any(name in sys.modules for name in _ImportTorchvisionFirst._NAMES):
        _HOOK.done = True
        import_torchvision()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
