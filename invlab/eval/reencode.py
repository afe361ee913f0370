"""Re-encoding (generation loss) study: x_k = round8(dec(enc(x_{k-1}))), k = 1..G.

Every generation goes through real bitstreams and the codec's 8-bit decode. Reported per generation: bpp
(file bytes), PSNR against the original and against the previous generation. The study runs on the measuring
harness that ``rd`` and ``evaluate`` share: every (codec, image) point is cached in ``<out>/cache`` as soon as it
is measured, so an interrupted study resumes and ``--update`` re-measures nothing it already has.

    invlab reencode --codecs tiny-flow,jpeg --images data/kodak --generations 50
    invlab reencode --codecs msinn-mini,jpeg,webp --images data/kodak/kodim04.png --match-bpp 0.5
    invlab reencode --codecs bmshj2018-hyperprior-mini --images data/kodak/kodim04.png --match-bpp 0.5 --update
    invlab reencode --codecs anfic-mini --images data/kodak/kodim04.png data/kodak/kodim15.png --workers 2 --update
    invlab reencode --codecs msinn@msinn-official.pt,jpeg --images data/kodak/kodim04.png   # a weight file of one's own
    invlab reencode --codecs msinn-mini,jpeg --images data/kodak/kodim04.png --stable   # + msinn-mini+stable

``--stable`` adds, beside each model that has one, its stable re-encoding mode (``NAME+stable``: the decoder reduced
to the inverse of the encoder's transform, see ``InvlabModel.stable_mode``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from invlab.codecs.base import Codec
from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import file_safe, with_stable_modes
from invlab.codecs.search import rate_for_bpp
from invlab.datasets import list_images
from invlab.errors import InvlabError, MissingWeightsError, OutputExistsError
from invlab.eval.cache import ResultCache
from invlab.eval.sweep import Setup, dask_client, plan, sweep
from invlab.io.images import load_image
from invlab.metrics import bpp, psnr
from invlab.weights import cpu_hours_of, fine_tune_start, gpu_budget, read_metadata

UNTRAINED = "untrained, no weights yet"
REPORT_AT = (1, 2, 5, 10, 20, 50)


def reencode_study(codec: Codec, image: np.ndarray, rate: float, generations: int = 50,
                   on_generation: Callable[[], None] | None = None, second_rate: float | None = None) -> pd.DataFrame:
    """One row per generation: ``generation, bpp, psnr`` (vs the original), ``psnr_prev`` (vs generation k-1).

    ``second_rate``: strong idempotence (the protocol of Hang et al., "Evaluating strong idempotence of image
    codec"): the generations alternate between ``rate`` (odd) and ``second_rate`` (even). ``on_generation`` is
    called after each generation (progress bars)."""
    original = prev = np.ascontiguousarray(image, dtype=np.uint8)
    rows = []
    for k in range(1, generations + 1):
        data = codec.encode(prev, rate if second_rate is None or k % 2 else second_rate)
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
              workers: int = 1, cache_dir: str | Path | None = None, redo: bool = False,
              strong_bpp: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All codecs x images: (per-generation rows, one summary row per codec and image). Labels say what was run.

    A codec codes at ``rates[name]`` if given, else (``match_bpp``) at the setting whose first generation of
    each image lands nearest ``match_bpp`` bpp (:func:`rate_for_bpp`), else at the middle of its sweep.

    The study is a front end of the measuring harness (:mod:`invlab.eval.sweep`): a point is one (image, starting
    rate) and its record holds every generation. ``cache_dir`` keeps the records (``<codec>.jsonl``, and the bpp
    searches in ``<codec>-match.jsonl``), appended as they come, so an interrupted study resumes and a repeated one
    reads them back; a record is reused only for the same pixels, generations and weights. ``redo`` measures every
    point again. Without ``cache_dir`` the records live in a temporary folder. ``workers`` > 1 runs the images on a
    local Dask cluster of that many processes (one torch thread each; the same results, in the same order).
    ``progress`` shows a tqdm bar per codec.

    ``strong_bpp``: the strong-idempotence study: even generations code at each codec's setting nearest
    ``strong_bpp`` on the image (found and cached like ``match_bpp``'s), odd ones at the starting rate."""
    rates = rates or {}
    digests = {key: pixels_digest(rgb) for key, rgb in images.items()}
    summaries: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    parallel = workers > 1 and len(images) > 1
    with (contextlib.nullcontext(cache_dir) if cache_dir is not None else tempfile.TemporaryDirectory()) as folder, \
            dask_client(workers if parallel else 1) as client:
        for name in names:
            codec, label = open_codec(name)
            if codec is None:
                summaries.append({"codec": name, "label": label})
                continue
            setup = Setup(name, pretrained=label != UNTRAINED)
            if name in rates:
                start = dict.fromkeys(images, float(rates[name]))
            elif match_bpp is not None:
                start = _matched_rates(codec, setup, images, digests, match_bpp, Path(folder), client, redo)
            else:
                start = dict.fromkeys(images, default_rate(codec))
            second = ({} if strong_bpp is None else
                      _matched_rates(codec, setup, images, digests, strong_bpp, Path(folder), client, redo))
            weights = _weights_tag(codec)
            results = ResultCache(Path(folder) / f"{file_safe(name)}.jsonl", labels={"codec": name},
                                  tags=lambda image, rate, w=weights, s=second: {
                                      "generations": generations, "pixels": digests[image], "second": s.get(image),
                                      **w(rate)})
            by_digest = {digests[k]: r for k, r in second.items()}
            study = replace(setup, task=functools.partial(reencode_record, generations=generations, second=by_digest))
            jobs = plan(study, images, {k: (r,) for k, r in start.items()}, results, redo=redo)
            sweep(jobs, results, client, desc=f"re-encoding {name}", progress=progress, codec=codec)
            records = {(r["image"], r["rate"]): r for r in results.usable(images, set(start.values()))}
            for key in images:
                df = pd.DataFrame({k: records[key, start[key]][k] for k in GENERATION_FIELDS})
                matched = {} if name in rates or match_bpp is None else {"target_bpp": match_bpp}
                strong = {} if strong_bpp is None else {
                    "second_rate": second[key], "second_bpp": strong_bpp,  # like with like: the last odd generation
                    "delta_psnr_odd": float(df["psnr"].iloc[(len(df) - 1) // 2 * 2] - df["psnr"].iloc[0])}
                summaries.append({"codec": name, "label": label, "training": training_of(codec, start[key]),
                                  "image": key, "rate": start[key], **matched, **strong, **summarise(df)})
                frames.append(df.assign(codec=name, label=label, image=key, rate=start[key]))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), pd.DataFrame(summaries)


#: the per-generation columns of a study (a record holds one list per column)
GENERATION_FIELDS = ("generation", "bpp", "psnr", "psnr_prev")


def reencode_record(codec: Codec, rgb: np.ndarray, rate: float, generations: int,
                    second: dict[str, float] | None = None) -> dict[str, Any]:
    """The harness task of one (image, starting rate) point: every generation, one list per column. ``second``:
    the strong study's second rate of each image, by :func:`pixels_digest`."""
    second_rate = (second or {}).get(pixels_digest(rgb))
    df = reencode_study(codec, rgb, rate, generations, second_rate=second_rate)
    return {"rate": float(rate), **{k: df[k].tolist() for k in GENERATION_FIELDS}}


def match_record(codec: Codec, rgb: np.ndarray, target: float) -> dict[str, Any]:
    """The harness task of one bpp search: the setting whose first file lands nearest ``target`` bpp."""
    match = rate_for_bpp(codec, rgb, target)
    return {"rate": float(target), "setting": float(match.rate), "bpp": match.bpp}


def pixels_digest(rgb: np.ndarray) -> str:
    """A short SHA-256 of an image's shape and pixels: a cached record is reused only for the same picture."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    return hashlib.sha256(repr(rgb.shape).encode() + rgb.tobytes()).hexdigest()[:16]


def _weights_tag(codec: Codec) -> Callable[[float], dict[str, str]]:
    """``rate -> {"weights_hash": ...}`` for a learned codec (new weights, new records), nothing for others."""
    if not isinstance(codec, LearnedCodec):
        return lambda rate: {}
    return lambda rate: {"weights_hash": codec.model(rate).weights_hash.hex()}


def _all_weights_tag(codec: Codec) -> dict[str, str]:
    """The hashes of every set of weights a bpp search may try (a learned codec), nothing for others."""
    if not isinstance(codec, LearnedCodec):
        return {}
    return {"weights_hash": ",".join(sorted({codec.model(r).weights_hash.hex()[:16] for r in codec.rates}))}


def _matched_rates(codec: Codec, setup: Setup, images: dict[str, np.ndarray], digests: dict[str, str],
                   target: float, folder: Path, client: Any, redo: bool) -> dict[str, float]:
    """Each image's setting nearest ``target`` bpp: bpp searches run and cached by the harness like the study."""
    weights = _all_weights_tag(codec)
    results = ResultCache(folder / f"{file_safe(setup.codec)}-match.jsonl", labels={"codec": setup.codec},
                          tags=lambda image, rate: {"pixels": digests[image], **weights})
    search = replace(setup, task=match_record)
    sweep(plan(search, images, (float(target),), results, redo=redo), results, client,
          desc=f"bpp search {setup.codec}", progress=False, codec=codec)
    found = {r["image"]: r["setting"] for r in results.usable(images, {float(target)})}
    return {key: found[key] for key in images}


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The study's summary for reading: codec and image first, then the starting bpp, PSNR at the first and
    last generation and the change, the training budget; numbers rounded (bpp 3, dB 2 decimals)."""
    if summary.empty or "generations" not in summary:
        return summary
    ran = summary.dropna(subset=["generations"])
    last = int(ran["generations"].max())
    table = pd.DataFrame({
        "codec": ran["codec"], "image": ran["image"], "label": ran["label"], "bpp@1": ran["bpp@1"].round(3),
        "PSNR@1 (dB)": ran["psnr@1"].round(2),
        f"PSNR@{last} (dB)": ran.get(f"psnr@{last}", ran["psnr@1"] + ran["delta_psnr"]).round(2),
        "ΔPSNR (dB)": ran["delta_psnr"].round(2), "training": ran.get("training", "").fillna("")})
    return table.sort_values(["ΔPSNR (dB)"], ascending=False).reset_index(drop=True)


def summary_reading(summary: pd.DataFrame) -> str:
    """One line: after how many generations, which codec lost least and which most (mean over the images)."""
    if summary.empty or "delta_psnr" not in summary or summary["delta_psnr"].isna().all():
        return "No codec ran: nothing to read."
    ran = summary.dropna(subset=["delta_psnr"])
    mean = ran.groupby("codec")["delta_psnr"].mean().sort_values()
    last = int(ran["generations"].max())
    return (f"After {last} generations (mean over {ran['image'].nunique()} images): {mean.index[-1]} loses least "
            f"({mean.iloc[-1]:+.2f} dB), {mean.index[0]} most ({mean.iloc[0]:+.2f} dB).")


# ---------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--codecs", required=True,
                        help="comma-separated codec/model names; MODEL@FILE: a model with a weight file of one's own")
    parser.add_argument("--images", required=True, nargs="+", help="image files or folders")
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--crop", type=int, metavar="N", help="code the central N x N square of each image")
    parser.add_argument("--rate", action="append", default=[], metavar="CODEC=RATE",
                        help="rate setting per codec (default: --match-bpp's, else the middle of its sweep)")
    parser.add_argument("--match-bpp", type=float, metavar="BPP",
                        help="start every codec (without --rate) at the setting whose first generation of each "
                             "image is nearest BPP (found by real encodes)")
    parser.add_argument("--strong-bpp", type=float, metavar="BPP",
                        help="strong idempotence: every even generation codes at the setting nearest BPP (the odd ones "
                             "at the starting rate), as in Hang et al.'s protocol")
    parser.add_argument("--stable", action="store_true",
                        help="also study each model that has a stable re-encoding mode in that mode (NAME+stable)")
    parser.add_argument("--out", default="results/reencoding", help="folder for the CSVs and summary.json")
    parser.add_argument("--workers", type=int, default=1,
                        help="run the (codec, image) studies on this many worker processes, one torch thread each "
                             "(a local Dask cluster; the same results)")
    parser.add_argument("--force", action="store_true",
                        help="replace the results of an earlier study in --out, measuring these codecs again")
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
    from invlab.widgets.sources import center_crop

    images = {p.stem if args.crop is None else f"{p.stem}-{args.crop}": center_crop(load_image(p).rgb, args.crop)
              for p in paths}
    codecs = args.codecs.split(",")
    codecs = with_stable_modes(codecs) if args.stable else codecs
    kept = _kept_rows(earlier, codecs, list(images)) if args.update else pd.DataFrame()
    rates = {k: float(v) for k, v in (item.split("=", 1) for item in args.rate)}
    if args.match_bpp is not None and not args.match_bpp > 0:
        raise InvlabError(f"--match-bpp must be a positive bpp, not {args.match_bpp}")
    if args.strong_bpp is not None and not args.strong_bpp > 0:
        raise InvlabError(f"--strong-bpp must be a positive bpp, not {args.strong_bpp}")
    rows, summary = run_study(codecs, images, args.generations, rates, match_bpp=args.match_bpp,
                              workers=args.workers, cache_dir=out / "cache", redo=args.force,
                              strong_bpp=args.strong_bpp)
    out.mkdir(parents=True, exist_ok=True)
    if not rows.empty:
        for (codec, image), df in rows.groupby(["codec", "image"]):
            df.to_csv(out / f"{file_safe(codec)}_{file_safe(image)}.csv", index=False)
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
