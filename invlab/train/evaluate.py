"""RD of a codec over a set of images, measured from real bitstreams (file bytes) and 8-bit decodes.

``psnr`` and ``bpp`` are minimal local helpers, to be replaced by :mod:`invlab.metrics` once it exists.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from invlab.codecs.base import Codec
from invlab.io.images import load_image
from invlab.metrics import bpp, psnr


def evaluate_on_dataset(codec: Codec, images: Sequence[str | Path | np.ndarray],
                        rates: Iterable[float] | None = None) -> list[dict[str, float]]:
    """Mean bpp and PSNR per rate setting: encode, decode, compare with the original (RGB, 8 bit)."""
    rgbs = [img if isinstance(img, np.ndarray) else load_image(img).rgb for img in images]
    results = []
    for rate in codec.rates if rates is None else rates:
        bpps, psnrs, seconds = [], [], 0.0
        for rgb in rgbs:
            t0 = time.perf_counter()
            data, decoded = codec.roundtrip(rgb, rate)
            seconds += time.perf_counter() - t0
            bpps.append(bpp(len(data), *rgb.shape[:2]))
            psnrs.append(psnr(rgb, decoded))
        results.append({"rate": float(rate), "bpp": float(np.mean(bpps)), "psnr": float(np.mean(psnrs)),
                        "images": len(rgbs), "seconds": seconds})
    return results
