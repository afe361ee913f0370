"""invlab: learned image compression with invertible transforms.

Layout (one folder per layer of the architecture):

- ``invlab.flows``    invertible blocks (forward/inverse contract) and containers
- ``invlab.layers``   layers shared across families (channels-last stacks, causal context conv)
- ``invlab.entropy``  entropy coding on top of CompressAI: rANS, the coder protocol and its coders, contexts, gains
- ``invlab.models``   compression models, registered by name (``create_model``)
- ``invlab.codecs``   learned and classical codecs behind one interface (image + rate -> bytes)
- ``invlab.io``       the invlab file container and image loading
- ``invlab.metrics``  PSNR, MS-SSIM, bpp, BD-rate, AUC
- ``invlab.eval``     the RD harness and studies
- ``invlab.train``    the shared training pipeline
- ``invlab.widgets``  notebook widgets and figures
"""

import warnings as _warnings

from invlab._compat import install_import_hook as _install_import_hook

# CompressAI and torch_geometric call torch.jit.script at import; torch 2.14 warns about it on every import.
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)

# torchvision must be imported through ``_compat.import_torchvision`` before the first ``import compressai``;
# the hook does that at the first import of compressai (or torchvision), so ``import invlab`` stays cheap.
_install_import_hook()

__version__ = "0.1.0"
