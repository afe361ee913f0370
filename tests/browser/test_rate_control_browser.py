"""End to end: notebook 01 in a live JupyterLab, in headless chromium, driven by playwright-core.

Runs every cell, moves the rate slider with the keyboard, checks that the shown bpp changes, and saves
``results/screenshots/01_rate_control.png``. Skipped, with the reason, where chromium, node or
``node_modules/playwright-core`` is missing (``bash scripts/test.sh`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "results" / "screenshots" / "01_rate_control.png"
DRIVER = Path(__file__).with_name("drive_rate_control.mjs")

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not shutil.which("chromium"):
        return "chromium not installed (apt-get install chromium; scripts/test.sh does it)"
    if not shutil.which("node"):
        return "node not installed"
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        return "node_modules/playwright-core missing (npm ci; scripts/test.sh does it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quick_copy(folder: Path) -> None:
    """Notebook 01 with ``quick = True`` appended to its parameters cell (the repo's copy stays untouched)."""
    nb = nbformat.read(REPO / "notebooks" / "01_rate_control.ipynb", as_version=4)
    nb.cells[0].source += "\nquick = True"
    nbformat.write(nb, folder / "01_rate_control.ipynb")


def _wait_for_server(port: int, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("jupyter lab did not start")


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_slider_changes_the_shown_bpp(tmp_path: Path):
    root = tmp_path / "lab"
    root.mkdir()
    _quick_copy(root)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_DATA_DIR": str(tmp_path / "data"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    jupyter = [sys.executable, "-m", "jupyter"]
    subprocess.run([*jupyter, "labextension", "disable", "--level=user",
                    "@jupyterlab/apputils-extension:announcements"], env=env, check=True, capture_output=True)
    port = _free_port()
    log = (tmp_path / "lab.log").open("w")
    lab = subprocess.Popen(
        [*jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         "--IdentityProvider.token=", "--ServerApp.password=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_server(port, lab)
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["node", str(DRIVER), f"http://127.0.0.1:{port}/lab/tree/01_rate_control.ipynb",
                              str(SCREENSHOT)], capture_output=True, text=True, timeout=420, cwd=REPO)
        assert run.returncode == 0, run.stderr[-3000:] + (tmp_path / "lab.log").read_text()[-3000:]
    finally:
        lab.terminate()
        lab.wait(timeout=30)
        log.close()
    shown = json.loads(run.stdout.strip().splitlines()[-1])
    assert "bpp" in shown["before"] and "bpp" in shown["after"]
    assert shown["before"] != shown["after"]
    assert SCREENSHOT.stat().st_size > 10_000
