"""Reading an official checkpoint (safely, whatever its nesting) and writing the converted weight file."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from invlab.errors import OutputExistsError, WeightFileError
from invlab.weights import build_from_file, first_names, read_torch_file, state_dict_hash

#: where the official repositories keep the network's state dict inside a checkpoint, outermost first
NESTINGS = ("state_dict", "network", "model_state_dict", "coder", "model", "net")
#: buffers CompressAI rebuilds from the weights (``update()``): neither taken from nor required of a checkpoint
DERIVED_BUFFERS = ("_quantized_cdf", "_cdf_length", "_offset", "scale_table")


@dataclass
class Converted:
    """An official state dict mapped onto an invlab model: its registered name, config and state dict."""

    model: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    notes: list[str] = field(default_factory=list)  # what the conversion folded or checked, in words


def official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The network tensors of an official checkpoint: read with ``weights_only=True`` (nothing in it runs), unwrapped
    from the usual nestings (``state_dict``, ``network``, ``coder``, ... or a bare dict), ``module.`` prefixes of
    data-parallel training removed."""
    ckpt = read_torch_file(path, what="checkpoint")
    for _ in range(3):
        if not isinstance(ckpt, dict):
            break
        inner = next((ckpt[k] for k in NESTINGS if isinstance(ckpt.get(k), dict)), None)
        if inner is None:
            break
        ckpt = inner
    if not isinstance(ckpt, dict) or not ckpt or not all(torch.is_tensor(v) for v in ckpt.values()):
        raise WeightFileError(f"{path}: no state dict of tensors found (looked at the top level and under "
                              f"{', '.join(repr(k) for k in NESTINGS)})")
    return {k.removeprefix("module."): v for k, v in ckpt.items()}


def take_all(official: dict[str, torch.Tensor], template: dict[str, torch.Tensor],
             rename: Callable[[str], str | None], source: str) -> dict[str, torch.Tensor]:
    """Every official tensor placed under its invlab name (``rename``; None drops a derived buffer), shapes checked;
    the invlab model's every tensor must be filled (derived buffers keep the template's, rebuilt by ``update()``)."""
    state: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in official.items():
        if key.endswith(DERIVED_BUFFERS):
            continue
        name = rename(key)
        if name is None or name not in template:
            unknown.append(key)
            continue
        if tuple(value.shape) != tuple(template[name].shape):
            raise WeightFileError(f"{source}: {key} has shape {tuple(value.shape)}, {name} needs "
                                  f"{tuple(template[name].shape)}")
        state[name] = value.to(template[name].dtype)
    missing = [k for k in template if k not in state and not k.endswith(DERIVED_BUFFERS)]
    if unknown or missing:
        parts = ([f"not used: {first_names(unknown)}"] if unknown else []) + (
            [f"not found: {first_names(missing)}"] if missing else [])
        raise WeightFileError(f"{source}: does not match the official layout; " + "; ".join(parts))
    state.update({k: v for k, v in template.items() if k.endswith(DERIVED_BUFFERS)})
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def convert_checkpoint(family: str, checkpoint: str | Path, out: str | Path, overwrite: bool = False,
                       **options: Any) -> Path:
    """Convert ``checkpoint`` of ``family`` into the invlab weight file ``out`` (+ ``out``'s ``.json`` metadata).

    The written file is loaded back strictly before this returns; its metadata names the source's SHA-256 and
    says that these are official weights, not trained here.
    """
    from invlab.official import CONVERTERS

    if family not in CONVERTERS:
        raise WeightFileError(f"no converter for {family!r}; families: {', '.join(CONVERTERS)}")
    checkpoint, out = Path(checkpoint), Path(out)
    meta_path = out.with_suffix(".json")
    for path in (out, meta_path):
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; refusing to overwrite it (use --force to replace it)")
    converted = CONVERTERS[family](official_state_dict(checkpoint), source=str(checkpoint), **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save({"state_dict": converted.state_dict, "config": converted.config}, tmp)
    try:
        model = build_from_file(converted.model, tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    meta = {
        "model": converted.model,
        "config": converted.config,
        "trained": "official weights, not trained here",
        "official": {"family": family, "source": checkpoint.name, "sha256": _sha256(checkpoint),
                     "options": {k: v for k, v in options.items() if v is not None}, "notes": converted.notes},
        "weights_hash": state_dict_hash(model.state_dict()).hex(),
        "converted": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return out


def squeeze_order(channels: int) -> torch.Tensor:
    """``perm`` with ``W_invlab = W_official[:, perm]``: invlab's squeezed channel ``4c + p`` is the official
    ``p*C + c`` (``channels`` = C, the squeeze's input width). InvCompress and MSINN-VRLIC squeeze alike, and each
    folds this order into the first per-channel operation after the squeeze."""
    k = torch.arange(4 * channels)
    return (k % 4) * channels + k // 4
