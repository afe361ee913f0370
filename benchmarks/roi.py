"""Region of interest at equal file size: the central quarter of each Kodak image at a higher rate, the rest at the
rate that keeps the file the size of the uniform one; PSNR inside and outside against the uniform file.

    python -m benchmarks.roi                                  # msinn-mini-12, uniform rate 3, ROI rate 6, 24 images
    python -m benchmarks.roi --images 4 --json results/roi/msinn-mini-12.json --figure results/figures/roi.png

The ROI is the image's central quarter (half the width, half the height), snapped outward to 16-pixel blocks by
the map. The outside rate is found by the one bpp search (``invlab.codecs.search.outside_rate_for_bpp``), so the
two files differ in size by at most 2 %; where even the lowest outside rate leaves the file larger (a small file
whose rectangle at the ROI rate costs more than the whole uniform file), the ROI's rate comes down in steps of 0.5
(the row says which rate it got). Every file is a real one, decoded; ``exact``
says the decoder's picture is the encoder's (the file's checksum).
Seams: the error in the 8 pixels just outside the rectangle over the error in the rest of the outside, for both
files; a seam where the rate changes would raise the mapped file's ratio above the uniform file's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from invlab.codecs.learned import LearnedCodec
from invlab.codecs.search import outside_rate_for_bpp
from invlab.datasets import list_images
from invlab.io.container import InvlabFile
from invlab.io.images import load_image
from invlab.metrics import bpp
from invlab.rate_map import BLOCK
from invlab.widgets.roi import outlined, split_psnr

SIZE_TOLERANCE = 0.02  # the mapped file may exceed the uniform one by this much
ROI_STEP = 0.5  # where it cannot be matched, the ROI's rate comes down by this much and the search runs again


def central_quarter(height: int, width: int) -> tuple[int, int, int, int]:
    """(x, y, w, h) of the central quarter, on the 16-pixel block grid."""
    x, y = (width // 4) // BLOCK * BLOCK, (height // 4) // BLOCK * BLOCK
    return x, y, -(-(width // 2) // BLOCK) * BLOCK, -(-(height // 2) // BLOCK) * BLOCK


def seam_ratio(rgb: np.ndarray, decoded: np.ndarray, box: tuple[int, int, int, int], band: int = 8) -> float:
    """Mean squared error in the ``band`` pixels just outside ``box`` over that of the rest outside it: how much
    worse the picture is along the rectangle's edge (a seam where the rate changes would raise it)."""
    x, y, w, h = box
    inside = np.zeros(rgb.shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    near = np.zeros_like(inside)
    near[max(y - band, 0):y + h + band, max(x - band, 0):x + w + band] = True
    near &= ~inside
    error = ((rgb.astype(np.float64) - decoded) ** 2).mean(axis=2)
    return float(error[near].mean() / error[~inside & ~near].mean())


def measure(codec: LearnedCodec, path: Path, rate: float, roi_rate: float, pictures: dict | None = None) -> dict:
    """One image's row; ``pictures``: filled with the two decoded pictures and the rectangle (for the figure)."""
    rgb = load_image(path).rgb
    height, width = rgb.shape[:2]
    box = central_quarter(height, width)
    uniform, uniform_picture = codec.encode_with_reconstruction(rgb, rate)
    target = bpp(len(uniform), height, width)
    while True:  # a rectangle too dear for the file's size even with the rest at the lowest rate: a lower ROI rate
        match = outside_rate_for_bpp(codec, rgb, [(*box, roi_rate)], target)
        if match.bpp <= target * (1 + SIZE_TOLERANCE) or roi_rate - ROI_STEP < rate:
            break
        roi_rate -= ROI_STEP
    image = codec.decode_image(match.data)
    decoded = image.rgb
    file = InvlabFile.from_bytes(match.data)
    (u_in, u_out), (m_in, m_out) = split_psnr(rgb, uniform_picture, box), split_psnr(rgb, decoded, box)
    if pictures is not None:
        pictures.update(mapped=decoded, uniform=uniform_picture, box=box)
    return {"image": path.stem, "exact": bool(image.matches_encoder), "ROI rate": roi_rate,
            "uniform bpp": bpp(len(uniform), height, width), "mapped bpp": match.bpp,
            "outside rate": match.rate, "map bytes": len(file.streams[-1]),
            "map share (%)": 100 * len(file.streams[-1]) / len(match.data),
            "ROI PSNR uniform": u_in, "ROI PSNR mapped": m_in, "ROI gain (dB)": m_in - u_in,
            "outside PSNR uniform": u_out, "outside PSNR mapped": m_out, "outside loss (dB)": m_out - u_out,
            "edge error ratio uniform": seam_ratio(rgb, uniform_picture, box),
            "edge error ratio mapped": seam_ratio(rgb, decoded, box)}


def write_figure(path: Path, first: dict, window: int = 192) -> None:
    """The first image's two pictures side by side (rate map | one rate, same size), each a ``window``-pixel square
    around the rectangle's lower-left corner, enlarged 2x: inside and outside at once."""
    from PIL import Image

    x, y, w, h = first["box"]
    top, left = max(y + h - window // 2, 0), max(x - window // 2, 0)
    cut = [outlined(first[k], first["box"])[top:top + window, left:left + window] for k in ("mapped", "uniform")]
    gap = np.full((window, 4, 3), 255, np.uint8)
    pair = np.concatenate([cut[0], gap, cut[1]], axis=1).repeat(2, axis=0).repeat(2, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pair).save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="msinn-mini-12")
    parser.add_argument("--rate", type=float, default=3.0, help="the uniform file's rate")
    parser.add_argument("--roi-rate", type=float, default=6.0, help="the ROI's rate in the mapped file")
    parser.add_argument("--images", type=int, default=None, help="the first N Kodak images (default all 24)")
    parser.add_argument("--json", type=Path, help="write the table and its means here")
    parser.add_argument("--figure", type=Path, help="write the first image's two pictures side by side (PNG)")
    args = parser.parse_args(argv)
    codec = LearnedCodec(args.model)
    first: dict = {}
    rows = [measure(codec, path, args.rate, args.roi_rate, first if not first else None)
            for path in tqdm(list_images("kodak")[: args.images], desc="images")]
    if args.figure:
        write_figure(args.figure, first)
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    means = table.drop(columns="image").mean().round(3).to_dict()
    print("mean:", json.dumps(means))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": args.model, "rate": args.rate, "roi_rate": args.roi_rate,
                                         "command": "python -m benchmarks.roi " + " ".join(argv or []),
                                         "means": means, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
