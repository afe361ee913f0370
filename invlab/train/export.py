"""Turn a training checkpoint into shipped weights: ``weights/NAME.pt`` (or ``NAME-q{i}.pt``) + metadata JSON.

The metadata records what is needed to trust the file: architecture config, λs, training steps and time,
the training-set hash, the git commit, a summary of the training log, and the Kodak RD measured from real
bitstreams with the exported weights themselves (so fp16 storage is measured, not assumed).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invlab.codecs.learned import LearnedCodec
from invlab.datasets import list_images
from invlab.eval.measure import learned_extras, measure
from invlab.io.images import load_image
from invlab.models import count_parameters, create_model, get_spec
from invlab.train.kodak_check import evaluate_on_dataset
from invlab.train.trainer import read_checkpoint
from invlab.weights import REPO_ROOT, cpu_hours_of, gpu_budget, on_gpu, weights_path


def git_commit() -> str:
    """The commit being trained (``INVLAB_GIT_COMMIT`` where the checkout has no .git), else "unknown"."""
    if os.environ.get("INVLAB_GIT_COMMIT"):
        return os.environ["INVLAB_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def read_log(log_path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL training log ([] where there is none)."""
    if not log_path.is_file():
        return []
    return [json.loads(ln) for ln in log_path.read_text().splitlines()]


def log_summary(records: list[dict[str, Any]], last: int = 10) -> dict[str, Any]:
    """Mean of the last ``last`` train records and the last validation record of a training log's records."""
    if not records:
        return {}
    train = [r for r in records if r["split"] == "train"][-last:]
    val = [r for r in records if r["split"] == "val"]
    keys = ("loss", "bpp", "psnr")
    return {
        "train_last": {k: float(np.mean([r[k] for r in train])) for k in keys} if train else None,
        "train_last_records": len(train),
        "val_last": val[-1] if val else None,
    }


#: the fields of a validation record kept in the metadata's training curve
VALIDATION_FIELDS = ("step", "cpu_seconds", "phase", "loss", "bpp", "psnr")


def validation_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every validation record of a training log, trimmed to :data:`VALIDATION_FIELDS` and the per-anchor
    ``bpp@k`` / ``psnr@k`` (the training curve of this run, kept in the weights' metadata)."""
    return [{k: v for k, v in r.items() if k in VALIDATION_FIELDS or k.startswith(("bpp@", "psnr@"))}
            for r in records if r.get("split") == "val"]


def _rate_index(model_name: str, config: dict[str, Any], rate_index: int | None) -> int | None:
    """None for a variable-rate model; the weight-file index of a fixed-rate one."""
    spec = get_spec(model_name)
    if spec.variable_rate:
        return None
    if rate_index is not None:
        return rate_index
    lam = float(config.get("lambdas", [math.nan])[0])
    if lam in spec.lambdas:
        return spec.lambdas.index(lam)
    raise ValueError(f"{model_name} is fixed-rate with λ={lam}: pass --rate-index for the file name")


@contextlib.contextmanager
def only_these_weights(path: Path) -> Iterator[None]:
    """Point ``INVLAB_WEIGHTS`` at a folder holding just ``path`` (so a codec loads exactly that file)."""
    old = os.environ.get("INVLAB_WEIGHTS")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(path, Path(tmp) / path.name)
        os.environ["INVLAB_WEIGHTS"] = tmp
        try:
            yield
        finally:
            if old is None:
                del os.environ["INVLAB_WEIGHTS"]
            else:
                os.environ["INVLAB_WEIGHTS"] = old


def decode_matches_forward(codec: LearnedCodec, rgb: np.ndarray, rate: float) -> bool:
    """Does the decoder reproduce the encoder-side (eval-forward) reconstruction bit for bit?"""
    return measure(codec, rgb, rate, learned_extras)["decode_matches_forward"]


def export_weights(checkpoint: str | Path, fp16: bool = False, rate_index: int | None = None,
                   kodak: str | Path | None = REPO_ROOT / "data" / "kodak", kodak_limit: int | None = None,
                   device: str = "cpu") -> Path:
    """Write the weights of ``checkpoint`` into ``invlab.weights.weights_dir()`` and return the ``.pt`` path."""
    checkpoint = Path(checkpoint)
    ckpt = read_checkpoint(checkpoint)
    log = read_log(checkpoint.parent / "log.jsonl")
    name, config, train_cfg = ckpt["model_name"], ckpt["model_config"], ckpt["train_config"]
    index = _rate_index(name, config, rate_index if rate_index is not None else train_cfg["rate_index"])
    param_names = {n for n, _ in create_model(name, **config).named_parameters()}
    state = {k: v.half() if fp16 and k in param_names and v.dtype == torch.float32 else v
             for k, v in ckpt["model"].items()}
    out = weights_path(name, index)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "config": config}, out)

    with only_these_weights(out):
        codec = LearnedCodec(name, pretrained=True, device=device)
        model = codec.model(codec.rates[0])
        probe = list_images(kodak)[0] if kodak else None
        rd = evaluate_on_dataset(codec, list_images(kodak)[:kodak_limit]) if kodak else None
        exact = decode_matches_forward(codec, _load_crop(probe), codec.rates[-1]) if probe else None
    meta = {
        "model": name,
        "family": get_spec(name).family,
        "rate_index": index,
        "config": config,
        "architecture": model.config,  # the model's full architecture config, where it has one
        "lambdas": list(model.lambdas),
        "variable_rate": model.variable_rate,
        "parameters": count_parameters(model),
        "storage": "fp16" if fp16 else "fp32",
        "weights_hash": model.weights_hash.hex(),
        "trained": True,
        "training": {
            "steps": ckpt["step"], "seconds": round(ckpt["train_seconds"], 1),
            "samples_seen": ckpt["step"] * train_cfg["batch_size"],
            "wall_hours_all_runs": round(ckpt.get("spent_seconds", ckpt["train_seconds"]) / 3600, 3),
            "threads": ckpt.get("threads"),
            "cpu_hours": round(ckpt.get("spent_seconds", ckpt["train_seconds"]) / 3600 * (ckpt.get("threads") or 1), 3)
            if not on_gpu(train_cfg) else None,
            "device_name": ckpt.get("device_name"),
            "precision": train_cfg.get("precision", "fp32"), "schedule": train_cfg.get("schedule", "multistep"),
            "warmup_steps": train_cfg.get("warmup_steps", 0), "decay_fraction": train_cfg.get("decay_fraction"),
            "steps_per_second": round((ckpt["step"] - train_cfg["start_step"]) / max(ckpt["train_seconds"], 1e-9), 2),
            **{k: train_cfg[k] for k in ("max_steps", "batch_size", "crop", "lr", "aux_lr", "clip", "milestones",
                                          "seed", "device", "init_from", "start_step", "lmbda")},
            "init_partial": train_cfg.get("init_partial", False),  # started from a related model's weights
        },
        "data": {"train": Path(train_cfg["data"]).name, "train_sha256": ckpt["data_hash"],
                 "val": Path(train_cfg["val"]).name if train_cfg["val"] else None},
        "git_commit": git_commit(),
        "log_summary": log_summary(log),
        "kodak_rd": rd,
        "kodak_images": None if rd is None else rd[0]["images"],
        "eval_device": device,
        "decode_matches_forward": exact,
        "exported": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    earlier = _started_from(train_cfg, out)
    again = _exported_before(train_cfg, out) if earlier is None else None
    if again is not None:  # this run exported a second time: its earlier runs are those of its first export
        meta["training"].update(budget_totals(meta["training"], None, again["training"].get("earlier_runs", [])))
        earlier = again
    else:
        meta["training"].update(budget_totals(meta["training"], earlier))
    if earlier is not None and earlier.get("training", {}).get("fine_tuned_from"):  # a fine-tune, continued
        meta["training"]["fine_tuned_from"] = earlier["training"]["fine_tuned_from"]
        meta["training"]["init_partial"] |= bool(earlier["training"].get("init_partial"))  # how that start was taken
    elif earlier is None and not _init_is(train_cfg, out):  # a fine-tune (e.g. another λ from a trained rate):
        base = _init_metadata(train_cfg)                    # its start is named, not counted as its own runs
        if base is not None:
            meta["training"]["fine_tuned_from"] = fine_tune_record(base)
    meta["training"]["validation"] = validation_history(log)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def _init_path(train_cfg: dict[str, Any]) -> Path | None:
    """The ``--init-from`` weights of a run (relative paths from the repository), if any."""
    init = train_cfg.get("init_from")
    path = Path(init) if init else None
    return REPO_ROOT / path if path is not None and not path.is_absolute() else path


def _init_metadata(train_cfg: dict[str, Any]) -> dict[str, Any] | None:
    """The metadata JSON beside the ``--init-from`` weights, if there is one."""
    path = _init_path(train_cfg)
    if path is None or not path.with_suffix(".json").is_file():
        return None
    return json.loads(path.with_suffix(".json").read_text())


def _init_is(train_cfg: dict[str, Any], out: Path) -> bool:
    """Whether the run started from ``out`` itself (a warm continuation exported again over its start)."""
    path = _init_path(train_cfg)
    return path is not None and path.resolve() == Path(out).resolve()


def _started_from(train_cfg: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """The metadata of the weights a warm run started from (``--init-from W.pt --start-step S``), if it is there
    and is those weights (its step count is S: a second export of the same run must not count them twice)."""
    meta = _init_metadata(train_cfg)
    if meta is None or None not in (meta.get("model"), train_cfg.get("model")) and meta["model"] != train_cfg["model"]:
        return None  # another model's weights (--init-partial): a start named apart, never this model's own runs
    return meta if meta.get("training", {}).get("steps") == train_cfg.get("start_step") else None


def _exported_before(train_cfg: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """The metadata of an earlier export of this same run over its own start (same ``--init-from`` and
    ``--start-step``, a later step count), whose ``earlier_runs`` this export keeps."""
    meta = _init_metadata(train_cfg) if _init_is(train_cfg, out) else None
    t = meta.get("training", {}) if meta is not None else {}
    same_run = t.get("start_step") == train_cfg.get("start_step") and t.get("init_from") == train_cfg.get("init_from")
    return meta if same_run and t.get("steps") != train_cfg.get("start_step") else None


def fine_tune_record(base: dict[str, Any]) -> dict[str, Any]:
    """What a fine-tune started from (another weight file, e.g. another λ of the family): named, with its budget,
    kept apart from this file's own runs so that a family's files summed count the shared start once."""
    t = base.get("training", {})
    return {"model": base.get("model"), "rate_index": base.get("rate_index"), "weights_hash": base.get("weights_hash"),
            "steps": t.get("steps"), "cpu_hours_total": cpu_hours_of(t),
            **({"gpu": gpu} if (gpu := gpu_budget(t)) else {})}  # a start trained on a GPU: its time


def budget_totals(training: dict[str, Any], earlier: dict[str, Any] | None,
                  runs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``earlier_runs`` (each run's steps, wall and CPU hours) and the totals over them and this run: the runs
    before ``earlier`` (the weights this run started from) and ``earlier`` itself, or ``runs`` as given."""
    runs = list(runs or [])
    if earlier is not None:
        before = earlier.get("training", {})
        runs = list(before.get("earlier_runs", []))
        runs.append({key: before.get(key) for key in ("steps", "wall_hours_all_runs", "cpu_hours", "threads",
                                                        "precision", "crop", "batch_size", "device", "device_name")}
                    | {"exported": earlier.get("exported")}
                    | {"validation": before.get("validation")
                       or [v for v in [(earlier.get("log_summary") or {}).get("val_last")] if v]})
    this = {"wall_hours_all_runs": training["wall_hours_all_runs"], "cpu_hours": training.get("cpu_hours")}
    every = [*runs, this]
    return {"earlier_runs": runs,
            "wall_hours_total": round(sum(r.get("wall_hours_all_runs") or 0 for r in every), 3),
            "cpu_hours_total": round(sum(r.get("cpu_hours") or 0 for r in every), 3)}


def _load_crop(path: Path, size: int = 64) -> np.ndarray:
    """A small odd-sized crop of an image, for the exact-decoding check."""
    return load_image(path).rgb[: size - 3, : size + 5].copy()

