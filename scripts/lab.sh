#!/usr/bin/env bash
# The main job: set up (if needed), then start JupyterLab on the workbench notebooks with the shipped weights.
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8899).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec .venv/bin/jupyter lab --notebook-dir=notebooks "$@"
