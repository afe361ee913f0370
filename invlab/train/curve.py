"""A shipped model's training curve over all of its runs: validation loss (and bpp / PSNR at the validated
anchors) against steps and CPU-hours, read from its weights' metadata (``training.validation`` of the last run,
``earlier_runs[i].validation`` of the runs before it).

    python -m invlab.train.curve msinn-mini                       # results/training/msinn-mini-curve.{csv,png}
    python -m invlab.train.curve msinn-mini --recover-from-git    # first fill runs exported before the curve was kept

Runs exported before the metadata kept a curve have only their last validation record, which
``--recover-from-git`` reads from the metadata as committed at their export (the commit whose weights JSON has
that run's step count) and writes into ``earlier_runs``, naming the commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from invlab.weights import REPO_ROOT, weights_path


def _runs(training: dict[str, Any]) -> list[dict[str, Any]]:
    return [*training.get("earlier_runs", []), training]


def training_curve(meta: dict[str, Any]) -> pd.DataFrame:
    """One row per validation: ``run`` (1 = first), ``step``, ``cpu_hours`` (the runs before it in full, plus the
    run's own process CPU time at that validation, or its whole CPU-hours where the record has no clock),
    ``phase``, ``loss``, every ``bpp@k`` / ``psnr@k``, and ``set_aside``: the record is on a decay branch that a
    later session set aside when it resumed the run's stable checkpoint (its steps come again after it)."""
    rows, before = [], 0.0
    for number, run in enumerate(_runs(meta.get("training", {})), 1):
        for record in run.get("validation") or []:
            seconds = record.get("cpu_seconds")
            hours = before + (seconds / 3600 if seconds is not None else run.get("cpu_hours") or 0.0)
            rows.append({"run": number, "step": record["step"], "cpu_hours": round(hours, 4),
                         "phase": record.get("phase", ""), "loss": record["loss"],
                         **{k: v for k, v in record.items() if k.startswith(("bpp@", "psnr@"))}})
        before += run.get("cpu_hours") or 0.0
    curve = pd.DataFrame(rows)
    if len(curve):  # a record with a smaller step after it in its run belongs to a decay branch set aside
        later_min = curve[::-1].groupby("run")["step"].cummin()[::-1]  # (the run resumed its stable checkpoint)
        curve["set_aside"] = curve["step"] >= later_min.groupby(curve["run"]).shift(-1).fillna(float("inf"))
    return curve


def recover_from_git(meta_path: Path, root: Path = REPO_ROOT) -> int:
    """Give each earlier run without a curve the last validation record of its own export, as committed in the
    git repository ``root``. Returns how many runs were filled."""
    meta = json.loads(meta_path.read_text())
    rel = meta_path.resolve().relative_to(root.resolve())
    commits = subprocess.run(["git", "log", "--format=%H", "--", str(rel)], cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
    by_steps: dict[int, tuple[str, dict[str, Any]]] = {}
    for commit in reversed(commits):  # oldest first; a later commit of the same run wins
        shown = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=root, capture_output=True, text=True)
        if shown.returncode:
            continue
        old = json.loads(shown.stdout)
        val = (old.get("log_summary") or {}).get("val_last")
        if val:
            by_steps[old.get("training", {}).get("steps")] = (commit, val)
    filled = 0
    for run in meta.get("training", {}).get("earlier_runs", []):
        if not run.get("validation") and run.get("steps") in by_steps:
            commit, val = by_steps[run["steps"]]
            run["validation"] = [val]
            run["validation_source"] = f"log_summary.val_last of {rel} at commit {commit[:10]}"
            filled += 1
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return filled


def plot(curve: pd.DataFrame, path: Path, title: str) -> None:
    """Validation loss against steps and against CPU-hours, one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for run, df in curve.groupby("run"):
        kept = df[~df["set_aside"]] if "set_aside" in df else df
        aside = df[df["set_aside"]] if "set_aside" in df else df.iloc[:0]
        for ax, x in zip(axes, ("step", "cpu_hours"), strict=True):
            line, = ax.plot(kept[x], kept["loss"], marker="o", markersize=3, label=f"run {run}")
            if len(aside):
                ax.plot(aside[x], aside["loss"], marker="x", markersize=4, linestyle="--", color=line.get_color(),
                        alpha=0.6, label=f"run {run}: decay branch set aside")
    axes[0].set_xlabel("training step")
    axes[1].set_xlabel("CPU-hours (all runs)")
    axes[0].set_ylabel("validation loss (rate-distortion)")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model with shipped weights (e.g. msinn-mini)")
    parser.add_argument("--rate-index", type=int, help="fixed-rate families: the weight file NAME-qI")
    parser.add_argument("--out", help="output stem (default results/training/NAME[-qI]-curve)")
    parser.add_argument("--recover-from-git", action="store_true",
                        help="first fill earlier runs' last validation from the metadata committed at their export")
    args = parser.parse_args(argv)
    meta_path = weights_path(args.model, args.rate_index).with_suffix(".json")
    if not meta_path.is_file():
        raise SystemExit(f"no shipped metadata {meta_path}")
    if args.recover_from_git:
        print(f"filled {recover_from_git(meta_path)} earlier runs from git")
    curve = training_curve(json.loads(meta_path.read_text()))
    if curve.empty:
        raise SystemExit(f"{meta_path} holds no validation records")
    out = Path(args.out or REPO_ROOT / "results" / "training" / f"{meta_path.stem}-curve")
    out.parent.mkdir(parents=True, exist_ok=True)
    curve.to_csv(out.with_suffix(".csv"), index=False)
    runs = int(curve["run"].max())
    plot(curve, out.with_suffix(".png"), f"{meta_path.stem}: validation loss over {runs} run{'s' if runs > 1 else ''}")
    print(curve.groupby("run").tail(1).to_string(index=False))
    print(f"wrote {out.with_suffix('.csv')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
