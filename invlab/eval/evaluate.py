"""Kodak RD of one learned model from real bitstreams coded on the CPU, with what is needed to trust the numbers.

For every image and rate: bytes of the whole invlab file (header included) and bpp, the rate the model itself
estimates (-log2 of its eval-mode likelihoods, the same sum ``estimate_bits`` gives for MSINN) and the overhead
of the real bytes over that estimate, PSNR-RGB, MS-SSIM-RGB, encode and decode seconds (``--threads`` torch
threads), and whether the decoded image equals the encoder-side reconstruction (the eval-mode forward).

Rates: a variable-rate model visits its anchors 0 .. A-1 and ``--fractional N`` evenly spaced rates between
each pair of neighbours (default 1: the midpoints); a fixed-rate family visits the rate indices it ships
weights for (only index 0 untrained). ``--rates`` replaces that list.

Every record is appended to ``<out folder>/cache/<name>.jsonl`` as soon as it exists and reused when the image,
rate, weights hash, thread count and coding options match, so an interrupted run resumes. The (image, rate)
jobs run in this process, or on ``dask.distributed`` with ``--workers N`` (a local cluster, ``--threads`` torch
threads in each worker) or ``--scheduler ADDRESS`` (see :mod:`invlab.eval.sweep`); the outputs are those of a
serial run.
At the end it writes ``<name>.json`` (a ``results`` block in CompressAI's format that the RD tools read, a
per-rate ``summary``, BD-rates against VTM and the model's published curve, and ``meta``: model, family,
parameters, trained or not, weights hashes and metadata commits, context path and options, threads, versions,
date, command) and ``<name>.csv`` (one row per image and rate). Untrained models run only with ``--untrained``,
and then the file name and the meta say "untrained". An existing output is never overwritten without ``--force``.

Examples::

    invlab evaluate msinn-mini                                  # trained weights: results/kodak/msinn-mini-eval.json
    invlab evaluate msinn-mini --option postnet=none            # the same weights with the post-net switched off
    invlab evaluate invcompress-mini --threads 4                # every shipped rate index, 4 CPU threads
    invlab evaluate tiny-flow --untrained --limit 2 --rates 0,1 # plumbing check, named *-eval-untrained
    invlab evaluate anfic-mini --workers 2 --threads 1          # two worker processes, one torch thread each
    invlab evaluate msinn --weights msinn-official.pt           # a weight file of one's own (e.g. converted
                                                                #   official weights): msinn@msinn-official-eval
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.codecs.registry import file_safe, weights_label
from invlab.datasets import NAMED, dataset_dir, list_images
from invlab.errors import InvlabError, OutputExistsError
from invlab.eval.anchors import KODAK_ANCHORS, load_anchor
from invlab.eval.cache import ResultCache
from invlab.eval.measure import learned_extras
from invlab.eval.rd import markdown_table, to_compressai_json
from invlab.eval.sweep import Setup, build_codec, dask_client, plan, sweep
from invlab.metrics import bd_psnr, bd_rate
from invlab.models import count_parameters, get_spec, list_models
from invlab.models.base import InvlabModel
from invlab.weights import cpu_hours_of, gpu_budget, has_weights, official_phrase, read_metadata

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
        file = model.weights_file
        shipped = read_metadata(Path(file)) if file else {}
        weights.append({
            "rates": model_rates, "file": Path(file).name if file else None,
            "weights_hash": model.weights_hash.hex(), "shipped_weights_hash": shipped.get("weights_hash"),
            "git_commit": shipped.get("git_commit"), "training_steps": shipped.get("training", {}).get("steps"),
            "training_cpu_hours": cpu_hours_of(shipped.get("training", {})),
            "training_gpu": gpu_budget(shipped.get("training", {})) or None,  # e.g. "8.7 GPU-min (NVIDIA H200)"
            "fine_tuned_from": shipped.get("training", {}).get("fine_tuned_from"),  # its start, budget apart
            "exported": shipped.get("exported"), "parameters": count_parameters(model),
            "official": shipped.get("official"),  # converted official weights: their source file and its SHA-256
        })
    models = [model for model, _ in served.values()]
    first = models[0]
    params = {w["parameters"] for w in weights}
    return {
        "model": codec.name, "family": spec.family, "description": spec.description,
        "trained": codec.trained, "weights": weights,
        "parameters": params.pop() if len(params) == 1 else {w["file"]: w["parameters"] for w in weights},
        "variable_rate": first.variable_rate, "rate_range": list(first.rate_range), "lambdas": list(first.lambdas),
        "context": first.context_label or spec.context, "config": first.config,
        "rdo": first.rdo,  # M-ANFIC / MS-ANFIC quadtree search mode
        "coding_switches": first.coding_switches,
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
def output_name(model: str, trained: bool, options: dict[str, Any], weights: str | Path | None = None) -> str:
    """``MODEL[@WEIGHTS][+opt-val...]-eval`` (``-eval-untrained`` for an untrained model; WEIGHTS: the stem of a
    weight file of one's own)."""
    tag = file_safe("".join(f"+{k}-{v}" for k, v in sorted(options.items()))).lower()
    source = model if weights is None else weights_label(model, weights)
    return f"{source}{tag}-eval" + ("" if trained else "-untrained")


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
    workers: int = 1,
    scheduler: str | None = None,
    weights: str | Path | None = None,
) -> Path:
    """Evaluate ``model`` on ``dataset``; returns the JSON written (the CSV lies beside it).

    ``workers`` > 1 (or a ``scheduler`` address) runs the (image, rate) jobs on Dask, ``threads`` torch threads
    in each worker; 1 runs them in this process. Refuses (InvlabError) a model without trained weights unless
    ``untrained``; an output whose name does not say "untrained" for an untrained model; an existing output
    unless ``force``. ``weights``: a weight file of ``model`` to evaluate instead of the shipped ones.
    """
    if model not in list_models():
        raise InvlabError(f"{model!r} is not a registered learned model; see `invlab models`")
    if weights is not None:
        if untrained:
            raise InvlabError("--weights and --untrained exclude each other")
        weights = str(Path(weights).resolve())  # Dask workers open it too
    if weights is None and not untrained and not has_weights(model):
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
    codec_options = options if weights is None else {**options, "weights": weights}
    try:
        codec = build_codec(model, pretrained, codec_options)
    except TypeError as err:
        raise InvlabError(f"{model}: bad --option: {err}") from None
    name = output_name(model, codec.trained, options, weights)
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

    hashes = {r: codec.model(r).weights_hash.hex() for r in rates}
    coded_with = {r: codec.model(r).coding_options for r in rates}  # e.g. exact entropy parameters: other files
    results = ResultCache(json_path.parent / "cache" / f"{json_path.stem}.jsonl",
                          tags=lambda image, rate: {"threads": threads, "weights_hash": hashes[rate],
                                                    **({"options": coded_with[rate]} if coded_with[rate] else {})})
    setup = Setup(model, pretrained, json.dumps(codec_options, sort_keys=True), threads, learned_extras, warm_up=True)
    with dask_client(workers, threads, scheduler) as client:
        sweep(plan(setup, images, rates, results), results, client, desc=json_path.stem, progress=progress,
              codec=codec)

    df = results.table({p.stem for p in images}, rates)
    payload = _payload(json_path.stem, df, meta, dataset, len(images), threads, command)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    df.to_csv(csv_path, index=False)
    return json_path


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
    parts += meta.get("coding_switches", [])
    return ", ".join(parts) or "-"


def format_report(payload: dict[str, Any]) -> str:
    """The summary table and the BD-rates, as printed by ``invlab evaluate``."""
    meta = payload["meta"]
    state = "trained" if meta["trained"] else "UNTRAINED: plumbing numbers, not results"
    official = [w["official"] for w in meta["weights"] if w.get("official")]
    if official:
        state = official_phrase(official[0])
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
    parser.add_argument("--threads", "--threads-per-worker", type=int, default=1, dest="threads",
                        help="torch CPU threads for coding, in each worker (recorded; default 1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Dask worker processes of a local cluster (default 1 = in this process)")
    parser.add_argument("--scheduler", help="address of an existing Dask scheduler (e.g. tcp://host:8786)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model config override, JSON value or none (e.g. postnet=none); repeatable; "
                             "recorded in the meta and the output name")
    parser.add_argument("--weights", metavar="FILE",
                        help="a weight file of MODEL instead of the shipped ones (e.g. from `invlab convert-official`);"
                             " output named MODEL@FILE-eval")
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
    words += ["--weights", str(args.weights)] if args.weights else []
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
        progress=not args.no_progress, command=_command_line(args), workers=args.workers, scheduler=args.scheduler,
        weights=args.weights,
    )
    print(format_report(json.loads(path.read_text())))
    print(f"\nwrote {path} and {path.with_suffix('.csv')}")
    return 0
