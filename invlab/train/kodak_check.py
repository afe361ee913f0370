"""RD of a codec over a set of images for the exported weights' metadata: mean bpp and PSNR per rate.

A thin front end over :func:`invlab.eval.measure.measure` (real file bytes, 8-bit decodes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from invlab.codecs.base import Codec
from invlab.eval.measure import measure
from invlab.io.images import load_image


def evaluate_on_dataset(codec: Codec, images: Sequence[str | Path | np.ndarray],
                        rates: Iterable[float] | None = None) -> list[dict[str, float]]:
    """Mean bpp and PSNR per rate setting, the image count and the coding seconds (encode + decode)."""
    rgbs = [img if isinstance(img, np.ndarray) else load_image(img).rgb for img in images]
    results = []
    for rate in codec.rates if rates is None else rates:
        points = [measure(codec, rgb, rate) for rgb in rgbs]
        results.append({"rate": float(rate), "bpp": float(np.mean([p["bpp"] for p in points])),
                        "psnr": float(np.mean([p["psnr-rgb"] for p in points])), "images": len(rgbs),
                        "seconds": sum(p["encoding_time"] + p["decoding_time"] for p in points)})
    return results
