"""One measurement: encode and decode one image at one rate, from real bytes; the record every tool keeps.

:func:`measure` gives the fields every codec has (bytes, bpp, PSNR-RGB, MS-SSIM-RGB, encode/decode seconds).
An ``extras`` hook adds what only some codecs can say: :func:`learned_extras` adds, for a learned codec, the
rate its entropy model estimates, the overhead of the real bytes over it and whether the decoder returned the
encoder-side reconstruction. The fields always come in :data:`FIELDS` order (the caches and CSVs keep it).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any, TypedDict

import numpy as np
import torch

from invlab.codecs.base import Codec
from invlab.codecs.learned import LearnedCodec
from invlab.io.container import InvlabFile
from invlab.io.images import to_tensor, to_uint8
from invlab.metrics import bpp, ms_ssim, psnr
from invlab.models.base import eval_mode

_Measured = TypedDict("_Measured", {
    "rate": float, "height": int, "width": int, "bytes": int, "bpp": float, "psnr-rgb": float,
    "ms-ssim-rgb": float, "encoding_time": float, "decoding_time": float,
})


class Measurement(_Measured, total=False):
    """One (image, rate) point. The optional fields come from :func:`learned_extras`, which also adds
    ``estimated_bits_<latent>`` (estimated bits per likelihood key of the model)."""

    stream_bytes: int  # entropy-coded bytes (the file without its container)
    container_bytes: int
    estimated_bpp: float
    overhead_pct: float  # real file bits over the estimate, in percent
    stream_overhead_pct: float
    decode_matches_forward: bool
    forward_max_abs_diff: int


#: the order of a record's fields (``estimated_bits_*`` follow)
FIELDS = ("rate", "height", "width", "bytes", "stream_bytes", "container_bytes", "bpp", "estimated_bpp",
          "overhead_pct", "stream_overhead_pct", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time",
          "decode_matches_forward", "forward_max_abs_diff")

#: more fields of one point from (codec, original, rate, file bytes, decoded image)
Extras = Callable[[Codec, np.ndarray, float, bytes, np.ndarray], dict[str, Any]]


def measure(codec: Codec, rgb: np.ndarray, rate: float, extras: Extras | None = None) -> Measurement:
    """Encode + decode ``rgb`` at ``rate``: bytes, bpp, PSNR, MS-SSIM, timings, and what ``extras`` adds."""
    t0 = time.perf_counter()
    data = codec.encode(rgb, rate)
    t1 = time.perf_counter()
    decoded = codec.decode(data)
    t2 = time.perf_counter()
    h, w = rgb.shape[:2]
    fields = {
        "rate": float(rate), "height": h, "width": w, "bytes": len(data), "bpp": bpp(len(data), h, w),
        "psnr-rgb": psnr(rgb, decoded), "ms-ssim-rgb": ms_ssim(rgb, decoded),
        "encoding_time": t1 - t0, "decoding_time": t2 - t1,
        **(extras(codec, rgb, rate, data, decoded) if extras else {}),
    }
    return {**{k: fields[k] for k in FIELDS if k in fields}, **{k: v for k, v in fields.items() if k not in FIELDS}}


def learned_extras(codec: LearnedCodec, rgb: np.ndarray, rate: float, data: bytes,
                   decoded: np.ndarray) -> dict[str, Any]:
    """Stream and container bytes, the model's estimated rate and the overheads, and decoder exactness."""
    bits, recon = estimate(codec, rgb, rate)
    h, w = rgb.shape[:2]
    stream_bytes = sum(len(s) for s in InvlabFile.from_bytes(data).streams)
    est_bits = sum(bits.values())
    return {
        "stream_bytes": stream_bytes, "container_bytes": len(data) - stream_bytes,
        "estimated_bpp": est_bits / (h * w),
        "overhead_pct": _overhead(8 * len(data), est_bits),
        "stream_overhead_pct": _overhead(8 * stream_bytes, est_bits),
        "decode_matches_forward": bool(np.array_equal(decoded, recon)),
        "forward_max_abs_diff": int(np.abs(decoded.astype(np.int16) - recon.astype(np.int16)).max()),
        **{f"estimated_bits_{k}": v for k, v in bits.items()},
    }


@torch.inference_mode()
def estimate(codec: LearnedCodec, rgb: np.ndarray, rate: float) -> tuple[dict[str, float], np.ndarray]:
    """Estimated bits per likelihood key of the eval-mode forward, and its reconstruction as uint8 RGB.

    The model's coded forward (:meth:`~invlab.models.base.InvlabModel.coded_forward`) rounds like the coder, so
    this is the encoder's own view: the bits its entropy model promises, and the image the decoder should return.
    """
    model = codec.model(rate)
    x = model.pad(to_tensor(rgb).to(codec.device))
    model_rate = codec.model_rate(rate)
    rate_t = torch.tensor([0.0 if model_rate is None else model_rate], device=codec.device)
    with eval_mode(model):
        out = model.coded_forward(x, rate_t)
    bits = {k: float(-torch.log2(lk).sum()) for k, lk in out["likelihoods"].items()}
    return bits, to_uint8(model.crop(out["x_hat"], *rgb.shape[:2]))


def _overhead(real_bits: float, estimated_bits: float) -> float:
    """Real bits over the estimate, in percent (NaN without an estimate)."""
    return 100.0 * (real_bits / estimated_bits - 1.0) if estimated_bits > 0 else float("nan")


_WARM: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()  # models of this process that have coded once


def warm_up(codec: LearnedCodec, rgb: np.ndarray, rate: float) -> None:
    """One untimed round trip of a small crop, once per model and process, so no timed point pays set-up costs."""
    model = codec.model(rate)
    if model not in _WARM:
        _WARM.add(model)
        codec.decode(codec.encode(np.ascontiguousarray(rgb[:64, :64]), rate))
