"""The seed papers' own published weights, converted into invlab weight files.

Each official repository stores its networks under its own names and, here and there, in another order
(a squeeze that interleaves channels differently, old entropy-bottleneck names). A converter maps every
official tensor onto exactly one invlab tensor, folding such differences into the weights where they are
linear (e.g. a channel order into the next 1x1 convolution), and refuses a checkpoint with a tensor left over
or missing. The result is an ordinary weight file: ``invlab encode/decode --weights``, ``load_model(path=...)``.

- :mod:`invlab.official.checkpoint`: reading a checkpoint safely, whatever its nesting; writing the weight file.
- one module per family (:mod:`invlab.official.invcompress`, :mod:`invlab.official.msinn`,
  :mod:`invlab.official.anfic`), registered in :data:`CONVERTERS`.
"""

from __future__ import annotations

from invlab.official.anfic import convert_anfic
from invlab.official.checkpoint import Converted, convert_checkpoint, official_state_dict
from invlab.official.invcompress import convert_invcompress
from invlab.official.msinn import convert_msinn

#: family name (as `invlab convert-official` takes it) -> converter of an official state dict
CONVERTERS = {"invcompress": convert_invcompress, "msinn": convert_msinn, "anfic": convert_anfic}

__all__ = ["CONVERTERS", "Converted", "convert_checkpoint", "official_state_dict"]
