#!/usr/bin/env bash
# Train a fixed-rate family the common recipe: one λ long, then fine-tune the others from it; each
# weight file exported when its run ends. Runs in the background and returns at once.
#
#   bash scripts/train_family.sh MODEL BASE_MINUTES TUNE_MINUTES [BASE_INDEX [INDEX ...]]
#   bash scripts/train_family.sh bmshj2018-hyperprior-mini 60 25 2 0 1 3     # q2 for 60 min, then q0, q1, q3
#   bash scripts/train_family.sh mbt2018-mean-mini 55 22 2 3 4:3 1             # q4 starts from q3's weights
#
# Each run goes through scripts/train_cpu.sh (same recipe, checkpoints, warm continuation): an index that already
# has weights continues from them; one without starts from the base index's weights (INDEX:FROM: from FROM's) (--init-from; the metadata
# then names that start as fine_tuned_from, apart from the file's own budget). Exports use --fp16 and a 4-image
# Kodak check. The queue's log: ~/.cache/invlab/logs/MODEL-family-<date>.txt. BASE_LR sets the base run's peak LR
# alone (a new family from scratch: BASE_LR=1e-3, the fine-tunes keep LR, default 5e-4):
#   BASE_LR=1e-3 bash scripts/train_family.sh manfic-mini 32 11 2 1 3
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: train_family.sh MODEL BASE_MINUTES TUNE_MINUTES [BASE_INDEX [INDEX ...]]}
base_minutes=${2:?base minutes}
tune_minutes=${3:?fine-tune minutes}
base=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
others=("$@")
if [ ${#others[@]} -eq 0 ]; then  # default: the indices 0-3 other than the base
  for index in 0 1 2 3; do [ "$index" = "$base" ] || others+=("$index"); done
fi
mkdir -p "$HOME/.cache/invlab/logs"
log=$HOME/.cache/invlab/logs/$model-family-$(date +%Y%m%d-%H%M).txt

queue() {  # MODEL BASE BASE_MINUTES TUNE_MINUTES INDEX...: the base must succeed; each fine-tune is on its own
  set -uo pipefail
  local model=$1 base=$2 base_minutes=$3 tune_minutes=$4 index pair from
  shift 4
  export_index() {
    OMP_NUM_THREADS=${THREADS:-2} .venv/bin/invlab train "$model" --rate-index "$1" --export --fp16 --kodak-limit 4
  }
  LR=${BASE_LR:-${LR:-5e-4}} WAIT=1 bash scripts/train_cpu.sh "$model" "$base_minutes" --rate-index "$base" \
    && export_index "$base" \
    || { echo "train_family: the base run q$base failed; no fine-tunes"; return 1; }
  for pair in "$@"; do
    index=${pair%%:*} from=$base
    [ "$pair" = "$index" ] || from=${pair##*:}
    start=()
    [ -f "weights/$model-q$index.pt" ] || start=(--init-from "weights/$model-q$from.pt")
    WAIT=1 bash scripts/train_cpu.sh "$model" "$tune_minutes" --rate-index "$index" "${start[@]}" \
      && export_index "$index" || echo "train_family: q$index failed (the others go on)"
  done
  echo "train_family: done $(date)"
}
setsid nohup bash -c "$(declare -f queue); queue \"\$@\"" queue "$model" "$base" "$base_minutes" "$tune_minutes" \
  "${others[@]}" > "$log" 2>&1 < /dev/null &
echo "train_family: $model q$base for $base_minutes min, then q${others[*]} for $tune_minutes min each" \
     "in the background (PID $!), log $log"
