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

# CompressAI and torch_geometric call torch.jit.script when they are imported, and torch 2.14 warns about that
# on every import. These two filters hide that one message (nothing else); the import order of invlab, torch and
# compressai does not matter.
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
_warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)

__version__ = "0.1.0"
