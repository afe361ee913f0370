"""RD curves: published Kodak anchors (data/anchors, see its README) and our own result JSONs (results/).

Every curve file is in CompressAI's results format, ``{"name", "description", "results": {"bpp": [...],
"psnr-rgb": [...], ...}}``; older files use ``psnr`` / ``ms-ssim`` instead of the ``-rgb`` keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from invlab.datasets import DATA_DIR

ANCHOR_DIR = DATA_DIR / "anchors"

# short name -> file under data/anchors (all Kodak)
KODAK_ANCHORS = {
    "vtm": "compressai/kodak/vtm.json",
    "hm": "compressai/kodak/hm.json",
    "bpg444": "compressai/kodak/bpg_444_x265_ycbcr.json",
    "av1": "compressai/kodak/av1.json",
    "jpeg": "compressai/kodak/jpeg.json",
    "jpeg2000": "compressai/kodak/jpeg2000.json",
    "webp": "compressai/kodak/webp.json",
    "vvenc": "vvenc-kodak.json",
    "vvenc-medium": "vvenc-kodak-medium.json",
    "invcompress": "InvCompress/kodak_mse.json",
    "msinn-8": "MSINN-VRLIC/kodak_anchor8.json",
    "msinn-12": "MSINN-VRLIC/kodak_anchor12.json",
    "bmshj2018-hyperprior": "compressai/kodak/compressai-bmshj2018-hyperprior_mse_cuda.json",
    "mbt2018": "compressai/kodak/compressai-mbt2018_mse_cuda.json",
    "cheng2020-anchor": "compressai/kodak/compressai-cheng2020-anchor_mse_cuda.json",
    "elic2022": "compressai/kodak/paper-elic2022_mse.json",
}


@dataclass
class Curve:
    """One RD curve, points sorted by bpp. ``ms_ssim`` is None where the source has none."""

    name: str
    bpp: np.ndarray
    psnr: np.ndarray
    ms_ssim: np.ndarray | None = None
    description: str = ""
    source: str = ""
    training: str = ""  # a learned model's training budget ("8.9 CPU-h, 11,646 steps"); "" for the others


def load_curve(path: str | Path, name: str | None = None) -> Curve:
    """Read one CompressAI-format JSON file."""
    path = Path(path)
    data = json.loads(path.read_text())
    res = data["results"]
    psnr = res.get("psnr-rgb", res.get("psnr"))
    if psnr is None:
        raise KeyError(f"{path}: no psnr-rgb / psnr in results")
    ms = res.get("ms-ssim-rgb", res.get("ms-ssim"))
    order = np.argsort(res["bpp"])
    return Curve(
        name=name or data.get("name", path.stem),
        bpp=np.asarray(res["bpp"], float)[order],
        psnr=np.asarray(psnr, float)[order],
        ms_ssim=None if ms is None else np.asarray(ms, float)[order],
        description=data.get("description", ""),
        source=_display_path(path),
        training=training_budget(data.get("meta") or {}),
    )


def training_budget(meta: dict) -> str:
    """The training budget behind an ``invlab evaluate`` result, from its ``meta["weights"]`` (summed over a
    fixed-rate family's weight files): e.g. "8.9 CPU-h, 11,646 steps", "4 files, 6.0 CPU-h, 20,000 steps" or
    "8.7 GPU-min (NVIDIA H200), 2,965 steps";
    "" where the result says nothing of training (classical codecs, published curves)."""
    weights = [w for w in meta.get("weights") or [] if isinstance(w, dict)]
    if not weights or not meta.get("trained", True):
        return "untrained" if weights else ""
    steps = [w.get("training_steps") for w in weights]
    hours = family_cpu_hours(weights)
    parts = [f"{len(weights)} files"] if len(weights) > 1 else []
    if hours is not None:
        parts.append(f"{hours:.1f} CPU-h")
    gpu = sorted({w["training_gpu"] for w in weights if w.get("training_gpu")})
    parts.extend(gpu)  # files trained on a GPU: their accelerator time, e.g. "8.7 GPU-min (NVIDIA H200)"
    if all(n is not None for n in steps):
        parts.append(f"{sum(steps):,} steps")
    inherited = warm_start_budget(meta)
    if inherited is not None:
        names, hours = inherited
        parts.append(f"warm from {', '.join(names)}" + ("" if hours is None else f" (+{hours:.1f} CPU-h)"))
    return ", ".join(parts)


def weight_cpu_hours(weight: dict) -> float | None:
    """A result's weight file's CPU-hours; 0 for a file trained on a GPU alone (its time is ``training_gpu``)."""
    hours = weight.get("training_cpu_hours")
    return 0.0 if hours is None and weight.get("training_gpu") else hours


def family_cpu_hours(weights: list[dict]) -> float | None:
    """The CPU-hours of a result's weight files together; None where one file's is unknown, or where every file
    was trained on a GPU alone (no "0.0 CPU-h" beside their GPU time)."""
    hours = [weight_cpu_hours(w) for w in weights]
    if not weights or any(h is None for h in hours):
        return None
    return sum(hours) if sum(hours) or not any(w.get("training_gpu") for w in weights) else None


def warm_start_budget(meta: dict) -> tuple[list[str], float | None] | None:
    """The other models a result's weight files started from (``--init-from ... --init-partial``, e.g. msanfic-mini
    from anfic-mini-noctx) and those start files' CPU-hours summed, each file once (None where one is unknown);
    None when every file was trained from scratch or from files of the same model."""
    starts = {}
    for w in meta.get("weights") or []:
        start = w.get("fine_tuned_from") if isinstance(w, dict) else None
        if isinstance(start, dict) and start.get("model") not in (None, meta.get("model")):
            starts[(start["model"], start.get("rate_index"), start.get("weights_hash"))] = start.get("cpu_hours_total")
    if not starts:
        return None
    hours = list(starts.values())
    return sorted({model for model, _, _ in starts}), (sum(hours) if all(h is not None for h in hours) else None)


def _display_path(path: Path) -> str:
    """``path`` relative to the repository when it lies inside (results files then carry no machine paths)."""
    try:
        return str(Path(path).resolve().relative_to(DATA_DIR.resolve().parent))
    except ValueError:
        return str(path)


def list_anchors() -> list[str]:
    return list(KODAK_ANCHORS)


def load_anchor(name: str) -> Curve:
    """A published Kodak anchor by short name (``vtm``, ``vvenc``, ``invcompress``, ``msinn-12``, ...), or any
    result JSON in CompressAI's format by path (e.g. ``results/kodak/anfic-mini-noctx-eval.json``)."""
    if name not in KODAK_ANCHORS:
        if name.endswith(".json") and Path(name).is_file():
            return load_curve(Path(name), name=Path(name).stem)
        raise KeyError(f"unknown anchor {name!r}; known: {', '.join(KODAK_ANCHORS)}, or a result JSON file")
    return load_curve(ANCHOR_DIR / KODAK_ANCHORS[name], name=name)


def is_rd_result(path: str | Path) -> bool:
    """Whether a JSON file is an RD result in CompressAI's format (``{"results": {"bpp": [...], ...}}``)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("results"), dict) and "bpp" in data["results"]


def load_results(results_dir: str | Path) -> dict[str, Curve]:
    """Our own per-codec RD result JSONs in ``results_dir`` (``invlab rd`` / ``invlab evaluate``), by file stem.

    Other JSON files there (a study's summary, say) are not RD curves and are passed over."""
    paths = [p for p in sorted(Path(results_dir).glob("*.json")) if is_rd_result(p)]
    return {p.stem: load_curve(p, name=p.stem) for p in paths}
