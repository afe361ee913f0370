"""The one bpp search: the rate setting of a codec whose real file of an image lands nearest a target bpp.

The workbench uses it to set a classical codec beside a learned model's point; the re-encoding study to start
every codec at the same bpp. It searches the codec's whole :class:`~invlab.rates.RateSpace` (every quality,
every QP, any real rate), with real encodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from invlab import metrics
from invlab.codecs.base import Codec


@dataclass(frozen=True)
class BppMatch:
    """A rate setting, the bpp of its real file, and the file."""

    rate: float
    bpp: float
    data: bytes


def rate_for_bpp(codec: Codec, rgb: np.ndarray, target: float, tolerance: float = 0.01, max_encodes: int = 16,
                 encode: Callable[[float], bytes] | None = None) -> BppMatch:
    """The setting whose file of ``rgb`` lands nearest ``target`` bpp (ties: the lower setting).

    Every setting of a weight-index family is tried; otherwise both ends first (a target beyond them gets the
    nearer end), then the interval is halved: whole numbers for a quality or QP (``higher_is_fewer_bits`` gives
    the direction), a real rate for a variable-rate model, which stops within ``tolerance`` (relative) of the
    target. At most ``max_encodes`` encodes; the nearest setting tried wins (the codec need not be exactly
    monotone). ``encode`` (default ``codec.encode(rgb, rate)``) lets a caller reuse files across searches.
    """
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"the target bpp must be a positive number, not {target}")
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    encode = encode or (lambda rate: codec.encode(rgb, rate))
    space = codec.rate_space
    files: dict[float, bytes] = {}

    def at(rate: float) -> float:
        if rate not in files:
            files[rate] = encode(rate)
        return metrics.bpp(len(files[rate]), rgb.shape[0], rgb.shape[1])

    if space.choices is not None:
        for rate in space.choices:
            at(float(rate))
    else:
        fewer, more = (space.high, space.low) if codec.higher_is_fewer_bits else (space.low, space.high)
        inside = at(float(fewer)) < target < at(float(more))
        while inside and len(files) < max_encodes and abs(more - fewer) > (1 if space.integer else 0):
            middle = (fewer + more) / 2
            middle = float(math.floor(middle)) if space.integer else middle
            value = at(middle)
            if not space.integer and abs(value / target - 1) <= tolerance:
                break
            fewer, more = (middle, more) if value < target else (fewer, middle)
    rate = min(files, key=lambda r: (abs(at(r) - target), r))
    return BppMatch(float(rate), at(rate), files[rate])


def outside_rate_for_bpp(codec: Codec, rgb: np.ndarray, rois: list[tuple[int, int, int, int, float]], target: float,
                         **kwargs) -> BppMatch:
    """The rate outside ``rois`` (each ``(x, y, w, h, rate)``, see :mod:`invlab.rate_map`) whose file of ``rgb`` lands
    nearest ``target`` bpp: :func:`rate_for_bpp` over the codec's rates, the ROIs kept at theirs ("match the file
    size"). The codec must take rate maps; ``kwargs`` go to :func:`rate_for_bpp`."""
    from invlab.io.images import ImageData
    from invlab.rate_map import RateMap

    h, w = rgb.shape[:2]
    image = ImageData(np.ascontiguousarray(rgb, dtype=np.uint8))

    def encode(rate: float) -> bytes:
        return codec.encode_image(image, rate, RateMap.from_rois(h, w, rate, rois))

    return rate_for_bpp(codec, rgb, target, encode=encode, **kwargs)
