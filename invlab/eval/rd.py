"""Rate-distortion sweep of codecs over a data set, from real bytes; resumable; BD table against VTM.

Per image and rate the harness encodes, decodes, and records bytes, bpp, PSNR-RGB, MS-SSIM-RGB and the
wall-clock encode/decode seconds. Every record is appended to ``<out>/cache/<codec>.jsonl`` as soon as
it exists, so an interrupted run resumes where it stopped. When a codec is complete it writes
``<out>/<codec>.json`` (CompressAI results format, means over images per rate) and ``<out>/<codec>.csv``
(one row per image and rate); at the end ``bd_table.csv`` / ``bd_table.md`` against the VTM anchor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from invlab.codecs.base import Codec
from invlab.codecs.registry import get_codec
from invlab.datasets import list_images
from invlab.eval.anchors import Curve, load_anchor, load_curve
from invlab.io.images import load_image
from invlab.metrics import bd_psnr, bd_rate, bpp, ms_ssim, psnr

Job = tuple[str, bool, str, tuple[float, ...]]  # codec name, pretrained, image path, rates


@cache
def _codec(name: str, pretrained: bool) -> Codec:
    return get_codec(name, pretrained=pretrained)


def result_name(codec: Codec) -> str:
    """The file name a codec's results go under: untrained learned codecs say so."""
    return codec.name if getattr(codec, "trained", True) else f"{codec.name}-untrained"


def measure(codec: Codec, rgb: np.ndarray, rate: float) -> dict:
    """Encode + decode one image at one rate; bytes, bpp, PSNR, MS-SSIM and timings."""
    t0 = time.perf_counter()
    data = codec.encode(rgb, rate)
    t1 = time.perf_counter()
    rec = codec.decode(data)
    t2 = time.perf_counter()
    h, w = rgb.shape[:2]
    return {
        "rate": float(rate), "height": h, "width": w, "bytes": len(data), "bpp": bpp(len(data), h, w),
        "psnr-rgb": psnr(rgb, rec), "ms-ssim-rgb": ms_ssim(rgb, rec),
        "encoding_time": t1 - t0, "decoding_time": t2 - t1,
    }


def _run_job(job: Job) -> list[dict]:
    name, pretrained, path, rates = job
    codec = _codec(name, pretrained)
    rgb = load_image(path).rgb
    return [{"codec": result_name(codec), "image": Path(path).stem, **measure(codec, rgb, r)} for r in rates]


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def read_cache(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by an interruption
            continue
    return rows


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
) -> pd.DataFrame:
    """Sweep ``codecs`` (names, see :func:`get_codec`) over ``dataset``; returns the per-image rows.

    ``rates`` overrides a codec's default sweep (``{"jpeg": [20, 50]}``). ``workers`` > 1 codes images
    in a process pool; 1 runs in this process. Codecs are swept in the order given.
    """
    out_dir = Path(out_dir)
    (out_dir / "cache").mkdir(parents=True, exist_ok=True)
    images = [str(p) for p in list_images(dataset)]
    frames, curves = [], {}
    pool = _pool(workers)
    with pool or contextlib.nullcontext():
        for name in codecs:
            label, df = _sweep_codec(name, pretrained, images, out_dir, (rates or {}).get(name), pool, progress)
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
                 pool: ProcessPoolExecutor | None, progress: bool) -> tuple[str, pd.DataFrame]:
    """Measure the missing (image, rate) points of one codec, then write its JSON and CSV."""
    codec = _codec(name, pretrained)
    label = result_name(codec)
    codec_rates = tuple(float(r) for r in (rates if rates is not None else codec.rates))
    cache = out_dir / "cache" / f"{label}.jsonl"
    done = {(r["image"], r["rate"]) for r in read_cache(cache)}
    jobs: list[Job] = []
    for path in images:
        todo = tuple(r for r in codec_rates if (Path(path).stem, r) not in done)
        if todo:
            jobs.append((name, pretrained, path, todo))
    _run_jobs(jobs, cache, pool, desc=label, total=sum(len(j[3]) for j in jobs), progress=progress)
    stems = {Path(p).stem for p in images}
    df = pd.DataFrame(read_cache(cache)).drop_duplicates(["image", "rate"], keep="last")
    df = df[df["image"].isin(stems) & df["rate"].isin(codec_rates)].sort_values(["rate", "image"])
    df.to_csv(out_dir / f"{label}.csv", index=False)
    description = f"invlab rd: {type(codec).__name__}, {codec.rate_label} {list(codec_rates)}, {len(stems)} images"
    (out_dir / f"{label}.json").write_text(json.dumps(to_compressai_json(df, label, description), indent=2))
    return label, df


def _pool(workers: int) -> ProcessPoolExecutor | None:
    if workers <= 1:
        return None
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)


def _run_jobs(jobs: list[Job], cache: Path, pool: ProcessPoolExecutor | None, desc: str, total: int,
              progress: bool) -> None:
    """Run the jobs (in ``pool`` if given), appending every record to ``cache`` as it arrives."""
    bar = tqdm(total=total, desc=desc, unit="pt", disable=not progress)
    results = (_run_job(j) for j in jobs) if pool is None else (
        f.result() for f in as_completed([pool.submit(_run_job, j) for j in jobs]))
    torn = cache.exists() and not cache.read_bytes().endswith(b"\n")  # a write cut short last time
    with cache.open("a") as fh:
        fh.write("\n" if torn and cache.stat().st_size else "")
        for rows in results:
            fh.writelines(json.dumps(row) + "\n" for row in rows)
            fh.flush()
            bar.update(len(rows))
    bar.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="kodak", help='"kodak" or a folder of images')
    parser.add_argument("--codecs", required=True,
                        help="comma-separated: jpeg,jpeg444,jpeg2000,webp,jpegxl,avif,hevc444,vvc[,vvc-slower] "
                             "and/or registered model names")
    parser.add_argument("--out", default=None, help="output folder (default results/<dataset>)")
    parser.add_argument("--rates", action="append", default=[], metavar="CODEC=R1,R2,...",
                        help="override a codec's rate settings (repeatable)")
    parser.add_argument("--workers", type=int, default=2, help="parallel image workers (1 = in process)")
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
           workers=args.workers, pretrained=not args.untrained, anchor=args.anchor)
    print((Path(out) / "bd_table.md").read_text())
    return 0
