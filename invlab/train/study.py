"""The CPU convergence study: which training recipe buys the most validation loss per CPU-minute.

    python -m invlab.train.study --data ../shared/data/train --val ../shared/data/val      # run + report
    python -m invlab.train.study --report-only                                             # report from the runs

Each arm is one short ``invlab train`` run from scratch (a subprocess, ``--threads`` torch threads, its own
run folder under ``--runs``; an arm whose run finished is not run again, so an interrupted study resumes).
Every arm validates on the same fixed 128² centre crops (``--val-crop``), so their curves compare. The report:
``<out>/convergence.csv`` (every validation record of every arm: CPU-minutes, loss, bpp, PSNR, and bpp/PSNR at
the lowest, middle and highest anchor), ``<out>/convergence.md`` (each arm's last validation against its
model's baseline arm) and ``<out>/convergence.png`` (validation loss against CPU-minutes, one panel per model).
CPU-minutes are the training process's CPU time (``cpu_seconds`` in its log: all its threads, so that
other work on the machine does not count against an arm); logs from before that field use training seconds x
threads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from invlab.weights import REPO_ROOT


@dataclass(frozen=True)
class Arm:
    """One recipe: ``options`` override the base recipe of :data:`BASE_OPTIONS`."""

    name: str
    model: str
    options: tuple[str, ...]
    question: str
    minutes: float | None = None  # wall minutes (default: --minutes)
    baseline: str | None = None  # the arm it is compared with (None: it is a baseline)


#: the recipe every arm starts from (the long-run recipe of scripts/train_cpu.sh)
BASE_OPTIONS = ("--batch-size", "8", "--crop", "128", "--lr", "5e-4", "--precision", "bf16", "--schedule", "wsd",
                "--warmup-steps", "200", "--decay-fraction", "0.15", "--max-steps", "1000000", "--log-every", "25",
                "--ckpt-every", "500", "--val-crop", "128", "--no-progress")

_M, _B = "msinn-mini", "bmshj2018-hyperprior-mini"
ARMS: tuple[Arm, ...] = (
    Arm("msinn-base", _M, (), "the current recipe: bf16, Adam 5e-4 with WSD, crop 128, batch 8"),
    Arm("msinn-lr1e-4", _M, ("--lr", "1e-4"), "peak LR 1e-4", baseline="msinn-base"),
    Arm("msinn-lr1e-3", _M, ("--lr", "1e-3"), "peak LR 1e-3", baseline="msinn-base"),
    Arm("msinn-constant", _M, ("--decay-fraction", "0"), "constant LR after warm-up (WSD without its decay)",
        baseline="msinn-base"),
    Arm("msinn-crop64", _M, ("--crop", "64", "--batch-size", "32"), "crop 64, batch 32 (same pixels per step)",
        baseline="msinn-base"),
    Arm("msinn-crop256", _M, ("--crop", "256", "--batch-size", "2"), "crop 256, batch 2 (same pixels per step)",
        baseline="msinn-base"),
    Arm("msinn-batch16", _M, ("--batch-size", "16"), "batch 16", baseline="msinn-base"),
    Arm("msinn-fp32", _M, ("--precision", "fp32"), "fp32 instead of bf16 autocast", baseline="msinn-base"),
    Arm("msinn-actnorm-identity", _M, ("--actnorm-init", "identity"), "ActNorm identity init instead of data init",
        baseline="msinn-base"),
    Arm("hyperprior-base", _B, ("--rate-index", "2"), "the autoencoder baseline, same recipe (λ = 0.013)"),
    Arm("hyperprior-fp32", _B, ("--rate-index", "2", "--precision", "fp32"), "fp32 instead of bf16",
        baseline="hyperprior-base"),
    *(arm for model in ("anfic-mini-noctx", "msanfic-mini", "invcompress-mini") for arm in (
        Arm(f"{model}-bf16", model, ("--rate-index", "2"),
            "bf16: does it train like fp32 for this family?", minutes=2.5),
        Arm(f"{model}-fp32", model, ("--rate-index", "2", "--precision", "fp32"),
            "fp32 reference for the bf16 check", minutes=2.5, baseline=f"{model}-bf16"),
    )),
)


def _finished(run: Path) -> bool:
    return (run / "study-done").is_file()


def run_arm(arm: Arm, data: str, val: str, runs: Path, minutes: float, threads: int) -> None:
    """Train one arm to its time limit (skipped when its run already finished)."""
    run = runs / arm.name
    if _finished(run):
        return
    limit = arm.minutes or minutes
    val_every = "120" if arm.model == _M else "200"
    cmd = [sys.executable, "-m", "invlab.train", arm.model, "--data", data, "--val", val, "--run-dir", str(run),
           *BASE_OPTIONS, "--val-every", val_every, "--time-limit", str(limit), *arm.options]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "study-output.txt", "w") as out:
        subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    (run / "study-done").write_text(json.dumps({"command": cmd, "threads": threads}))


def collect(runs: Path, threads: int) -> pd.DataFrame:
    """Every validation record of every arm that has a log."""
    rows = []
    for arm in ARMS:
        log = runs / arm.name / "log.jsonl"
        if not log.is_file():
            continue
        done = runs / arm.name / "study-done"
        arm_threads = json.loads(done.read_text())["threads"] if done.is_file() else threads
        for line in log.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a torn last line of an interrupted run
                continue
            if rec.get("split") == "val":
                rows.append({"arm": arm.name, "model": arm.model, "question": arm.question,
                             "cpu_minutes": round(rec["cpu_seconds"] / 60 if "cpu_seconds" in rec
                                                  else rec["seconds"] * arm_threads / 60, 2),
                             **{k: v for k, v in rec.items() if k not in ("split", "seconds")}})
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Each arm's last validation, and its loss against its baseline arm's at the same CPU-minutes: the later
    of the two curves' common end, both interpolated linearly between their validations."""
    arms = {a.name: a for a in ARMS}
    last = df.sort_values("cpu_minutes").groupby("arm").tail(1).set_index("arm")
    rows = []
    for name in [a.name for a in ARMS if a.name in last.index]:
        rec, arm = last.loc[name], arms[name]
        row = {"arm": name, "question": arm.question, "steps": int(rec["step"]), "CPU-min": rec["cpu_minutes"],
               "val loss": rec["loss"], "bpp": rec["bpp"], "PSNR": rec["psnr"]}
        if arm.baseline and arm.baseline in last.index:
            base = df[df.arm == arm.baseline].sort_values("cpu_minutes")
            own = df[df.arm == name].sort_values("cpu_minutes")
            common = min(rec["cpu_minutes"], base.cpu_minutes.iloc[-1])  # where both curves have been
            if max(base.cpu_minutes.iloc[0], own.cpu_minutes.iloc[0]) <= common:
                ratio = (np.interp(common, own.cpu_minutes, own.loss) / np.interp(common, base.cpu_minutes, base.loss))
                row["compared at CPU-min"] = common
                row["loss vs baseline %"] = 100 * (float(ratio) - 1)
        rows.append(row)
    return pd.DataFrame(rows)


def _train_records(runs: Path, arm: str) -> dict[int, dict]:
    log = runs / arm / "log.jsonl"
    records = {}
    for line in log.read_text().splitlines() if log.is_file() else []:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("split") == "train":
            records[rec["step"]] = rec
    return records


def precision_table(runs: Path, from_step: int = 25) -> pd.DataFrame:
    """bf16 against fp32 step for step: every fp32 arm and its bf16 baseline see the same batches (a function of
    seed and step), so their training losses at the same steps compare directly; and CPU-seconds per step."""
    rows = []
    for arm in ARMS:
        if "--precision" not in arm.options or arm.baseline is None:
            continue
        fp32, bf16 = _train_records(runs, arm.name), _train_records(runs, arm.baseline)
        steps = sorted(s for s in set(fp32) & set(bf16) if s >= from_step)
        if not steps:
            continue
        mean = {name: float(np.mean([recs[s]["loss"] for s in steps])) for name, recs in (("bf16", bf16),
                                                                                         ("fp32", fp32))}
        last = steps[-1]
        per_step = {name: recs[last].get("cpu_seconds", math.nan) / last for name, recs in (("bf16", bf16),
                                                                                            ("fp32", fp32))}
        rows.append({"model": arm.model, "steps compared": f"{steps[0]}-{last} ({len(steps)} logs)",
                     "train loss bf16 vs fp32 %": 100 * (mean["bf16"] / mean["fp32"] - 1),
                     "CPU-s/step bf16": per_step["bf16"], "CPU-s/step fp32": per_step["fp32"],
                     "bf16 speed-up": per_step["fp32"] / per_step["bf16"]})
    return pd.DataFrame(rows)


def plot(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    models = list(dict.fromkeys(df.model))
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for arm, group in df[df.model == model].groupby("arm", sort=False):
            ax.plot(group.cpu_minutes, group.loss, marker=".", label=arm)
        ax.set(title=model, xlabel="CPU-minutes", ylabel="validation loss (bpp + λ·255²·MSE)", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(runs: Path, out: Path, threads: int) -> pd.DataFrame:
    from invlab.eval.rd import markdown_table

    df = collect(runs, threads)
    if df.empty:
        raise SystemExit(f"no arm has validation records under {runs}")
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "convergence.csv", index=False)
    table = summary(df)
    precision = precision_table(runs)
    text = ("Made by `python -m invlab.train.study` (invlab/train/study.py); each arm trains from scratch.\n\n"
            + markdown_table(table.set_index("arm").astype(object).where(table.set_index("arm").notna(), "-"),
                             digits=3) + "\n")
    if not precision.empty:
        text += ("\n**bf16 autocast against fp32, step for step** (the same batches; training loss averaged over "
                 "the logged steps both arms reached; CPU-seconds per step at the last of them):\n\n"
                 + markdown_table(precision.set_index("model"), digits=2) + "\n")
    (out / "convergence.md").write_text(text)
    plot(df, out / "convergence.png")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invlab.train.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data" / "train"))
    parser.add_argument("--val", default=str(REPO_ROOT.parent / "shared" / "data" / "val"))
    parser.add_argument("--runs", default=str(Path.home() / ".cache" / "invlab" / "study"),
                        help="run folders of the arms (outside the work tree)")
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "training"))
    parser.add_argument("--minutes", type=float, default=5.0, help="wall minutes per arm (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per arm")
    parser.add_argument("--arms", help="comma-separated arm names (default: all)")
    parser.add_argument("--report-only", action="store_true", help="no training: report from the runs there are")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    chosen = [a for a in ARMS if not args.arms or a.name in args.arms.split(",")]
    if not args.report_only:
        from tqdm.auto import tqdm

        for arm in tqdm(chosen, desc="study arms"):
            run_arm(arm, args.data, args.val, runs, args.minutes, args.threads)
    print(report(runs, Path(args.out), args.threads).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
