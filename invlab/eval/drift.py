"""Why a model drifts under re-encoding: each suspected cause switched off in turn.

An invertible transform T makes re-encoding stable when nothing between the symbols and the pixels breaks its
inverse: then T(x̂) lands next to the latents that were coded and the same symbols come out again. This study
re-encodes an image ``generations`` times with one model in several variants and records, per generation, the
PSNR against the original and against the previous generation, and how many symbols of each latent scale
changed from the previous generation (:meth:`~invlab.models.base.InvlabModel.scale_symbols`, where the model says
them; PSNR only otherwise):

- ``as shipped``;
- the ablations the model declares (``reencoding_ablations``, switched off by its ``ablate``): for MSINN
  ``post-net off`` (the decoder's non-invertible post-processing network), ``LRP off`` (the latent residual
  prediction added to ŷ after quantisation), ``post-net and LRP off`` (what the stable mode codes) and ``g·g' = 1``
  (the inverse gain set to exactly 1 / gain; the shipped tables are learned apart); for the ANFIC family ``QE off``
  (the quantisation-error post-filter); InvCompress declares none (see docs/measuring.md);
- ``float pixels``: as shipped, but each generation is fed the decoder's float output, not its 8-bit rounding.

Each generation runs the model's coded forward (``coded_forward``), which rounds like the coder: its
reconstruction is the decoder's output (``invlab evaluate`` checks this on every Kodak file:
``decode_matches_forward``), so no bitstream is written here. The variants share the starting rate of the shipped
model (found by real encodes near a bpp; a fixed-rate family's weight index).

    invlab drift --model msinn-mini --images data/kodak/kodim04.png data/kodak/kodim15.png data/kodak/kodim23.png \\
        --crop 256 --generations 50 --match-bpp 0.5 --out results/reencoding/drift
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import split_weights
from invlab.codecs.search import rate_for_bpp
from invlab.errors import InvlabError, NoLevelsViewError, OutputExistsError
from invlab.io.images import load_image, to_tensor, to_uint8
from invlab.metrics import psnr
from invlab.models.base import InvlabModel, eval_mode
from invlab.models.registry import model_class

#: the variants every model has, beside the ablations its class declares (``reencoding_ablations``): as shipped, and
#: as shipped with each generation fed the decoder's float output instead of its 8-bit rounding
AS_SHIPPED, FLOAT_PIXELS = "as shipped", "float pixels"


def variants_of(name: str) -> list[str]:
    """The drift study's variants of model ``name``: as shipped, its declared ablations, float pixels."""
    return [AS_SHIPPED, *model_class(split_weights(name)[0]).reencoding_ablations, FLOAT_PIXELS]


def variant_model(name: str, variant: str, rate: float) -> InvlabModel:
    """``name``'s shipped model (at ``rate``) in ``variant`` (see :func:`variants_of`): a model of its own, loaded
    afresh, so a variant's change touches no other codec."""
    model = LearnedCodec(name).model(rate)
    parts = model.reencoding_ablations.get(variant, ())
    if variant not in (AS_SHIPPED, FLOAT_PIXELS, *model.reencoding_ablations):
        raise InvlabError(f"{name} has no variant {variant!r}; it has: {', '.join(variants_of(name))}")
    model.ablate(parts)
    return model


@torch.inference_mode()
def drift_rows(model: InvlabModel, rgb: np.ndarray, rate: float, generations: int, float_pixels: bool = False,
               on_generation: Callable[[], None] | None = None) -> pd.DataFrame:
    """One row per generation: PSNR vs the original and vs the previous generation, and per latent scale the
    number of symbols that changed from the previous generation (``changed_<scale>``; generation 1: none)."""
    original = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = original.shape[:2]
    x = to_tensor(original)
    previous_rgb, previous_symbols, rows = original, None, []
    rate_t = torch.tensor([float(rate)])
    for k in range(1, generations + 1):
        padded = model.pad(x)
        try:
            symbols = model.scale_symbols(padded, rate)
        except NoLevelsViewError:  # a model that does not say its symbols: PSNR only
            symbols = {}
        with eval_mode(model):
            x_hat = model.crop(model.coded_forward(padded, rate_t)["x_hat"].clamp(0, 1), h, w)
        current = to_uint8(x_hat)
        row = {"generation": k, "psnr": psnr(original, current), "psnr_prev": psnr(previous_rgb, current)}
        for scale, q in symbols.items():
            row[f"changed_{scale}"] = 0 if previous_symbols is None else int((q != previous_symbols[scale]).sum())
            row[f"symbols_{scale}"] = int(q.numel())
        rows.append(row)
        previous_rgb, previous_symbols = current, symbols
        x = x_hat if float_pixels else to_tensor(current)
        if on_generation is not None:
            on_generation()
    return pd.DataFrame(rows)


def drift_study(name: str, images: dict[str, np.ndarray], generations: int = 50, match_bpp: float | None = 0.5,
                rate: float | None = None, variants: Sequence[str] | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Every variant of ``name`` on every image: the rows of :func:`drift_rows` with ``variant``, ``image`` and
    ``rate`` columns. The rate is ``rate`` if given, else the shipped model's setting nearest ``match_bpp`` bpp on
    each image (real encodes), else the middle of its range (a fixed-rate family: a weight index). ``variants``:
    default all of :func:`variants_of`."""
    shipped = LearnedCodec(name)
    variants = variants_of(name) if variants is None else list(variants)
    frames = []
    bar = tqdm(total=len(images) * len(variants) * generations, desc=f"drift {name}", unit="gen",
               disable=not progress)
    for image, rgb in images.items():
        start = rate if rate is not None else (
            rate_for_bpp(shipped, rgb, match_bpp).rate if match_bpp is not None else shipped.rate_space.default)
        for variant in variants:
            bar.set_postfix_str(f"{image} · {variant}")
            model = variant_model(name, variant, start)
            df = drift_rows(model, rgb, start, generations, float_pixels=variant == FLOAT_PIXELS,
                            on_generation=bar.update)
            frames.append(df.assign(variant=variant, image=image, rate=start))
    bar.close()
    return pd.concat(frames, ignore_index=True)


def drift_summary(rows: pd.DataFrame, at: Sequence[int] = (1, 10, 50)) -> pd.DataFrame:
    """Per variant (mean over images): PSNR at generations ``at``, its loss from generation 1 to the last, the share
    of all symbols that changed at generation 2 and at the last, and the first generation at which each scale's
    symbols changed (and how many changed then, summed over the images), finest scale first."""
    scales = [c.removeprefix("changed_") for c in rows.columns if c.startswith("changed_")]
    out = []
    for variant, part in rows.groupby("variant", sort=False):
        by_gen = part.groupby("generation")
        mean_psnr = by_gen["psnr"].mean()
        row: dict[str, Any] = {"variant": variant}
        row.update({f"PSNR@{k} (dB)": round(float(mean_psnr[k]), 2) for k in at if k in mean_psnr.index})
        row["ΔPSNR (dB)"] = round(float(mean_psnr.iloc[-1] - mean_psnr.iloc[0]), 2)
        if not scales:  # a model that does not say its symbols
            out.append(row)
            continue
        changed = by_gen[[f"changed_{s}" for s in scales]].sum()
        total = by_gen[[f"symbols_{s}" for s in scales]].sum().sum(axis=1)
        share = 100 * changed.sum(axis=1) / total
        last = int(share.index.max())
        row.update({f"changed @{k} (%)": round(float(share[k]), 3) for k in sorted({min(2, last), last}) if k > 1})
        for s in scales:
            moving = changed.index[changed[f"changed_{s}"] > 0]
            row[f"{s} first changes"] = (f"gen {int(moving[0])} ({int(changed.at[moving[0], f'changed_{s}'])})"
                                         if len(moving) else "never")
        out.append(row)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="msinn-mini",
                        help="a learned model (default msinn-mini); a fixed-rate family starts at a weight index")
    parser.add_argument("--images", required=True, nargs="+", help="image files")
    parser.add_argument("--crop", type=int, help="code the central CROP x CROP square of each image")
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--match-bpp", type=float, default=0.5,
                        help="start each image at the shipped model's setting nearest this bpp (default 0.5)")
    parser.add_argument("--rate", type=float, help="start every image at this rate instead")
    parser.add_argument("--variants", help="comma-separated subset of the model's variants: as shipped, float "
                                            "pixels and the parts it can switch off (msinn-mini: post-net off, LRP "
                                            "off, post-net and LRP off, g·g' = 1; the ANFIC family: QE off)")
    parser.add_argument("--out", default="results/reencoding/drift", help="folder for rows.csv and summary.json")
    parser.add_argument("--force", action="store_true", help="replace an earlier study in --out")


def run(args: argparse.Namespace) -> int:
    from invlab.widgets.sources import center_crop

    out = Path(args.out)
    if (out / "summary.json").exists() and not args.force:
        raise OutputExistsError(f"{out} already holds a drift study; pass --force to replace it")
    known = variants_of(args.model)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else known
    unknown = [v for v in variants if v not in known]
    if unknown:
        raise InvlabError(f"unknown variants {unknown} of {args.model}; known: {', '.join(known)}")
    images = {Path(p).stem: center_crop(load_image(p).rgb, args.crop) for p in args.images}
    rows = drift_study(args.model, images, args.generations, args.match_bpp, args.rate, variants)
    summary = drift_summary(rows)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "rows.csv", index=False)
    meta = {"model": args.model, "images": list(images), "crop": args.crop, "generations": args.generations,
            "match_bpp": args.match_bpp, "rate": args.rate}
    (out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary.to_dict(orient="records")},
                                                 indent=1, ensure_ascii=False) + "\n")
    print(summary.to_string(index=False))
    return 0
