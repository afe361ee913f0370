#!/usr/bin/env bash
# The main job: set up (if needed), then start JupyterLab on the workbench notebooks with the shipped weights.
# Extra arguments go to `jupyter lab` (e.g. --no-browser --port 8899). Notebooks are saved without their outputs
# (scripts/jupyter/jupyter_server_config.py), so running them never changes the repository's files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export JUPYTER_CONFIG_PATH="$PWD/scripts/jupyter${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
root=()
if [ "$(id -u)" = 0 ]; then
  root=(--allow-root)  # containers often run as root; JupyterLab refuses that without the flag
fi
exec .venv/bin/jupyter lab --notebook-dir=notebooks "${root[@]}" "$@"
