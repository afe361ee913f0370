"""A training step beside other work on a 2-core machine: how much it slows with 2 torch threads and with 1,
and whether OpenMP's passive wait policy helps.

    python benchmarks/shared_cpu.py [--model mbt2018-mean-mini] [--precision bf16] [--steps 12] [--json FILE]

Times :mod:`benchmarks.train_speed` (the real trainer step, batch 8 at 128²) in a fresh process for each arm:
2 or 1 torch threads, alone or beside a busy 1-thread torch process (a stand-in for the foreground work a
session does while its training runs: tests, an evaluation, a re-encoding study), with OpenMP's default wait
policy or ``OMP_WAIT_POLICY=PASSIVE`` (idle OpenMP threads sleep instead of spinning). Run it on an otherwise
idle machine; prints samples/s per arm and the ratio to the first (2 threads, alone).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUSY = ("import torch, time\ntorch.set_num_threads(1)\na = torch.randn(384, 384)\n"
        "end = time.time() + {seconds}\nwhile time.time() < end:\n    a = torch.tanh(a @ a)\n")


def train_speed(model: str, precision: str, steps: int, threads: int, env: dict[str, str]) -> float:
    """samples/s of one ``train_speed.py`` run in a fresh process with ``env``."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "train_speed.py"), "--models", model, "--precisions", precision,
           "--steps", str(steps), "--warmup", "2", "--threads", str(threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=REPO).stdout
    row = next(line for line in out.splitlines() if line.startswith(f"| {model} "))
    return float(re.findall(r"\d+\.\d+", row)[-1])


def arm(model: str, precision: str, steps: int, threads: int, policy: str | None, busy: bool) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    other = None
    if busy:
        busy_env = {**os.environ, "OMP_NUM_THREADS": "1"}
        other = subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=900)], env=busy_env)
        time.sleep(2)  # let it import torch and start computing
    try:
        return train_speed(model, precision, steps, threads, env)
    finally:
        if other is not None:
            other.kill()
            other.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mbt2018-mean-mini")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    arms = [(2, None, False), (2, "PASSIVE", False), (2, None, True), (2, "PASSIVE", True), (1, None, False),
            (1, None, True)]
    rows = []
    for threads, policy, busy in arms:
        where = "beside a busy 1-thread process" if busy else "alone"
        name = f"{threads} thread{'s' if threads > 1 else ''}, {where}"
        name += f", OMP_WAIT_POLICY={policy}" if policy else ""
        rows.append({"arm": name, "threads": threads, "busy": busy, "wait_policy": policy or "default",
                     "samples_per_s": arm(args.model, args.precision, args.steps, threads, policy, busy)})
        print(f"{name}: {rows[-1]['samples_per_s']:.1f} samples/s", flush=True)
    base = rows[0]["samples_per_s"]
    print(f"\n| {args.model} {args.precision}, batch 8, 128² | samples/s | vs 2 threads alone |\n|---|---|---|")
    for r in rows:
        print(f"| {r['arm']} | {r['samples_per_s']:.1f} | {r['samples_per_s'] / base:.2f}x |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "precision": args.precision,
                                               "steps": args.steps, "cpu": _cpu(), "arms": rows}, indent=1) + "\n")


def _cpu() -> str:
    try:
        return next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
