"""Rate-distortion sweep of codecs over a data set, from real bytes; resumable; BD table against VTM.

Per image and rate the harness encodes, decodes, and records bytes, bpp, PSNR-RGB, MS-SSIM-RGB and the
wall-clock encode/decode seconds. Every record is appended to ``<out>/cache/<codec>.jsonl`` as soon as
it exists, so an interrupted run resumes where it stopped. When a codec is complete it writes
``<out>/<codec>.json`` (CompressAI results format, means over images per rate) and ``<out>/<codec>.csv``
(one row per image and rate); at the end ``bd_table.csv`` / ``bd_table.md`` against the VTM anchor.

Jobs (one image, its missing rates) run on ``dask.distributed``: a local cluster of ``workers`` processes with
``threads_per_worker`` torch threads each (explicit: oversubscribed torch was measured 10-30x slower here), or an
existing cluster (``scheduler="tcp://host:8786"``); ``workers=1`` without a scheduler runs in this process. The
cache stays the single source of truth: cached points are not resubmitted, results are appended as they
complete, and the JSON/CSV are written from the cache, sorted, so a parallel sweep writes what a serial one
writes. A failed job is reported with its image and rates after the others finish (then :class:`SweepError`).
Codecs load once per worker process (``_codec`` is cached there).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from invlab.codecs.base import Codec
from invlab.codecs.registry import get_codec
from invlab.datasets import list_images
from invlab.errors import InvlabError
from invlab.eval.anchors import Curve, load_anchor, load_curve
from invlab.io.images import load_image
from invlab.metrics import bd_psnr, bd_rate, bpp, ms_ssim, psnr

Job = tuple[str, bool, str, tuple[float, ...], int]  # codec name, pretrained, image path, rates, torch threads


class SweepError(InvlabError):
    """Some (image, rate) jobs of a sweep failed; the others were measured and cached (a rerun resumes)."""


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
    name, pretrained, path, rates, threads = job
    import torch

    torch.set_num_threads(threads)
    codec = _codec(name, pretrained)
    rgb = load_image(path).rgb
    return [{"codec": result_name(codec), "image": Path(path).stem, **measure(codec, rgb, r)} for r in rates]


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
    with _client(workers, threads_per_worker, scheduler) as client:
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
    codec = _codec(name, pretrained)
    label = result_name(codec)
    codec_rates = tuple(float(r) for r in (rates if rates is not None else codec.rates))
    cache = out_dir / "cache" / f"{label}.jsonl"
    done = {(r["image"], r["rate"]) for r in read_cache(cache)}
    jobs: list[Job] = []
    for path in images:
        todo = tuple(r for r in codec_rates if (Path(path).stem, r) not in done)
        if todo:
            jobs.append((name, pretrained, path, todo, threads))
    _run_jobs(jobs, cache, client, desc=label, total=sum(len(j[3]) for j in jobs), progress=progress)
    stems = {Path(p).stem for p in images}
    df = pd.DataFrame(read_cache(cache)).drop_duplicates(["image", "rate"], keep="last")
    df = df[df["image"].isin(stems) & df["rate"].isin(codec_rates)].sort_values(["rate", "image"])
    df.to_csv(out_dir / f"{label}.csv", index=False)
    description = f"invlab rd: {type(codec).__name__}, {codec.rate_label} {list(codec_rates)}, {len(stems)} images"
    (out_dir / f"{label}.json").write_text(json.dumps(to_compressai_json(df, label, description), indent=2))
    return label, df


@contextlib.contextmanager
def _client(workers: int, threads_per_worker: int, scheduler: str | None) -> Iterator[Any]:
    """A Dask client (a local cluster of ``workers`` processes, or ``scheduler``'s), or None to run in process."""
    if scheduler is None and workers <= 1:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    env = {"OMP_NUM_THREADS": str(threads_per_worker), "MKL_NUM_THREADS": str(threads_per_worker)}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=env) as cluster, Client(cluster) as client:
        yield client


#: jobs submitted by the last sweep (tests: a resumed sweep submits only what is missing)
SUBMITTED: list[Job] = []


def _run_jobs(jobs: list[Job], cache: Path, client: Any, desc: str, total: int, progress: bool) -> None:
    """Run the jobs (on ``client`` if given), appending every record to ``cache`` as it arrives."""
    SUBMITTED[:] = jobs
    bar = tqdm(total=total, desc=desc, unit="pt", disable=not progress)
    failures: list[str] = []
    torn = cache.exists() and not cache.read_bytes().endswith(b"\n")  # a write cut short last time
    with cache.open("a") as fh:
        fh.write("\n" if torn and cache.stat().st_size else "")
        for job, rows, error in _results(jobs, client):
            if error is not None:
                failures.append(f"{Path(job[2]).name} at rates {list(job[3])}: {type(error).__name__}: {error}")
                bar.update(len(job[3]))
                continue
            fh.writelines(json.dumps(row) + "\n" for row in rows)
            fh.flush()
            bar.update(len(rows))
    bar.close()
    if failures:
        raise SweepError(f"{desc}: {len(failures)} of {len(jobs)} jobs failed (the others are cached):\n  "
                         + "\n  ".join(failures))


def _results(jobs: list[Job], client: Any) -> Iterator[tuple[Job, list[dict] | None, BaseException | None]]:
    """(job, rows, None) or (job, None, error) for every job, as they complete."""
    if client is None:
        for job in jobs:
            try:
                yield job, _run_job(job), None
            except Exception as err:  # reported with its image and rates; the other jobs go on
                yield job, None, err
        return
    from distributed import as_completed

    futures = {client.submit(_run_job, job, pure=False): job for job in jobs}
    for future in as_completed(list(futures)):
        try:
            yield futures[future], future.result(), None
        except Exception as err:
            yield futures[future], None, err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="kodak", help='"kodak" or a folder of images')
    parser.add_argument("--codecs", required=True,
                        help="comma-separated: jpeg,jpeg444,jpeg2000,webp,jpegxl,avif,hevc444,vvc[,vvc-slower] "
                             "and/or registered model names")
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
