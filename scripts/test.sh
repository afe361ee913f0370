#!/usr/bin/env bash
# The test command: set everything up on a fresh machine (venv, pinned packages, headless browser), then run
# the test suite (slow tests excluded; a fast test covers each of them). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup-browser.sh
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
exec .venv/bin/python -m pytest -q -m "not slow" -p no:cacheprovider "$@"
