"""The project's training targets, checked on the measured Kodak curves in ``results/kodak/``.

    python -m scripts.targets                           # print the table
    python -m scripts.targets --write docs/results.md   # replace the block between the targets markers

- every trained family's curve is monotone (bpp and PSNR both rise with the rate setting);
- it beats our JPEG at every rate it covers (JPEG's PSNR interpolated on log-bpp at each of the model's points);
- the invertible models beat the autoencoders at high rate (≥ 1 bpp; the CPU budget per rate is stated beside);
- MS-ANFIC and M-ANFIC need no more bits than the single-scale ``anfic-mini-noctx`` (BD-rate ≤ 0);
- an ablation (e.g. InvCompress without its feature enhancement) codes below its model's curve at its own bpp.

A target whose curves are not there yet is "not measurable", with the reason; nothing is assumed met.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from invlab.eval.anchors import family_cpu_hours, warm_start_budget
from invlab.eval.rd import markdown_table
from invlab.eval.report import replace_block
from invlab.metrics import bd_rate

#: model families (``ModelSpec.family``) whose transforms are invertible, and the autoencoder baselines
INVERTIBLE_FAMILIES = ("msinn", "invcompress", "anfic", "manfic")
AUTOENCODER_FAMILIES = ("baseline",)
HIGH_RATE_BPP = 1.0
MULTI_SCALE_VS_SINGLE = (("msanfic-mini", "anfic-mini-noctx"), ("manfic-mini", "anfic-mini-noctx"))
MET, MISSED, NOT_MEASURABLE = "met", "missed", "not measurable"
TARGETS_START, TARGETS_END = "<!-- targets:start -->", "<!-- targets:end -->"


@dataclass
class ModelCurve:
    """One trained model's Kodak curve in the order of its rate settings, with its training budget."""

    name: str
    family: str
    rate: np.ndarray
    bpp: np.ndarray
    psnr: np.ndarray
    cpu_hours: float | None
    rates_trained: int  # anchors of a variable-rate model, weight files of a fixed-rate family
    warm_from: tuple[list[str], float | None] | None = None  # other models it started from, their CPU-hours
    gpu: str = ""  # accelerator time of files trained on a GPU, e.g. "8.7 GPU-min (NVIDIA H200)"

    @property
    def cpu_hours_per_rate(self) -> float | None:
        return None if self.cpu_hours is None else self.cpu_hours / max(self.rates_trained, 1)

    @property
    def invertible(self) -> bool:
        return self.family in INVERTIBLE_FAMILIES


def load_model_curves(results_dir: str | Path, ablations: bool = False) -> dict[str, ModelCurve]:
    """The trained models' ``invlab evaluate`` results in ``results_dir`` (``NAME-eval.json``), by model name:
    the models, or with ``ablations`` only the ablations (compared with the model they ablate, held to no target)."""
    curves = {}
    for path in sorted(Path(results_dir).glob("*-eval.json")):
        data = json.loads(path.read_text())
        meta, res = data.get("meta") or {}, data.get("results") or {}
        if not meta.get("trained") or "rate" not in res or _is_ablation(meta.get("model")) != ablations:
            continue
        if any(isinstance(w, dict) and w.get("official") for w in meta.get("weights") or []):
            continue  # converted official weights (``evaluate --weights``): not trained here, held to no target
        order = np.argsort(res["rate"])
        weights = [w for w in meta.get("weights") or [] if isinstance(w, dict)]
        rates_trained = len(meta.get("lambdas") or []) if meta.get("variable_rate") else len(weights)
        curves[meta["model"]] = ModelCurve(
            name=meta["model"], family=meta.get("family", ""), rate=np.asarray(res["rate"], float)[order],
            bpp=np.asarray(res["bpp"], float)[order], psnr=np.asarray(res["psnr-rgb"], float)[order],
            cpu_hours=family_cpu_hours(weights),
            rates_trained=rates_trained, warm_from=warm_start_budget(meta),
            gpu=", ".join(sorted({w["training_gpu"] for w in weights if w.get("training_gpu")})))
    return curves


def _is_ablation(name: str | None) -> bool:
    """Whether ``name`` is a registered ablation (a model less one part: compared with its model, held to no target)."""
    from invlab.models.registry import get_spec, is_model

    return name is not None and is_model(name) and get_spec(name).ablation_of is not None


def _ablated(name: str) -> str:
    """The model an ablation ablates (its registry entry's ``ablation_of``)."""
    from invlab.models.registry import get_spec

    return get_spec(name).ablation_of


def _row(target: str, subject: str, status: str, measured: str) -> dict[str, str]:
    return {"target": target, "model": subject, "status": status, "measured": measured}


def monotone(curve: ModelCurve) -> dict[str, str]:
    target = "monotone curve"
    if len(curve.rate) < 2:
        return _row(target, curve.name, NOT_MEASURABLE, f"{len(curve.rate)} rate point")
    bad = [f"{a:g}→{b:g}" for a, b, db, dp in zip(curve.rate[:-1], curve.rate[1:], np.diff(curve.bpp),
                                                   np.diff(curve.psnr), strict=True) if db <= 0 or dp <= 0]
    measured = f"{len(curve.rate)} rates, {curve.bpp[0]:.3f}–{curve.bpp[-1]:.3f} bpp"
    if bad:
        return _row(target, curve.name, MISSED, f"{measured}; not rising at {', '.join(bad)}")
    return _row(target, curve.name, MET, measured)


def psnr_at(bpp: np.ndarray, psnr: np.ndarray, at: np.ndarray) -> np.ndarray:
    """PSNR of a curve at ``at`` bpp (linear in log-bpp; NaN outside its bpp range)."""
    order = np.argsort(bpp)
    x, y = np.log(bpp[order]), psnr[order]
    out = np.interp(np.log(at), x, y)
    return np.where((at >= bpp.min()) & (at <= bpp.max()), out, np.nan)


def beats_jpeg(curve: ModelCurve, jpeg_bpp: np.ndarray, jpeg_psnr: np.ndarray) -> dict[str, str]:
    target = "beats JPEG at every rate it covers"
    margin = curve.psnr - psnr_at(jpeg_bpp, jpeg_psnr, curve.bpp)
    covered = ~np.isnan(margin)
    if not covered.any():
        return _row(target, curve.name, NOT_MEASURABLE, "no point inside JPEG's bpp range")
    worst = int(np.nanargmin(margin))
    measured = (f"{covered.sum()} of {len(margin)} points inside JPEG's range; smallest margin "
                f"{margin[worst]:+.2f} dB at {curve.bpp[worst]:.3f} bpp")
    return _row(target, curve.name, MET if np.nanmin(margin) > 0 else MISSED, measured)


def _budget(curve: ModelCurve) -> str:
    share = curve.cpu_hours_per_rate
    on_gpu = share is None and bool(curve.gpu)  # trained on a GPU alone: its accelerator time, not CPU-hours
    text = (f"{curve.name} {curve.gpu} in all" if on_gpu
            else f"{curve.name} {'?' if share is None else f'{share:.2f}'} CPU-h per rate"
            + (f" and {curve.gpu} in all" if curve.gpu else ""))
    if curve.warm_from is not None:  # started from another model's weights: that budget is named beside its own
        names, hours = curve.warm_from
        extra = "?" if hours is None else f"{hours / max(curve.rates_trained, 1):.2f}"
        text += f" (+{extra}{' CPU-h per rate' if on_gpu else ''} of {', '.join(names)}'s, its start)"
    return text


def invertible_beats_autoencoder(inv: ModelCurve, ae: ModelCurve) -> dict[str, str]:
    """PSNR gain of ``inv`` over ``ae`` at each of their points at ≥ 1 bpp that both curves cover."""
    target = f"invertible beats autoencoder at ≥ {HIGH_RATE_BPP:g} bpp"
    subject = f"{inv.name} vs {ae.name}"
    budgets = f" ({_budget(inv)}, {_budget(ae)})"
    lo, hi = max(inv.bpp.min(), ae.bpp.min(), HIGH_RATE_BPP), min(inv.bpp.max(), ae.bpp.max())
    if not hi >= lo:
        ends = ", ".join(f"{c.name} {c.bpp.min():.2f}–{c.bpp.max():.2f}" for c in (inv, ae))
        return _row(target, subject, NOT_MEASURABLE, f"no common bpp at ≥ {HIGH_RATE_BPP:g} ({ends} bpp)" + budgets)
    at = np.unique(np.concatenate([c.bpp[(c.bpp >= lo) & (c.bpp <= hi)] for c in (inv, ae)]))
    gain = psnr_at(inv.bpp, inv.psnr, at) - psnr_at(ae.bpp, ae.psnr, at)
    measured = f"{gain.min():+.2f} to {gain.max():+.2f} dB over {lo:.2f}–{hi:.2f} bpp" + budgets
    return _row(target, subject, MET if gain.min() > 0 else MISSED, measured)


def multi_scale_saves(multi: ModelCurve | None, single: ModelCurve | None, names: tuple[str, str]) -> dict[str, str]:
    target = "multi-scale ANFIC ≤ single-scale in BD-rate"
    subject = f"{names[0]} vs {names[1]}"
    missing = [n for n, c in zip(names, (multi, single), strict=True) if c is None]
    if missing:
        return _row(target, subject, NOT_MEASURABLE, f"no trained curve of {', '.join(missing)}")
    budgets = f" ({_budget(multi)}, {_budget(single)})"
    bd = bd_rate(single.bpp, single.psnr, multi.bpp, multi.psnr)
    if np.isnan(bd):
        return _row(target, subject, NOT_MEASURABLE, "the curves' PSNR ranges do not overlap" + budgets)
    return _row(target, subject, MET if bd <= 0 else MISSED,
                f"BD-rate {bd:+.1f} % (the paper: MS-ANFIC < −7 %)" + budgets)


def ablation_costs(ablation: ModelCurve, full: ModelCurve | None) -> dict[str, str]:
    """PSNR of an ablation (a model less one part) against its model's curve at the ablation's own bpp: the paper's
    direction holds when every point is below."""
    ablated = _ablated(ablation.name)
    target = "an ablation codes worse than its model (the paper's direction)"
    subject = f"{ablation.name} vs {ablated}"
    if full is None:
        return _row(target, subject, NOT_MEASURABLE, f"no trained curve of {ablated}")
    delta = ablation.psnr - psnr_at(full.bpp, full.psnr, ablation.bpp)
    budgets = f" ({_budget(ablation)}, {_budget(full)})"
    if np.isnan(delta).all():
        return _row(target, subject, NOT_MEASURABLE,
                    f"{ablation.bpp.min():.3f}–{ablation.bpp.max():.3f} bpp is outside {ablated}'s range" + budgets)
    measured = ", ".join(f"{d:+.2f} dB at {b:.3f} bpp" for d, b in zip(delta, ablation.bpp, strict=True)
                         if not np.isnan(d))
    return _row(target, subject, MET if np.nanmax(delta) < 0 else MISSED, measured + budgets)


def check_targets(results_dir: str | Path = "results/kodak") -> pd.DataFrame:
    """One row per target and model (pair): status ``met`` / ``missed`` / ``not measurable`` and what was measured."""
    results_dir = Path(results_dir)
    curves = load_model_curves(results_dir)
    jpeg_path = results_dir / "jpeg.json"
    jpeg = json.loads(jpeg_path.read_text())["results"] if jpeg_path.is_file() else None
    rows = []
    for curve in curves.values():
        rows.append(monotone(curve))
        if jpeg is None:
            rows.append(_row("beats JPEG at every rate it covers", curve.name, NOT_MEASURABLE,
                             f"no {jpeg_path} (run `invlab rd --codecs jpeg`)"))
        else:
            rows.append(beats_jpeg(curve, np.asarray(jpeg["bpp"], float), np.asarray(jpeg["psnr-rgb"], float)))
    inverts = [c for c in curves.values() if c.invertible]
    autoencoders = [c for c in curves.values() if c.family in AUTOENCODER_FAMILIES]
    rows += [invertible_beats_autoencoder(i, a) for i in inverts for a in autoencoders]
    rows += [multi_scale_saves(curves.get(m), curves.get(s), (m, s)) for m, s in MULTI_SCALE_VS_SINGLE]
    rows += [ablation_costs(a, curves.get(_ablated(a.name)))
             for a in load_model_curves(results_dir, ablations=True).values()]
    return pd.DataFrame(rows, columns=["target", "model", "status", "measured"])


def render_targets(results_dir: str | Path = "results/kodak") -> str:
    """The markdown table of :func:`check_targets` on ``results_dir``."""
    table = check_targets(results_dir)
    body = markdown_table(table.set_index("target")) if len(table) else "_No trained model has a Kodak curve yet._"
    return (f"{body}\n\n_Checked by `python -m scripts.targets` from `{results_dir}/` (`scripts/targets.py`); "
            "do not edit by hand._")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.targets", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default="results/kodak", help="folder of the Kodak result JSONs")
    parser.add_argument("--write", metavar="FILE", help="replace the block between the targets markers of FILE")
    args = parser.parse_args(argv)
    table = render_targets(args.results)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_block(path.read_text(), table, TARGETS_START, TARGETS_END))
        print(f"updated the targets block of {path}")
    else:
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
