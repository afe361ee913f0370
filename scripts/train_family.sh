#!/usr/bin/env bash
# Train a fixed-rate family the way design §8.1 says: one λ long, then fine-tune the others from it; each
# weight file exported when its run ends. Runs in the background and returns at once.
#
#   bash scripts/train_family.sh MODEL BASE_MINUTES TUNE_MINUTES [BASE_INDEX [INDEX ...]]
#   bash scripts/train_family.sh bmshj2018-hyperprior-mini 60 25 2 0 1 3     # q2 for 60 min, then q0, q1, q3
#
# Each run goes through scripts/train_cpu.sh (same recipe, checkpoints, warm continuation): an index that already
# has weights continues from them; one without starts from the base index's weights (--init-from; the metadata
# then names that start as fine_tuned_from, apart from the file's own budget). Exports use --fp16 and a 4-image
# Kodak check. The queue's log: ~/.cache/invlab/logs/MODEL-family-<date>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: train_family.sh MODEL BASE_MINUTES TUNE_MINUTES [BASE_INDEX [INDEX ...]]}
base_minutes=${2:?base minutes}
tune_minutes=${3:?fine-tune minutes}
base=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
others=("$@")
[ ${#others[@]} -gt 0 ] || others=(0 1 3)
mkdir -p "$HOME/.cache/invlab/logs"
log=$HOME/.cache/invlab/logs/$model-family-$(date +%Y%m%d-%H%M).txt

queue() {
  export_index() {
    OMP_NUM_THREADS=${THREADS:-2} .venv/bin/invlab train "$model" --rate-index "$1" --export --fp16 --kodak-limit 4
  }
  WAIT=1 bash scripts/train_cpu.sh "$model" "$base_minutes" --rate-index "$base"
  export_index "$base"
  for index in "${others[@]}"; do
    start=()
    [ -f "weights/$model-q$index.pt" ] || start=(--init-from "weights/$model-q$base.pt")
    WAIT=1 bash scripts/train_cpu.sh "$model" "$tune_minutes" --rate-index "$index" "${start[@]}"
    export_index "$index"
  done
  echo "train_family: done $(date)"
}
setsid nohup bash -c "$(declare -f queue); model=$model base=$base base_minutes=$base_minutes \
  tune_minutes=$tune_minutes; others=(${others[*]}); queue" > "$log" 2>&1 < /dev/null &
echo "train_family: $model q$base for $base_minutes min, then q${others[*]} for $tune_minutes min each" \
     "in the background (PID $!), log $log"
