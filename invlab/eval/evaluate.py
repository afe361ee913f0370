"""Kodak RD of one learned model from real bitstreams coded on the CPU, with what is needed to trust the numbers.

For every image and rate: bytes of the whole invlab file (header included) and bpp, the rate the model itself
estimates (-log2 of its eval-mode likelihoods, the same sum ``estimate_bits`` gives for MSINN) and the overhead
of the real bytes over that estimate, PSNR-RGB, MS-SSIM-RGB, encode and decode seconds (``--threads`` torch
threads), and whether the decoded image equals the encoder-side reconstruction (the eval-mode forward).

Rates: a variable-rate model visits its anchors 0 .. A-1 and ``--fractional N`` evenly spaced rates between
each pair of neighbours (default 1: the midpoints); a fixed-rate family visits the rate indices it ships
weights for (only index 0 untrained). ``--rates`` replaces that list.

Every record is appended to ``<out folder>/cache/<name>.jsonl`` as soon as it exists and reused when the image,
rate, weights hash and thread count match, so an interrupted run resumes. At the end it writes ``<name>.json``
(a ``results`` block in CompressAI's format that the RD tools read, a per-rate ``summary``, BD-rates against
VTM and the model's published curve, and ``meta``: model, family, parameters, trained or not, weights hashes
and metadata commits, context path and options, threads, versions, date, command) and ``<name>.csv`` (one row
per image and rate). Untrained models run only with ``--untrained``, and then the file name and the meta say
"untrained". An existing output is never overwritten without ``--force``.

Examples::

    invlab evaluate msinn-mini                                  # trained weights: results/kodak/msinn-mini-eval.json
    invlab evaluate msinn-mini --option postnet=none            # the same weights with the post-net switched off
    invlab evaluate invcompress-mini --threads 4                # every shipped rate index, 4 CPU threads
    invlab evaluate tiny-flow --untrained --limit 2 --rates 0,1 # plumbing check, named *-eval-untrained
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import re
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import get_codec
from invlab.datasets import NAMED, dataset_dir, list_images
from invlab.errors import InvlabError, OutputExistsError
from invlab.eval.anchors import KODAK_ANCHORS, load_anchor
from invlab.eval.rd import markdown_table, read_cache, to_compressai_json
from invlab.io.container import InvlabFile
from invlab.io.images import crop, load_image, pad_to_multiple, to_tensor, to_uint8
from invlab.metrics import bd_psnr, bd_rate, bpp, ms_ssim, psnr
from invlab.models import count_parameters, get_spec, list_models
from invlab.models.base import InvlabModel
from invlab.weights import has_weights, read_metadata

KODAK_IMAGES = 24
#: the per-rate means of the summary, in print order (CompressAI's keys where it has one)
SUMMARY_KEYS = ("bpp", "estimated_bpp", "overhead_pct", "stream_overhead_pct", "psnr-rgb", "ms-ssim-rgb",
                "encoding_time", "decoding_time")


# ---------------------------------------------------------------------- rates
def default_rates(codec: LearnedCodec, fractional: int = 1) -> list[float]:
    """Every anchor (variable-rate, plus ``fractional`` rates between neighbours) or every shipped rate index."""
    return codec.rate_space.with_midpoints(fractional)


def check_rates(codec: LearnedCodec, rates: Sequence[float]) -> list[float]:
    """``rates`` as floats, each valid for ``codec`` (:class:`~invlab.rates.RateError` naming the valid settings)."""
    return codec.rate_space.check_all(rates, codec.name)


# ---------------------------------------------------------------------- measuring
@torch.inference_mode()
def estimate(codec: LearnedCodec, rgb: np.ndarray, rate: float) -> tuple[dict[str, float], np.ndarray]:
    """Estimated bits per likelihood key of the eval-mode forward, and its reconstruction as uint8 RGB.

    The forward of every invlab model in eval mode rounds like the coder, so this is the encoder's own view:
    the bits its entropy model promises, and the image the decoder should return.
    """
    model = codec.model(rate)
    x, _ = pad_to_multiple(to_tensor(rgb).to(codec.device), model.pad_multiple)
    model_rate = codec.model_rate(rate)
    rate_t = torch.tensor([0.0 if model_rate is None else model_rate], device=codec.device)
    was_training = model.training
    model.eval()
    try:
        out = model(x, rate_t)
    finally:
        model.train(was_training)
    bits = {k: float(-torch.log2(lk).sum()) for k, lk in out["likelihoods"].items()}
    return bits, to_uint8(crop(out["x_hat"], *rgb.shape[:2]))


def measure(codec: LearnedCodec, rgb: np.ndarray, rate: float) -> dict[str, Any]:
    """Encode and decode one image at one rate: real and estimated rate, quality, timings, decoder exactness."""
    t0 = time.perf_counter()
    data = codec.encode(rgb, rate)
    t1 = time.perf_counter()
    decoded = codec.decode(data)
    t2 = time.perf_counter()
    bits, recon = estimate(codec, rgb, rate)
    h, w = rgb.shape[:2]
    stream_bytes = sum(len(s) for s in InvlabFile.from_bytes(data).streams)
    est_bits = sum(bits.values())
    return {
        "rate": float(rate), "height": h, "width": w,
        "bytes": len(data), "stream_bytes": stream_bytes, "container_bytes": len(data) - stream_bytes,
        "bpp": bpp(len(data), h, w), "estimated_bpp": est_bits / (h * w),
        "overhead_pct": _overhead(8 * len(data), est_bits),
        "stream_overhead_pct": _overhead(8 * stream_bytes, est_bits),
        "psnr-rgb": psnr(rgb, decoded), "ms-ssim-rgb": ms_ssim(rgb, decoded),
        "encoding_time": t1 - t0, "decoding_time": t2 - t1,
        "decode_matches_forward": bool(np.array_equal(decoded, recon)),
        "forward_max_abs_diff": int(np.abs(decoded.astype(np.int16) - recon.astype(np.int16)).max()),
        **{f"estimated_bits_{k}": v for k, v in bits.items()},
    }


def _overhead(real_bits: float, estimated_bits: float) -> float:
    """Real bits over the estimate, in percent (NaN without an estimate)."""
    return 100.0 * (real_bits / estimated_bits - 1.0) if estimated_bits > 0 else float("nan")


def _warm_up(codec: LearnedCodec, rgb: np.ndarray, rates: Sequence[float]) -> None:
    """One untimed round trip of a small crop per model, so the first timed image does not pay set-up costs."""
    seen = set()
    for rate in rates:
        model = codec.model(rate)
        if id(model) not in seen:
            seen.add(id(model))
            codec.decode(codec.encode(np.ascontiguousarray(rgb[:64, :64]), rate))


# ---------------------------------------------------------------------- BD and summary
def published_anchor(model: str, anchors: int | None = None) -> str | None:
    """The published Kodak curve of the paper ``model`` implements (a key of ``KODAK_ANCHORS``), if any."""
    name = get_spec(model).published_curve(anchors)
    return name if name in KODAK_ANCHORS else None


def bd_against(rates_bpp: Sequence[float], rates_psnr: Sequence[float], anchor: str) -> dict[str, Any]:
    """BD-rate (%) and BD-PSNR (dB) of one curve against a published Kodak anchor; NaN where they cannot be had."""
    ref = load_anchor(anchor)
    r, p = np.asarray(rates_bpp, float), np.asarray(rates_psnr, float)
    lo, hi = max(p.min(), ref.psnr.min()), min(p.max(), ref.psnr.max())
    try:
        rate_delta, psnr_delta = bd_rate(ref.bpp, ref.psnr, r, p), bd_psnr(ref.bpp, ref.psnr, r, p)
    except ValueError:  # fewer than 2 points, or repeated PSNR / bpp values
        rate_delta = psnr_delta = float("nan")
    return {"anchor": anchor, "source": ref.source, "anchor_points": len(ref.bpp),
            "psnr_overlap_db": [float(lo), float(hi)] if hi > lo else None,
            "bd_rate_pct": _finite(rate_delta), "bd_psnr_db": _finite(psnr_delta)}


def summarize(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Means over images per rate (NaN -> None), with the image count and how many decoded exactly."""
    rows = []
    for rate, group in df.groupby("rate"):
        row = {"rate": float(rate), "images": len(group)}
        row.update({k: _finite(group[k].mean()) for k in SUMMARY_KEYS})
        row["decode_matches_forward"] = int(group["decode_matches_forward"].sum())
        rows.append(row)
    return rows


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


# ---------------------------------------------------------------------- meta
def model_meta(codec: LearnedCodec, rates: Sequence[float], options: dict[str, Any]) -> dict[str, Any]:
    """What produced the numbers: model, family, parameters, weights (hash, file, commit), context and options."""
    spec = get_spec(codec.name)
    served: dict[int, tuple[InvlabModel, list[float]]] = {}  # one entry per loaded model (per weight file)
    for rate in rates:
        model = codec.model(rate)
        served.setdefault(id(model), (model, []))[1].append(float(rate))
    weights = []
    for model, model_rates in served.values():
        file = getattr(model, "weights_file", None)
        shipped = read_metadata(Path(file)) if file else {}
        weights.append({
            "rates": model_rates, "file": Path(file).name if file else None,
            "weights_hash": model.weights_hash.hex(), "shipped_weights_hash": shipped.get("weights_hash"),
            "git_commit": shipped.get("git_commit"), "training_steps": shipped.get("training", {}).get("steps"),
            "exported": shipped.get("exported"), "parameters": count_parameters(model),
        })
    models = [model for model, _ in served.values()]
    first = models[0]
    params = {w["parameters"] for w in weights}
    return {
        "model": codec.name, "family": spec.family, "description": spec.description,
        "trained": codec.trained, "weights": weights,
        "parameters": params.pop() if len(params) == 1 else {w["file"]: w["parameters"] for w in weights},
        "variable_rate": first.variable_rate, "rate_range": list(first.rate_range), "lambdas": list(first.lambdas),
        "context": getattr(first, "context_label", None), "config": getattr(first, "config", None),
        "rdo": getattr(first, "rdo", None),  # M-ANFIC / MS-ANFIC quadtree search mode
        "options": options,
        "estimate": "sum of -log2 likelihoods of the eval-mode forward (MSINN: what estimate_bits sums)",
    }


def _environment(threads: int) -> dict[str, Any]:
    import compressai

    from invlab.train.export import git_commit

    return {"device": "cpu", "threads": threads, "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__, "compressai": compressai.__version__, "python": platform.python_version(),
            "code_commit": git_commit(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


# ---------------------------------------------------------------------- the run
def output_name(model: str, trained: bool, options: dict[str, Any]) -> str:
    """``MODEL[+opt-val...]-eval`` (``-eval-untrained`` for an untrained model)."""
    tag = "".join(f"+{k}-{v}" for k, v in sorted(options.items()))
    tag = re.sub(r"[^A-Za-z0-9.+-]+", "-", tag).lower()
    return f"{model}{tag}-eval" + ("" if trained else "-untrained")


def evaluate_model(
    model: str,
    dataset: str | Path = "kodak",
    rates: Sequence[float] | None = None,
    fractional: int = 1,
    limit: int | None = None,
    untrained: bool = False,
    threads: int = 1,
    out: str | Path | None = None,
    force: bool = False,
    options: dict[str, Any] | None = None,
    progress: bool = True,
    command: str = "",
) -> Path:
    """Evaluate ``model`` on ``dataset``; returns the JSON written (the CSV lies beside it).

    Refuses (InvlabError) a model without trained weights unless ``untrained``; an output whose name does not
    say "untrained" for an untrained model; an existing output unless ``force``.
    """
    if model not in list_models():
        raise InvlabError(f"{model!r} is not a registered learned model; see `invlab models`")
    if not untrained and not has_weights(model):
        raise InvlabError(
            f"{model} has no trained weights here, so its numbers would be those of an untrained model. "
            "Train and export it first, or pass --untrained to evaluate the untrained model "
            "(its output is then named and marked 'untrained' and is not a result)."
        )
    if fractional < 0:
        raise InvlabError(f"--fractional must be 0 or more, got {fractional}")
    options = dict(options or {})
    threads = max(1, int(threads))
    pretrained = not untrained
    try:
        codec = LearnedCodec(model, pretrained, **options) if options else get_codec(model, pretrained=pretrained)
    except TypeError as err:
        raise InvlabError(f"{model}: bad --option: {err}") from None
    name = output_name(model, codec.trained, options)
    json_path = Path(out) if out else Path("results") / Path(str(dataset)).name / f"{name}.json"
    if not codec.trained and "untrained" not in json_path.stem:
        raise InvlabError(f"{json_path}: an untrained model's output must say so in its name (e.g. {name}.json)")
    csv_path = json_path.with_suffix(".csv")
    for path in (json_path, csv_path):
        if path.exists() and not force:
            raise OutputExistsError(f"{path} exists; refusing to overwrite it (use --force)")
    rates = check_rates(codec, default_rates(codec, fractional) if rates is None else rates)
    images = list_images(dataset)[:limit]
    meta = model_meta(codec, rates, options)

    cache = json_path.parent / "cache" / f"{json_path.stem}.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    hashes = {r: codec.model(r).weights_hash.hex() for r in rates}
    stems = {p.stem for p in images}

    def cached() -> list[dict[str, Any]]:
        """The cache records this run can use: its images and rates, same weights, same thread count."""
        return [r for r in read_cache(cache) if r["image"] in stems and r["rate"] in hashes
                and r.get("weights_hash") == hashes[r["rate"]] and r.get("threads") == threads]

    done = {(r["image"], r["rate"]) for r in cached()}
    todo = [(p, r) for p in images for r in rates if (p.stem, r) not in done]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _code(codec, todo, cache, threads, hashes, json_path.stem, progress)
    finally:
        torch.set_num_threads(previous_threads)

    df = pd.DataFrame(cached()).drop_duplicates(["image", "rate"], keep="last")
    df = df.sort_values(["rate", "image"]).reset_index(drop=True)
    payload = _payload(json_path.stem, df, meta, dataset, len(images), threads, command)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    df.to_csv(csv_path, index=False)
    return json_path


def _code(codec: LearnedCodec, todo: list[tuple[Path, float]], cache: Path, threads: int, hashes: dict[float, str],
          desc: str, progress: bool) -> None:
    """Measure the (image, rate) points in ``todo``, appending each record to ``cache`` as soon as it exists."""
    if not todo:
        return
    torn = cache.exists() and cache.stat().st_size and not cache.read_bytes().endswith(b"\n")
    bar = tqdm(total=len(todo), desc=desc, unit="pt", disable=not progress)
    rgb_of: dict[Path, np.ndarray] = {}
    with cache.open("a") as fh:
        fh.write("\n" if torn else "")
        for path, rate in todo:
            if path not in rgb_of:
                rgb_of = {path: load_image(path).rgb}  # one image in memory at a time
                if bar.n == 0:
                    _warm_up(codec, rgb_of[path], sorted({r for _, r in todo}))
            record = {"image": path.stem, **measure(codec, rgb_of[path], rate),
                      "threads": threads, "weights_hash": hashes[rate]}
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            bar.update()
    bar.close()


def _payload(name: str, df: pd.DataFrame, meta: dict[str, Any], dataset: str | Path, n_images: int, threads: int,
             command: str) -> dict[str, Any]:
    """The output JSON: CompressAI ``results``, per-rate ``summary``, ``bd`` and ``meta``."""
    kodak = dataset_dir(dataset).resolve() == NAMED["kodak"].resolve()
    label = "trained" if meta["trained"] else "UNTRAINED (not a result)"
    description = (f"invlab evaluate: {meta['model']} ({label}), {len(df['rate'].unique())} rates, {n_images} images "
                   f"of {Path(str(dataset)).name}, real file bytes, CPU decode, {threads} thread(s)")
    payload = to_compressai_json(df, name, description)
    summary = summarize(df)
    payload["summary"] = summary
    published = published_anchor(meta["model"], len(meta["lambdas"]))
    anchors = ["vtm"] + ([published] if published else [])
    if kodak:
        points = [(s["bpp"], s["psnr-rgb"]) for s in summary if s["bpp"] is not None and s["psnr-rgb"] is not None]
        payload["bd"] = {a: bd_against([b for b, _ in points], [p for _, p in points], a) for a in anchors}
        payload["bd_note"] = ("PCHIP on log-rate over the overlapping PSNR range; negative BD-rate = fewer bits"
                              + ("" if n_images == KODAK_IMAGES else f"; on {n_images} of the {KODAK_IMAGES} images"))
    else:
        payload["bd"] = {}
        payload["bd_note"] = "no BD: the anchors are Kodak curves and this data set is not Kodak"
    payload["meta"] = {**meta, "dataset": str(dataset), "images": n_images, **_environment(threads),
                       "command": command}
    return payload


def coding_path(meta: dict[str, Any]) -> str:
    """The entropy-context path and switches that produced the numbers, in words ("-" if the model has none)."""
    parts = [meta["context"]] if meta["context"] else []
    parts += [f"RD mask search {meta['rdo']}"] if meta["rdo"] else []
    config = meta["config"] or {}
    parts += [f"post-net {config['postnet'] or 'off'}"] if "postnet" in config else []
    parts += [f"LRP {'on' if config['lrp'] else 'off'}"] if "lrp" in config else []
    return ", ".join(parts) or "-"


def format_report(payload: dict[str, Any]) -> str:
    """The summary table and the BD-rates, as printed by ``invlab evaluate``."""
    meta = payload["meta"]
    state = "trained" if meta["trained"] else "UNTRAINED: plumbing numbers, not results"
    head = (f"{meta['model']} ({meta['family']}, {state}; {meta['parameters']} parameters; "
            f"coding path: {coding_path(meta)}; options: {meta['options'] or '-'})\n"
            f"{meta['images']} images of {meta['dataset']}, CPU, {meta['threads']} thread(s), torch {meta['torch']}")
    table = pd.DataFrame(payload["summary"]).rename(columns={
        "estimated_bpp": "est. bpp", "overhead_pct": "overhead %", "stream_overhead_pct": "stream ovh. %",
        "psnr-rgb": "PSNR", "ms-ssim-rgb": "MS-SSIM", "encoding_time": "enc s", "decoding_time": "dec s",
        "decode_matches_forward": "exact"}).set_index("rate")
    lines = [head, "", markdown_table(table.astype(object).where(table.notna(), "-"), digits=4), ""]
    for anchor, bd in payload["bd"].items():
        rate_delta = "n/a" if bd["bd_rate_pct"] is None else f"{bd['bd_rate_pct']:+.2f} %"
        psnr_delta = "n/a" if bd["bd_psnr_db"] is None else f"{bd['bd_psnr_db']:+.3f} dB"
        lines.append(f"BD vs {anchor}: BD-rate {rate_delta}, BD-PSNR {psnr_delta}")
    lines.append(payload["bd_note"])
    return "\n".join(lines)


# ---------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = __doc__
    parser.add_argument("model", help="registered model name (see `invlab models`)")
    parser.add_argument("--dataset", default="kodak", help='"kodak" or a folder of images')
    parser.add_argument("--rates", default=None, metavar="R1,R2,...",
                        help="rates to visit (variable-rate: reals in [0, A-1]; fixed-rate: shipped rate indices); "
                             "default: every anchor plus --fractional points between neighbours")
    parser.add_argument("--fractional", type=int, default=1, metavar="N",
                        help="variable-rate models: N evenly spaced rates between neighbouring anchors (default 1)")
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N images")
    parser.add_argument("--untrained", action="store_true",
                        help="evaluate the untrained model (output named and marked 'untrained'; not a result)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for coding (recorded; default 1)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model config override, JSON value or none (e.g. postnet=none); repeatable; "
                             "recorded in the meta and the output name")
    parser.add_argument("--out", default=None,
                        help="output JSON (CSV beside it; cache in its folder's cache/); "
                             "default results/<dataset>/MODEL-eval.json (MODEL-eval-untrained.json untrained)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite existing outputs (cached measurements are still reused; delete the cache "
                             "file to re-measure)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_options(specs: Sequence[str]) -> dict[str, Any]:
    """``["postnet=none", "lrp=false"]`` -> ``{"postnet": None, "lrp": False}`` (JSON values, else strings)."""
    options: dict[str, Any] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise InvlabError(f"--option wants KEY=VALUE, got {spec!r}")
        try:
            options[key] = None if value.lower() in ("none", "null") else json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _command_line(args: argparse.Namespace) -> str:
    words = ["invlab", "evaluate", args.model, "--dataset", str(args.dataset)]
    words += ["--rates", args.rates] if args.rates else ["--fractional", str(args.fractional)]
    words += ["--limit", str(args.limit)] if args.limit is not None else []
    words += ["--untrained"] if args.untrained else []
    words += ["--threads", str(args.threads)]
    for spec in args.option:
        words += ["--option", spec]
    words += ["--out", str(args.out)] if args.out else []
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    try:
        rates = None if args.rates is None else [float(v) for v in args.rates.split(",") if v.strip()]
    except ValueError:
        raise InvlabError(f"--rates wants comma-separated numbers, got {args.rates!r}") from None
    path = evaluate_model(
        args.model, args.dataset, rates=rates, fractional=args.fractional, limit=args.limit, untrained=args.untrained,
        threads=args.threads, out=args.out, force=args.force, options=parse_options(args.option),
        progress=not args.no_progress, command=_command_line(args),
    )
    print(format_report(json.loads(path.read_text())))
    print(f"\nwrote {path} and {path.with_suffix('.csv')}")
    return 0
