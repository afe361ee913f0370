"""InvCompress (Xie et al., ACM MM 2021): the official checkpoints (xyq7/InvCompress) as ``invcompress`` weights.

The official network and invlab's ``invcompress`` hold the same tensors under other names:

============================================  ===================================================
official                                      invlab
============================================  ===================================================
``enh.forw_enh`` / ``enh.back_enh``           ``fe_enc.body`` / ``fe_dec.body`` (dense ``conv1-4`` -> ``convs.0-3``,
                                              ``conv5`` -> ``last``)
``inv.operations.{5l+1}`` (1x1 conv)          ``inn.blocks.{l}.blocks.1``, columns reordered (below)
``inv.operations.{5l+k}.{G,H}{1,2}.conv{i}``  ``inn.blocks.{l}.blocks.{k}.{g,h}{1,2}.{0,2,4}`` (k = 2, 3, 4)
``attention.forw_att`` / ``back_att``         ``acs_enc.1`` / ``acs_dec.0``
``h_a``, ``h_s``, ``entropy_bottleneck``      ``latent_codec.hyper.*`` (old ``_matrix0``-style names remapped)
``context_prediction``, ``entropy_parameters``,  ``latent_codec.y.*``
``gaussian_conditional``
============================================  ===================================================

The one difference that is not a name: the official squeeze puts input channel ``c`` at sub-pixel ``p`` (of 4)
into channel ``p*C + c``, invlab's (``pixel_unshuffle``) into ``4c + p``. The next operation is the invertible
1x1 convolution, so the permutation folds exactly into its columns; its inverse (a matrix inverse) follows.
The latent width N (128 for qualities 1-4, 192 for 5-8) is read from the weights; images are padded as the
official evaluation pads them (zeros, centred, to a multiple of 64: ``padding="official"``).
"""

from __future__ import annotations

import re

import torch
from compressai.models.base import remap_old_keys

from invlab.errors import WeightFileError
from invlab.models import create_model
from invlab.models.invcompress import PAPER_LAMBDAS
from invlab.official.checkpoint import Converted, squeeze_order, take_all

#: INN levels of the official network (4 levels of squeeze, 1x1 conv, 3 couplings: 5 operations each)
OPS_PER_LEVEL = 5
_DENSE = {"conv1": "convs.0", "conv2": "convs.1", "conv3": "convs.2", "conv4": "convs.3", "conv5": "last"}
_BOTTLENECK = {"conv1": "0", "conv2": "2", "conv3": "4"}
_PREFIXES = {
    "enh.forw_enh.layers.": "fe_enc.body.", "enh.back_enh.layers.": "fe_dec.body.",
    "attention.forw_att.": "acs_enc.1.", "attention.back_att.": "acs_dec.0.",
    "h_a.": "latent_codec.hyper.h_a.", "h_s.": "latent_codec.hyper.h_s.",
    "entropy_bottleneck.": "latent_codec.hyper.entropy_bottleneck.",
    "context_prediction.": "latent_codec.y.context_prediction.",
    "entropy_parameters.": "latent_codec.y.entropy_parameters.",
    "gaussian_conditional.": "latent_codec.y.gaussian_conditional.",
}


def invlab_name(key: str) -> str | None:
    """The invlab name of an official InvCompress tensor (None: not part of the official layout)."""
    if m := re.fullmatch(r"inv\.operations\.(\d+)\.(weight|([GH])([12])\.(conv[123])\.(weight|bias))", key):
        level, op = divmod(int(m[1]), OPS_PER_LEVEL)
        if m[2] == "weight":
            return f"inn.blocks.{level}.blocks.{op}.weight" if op == 1 else None
        return f"inn.blocks.{level}.blocks.{op}.{m[3].lower()}{m[4]}.{_BOTTLENECK[m[5]]}.{m[6]}"
    for old, new in _PREFIXES.items():
        if key.startswith(old):
            rest = key[len(old):]
            if old.startswith("enh."):
                rest = re.sub(r"^([04])\.(conv[1-5])\.", lambda d: f"{d[1]}.{_DENSE[d[2]]}.", rest)
            return new + rest
    return None


def convert_invcompress(official: dict[str, torch.Tensor], source: str = "checkpoint",
                        quality: int | None = None) -> Converted:
    """An official InvCompress state dict as ``invcompress`` weights (``quality`` 1-8 names its λ, else the
    first λ of its width)."""
    if "h_a.0.weight" not in official:
        raise WeightFileError(f"{source}: not an InvCompress checkpoint (no h_a.0.weight)")
    official = remap_old_keys("entropy_bottleneck", dict(official))  # _matrix0 -> matrices.0, ... (CompressAI)
    width = int(official["h_a.0.weight"].shape[0])
    if width not in (128, 192):
        raise WeightFileError(f"{source}: latent width {width}; the published InvCompress models have 128 or 192")
    if quality is not None and not 1 <= quality <= len(PAPER_LAMBDAS):
        raise WeightFileError(f"quality {quality} outside 1-{len(PAPER_LAMBDAS)}")
    first = 0 if width == 128 else 4
    lam = PAPER_LAMBDAS[quality - 1 if quality is not None else first]
    if quality is not None and (quality <= 4) != (width == 128):
        raise WeightFileError(f"{source}: quality {quality} has latent width {192 if width == 128 else 128}, "
                              f"these weights {width}")
    config = {"M": width, "N": width, "lambdas": [lam], "padding": "official"}
    template = create_model("invcompress", **config).state_dict()
    state = take_all(official, template, invlab_name, source)
    channels = 3
    for level in range(4):
        key = f"inn.blocks.{level}.blocks.1.weight"
        state[key] = state[key][:, squeeze_order(channels)]
        channels *= 4
    notes = ["squeeze channel order folded into the columns of each level's 1x1 convolution",
             "images padded as the official evaluation: zeros, centred, to a multiple of 64",
             f"latent width {width} read from the weights; λ {lam}" + ("" if quality else " (quality not given)")]
    return Converted("invcompress", config, state, notes)
