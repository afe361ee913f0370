#!/usr/bin/env bash
# Create .venv (if missing) and install the pinned requirements + invlab (editable). Idempotent and quick
# when nothing changed: a stamp file remembers the hash of requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "invlab setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.invlab-requirements.sha256
want=$(sha256sum requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "invlab setup: installing pinned requirements (first time: about 2 minutes)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import invlab, compressai, torch" || { echo "invlab setup: install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
