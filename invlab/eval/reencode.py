"""Re-encoding (generation loss) study: x_k = round8(dec(enc(x_{k-1}))), k = 1..G.

Every generation goes through real bitstreams and the codec's 8-bit decode. Reported per generation: bpp
(file bytes), PSNR against the original and against the previous generation.

    invlab reencode --codecs tiny-flow,jpeg --images data/kodak --generations 50
    invlab reencode --codecs msinn-mini,jpeg,webp --images data/kodak/kodim04.png --match-bpp 0.5
    invlab reencode --codecs bmshj2018-hyperprior-mini --images data/kodak/kodim04.png --match-bpp 0.5 --update
    invlab reencode --codecs anfic-mini --images data/kodak/kodim04.png data/kodak/kodim15.png --workers 2 --update
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from tqdm.auto import tqdm

from invlab.codecs.base import Codec
from invlab.codecs.learned import LearnedCodec
from invlab.codecs.search import rate_for_bpp
from invlab.datasets import list_images
from invlab.errors import InvlabError, MissingWeightsError, OutputExistsError
from invlab.io.images import load_image
from invlab.metrics import bpp, psnr
from invlab.weights import cpu_hours_of, fine_tune_start, gpu_budget, read_metadata

UNTRAINED = "untrained, no weights yet"
REPORT_AT = (1, 2, 5, 10, 20, 50)


def reencode_study(codec: Codec, image: np.ndarray, rate: float, generations: int = 50,
                   on_generation: Callable[[], None] | None = None) -> pd.DataFrame:
    """One row per generation: ``generation, bpp, psnr`` (vs the original), ``psnr_prev`` (vs generation k-1).

    ``on_generation`` is called after each generation (progress bars)."""
    original = prev = np.ascontiguousarray(image, dtype=np.uint8)
    rows = []
    for k in range(1, generations + 1):
        data = codec.encode(prev, rate)
        current = codec.decode(data)
        if current.dtype != np.uint8 or current.shape != original.shape:
            raise RuntimeError(f"{codec.name} decoded {current.shape} {current.dtype}, not {original.shape} uint8")
        if on_generation is not None:
            on_generation()
        rows.append({"generation": k, "bpp": bpp(len(data), *original.shape[:2]),
                     "psnr": psnr(original, current), "psnr_prev": psnr(prev, current)})
        prev = current
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame, at: Sequence[int] = REPORT_AT) -> dict[str, float]:
    """PSNR and bpp at the report generations, and ΔPSNR from generation 1 to the last."""
    by_gen = df.set_index("generation")
    out = {f"psnr@{k}": float(by_gen.at[k, "psnr"]) for k in at if k in by_gen.index}
    out.update({f"bpp@{k}": float(by_gen.at[k, "bpp"]) for k in at if k in by_gen.index})
    out["delta_psnr"] = float(by_gen["psnr"].iloc[-1] - by_gen["psnr"].iloc[0])
    out["generations"] = int(by_gen.index.max())
    return out


def _get_codec(name: str) -> Codec:
    from invlab.codecs.registry import get_codec

    return get_codec(name)


def open_codec(name: str) -> tuple[Codec | None, str]:
    """The codec and its label: "trained", "classical", :data:`UNTRAINED` (demo init), or why it is unavailable."""
    try:
        try:
            codec = _get_codec(name)
        except MissingWeightsError:
            return LearnedCodec(name, pretrained=False), UNTRAINED
    except InvlabError as err:
        return None, f"not available: {str(err).split(';')[0]}"
    if isinstance(codec, LearnedCodec):
        return codec, "trained" if codec.trained else UNTRAINED
    return codec, "classical"


def training_of(codec: Codec, rate: float) -> str:
    """The budget of the weights that code at ``rate``: e.g. "14,712 steps, 10.8 CPU-h" or "2,965 steps, 8.7 GPU-min
    (NVIDIA H200)" (a fine-tune also names
    its start); "" for classical codecs and untrained models."""
    if not isinstance(codec, LearnedCodec) or not codec.trained:
        return ""
    weights = codec.model(rate).weights_file
    training = read_metadata(Path(weights)).get("training", {}) if weights else {}
    if not training:
        return "no training metadata"
    hours = cpu_hours_of(training)
    gpu = gpu_budget(training)
    text = (f"{training.get('steps', 0):,} steps" + (f", {hours:.1f} CPU-h" if hours is not None else "")
            + (f", {gpu}" if gpu else ""))
    start = fine_tune_start(training)
    return text + (f", {start}" if start else "")


def default_rate(codec: Codec) -> float:
    """The middle rate setting of the codec's sweep."""
    return codec.rates[len(codec.rates) // 2]


def first_bpp(codec: Codec, rgb: np.ndarray, rate: float) -> float:
    """bpp of one real file of ``rgb`` at ``rate`` (the first generation's)."""
    return bpp(len(codec.encode(np.ascontiguousarray(rgb, dtype=np.uint8), rate)), *rgb.shape[:2])


def time_generation(codec: Codec, rgb: np.ndarray, rate: float) -> float:
    """Wall seconds of one generation (encode + decode) of ``rgb``."""
    t0 = time.perf_counter()
    codec.decode(codec.encode(np.ascontiguousarray(rgb, dtype=np.uint8), rate))
    return time.perf_counter() - t0


def estimate_study(names: Sequence[str], images: dict[str, np.ndarray], generations: int,
                   rates: dict[str, float] | None = None) -> pd.DataFrame:
    """How long :func:`run_study` will take, measured before it starts: one codec, one table row.

    Each codec codes the largest image once (encode + decode, timed); that time, scaled by each image's pixel
    count, times ``generations`` is its estimate. The first run of a model includes its warm-up, so the
    estimate errs on the long side. Unavailable codecs cost nothing (their label says why)."""
    if not images:
        return pd.DataFrame(columns=["codec", "label", "rate", "s per generation", "estimated s"])
    largest = max(images.values(), key=lambda a: a.shape[0] * a.shape[1])
    scale = sum(a.shape[0] * a.shape[1] for a in images.values()) / (largest.shape[0] * largest.shape[1])
    rows = []
    for name in names:
        codec, label = open_codec(name)
        if codec is None:
            rows.append({"codec": name, "label": label, "rate": math.nan, "s per generation": math.nan,
                         "estimated s": 0.0})
            continue
        rate = (rates or {}).get(name, default_rate(codec))
        seconds = time_generation(codec, largest, rate)
        rows.append({"codec": name, "label": label, "rate": rate, "s per generation": seconds,
                     "estimated s": seconds * scale * generations})
    return pd.DataFrame(rows)


def duration(seconds: float) -> str:
    """``seconds`` for people: "45 s", "3.2 min", "1.6 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def describe_estimate(estimate: pd.DataFrame, images: dict[str, np.ndarray], generations: int) -> str:
    """One paragraph: the estimated total, what it is made of, and the slowest codec."""
    ran = estimate.dropna(subset=["s per generation"])
    if ran.empty:
        return "no codec available: nothing to run"
    sizes = sorted({f"{a.shape[1]}x{a.shape[0]}" for a in images.values()})
    slowest = ran.loc[ran["estimated s"].idxmax()]
    return (f"estimated time: {duration(float(ran['estimated s'].sum()))} for {len(ran)} codecs x {len(images)} "
            f"images ({', '.join(sizes)}) x {generations} generations, from one timed encode + decode per codec "
            f"(slowest: {slowest['codec']}, {duration(float(slowest['estimated s']))})")


def run_study(names: Sequence[str], images: dict[str, np.ndarray], generations: int = 50,
              rates: dict[str, float] | None = None, progress: bool = True, match_bpp: float | None = None,
              workers: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All codecs x images: (per-generation rows, one summary row per codec and image). Labels say what was run.

    A codec codes at ``rates[name]`` if given, else (``match_bpp``) at the setting whose first generation of
    each image lands nearest ``match_bpp`` bpp (:func:`rate_for_bpp`), else at the middle of its sweep.
    ``workers`` > 1 runs the (codec, image) studies side by side on a local Dask cluster of that many processes
    (one torch thread each; the same results, in the same order). ``progress`` shows a tqdm bar over every
    generation of every codec and image."""
    rates = rates or {}
    done: dict[tuple[int, int], tuple[pd.DataFrame | None, dict[str, Any]]] = {}
    tasks: list[tuple[int, int, str, str, np.ndarray, float | None, float | None]] = []
    codecs: dict[str, tuple[Codec, str]] = {}
    for i, name in enumerate(names):
        codec, label = open_codec(name)
        if codec is None:
            done[i, -1] = None, {"codec": name, "label": label}
            continue
        codecs[name] = codec, label
        match = None if name in rates else match_bpp
        tasks += [(i, j, name, image_name, rgb, rates.get(name), match)
                  for j, (image_name, rgb) in enumerate(images.items())]
    bar = tqdm(total=len(tasks) * generations, desc="re-encoding", unit="gen", disable=not progress)
    if workers <= 1 or len(tasks) <= 1:
        for i, j, name, image_name, rgb, rate, match in tasks:
            bar.set_postfix_str(f"{name} · {image_name}")
            done[i, j] = _one_study(*codecs[name], name, image_name, rgb, generations, rate, match, bar.update)
    else:
        from distributed import as_completed

        from invlab.eval.sweep import dask_client

        with dask_client(min(workers, len(tasks))) as client:
            futures = {client.submit(_study_in_worker, name, image_name, rgb, generations, rate, match,
                                     pure=False): (i, j) for i, j, name, image_name, rgb, rate, match in tasks}
            for future in as_completed(list(futures)):
                done[futures[future]] = future.result()
                bar.update(generations)
    bar.close()
    results = [done[key] for key in sorted(done)]
    rows = [df for df, _ in results if df is not None]
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()), pd.DataFrame([s for _, s in results])


def _one_study(codec: Codec, label: str, name: str, image_name: str, rgb: np.ndarray, generations: int,
               rate: float | None, match_bpp: float | None, on_generation: Callable[[], None] | None = None,
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One codec on one image: its per-generation rows and its summary row (see :func:`run_study`)."""
    if rate is None:
        rate = default_rate(codec) if match_bpp is None else rate_for_bpp(codec, rgb, match_bpp).rate
    df = reencode_study(codec, rgb, rate, generations, on_generation=on_generation)
    matched = {} if match_bpp is None else {"target_bpp": match_bpp}
    summary = {"codec": name, "label": label, "training": training_of(codec, rate), "image": image_name,
               "rate": rate, **matched, **summarise(df)}
    return df.assign(codec=name, label=label, image=image_name, rate=rate), summary


@functools.cache
def _worker_codec(name: str) -> tuple[Codec | None, str]:
    """:func:`open_codec`, once per worker process."""
    return open_codec(name)


def _study_in_worker(name: str, image_name: str, rgb: np.ndarray, generations: int, rate: float | None,
                     match_bpp: float | None) -> tuple[pd.DataFrame, dict[str, Any]]:
    codec, label = _worker_codec(name)
    if codec is None:
        raise InvlabError(f"{name}: {label}")
    return _one_study(codec, label, name, image_name, rgb, generations, rate, match_bpp)


def _series_name(df: pd.DataFrame) -> pd.Series:
    tag = df["label"].where(df["label"] != "trained", "").map(lambda s: f" ({s})" if s else "")
    return df["codec"] + tag + " · " + df["image"]


def plot_psnr(df: pd.DataFrame) -> go.Figure:
    """PSNR against the original, per generation."""
    return px.line(df.assign(series=_series_name(df)), x="generation", y="psnr", color="series", markers=True,
                   labels={"psnr": "PSNR vs original (dB)"}, title="Re-encoding: quality per generation")


def plot_bpp(df: pd.DataFrame) -> go.Figure:
    """bpp drift: each generation's bpp relative to generation 1."""
    first = df.groupby(["codec", "image"])["bpp"].transform("first")
    data = df.assign(series=_series_name(df), bpp_drift=df["bpp"] / first - 1.0)
    return px.line(data, x="generation", y="bpp_drift", color="series", markers=True,
                   labels={"bpp_drift": "bpp / bpp at generation 1 − 1"}, title="Re-encoding: bpp drift")


# ---------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codecs", required=True, help="comma-separated codec/model names")
    parser.add_argument("--images", required=True, nargs="+", help="image files or folders")
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--rate", action="append", default=[], metavar="CODEC=RATE",
                        help="rate setting per codec (default: --match-bpp's, else the middle of its sweep)")
    parser.add_argument("--match-bpp", type=float, metavar="BPP",
                        help="start every codec (without --rate) at the setting whose first generation of each "
                             "image is nearest BPP (found by real encodes)")
    parser.add_argument("--out", default="results/reencoding", help="folder for the CSVs and summary.json")
    parser.add_argument("--workers", type=int, default=1,
                        help="run the (codec, image) studies on this many worker processes, one torch thread each "
                             "(a local Dask cluster; the same results)")
    parser.add_argument("--force", action="store_true", help="replace the results of an earlier study in --out")
    parser.add_argument("--update", action="store_true",
                        help="add these codecs to the earlier study in --out, replacing only their own results")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    earlier = out / "summary.json"
    if args.force and args.update:
        raise InvlabError("--force replaces the earlier study, --update adds to it: give one of them")
    if earlier.exists() and not (args.force or args.update):
        raise OutputExistsError(f"{out} already holds a study (summary.json); pass --update to add these codecs "
                                "to it or --force to replace it")
    paths = [p for item in args.images for p in (list_images(item) if Path(item).is_dir() else [Path(item)])]
    images = {p.stem: load_image(p).rgb for p in paths}
    kept = _kept_rows(earlier, args.codecs.split(","), list(images)) if args.update else pd.DataFrame()
    rates = {k: float(v) for k, v in (item.split("=", 1) for item in args.rate)}
    if args.match_bpp is not None and not args.match_bpp > 0:
        raise InvlabError(f"--match-bpp must be a positive bpp, not {args.match_bpp}")
    rows, summary = run_study(args.codecs.split(","), images, args.generations, rates, match_bpp=args.match_bpp,
                              workers=args.workers)
    out.mkdir(parents=True, exist_ok=True)
    if not rows.empty:
        for (codec, image), df in rows.groupby(["codec", "image"]):
            df.to_csv(out / f"{codec}_{image}.csv", index=False)
    summary = pd.concat([kept, summary], ignore_index=True) if not kept.empty else summary
    earlier.write_text(summary.to_json(orient="records", indent=1) + "\n")
    print(summary.to_string(index=False))
    return 0


def _kept_rows(summary_path: Path, codecs: Sequence[str], images: Sequence[str]) -> pd.DataFrame:
    """The earlier study's summary rows that this run does not redo: other codecs, or these codecs on other
    images (empty where there is no study yet)."""
    if not summary_path.exists():
        return pd.DataFrame()
    try:
        earlier = pd.read_json(summary_path, orient="records", convert_dates=False)
    except ValueError as err:
        raise InvlabError(f"{summary_path} is not a study summary ({err}); move it away or pass --force") from None
    if "codec" not in earlier.columns:
        raise InvlabError(f"{summary_path} has no 'codec' column; move it away or pass --force")
    redone = earlier["codec"].isin(codecs) & (earlier["image"].isin(images) if "image" in earlier else True)
    return earlier[~redone]
