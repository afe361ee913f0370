"""Rate-distortion sweep of codecs over a data set, from real bytes; resumable; BD table against VTM.

Per image and rate the harness encodes, decodes, and records bytes, bpp, PSNR-RGB, MS-SSIM-RGB and the
wall-clock encode/decode seconds. Every record is appended to ``<out>/cache/<codec>.jsonl`` as soon as
it exists, so an interrupted run resumes where it stopped. When a codec is complete it writes
``<out>/<codec>.json`` (CompressAI results format, means over images per rate) and ``<out>/<codec>.csv``
(one row per image and rate); at the end ``bd_table.csv`` / ``bd_table.md`` against the VTM anchor.

The (image, rate) jobs run on ``dask.distributed`` (``workers``, ``threads_per_worker``, ``scheduler``; see
:mod:`invlab.eval.sweep`); the JSON/CSV are written from the cache, sorted, so a parallel sweep writes what a
serial one writes.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from invlab.datasets import list_images
from invlab.eval.anchors import Curve, load_anchor, load_curve
from invlab.eval.cache import ResultCache
from invlab.eval.sweep import Setup, dask_client, loaded_codec, plan, sweep
from invlab.metrics import bd_psnr, bd_rate


def to_compressai_json(df: pd.DataFrame, name: str, description: str) -> dict:
    """Means over images per rate, in CompressAI's results format (sorted by bpp)."""
    keys = ["bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"]
    mean = df.groupby("rate")[keys].mean().sort_values("bpp")
    results = {k: [None if np.isnan(v) else float(v) for v in mean[k]] for k in keys}
    results["rate"] = [float(r) for r in mean.index]
    return {"name": name, "description": description, "results": results}


def bd_table(curves: dict[str, Curve], anchor: Curve) -> pd.DataFrame:
    """BD-rate (%) and BD-PSNR (dB) of each curve against ``anchor`` (PCHIP on log-rate, overlap only)."""
    rows = []
    for name, c in curves.items():
        lo, hi = max(c.psnr.min(), anchor.psnr.min()), min(c.psnr.max(), anchor.psnr.max())
        rows.append({
            "codec": name, "points": len(c.bpp), "bpp range": f"{c.bpp.min():.3f}-{c.bpp.max():.3f}",
            "PSNR overlap (dB)": f"{lo:.1f}-{hi:.1f}" if hi > lo else "none",
            "BD-rate (%)": bd_rate(anchor.bpp, anchor.psnr, c.bpp, c.psnr),
            "BD-PSNR (dB)": bd_psnr(anchor.bpp, anchor.psnr, c.bpp, c.psnr),
        })
    return pd.DataFrame(rows).set_index("codec")


def markdown_table(df: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub-markdown table of ``df`` (index included), floats to ``digits`` decimals."""
    df = df.reset_index()
    cells = [[f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells])


def run_rd(
    codecs: Sequence[str],
    dataset: str | Path = "kodak",
    out_dir: str | Path = "results/kodak",
    rates: dict[str, Sequence[float]] | None = None,
    workers: int = 2,
    pretrained: bool = True,
    anchor: str = "vtm",
    progress: bool = True,
    threads_per_worker: int = 1,
    scheduler: str | None = None,
) -> pd.DataFrame:
    """Sweep ``codecs`` (names, see :func:`get_codec`) over ``dataset``; returns the per-image rows.

    ``rates`` overrides a codec's default sweep (``{"jpeg": [20, 50]}``). ``workers`` > 1 (or a ``scheduler``
    address) runs the jobs on Dask; 1 runs them in this process. Codecs are swept in the order given.
    """
    out_dir = Path(out_dir)
    (out_dir / "cache").mkdir(parents=True, exist_ok=True)
    images = [str(p) for p in list_images(dataset)]
    frames, curves = [], {}
    with dask_client(workers, threads_per_worker, scheduler) as client:
        for name in codecs:
            label, df = _sweep_codec(name, pretrained, images, out_dir, (rates or {}).get(name), client, progress,
                                     threads_per_worker)
            frames.append(df)
            curves[label] = load_curve(out_dir / f"{label}.json", label)
    reference = load_anchor(anchor)
    table = bd_table(curves, reference)
    table.to_csv(out_dir / "bd_table.csv", float_format="%.3f")
    (out_dir / "bd_table.md").write_text(
        f"BD vs {anchor} ({reference.source}); PCHIP on log-rate over the overlapping PSNR range.\n\n"
        + markdown_table(table) + "\n"
    )
    return pd.concat(frames, ignore_index=True)


def _sweep_codec(name: str, pretrained: bool, images: list[str], out_dir: Path, rates: Sequence[float] | None,
                 client: Any, progress: bool, threads: int = 1) -> tuple[str, pd.DataFrame]:
    """Measure the missing (image, rate) points of one codec, then write its JSON and CSV."""
    codec = loaded_codec(name, pretrained)
    label = codec.label
    codec_rates = tuple(float(r) for r in (rates if rates is not None else codec.rates))
    results = ResultCache(out_dir / "cache" / f"{label}.jsonl", labels={"codec": label})
    setup = Setup(name, pretrained, threads=threads)
    sweep(plan(setup, images, codec_rates, results), results, client, desc=label, progress=progress, codec=codec)
    stems = {Path(p).stem for p in images}
    df = results.table(stems, codec_rates)
    df.to_csv(out_dir / f"{label}.csv", index=False)
    description = f"invlab rd: {type(codec).__name__}, {codec.rate_label} {list(codec_rates)}, {len(stems)} images"
    (out_dir / f"{label}.json").write_text(json.dumps(to_compressai_json(df, label, description), indent=2))
    return label, df


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="kodak", help='"kodak" or a folder of images')
    parser.add_argument("--codecs", required=True,
                        help="comma-separated: jpeg,jpeg444,jpeg2000,webp,jpegxl,avif,hevc444,vvc[,vvc-slower], "
                             "registered model names, and MODEL@FILE for a model with a weight file of its own "
                             "(e.g. converted official weights; results go under MODEL@STEM)")
    parser.add_argument("--out", default=None, help="output folder (default results/<dataset>)")
    parser.add_argument("--rates", action="append", default=[], metavar="CODEC=R1,R2,...",
                        help="override a codec's rate settings (repeatable)")
    parser.add_argument("--workers", type=int, default=2,
                        help="Dask worker processes of a local cluster (1 = in this process)")
    parser.add_argument("--threads-per-worker", type=int, default=1, help="torch threads in each worker")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler (e.g. tcp://host:8786)")
    parser.add_argument("--untrained", action="store_true", help="learned codecs without trained weights")
    parser.add_argument("--anchor", default="vtm", help="anchor of the BD table (see invlab.eval.anchors)")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rates = {}
    for spec in args.rates:
        name, _, values = spec.partition("=")
        rates[name] = [float(v) for v in values.split(",")]
    out = args.out or f"results/{Path(str(args.dataset)).name}"
    run_rd([c.strip() for c in args.codecs.split(",") if c.strip()], args.dataset, out, rates=rates,
           workers=args.workers, pretrained=not args.untrained, anchor=args.anchor,
           threads_per_worker=args.threads_per_worker, scheduler=args.scheduler)
    print((Path(out) / "bd_table.md").read_text())
    return 0
