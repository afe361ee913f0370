"""End to end: every notebook in a live JupyterLab, in headless chromium, driven by playwright-core.

Each notebook runs as a copy with ``quick = True`` appended to its parameters cell (the repo's copy stays
untouched; 01 runs with its defaults, on a whole Kodak image), all cells at once, as a user's "Run All"; the test
fails on any error output (a traceback, or a widget that does not display). The kernels get 2 threads, as
``scripts/lab.sh`` gives a user. Two notebooks are also used:

- ``01_rate_control``: the slider is timed as a user meets it, from the browser's side: two jumps (a click on the
  track, to an uncoded position) until the picture changes and until every view has settled, a step with the
  arrow key to a position coded ahead, and five quick presses until the app has drawn the last one (the presses
  are coalesced); the worker is idle before each (the line under the slider says the neighbours are ready);
- ``03_rd_curves``: every plotly figure must show all its legend entries inside the figure (no legend scrollbar);
  the same check runs on the figure of all the tracked results (``results/kodak`` and the anchors), since quick
  mode plots only a few curves.

In every notebook, every plotly figure must lie inside its output area, no two curves of one panel may share
colour, dash and marker, and picture panels must come with a colour bar (or a legend of their colours).

Screenshots go to the test's temporary folder, never into the repository. To refresh the README's picture,
``results/screenshots/01_rate_control.png``, and the slider's timings beside it (``slider-timings.json``), ask
for them explicitly::

    INVLAB_UPDATE_SCREENSHOT=1 .venv/bin/python -m pytest tests/browser -k 01_rate_control

Skipped, with the reason, where chromium, node or ``node_modules/playwright-core`` is missing
(``bash scripts/setup-browser.sh``, which ``bash scripts/test.sh`` runs, installs them).
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
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
README_SCREENSHOT = REPO / "results" / "screenshots" / "01_rate_control.png"
SLIDER_TIMINGS = REPO / "results" / "screenshots" / "slider-timings.json"  # written with the screenshot
STEP_SECONDS, PRESSES_SECONDS = 0.3, 1.5  # a step's picture; five quick presses until the last one is drawn
JUMP_ENCODES, JUMP_DRAWING_SECONDS = 1.5, 0.5  # a jump's picture: one encode and its drawing (two would miss it)
DRIVER = Path(__file__).with_name("drive_notebook.mjs")
MODES = {"01_rate_control": "rate-control", "03_rd_curves": "rd-legend"}

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not shutil.which("chromium"):
        return "chromium not installed (apt-get install chromium; scripts/setup-browser.sh does it)"
    if not shutil.which("node"):
        return "node not installed"
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        return "node_modules/playwright-core missing (npm ci; scripts/setup-browser.sh does it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: notebooks run with their own defaults, not in quick mode: the slider's speed is measured on a whole Kodak image
WHOLE = {"01_rate_control"}


def _quick_copy(name: str, folder: Path) -> None:
    """The notebook with ``quick = True`` appended to its parameters cell (not for :data:`WHOLE`)."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert "parameters" in nb.cells[0].metadata.get("tags", []), f"{name}: the first cell must be the parameters"
    if name not in WHOLE:
        nb.cells[0].source += "\nquick = True"
    nbformat.write(nb, folder / f"{name}.ipynb")


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


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """One JupyterLab server on a temporary folder holding quick copies of every notebook."""
    if why := _missing():
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    for name in NOTEBOOKS:
        _quick_copy(name, root)
    (tmp / "tmp").mkdir()
    # the kernels get the two threads scripts/lab.sh gives a user (the slider's targets are for 2 threads)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "TMPDIR": str(tmp / "tmp")}
    jupyter = [sys.executable, "-m", "jupyter"]
    subprocess.run([*jupyter, "labextension", "disable", "--level=user",
                    "@jupyterlab/apputils-extension:announcements"], env=env, check=True, capture_output=True)
    port = _free_port()
    log_path = tmp / "lab.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [*jupyter, "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         "--IdentityProvider.token=", "--ServerApp.password=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True",
         f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_server(port, proc)
        yield f"http://127.0.0.1:{port}", log_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_the_browser(name: str, lab, tmp_path: Path):
    base, log_path = lab
    screenshot = tmp_path / f"{name}.png"
    mode = MODES.get(name, "run")
    run = subprocess.run(["node", str(DRIVER), f"{base}/lab/tree/{name}.ipynb?reset", str(screenshot), mode],
                         capture_output=True, text=True, timeout=540, cwd=REPO)
    assert run.returncode == 0, (f"{name} in the browser (picture: {screenshot.with_suffix('.failed.png')}):\n"
                                 + run.stderr[-3000:] + log_path.read_text()[-3000:])
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["cells"] > 0 and screenshot.stat().st_size > 10_000
    for plot in seen["plots"]:  # every figure: inside its output area, curves told apart, pictures with a key
        assert plot["fits"], f"{name}: a figure ({plot['width']:.0f} px) overflows its output ({plot['room']:.0f} px)"
        assert not plot["alike"], f"{name}: curves drawn alike in one panel: {plot['alike']}"
        assert plot["key"] or not plot["pictures"], f"{name}: picture panels without a colour bar: {plot['title']}"
    if mode == "rate-control":
        assert "bpp" in seen["before"] and "bpp" in seen["after"]
        assert seen["before"] != seen["after"]
        assert f"(rate {seen['slider'].strip()})" in seen["timing"]  # settled on the last position pressed
        timings = seen["timings"]
        print("slider timings in the browser (s):", json.dumps(timings))
        # a step to a position coded ahead, and five quick presses, answer at once (the worker idle before each);
        # a jump to an uncoded position costs one encode on the 2 kernel threads and its drawing (its target,
        # 1 s, is not reached on 2 CPU cores: docs/workbench.md has the profile): timed against one encode of the
        # same image measured here, now, so that a busy machine slows both alike
        assert timings["step"]["picture"] < STEP_SECONDS and timings["presses"]["settled"] < PRESSES_SECONDS, timings
        encode = _one_encode_seconds([float(timings["jump"]["rate"]), float(timings["jump back"]["rate"])])
        jump = max(timings["jump"]["picture"], timings["jump back"]["picture"])
        assert jump < JUMP_ENCODES * encode + JUMP_DRAWING_SECONDS, (timings, encode)
        timings["one encode here (s)"] = round(encode, 3)
        if os.environ.get("INVLAB_UPDATE_SCREENSHOT") == "1":
            README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(screenshot, README_SCREENSHOT)
            SLIDER_TIMINGS.write_text(json.dumps(timings, indent=1) + "\n")
    elif mode == "rd-legend":
        assert seen["figures"], "no plotly figure rendered"
        _assert_legends_whole(seen["figures"])


def _one_encode_seconds(rates: list[float]) -> float:
    """The slowest of one encode (with the picture) of notebook 01's image at ``rates`` by its default model, on 2
    threads as the kernel has, the image's analysis kept as the app keeps it (the app's interactive codec)."""
    import torch

    from invlab.widgets import sources

    codec = sources.open_learned(sources.default_model(), interactive=True)
    rgb = sources.load_rgb("kodim23")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        codec.encode_with_reconstruction(rgb, 5.0)  # the analysis, kept
        times = []
        for rate in rates:
            start = time.perf_counter()
            codec.encode_with_reconstruction(rgb, rate)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return max(times)


def _assert_legends_whole(figures: list[dict]) -> None:
    assert figures, "no plotly figure rendered"
    for fig in figures:
        assert not fig["scrollbar"], f"a legend scrolls: {fig}"
        assert fig["entries"] == fig["inside"] == fig["traces"], f"legend entries hidden: {fig}"


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
@pytest.mark.parametrize("width", [1400, 1000])
def test_rd_legend_shows_every_tracked_curve(width: int, tmp_path: Path):
    """Notebook 03's figure on the tracked results (quick mode above has only a few curves): no entry hidden."""
    from invlab.widgets.rd_plots import collect_curves, rd_figure

    curves = collect_curves(REPO / "results" / "kodak")
    page = tmp_path / "rd.html"
    rd_figure(curves).update_layout(width=width - 80).write_html(page, include_plotlyjs=True)
    run = subprocess.run(["node", str(DRIVER), page.as_uri(), str(tmp_path / "rd.png"), "page-rd-legend"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])["figures"]
    _assert_legends_whole(figures)
    assert figures[0]["entries"] == len(curves)
