"""MSINN-VRLIC (Tu et al.): the official checkpoints (hytu99/MSINN-VRLIC) as ``msinn`` weights.

The official network and invlab's ``msinn`` hold the same tensors; what differs:

- names: ``g_a{l}.{u}`` (ActNorm ``bias``/``logs``/``inited``, ``permute``, coupling ``block``) are invlab's
  ``flow.levels.{l}.blocks.{u + 1}`` (ActNorm, 1x1 conv, coupling ``net``);
- slices are numbered coarse to fine there (0 = y5), fine to coarse here (``slices.0`` = y1): ``cc_transforms``,
  ``sc_transforms``, ``entropy_parameters`` and ``lrp_transforms`` go to ``slices.{4 - s}``; the gain tables'
  channel blocks (48, 48, 24, 12, 6 there) are put in invlab's order (6, 12, 24, 48, 48);
- the squeeze order (official ``p*C + c``, invlab ``4c + p``) folds into the first ActNorm and 1x1 convolution of
  each level, exactly as for InvCompress;
- the checkerboard: the official anchors of y5 are the positions with ``(row + col)`` odd (``anchor_colour=1``);
- one official ``lower_bound`` serves the three gain tables (invlab keeps one per table; both 0.01), and the
  official masks of the spatial context are the cross and diagonal patterns invlab applies (checked, then dropped).

- images are padded as the official evaluation pads them: zeros around the image, centred, to a multiple of 64
  (``padding="official"``);
- the official post-process network is ``postnet="unet-official"`` (its squeeze-excitation's linear layers are
  1x1 convolutions here).
"""

from __future__ import annotations

import re

import torch

from invlab.entropy.checkerboard import CROSS_MASK, DIAGONAL_MASK
from invlab.errors import WeightFileError
from invlab.models import create_model
from invlab.models.msinn.model import LATENT_CHANNELS
from invlab.official.checkpoint import Converted, squeeze_order, take_all

SLICES = len(LATENT_CHANNELS)
#: the official channel blocks of the gain tables, coarse to fine (y5 ... y1)
OFFICIAL_SPLIT = tuple(reversed(LATENT_CHANNELS))
_UNIT = {"actnorm.bias": "blocks.0.bias", "actnorm.logs": "blocks.0.log_scale",
         "actnorm.inited": "blocks.0.initialized", "permute.weight": "blocks.1.weight"}
_NETS = {"cc_transforms": "channel_context", "sc_transforms": "spatial_context.net", "entropy_parameters": "fusion",
         "lrp_transforms": "lrp"}
_GAINS = {"gain": "gain.table", "inv_gain": "inverse_gain.table", "scale_gain": "scale_gain.table"}
#: invlab constants with no official tensor of their own (the official one ``lower_bound`` is checked instead)
_OWN = ("gain.lower_bound.bound", "inverse_gain.lower_bound.bound", "scale_gain.lower_bound.bound")


_POST_STAGES = {"conv1": "down.0", "conv2": "down.1", "conv3": "down.2", "up_conv3": "up.0.block",
                "up_conv2": "up.1.block"}
_STAGE_PARTS = {"conv.0.": "body.0.", "conv.2.": "body.2.", "conv.3.fc.0.": "body.3.gate.1.",
                "conv.3.fc.2.": "body.3.gate.3.", "up_dim.": "skip."}


def postnet_name(key: str) -> str | None:
    """The invlab name of a tensor of the official post-process network (``post_net.*``)."""
    rest = key.removeprefix("post_net.")
    if rest.startswith(("conv1.", "conv2.")):
        return ("postnet.head." if rest.startswith("conv1.") else "postnet.tail.") + rest[6:]
    rest = rest.removeprefix("unet.")
    if m := re.fullmatch(r"context_refine\.(\d)\.(conv[12]\..+)", rest):
        return f"postnet.middle.{m[1]}.{m[2]}"
    if m := re.fullmatch(r"up([23])\.0\.(.+)", rest):
        return f"postnet.up.{3 - int(m[1])}.up.0.{m[2]}"
    stage, _, part = rest.partition(".")
    prefix = next((p for p in _STAGE_PARTS if f"{part}".startswith(p)), None)
    if stage in _POST_STAGES and prefix:
        return f"postnet.{_POST_STAGES[stage]}.{_STAGE_PARTS[prefix]}{part.removeprefix(prefix)}"
    return None


def invlab_name(key: str) -> str | None:
    """The invlab name of an official MSINN-VRLIC tensor (None: not part of the official layout)."""
    if key.startswith("post_net."):
        return postnet_name(key)
    if m := re.fullmatch(r"g_a(\d)\.(\d+)\.(.+)", key):
        level, unit, rest = m[1], int(m[2]), m[3]
        if rest in _UNIT:
            return f"flow.levels.{level}.blocks.{unit + 1}.{_UNIT[rest]}"
        if rest.startswith("block."):  # ResidualBlock, then the zero-initialised 1x1 head (Conv2dZeros.conv)
            rest = rest.removeprefix("block.").replace("1.conv.", "1.", 1)
            return f"flow.levels.{level}.blocks.{unit + 1}.blocks.2.net.{rest}"
        return None
    if m := re.fullmatch(r"(cc_transforms|sc_transforms|entropy_parameters|lrp_transforms)\.(\d)\.(.+)", key):
        index = int(m[2]) + (1 if m[1] == "cc_transforms" else 0)  # y5 has no channel context: cc 0 is slice 1
        return f"slices.{SLICES - 1 - index}.{_NETS[m[1]]}.{m[3]}"
    if key in _GAINS:
        return _GAINS[key]
    if key == "initial_scale":
        return f"slices.{SLICES - 1}.prior_scale"
    if key.startswith("gaussian_conditional."):
        return key
    return None


def _check_constants(official: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Check and remove what invlab computes itself: the masks of the spatial context and the one lower bound."""
    state = dict(official)
    for key in [k for k in state if k.endswith(".mask")]:
        m = re.fullmatch(r"sc_transforms\.\d\.(\d+)\.mask", key)
        pattern = CROSS_MASK if m and m[1] == "0" else DIAGONAL_MASK
        mask = state.pop(key)
        if not m or not torch.equal(mask, pattern.expand_as(mask)):
            raise WeightFileError(f"{source}: {key} is not the multistage context's mask")
    bound = state.pop("lower_bound.bound", None)
    if bound is None or abs(float(bound) - 0.01) > 1e-9:
        raise WeightFileError(f"{source}: the gains' lower bound is missing or not 0.01")
    return state


def convert_msinn(official: dict[str, torch.Tensor], source: str = "checkpoint") -> Converted:
    """An official MSINN-VRLIC state dict as ``msinn`` weights (8 or 12 anchors, read from the gain tables)."""
    if "gain" not in official or "g_a0.0.permute.weight" not in official:
        raise WeightFileError(f"{source}: not an MSINN-VRLIC checkpoint (no gain table or g_a0)")
    post = any(k.startswith("post_net.") for k in official)
    anchors = int(official["gain"].shape[0])
    depths = [len({k.split(".")[1] for k in official if k.startswith(f"g_a{level}.")}) for level in range(4)]
    config = {"anchors": anchors, "postnet": "unet-official" if post else None, "anchor_colour": 1, "depths": depths,
              "padding": "official"}
    template = create_model("msinn", **config).state_dict()
    state = _check_constants(official, source)
    for key in _GAINS:  # (A, 138, 1, 1), blocks y5 ... y1 -> (A, 138), blocks y1 ... y5
        blocks = state[key].reshape(anchors, -1).split(OFFICIAL_SPLIT, dim=1)
        state[key] = torch.cat(blocks[::-1], dim=1)
    state["initial_scale"] = state["initial_scale"].reshape(-1)
    state = {k: v.bool() if k.endswith("actnorm.inited") else v[:, :, None, None] if ".fc." in k else v
             for k, v in state.items()}  # SE's linear layers are 1x1 convolutions here
    converted = take_all(state, {k: v for k, v in template.items() if k not in _OWN}, invlab_name, source)
    converted.update({k: template[k] for k in _OWN})
    for level in range(4):
        perm = squeeze_order(3 * 2**level)
        first = f"flow.levels.{level}.blocks.1.blocks"
        for name in ("0.bias", "0.log_scale"):
            converted[f"{first}.{name}"] = converted[f"{first}.{name}"][:, perm]
        converted[f"{first}.1.weight"] = converted[f"{first}.1.weight"][:, perm]
    notes = ["slices renumbered fine to coarse; gain-table channel blocks reordered (y1 ... y5)",
             "squeeze channel order folded into the first ActNorm and 1x1 convolution of each level",
             "checkerboard anchors of y5 at (row + col) odd (anchor_colour 1), as the official code",
             "images padded as the official evaluation: zeros, centred, to a multiple of 64",
             f"{anchors} anchors read from the gain tables; " + ("the official post-net" if post else "no post-net")]
    return Converted("msinn", config, converted, notes)
