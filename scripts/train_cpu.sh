#!/usr/bin/env bash
# Start (or continue) a model's CPU training in the background with the CPU recipe (docs/training.md).
#
#   bash scripts/train_cpu.sh MODEL MINUTES [extra invlab train options]
#   bash scripts/train_cpu.sh msinn-mini 140
#   bash scripts/train_cpu.sh bmshj2018-hyperprior-mini 60 --rate-index 2
#
# Continues, in this order: the run's stable.pt / last.pt in ~/.cache/invlab/runs/RUN (exact), else the committed
# weights (weights/NAME[-qI].pt, warm: --init-from + the step count from their metadata; not when the options give
# their own --init-from, e.g. a warm start from a related model with --init-partial), else from scratch.
# DATA / VAL (default ../shared/data/{train,val}), THREADS (default 2), LR (default 5e-4), PRECISION (default auto) and
# RUN (the run folder's name, default MODEL[-qI]) may be set. The 12-anchor widening of msinn-mini is a model of its own,
# msinn-mini-12. Its first run starts from the 8-anchor weights (its new gain rows extrapolate the last step in log-λ; it exports to
# weights/msinn-mini-12.pt); later runs continue it like any other (no --init-from):
#   LR=1e-4 bash scripts/train_cpu.sh msinn-mini-12 100 --init-from weights/msinn-mini.pt
# A run that would start afresh from another file's --init-from while weights/NAME[-qI].pt exists (its trained weights,
# which its export would replace) is refused; FRESH=1 starts it anyway.
# The log goes to ~/.cache/invlab/logs/RUN-<date>.txt; the command prints the PID and the log's path and returns at once
# (WAIT=1: it trains in the foreground instead and returns when the run ends; scripts/train_family.sh uses that).
# DRY_RUN=1 prints the training command and starts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: train_cpu.sh MODEL MINUTES [options]}
minutes=${2:?usage: train_cpu.sh MODEL MINUTES [options]}
shift 2
DATA=${DATA:-../shared/data/train}
VAL=${VAL:-../shared/data/val}
THREADS=${THREADS:-2}
LR=${LR:-5e-4}  # the peak LR (docs/training.md: 1e-3 for new runs from scratch, 5e-4 for warm continuations)
PRECISION=${PRECISION:-auto}  # bf16 where the CPU computes it (AVX-512 bf16 / AMX), else fp32 (docs/training.md)
index=""
init_from=""
own_start=0  # the options name their own start (--init-from): no warm continuation from the committed weights
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--rate-index" ]; then j=$((i + 1)); index=${!j}; fi
  if [ "${!i}" = "--init-from" ]; then own_start=1; j=$((i + 1)); init_from=${!j}; fi
done
stem=$model${index:+-q$index}
run=${RUN:-$stem}  # RUN: a run folder of its own, e.g. RUN=msanfic-mini-warm-q1 for a trial beside the shipped run
runs=${INVLAB_RUNS:-$HOME/.cache/invlab/runs}
weights=weights/$stem.pt
warm=()
if [ "$own_start" = 0 ] && [ ! -f "$runs/$run/stable.pt" ] && [ ! -f "$runs/$run/last.pt" ] && [ -f "$weights" ]; then
  steps=$(.venv/bin/python -c "import json,sys; print(json.load(open(sys.argv[1]))['training']['steps'])" \
          "${weights%.pt}.json")
  warm=(--init-from "$weights" --start-step "$steps")
  echo "train_cpu: no checkpoint in $runs/$run; continuing warm from $weights at step $steps"
fi
if [ "$own_start" = 1 ] && [ "${FRESH:-0}" != 1 ] && [ ! -f "$runs/$run/stable.pt" ] && [ ! -f "$runs/$run/last.pt" ] \
   && [ -f "$weights" ] && [ "$init_from" != "$weights" ] && [ "$init_from" != "./$weights" ]; then
  echo "train_cpu: $weights exists and $runs/$run has no checkpoint: this --init-from would start $stem afresh and" \
       "its export would replace those weights. Continue them without --init-from, or set FRESH=1 to start anew." >&2
  exit 2
fi
mkdir -p "$HOME/.cache/invlab/logs"
log=$HOME/.cache/invlab/logs/$run-$(date +%Y%m%d-%H%M).txt
command=(.venv/bin/invlab train "$model"
  --data "$DATA" --val "$VAL" --batch-size 8 --crop 128 --lr "$LR" --precision "$PRECISION" --schedule wsd
  --warmup-steps 200 --decay-fraction 0.15 --max-steps 1000000 --val-every 500 --log-every 25 --ckpt-every 500
  --time-limit "$minutes" --no-progress --run-dir "$runs/$run" "${warm[@]}" "$@")
if [ "${DRY_RUN:-0}" = 1 ]; then  # print the command only
  echo "${command[@]}"
  exit
fi
if [ "${WAIT:-0}" = 1 ]; then
  echo "train_cpu: $run training for $minutes min (log $log, run folder $runs/$run)"
  OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS nice -n 5 "${command[@]}" > "$log" 2>&1 < /dev/null
  exit
fi
OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS setsid nohup nice -n 5 "${command[@]}" > "$log" 2>&1 < /dev/null &
echo "train_cpu: $run training for $minutes min in the background (PID $!), log $log, run folder $runs/$run"
