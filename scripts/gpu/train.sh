#!/usr/bin/env bash
# One GPU-session training call: install wheels, train MODEL for MINUTES, export weights + Kodak RD into $OUT.
#
#   scripts/gpu/train.sh MODEL [more `invlab train` options, e.g. --batch-size 8]
#
# Environment (all optional):
#   MINUTES=8            training time limit (leaves ~2 min of the 10-min call for install + export)
#   STEPS=50000          total steps of the run (LR x0.1 at 80 % and 95 %)
#   RATE_INDEX=          fixed-rate families: train/export NAME-q{RATE_INDEX} (its default λ)
#   INIT_FROM=           weights .pt to start from when no run checkpoint exists (default: weights/NAME[-qI].pt if
#                        committed); START_STEP=N continues the step count/LR schedule from there
#   DEVICE=cuda          EVAL_DEVICE=$DEVICE   KODAK_LIMIT= (all 24)   FP16=1 (0: store weights as fp32)
#   INVLAB_GIT_COMMIT=   the commit being trained (the device's copy has no .git)
#   RUN_NAME=            run folder runs/RUN_NAME (default NAME[-qI]); for ablations trained beside the main run
#   RUNS_DIR=runs        DATA=.traindata/train   VAL=.traindata/val
#   PYTHON=python3       OUT=$PWD/out (set by the device tool)   INSTALL_WHEELS=1 (0: a CPU test here)
# Resume order: runs/RUN/last.pt (left on a warm machine or carried), then runs/RUN/last.pt.part-* (carried
# pieces, re-joined), then INIT_FROM, else from scratch. See scripts/gpu/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

MODEL=${1:?usage: scripts/gpu/train.sh MODEL [invlab train options]}
shift
MINUTES=${MINUTES:-8}
STEPS=${STEPS:-50000}
DEVICE=${DEVICE:-cuda}
EVAL_DEVICE=${EVAL_DEVICE:-$DEVICE}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/train.txt") 2>&1

if [[ ${INSTALL_WHEELS:-1} == 1 ]] && compgen -G ".whl/*.whl" > /dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 INVLAB_GIT_COMMIT=${INVLAB_GIT_COMMIT:-unknown}

STEM=$MODEL${RATE_INDEX:+-q$RATE_INDEX}
RUN=${RUNS_DIR:-runs}/${RUN_NAME:-$STEM}  # RUN_NAME: a separate run (e.g. an ablation with --config) beside the main one
RATE_ARGS=(${RATE_INDEX:+--rate-index "$RATE_INDEX"})
mkdir -p "$RUN"
if [[ ! -f $RUN/last.pt ]] && compgen -G "$RUN/last.pt.part-*" > /dev/null; then
  cat "$RUN"/last.pt.part-* > "$RUN/last.pt"
fi
INIT_ARGS=()
if [[ -z ${RUN_NAME:-} ]]; then
  INIT_FROM=${INIT_FROM:-weights/$STEM.pt}
else
  INIT_FROM=${INIT_FROM:-}  # a RUN_NAME run (an ablation) starts fresh unless told
fi
if [[ ! -f $RUN/last.pt && -f $INIT_FROM ]]; then
  INIT_ARGS=(--init-from "$INIT_FROM" --start-step "${START_STEP:-0}")
fi
echo "== $STEM: ${INIT_ARGS[*]:-resume or scratch}; $MINUTES min on $DEVICE; commit $INVLAB_GIT_COMMIT"
"$PYTHON" - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

"$PYTHON" -m invlab.cli train "$MODEL" "${RATE_ARGS[@]}" --data "${DATA:-.traindata/train}" --val "${VAL:-.traindata/val}" \
  --device "$DEVICE" --max-steps "$STEPS" --time-limit "$MINUTES" --no-progress --run-dir "$RUN" "${INIT_ARGS[@]}" "$@"

echo "== export (Kodak RD on $EVAL_DEVICE)"
INVLAB_WEIGHTS=$OUT "$PYTHON" -m invlab.cli train "$MODEL" "${RATE_ARGS[@]}" --export --run-dir "$RUN" --eval-device "$EVAL_DEVICE" \
  ${KODAK_LIMIT:+--kodak-limit "$KODAK_LIMIT"} $([[ ${FP16:-1} == 1 ]] && echo --fp16)

cp "$RUN/log.jsonl" "$OUT/log.jsonl"
# the device returns files of at most 16 MiB and 64 MiB in all: the checkpoint pieces go only where they fit
room=$(( 60 * 1024 * 1024 - $(du -cb "$OUT" | tail -1 | cut -f1) ))
if (( $(stat -c %s "$RUN/last.pt") <= room )); then
  split -b 15M -d "$RUN/last.pt" "$OUT/last.pt.part-"
else
  echo "== checkpoint ($(du -h "$RUN/last.pt" | cut -f1)) left out: it does not fit in what the device returns"
fi
ls -l "$OUT"
